/* resample.h - area-averaging (box filter) resampling of a rectangle of an
 * 8-bit or float plane to at most RESAMPLE_MAX x RESAMPLE_MAX float pixels,
 * exact for any ratio, up or down: how prep_canonical (preprocess.h) brings
 * a large picture down to its working size and a digit's bounding box to
 * 20 px. Pure: no allocation, no globals, thread-safe.
 */
#ifndef BNN_RESAMPLE_H
#define BNN_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

#define RESAMPLE_MAX 64

/* A source plane: 8-bit or float, with its row stride (in elements) and a
 * value multiplier. Borrowed for the call. */
struct resample_src {
    const uint8_t *u8; /* exactly one of u8, f is set */
    const float *f;
    size_t stride;
    float scale; /* each value is (float)value * scale, in float */
};

/* dst (dh rows of dw floats, rows dst_stride apart; 1 <= dw, dh <=
 * RESAMPLE_MAX) = the (sw, sh) rectangle of src at (sx0, sy0), each
 * destination pixel the mean of the source area it covers, partly covered
 * source pixels weighted by the part covered. sw, sh >= 1. */
void resample_area(float *dst, size_t dst_stride, size_t dw, size_t dh, const struct resample_src *src,
                   size_t sx0, size_t sy0, size_t sw, size_t sh);

#endif

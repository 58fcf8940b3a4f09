/* filters.h - the scipy.ndimage and skimage operations the MNIST-C
 * corruptions (corrupt.c) are written in, re-done in C on one 28x28 image
 * of doubles, (row, col) row-major; skimage's (x, y) is (col, row). Each
 * follows its Python original's border rule, kernel radius and tie order,
 * so the corruptions match corruptions.py (see corrupt.h for how closely).
 *
 * Pure functions of their inputs; no allocation (the working planes live on
 * the stack, a few KiB); out and in may not alias unless said.
 *
 * Part of the lab (model/lab/): linked by the tools and tests, never by
 * the daemon, which links only the runtime in model/.
 */
#ifndef BNN_FILTERS_H
#define BNN_FILTERS_H

#include "corrupt.h"

/* Outside the image: the nearest edge pixel (scipy 'nearest'), or 0
 * ('constant', cval 0). */
enum filt_border { FILT_NEAREST, FILT_CONSTANT };

/* scipy.ndimage.gaussian_filter1d along axis 0 (down the rows) or 1 (along
 * a row): radius int(4 sigma + 0.5), at most 8 (sigma <= 1.875). */
void filt_blur_axis(double *out, const double *in, double sigma, int axis, enum filt_border mode);

/* scipy.ndimage.gaussian_filter over both axes (axis 0, then 1). */
void filt_blur(double *out, const double *in, double sigma, enum filt_border mode);

/* skimage.transform.warp(in, inverse_map) with order 1, mode constant, cval
 * 0: output (col, row) samples the input at m . (col, row) + t (m row-major
 * 2x2) bilinearly, neighbours outside the image counting as 0. */
void filt_warp(double *out, const double *in, const double m[4], const double t[2]);

/* skimage.feature.canny(x, sigma, low_threshold, high_threshold) on a float
 * image, in place: x becomes its edge map (1 on an edge, else 0). */
void filt_canny(double *x, double sigma, double low, double high);

#endif

/* resample.c - area-averaging resampling (resample.h).
 *
 * Destination pixel (x, y) covers the source area [x fx, (x + 1) fx) x
 * [y fy, (y + 1) fy), fx = sw / dw, fy = sh / dh; its value is the sum of
 * the source pixels weighted by how much of each the area covers, divided
 * by fx fy. The arithmetic is in double in a fixed order - along each
 * source row of the area first (a row sum), then those row sums weighted
 * down the area's source rows, each sum from 0 in increasing index - and
 * the weights are computed once per call: only a span's first and last
 * source pixels have fractional weights, those between have weight exactly
 * 1 ((i + 1) - i in double) and are added as they are. prep_canonical's
 * results, on which the shipped weights were trained, depend on every bit
 * of this order; test_resample holds it against a naive reference.
 */
#include "resample.h"

#include <math.h>

/* Weight of source index i in the destination span [a, b). */
static double span_weight(double a, double b, size_t i)
{
    double lo = a > (double)i ? a : (double)i, hi = b < (double)i + 1 ? b : (double)i + 1;
    return hi > lo ? hi - lo : 0;
}

/* The source pixels [first, end) that one destination pixel covers along
 * an axis, with the weights of the first and the last. */
struct span {
    size_t first, end;
    double w_first, w_last;
};

/* Destination pixel d covers [d f, (d + 1) f) of n_src source pixels:
 * from floor(d f) while i < n_src and i < (d + 1) f. */
static void area_spans(struct span *sp, size_t n_dst, size_t n_src, double f)
{
    for (size_t d = 0; d < n_dst; d++) {
        double a = (double)d * f, b = (double)(d + 1) * f;
        size_t first = (size_t)a, end = (size_t)ceil(b); /* integer i < b <=> i < ceil(b) */
        end = end < n_src ? end : n_src;
        sp[d].first = first;
        sp[d].end = end > first ? end : first;
        sp[d].w_first = span_weight(a, b, first);
        sp[d].w_last = end > first ? span_weight(a, b, end - 1) : 0;
    }
}

/* Weight of source index i in span s (first <= i < end). */
static double span_at(const struct span *s, size_t i)
{
    return i == s->first ? s->w_first : i + 1 == s->end ? s->w_last : 1.0;
}

/* One destination pixel: the sum over its source rows, in order, of the
 * row's weight times the row's weighted sum over the pixel's span, in
 * order; 8-bit values through lut ((float)v * scale, widened to double).
 * Each row's sum is independent of the others, so they overlap. A row sum
 * does not depend on the destination row: the last one is left in *carry,
 * and taken from there for the first row when `shared` (the pixel above
 * ended on that row). */
static double area_pixel_u8(const struct span *sx, const struct span *sy, const uint8_t *src, size_t stride,
                            const double *lut, double *carry, int shared)
{
    double acc = 0, w_first = sx->w_first, w_last = sx->w_last;
    size_t taps = sx->end - sx->first, inner = taps > 1 ? taps - 2 : 0; /* inner: the pixels of weight 1 */
    const uint8_t *row = src + sy->first * stride + sx->first;
    for (size_t j = sy->first; j < sy->end; j++, row += stride) {
        double wy = span_at(sy, j), sum;
        const uint8_t *p = row + 1;
        size_t i = 0;
        if (shared && j == sy->first) {
            sum = *carry;
        } else {
            sum = w_first * lut[row[0]];
            for (; i + 2 <= inner; i += 2) {
                sum += lut[p[i]];
                sum += lut[p[i + 1]];
            }
            if (i < inner)
                sum += lut[p[i++]];
            if (taps > 1)
                sum += w_last * lut[p[i]];
        }
        if (wy > 0)
            acc += wy * sum;
        *carry = sum;
    }
    return acc;
}

/* The same for float values, each multiplied by scale in float. */
static double area_pixel_f(const struct span *sx, const struct span *sy, const float *src, size_t stride,
                           float scale)
{
    double acc = 0;
    size_t last = sx->end - 1;
    for (size_t j = sy->first; j < sy->end; j++) {
        const float *row = src + j * stride;
        double wy = span_at(sy, j), sum = sx->w_first * (row[sx->first] * scale);
        size_t i = sx->first + 1;
        for (; i < last; i++)
            sum += row[i] * scale;
        if (i == last)
            sum += sx->w_last * (row[i] * scale);
        if (wy > 0)
            acc += wy * sum;
    }
    return acc;
}

void resample_area(float *dst, size_t dst_stride, size_t dw, size_t dh, const struct resample_src *src,
                   size_t sx0, size_t sy0, size_t sw, size_t sh)
{
    double fx = (double)sw / (double)dw, fy = (double)sh / (double)dh, area = fx * fy, lut[256];
    struct span sx[RESAMPLE_MAX], sy[RESAMPLE_MAX];
    size_t stride = src->stride; /* locals: a store to dst could be a store to *src */
    const uint8_t *u8 = src->u8 ? src->u8 + sy0 * stride + sx0 : NULL;
    const float *f = src->u8 ? NULL : src->f + sy0 * stride + sx0;
    float scale = src->scale;
    area_spans(sx, dw, sw, fx);
    area_spans(sy, dh, sh, fy);
    for (int v = 0; v < 256; v++)
        lut[v] = (float)v * scale;
    double carry[RESAMPLE_MAX]; /* each column's last row sum */
    for (size_t y = 0; y < dh; y++) {
        int shared = y > 0 && sy[y].first + 1 == sy[y - 1].end && sy[y].end > sy[y].first;
        for (size_t x = 0; x < dw; x++) {
            double acc = 0;
            if (sx[x].end > sx[x].first)
                acc = u8 ? area_pixel_u8(&sx[x], &sy[y], u8, stride, lut, &carry[x], shared)
                         : area_pixel_f(&sx[x], &sy[y], f, stride, scale);
            dst[y * dst_stride + x] = (float)(acc / area);
        }
    }
}

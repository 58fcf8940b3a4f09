/* morph.h - grey-level opening and closing (Serra's morphology) of a float
 * plane with a (2r+1) x (2r+1) square cut off at the picture's edges: what
 * prep_canonical (preprocess.h) measures thin structure with. Separable
 * (rows, then columns) and computed in whole vectors of MORPH_VEC floats
 * so that it vectorises in plain C; min and max are exact, so the results
 * do not depend on the order. Pure: no allocation, no globals.
 */
#ifndef BNN_MORPH_H
#define BNN_MORPH_H

#include <stddef.h>

#define MORPH_VEC 4
#define MORPH_MAX_W 64 /* a multiple of MORPH_VEC */
#define MORPH_MAX_R 8

/* The width rounded up to whole vectors: the columns every plane below
 * must have room for (stride >= morph_width(w)). */
static inline int morph_width(int w)
{
    return (w + MORPH_VEC - 1) & ~(MORPH_VEC - 1);
}

/* open = dilation of the erosion of in, close = erosion of its dilation,
 * each (h, w) with rows `stride` floats apart; t1, t2 scratch planes of the
 * same shape. 1 <= w <= MORPH_MAX_W, 0 <= r <= MORPH_MAX_R. Reads in's
 * first morph_width(w) columns (their values past w do not matter) and
 * writes as many of the others; no two planes may overlap. */
void morph_open_close(float *open, float *close, const float *in, float *t1, float *t2, int w, int h,
                      size_t stride, int r);

#endif

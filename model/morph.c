/* morph.c - opening and closing with a square (morph.h).
 *
 * Each pass is a loop along a row whose trip count is a multiple of
 * MORPH_VEC over planes that do not alias, which compilers vectorise even
 * at -O2 (GCC's cheap cost model takes no loop that needs a scalar
 * remainder or an aliasing check). Along a row the window is cut off at
 * the ends by copying the row between values that never win (+-infinity),
 * so that every window is whole; down the columns by the loop bounds.
 */
#include "morph.h"

#include <math.h>

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
_Static_assert(MORPH_MAX_W % MORPH_VEC == 0, "rows of whole vectors");

/* Along each row: lo = the minimum of lo_in, hi = the maximum of hi_in over
 * [x - r, x + r] cut off at the row's ends. */
static void window_rows(float *restrict lo, const float *restrict lo_in, float *restrict hi,
                        const float *restrict hi_in, int w, int h, size_t stride, int r)
{
    float a[MORPH_MAX_W + 2 * MORPH_MAX_R], b[MORPH_MAX_W + 2 * MORPH_MAX_R];
    int n = morph_width(w);
    for (int x = 0; x < n + 2 * r; x++) {
        a[x] = INFINITY;
        b[x] = -INFINITY;
    }
    for (int y = 0; y < h; y++) {
        float *restrict p = lo + (size_t)y * stride, *restrict q = hi + (size_t)y * stride;
        const float *restrict pi = lo_in + (size_t)y * stride, *restrict qi = hi_in + (size_t)y * stride;
        for (int x = 0; x < n; x++) {
            a[r + x] = pi[x];
            b[r + x] = qi[x];
        }
        for (int x = w; x < n; x++) {
            a[r + x] = INFINITY;
            b[r + x] = -INFINITY;
        }
        for (int x = 0; x < n; x++) {
            p[x] = a[x];
            q[x] = b[x];
        }
        for (int d = 1; d <= 2 * r; d++)
            for (int x = 0; x < n; x++) {
                p[x] = MIN(p[x], a[x + d]);
                q[x] = MAX(q[x], b[x + d]);
            }
    }
}

/* The same down each column, over rows [y - r, y + r] cut off at the top
 * and the bottom. */
static void window_cols(float *restrict lo, const float *restrict lo_in, float *restrict hi,
                        const float *restrict hi_in, int w, int h, size_t stride, int r)
{
    int n = morph_width(w);
    for (int y = 0; y < h; y++) {
        float *restrict p = lo + (size_t)y * stride, *restrict q = hi + (size_t)y * stride;
        int y0 = MAX(0, y - r), y1 = MIN(h - 1, y + r);
        for (int x = 0; x < n; x++) {
            p[x] = lo_in[(size_t)y0 * stride + (size_t)x];
            q[x] = hi_in[(size_t)y0 * stride + (size_t)x];
        }
        for (int yy = y0 + 1; yy <= y1; yy++) {
            const float *restrict a = lo_in + (size_t)yy * stride, *restrict b = hi_in + (size_t)yy * stride;
            for (int x = 0; x < n; x++) {
                p[x] = MIN(p[x], a[x]);
                q[x] = MAX(q[x], b[x]);
            }
        }
    }
}

void morph_open_close(float *open, float *close, const float *in, float *t1, float *t2, int w, int h,
                      size_t stride, int r)
{
    window_rows(t1, in, t2, in, w, h, stride, r);
    window_cols(open, t1, close, t2, w, h, stride, r); /* open = erosion, close = dilation */
    window_rows(t2, close, t1, open, w, h, stride, r);
    window_cols(close, t2, open, t1, w, h, stride, r); /* close = closing, open = opening */
}

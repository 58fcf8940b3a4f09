/* morph.c - opening and closing with a square (morph.h).
 *
 * Each output row is one loop whose trip count is a multiple of MORPH_VEC
 * over pointers that do not alias, which compilers vectorise even at -O2
 * (GCC's cheap cost model takes no loop that needs a scalar remainder or
 * an aliasing check); the windows of 3 and 5 taps are written out so that
 * they need no inner loop. Along a row the window is cut off at the ends by
 * copying the row between values that never win (+-infinity), so that
 * every window is whole; down the columns by the loop bounds.
 */
#include "morph.h"

#include <math.h>

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
_Static_assert(MORPH_MAX_W % MORPH_VEC == 0, "rows of whole vectors");

/* p[x] = the minimum and q[x] the maximum of `taps` values of a and b:
 * at x, x + step, ..., x + (taps - 1) step. The windows of 3 and 5 (r = 1,
 * 2: what prep_canonical uses) in one loop each, others a pass per tap. */
static void window_taps(float *restrict p, float *restrict q, const float *restrict a,
                        const float *restrict b, size_t step, int n, int taps)
{
    if (taps == 3) {
        const float *restrict a1 = a + step, *restrict a2 = a + 2 * step;
        const float *restrict b1 = b + step, *restrict b2 = b + 2 * step;
        for (int x = 0; x < n; x++) {
            p[x] = MIN(MIN(a[x], a1[x]), a2[x]);
            q[x] = MAX(MAX(b[x], b1[x]), b2[x]);
        }
        return;
    }
    if (taps == 5) {
        const float *restrict a1 = a + step, *restrict a2 = a + 2 * step, *restrict a3 = a + 3 * step,
                              *restrict a4 = a + 4 * step;
        const float *restrict b1 = b + step, *restrict b2 = b + 2 * step, *restrict b3 = b + 3 * step,
                              *restrict b4 = b + 4 * step;
        for (int x = 0; x < n; x++) {
            p[x] = MIN(MIN(MIN(a[x], a1[x]), MIN(a2[x], a3[x])), a4[x]);
            q[x] = MAX(MAX(MAX(b[x], b1[x]), MAX(b2[x], b3[x])), b4[x]);
        }
        return;
    }
    for (int x = 0; x < n; x++) {
        p[x] = a[x];
        q[x] = b[x];
    }
    for (int d = 1; d < taps; d++) {
        const float *restrict ad = a + (size_t)d * step, *restrict bd = b + (size_t)d * step;
        for (int x = 0; x < n; x++) {
            p[x] = MIN(p[x], ad[x]);
            q[x] = MAX(q[x], bd[x]);
        }
    }
}

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
        const float *restrict pi = lo_in + (size_t)y * stride, *restrict qi = hi_in + (size_t)y * stride;
        for (int x = 0; x < n; x++) {
            a[r + x] = pi[x];
            b[r + x] = qi[x];
        }
        for (int x = w; x < n; x++) {
            a[r + x] = INFINITY;
            b[r + x] = -INFINITY;
        }
        window_taps(lo + (size_t)y * stride, hi + (size_t)y * stride, a, b, 1, n, 2 * r + 1);
    }
}

/* The same down each column, over rows [y - r, y + r] cut off at the top
 * and the bottom. */
static void window_cols(float *restrict lo, const float *restrict lo_in, float *restrict hi,
                        const float *restrict hi_in, int w, int h, size_t stride, int r)
{
    int n = morph_width(w);
    for (int y = 0; y < h; y++) {
        int y0 = MAX(0, y - r), y1 = MIN(h - 1, y + r);
        window_taps(lo + (size_t)y * stride, hi + (size_t)y * stride, lo_in + (size_t)y0 * stride,
                    hi_in + (size_t)y0 * stride, stride, n, y1 - y0 + 1);
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

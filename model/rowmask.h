/* rowmask.h - sets of pixels of pictures at most ROWMASK_MAX pixels wide
 * as one 64-bit mask per row (bit x = column x), and connectivity on them:
 * the part of an 8-connected graph that holds a seed, found a row at a
 * time with word operations instead of pixel by pixel (prep_canonical's
 * background regions and ink parts). Row y of a picture of h rows is
 * m[y + 1]; m[0] and m[h + 1] are a frame that stays 0, so mask arrays have
 * ROWMASK_ROWS entries. Pure: no allocation, no globals.
 */
#ifndef BNN_ROWMASK_H
#define BNN_ROWMASK_H

#include <stdint.h>

#define ROWMASK_MAX 64
#define ROWMASK_ROWS (ROWMASK_MAX + 2)

/* An undirected graph on the pixels: bit x of e[y + 1] joins (x, y) and
 * (x + 1, y), of s[y + 1] (x, y) and (x, y + 1), of se[y + 1] (x, y) and
 * (x + 1, y + 1), of sw[y + 1] (x, y) and (x - 1, y + 1); no edge leaves the
 * picture. */
struct rowmask_graph {
    uint64_t e[ROWMASK_ROWS], s[ROWMASK_ROWS], se[ROWMASK_ROWS], sw[ROWMASK_ROWS];
};

/* The bits of a row of w (1..64) pixels. */
static inline uint64_t rowmask_bits(int w)
{
    return w >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << w) - 1;
}

/* g = every pair of 8-neighbours both in m (h rows). */
void rowmask_graph_of(struct rowmask_graph *g, const uint64_t *m, int h);

/* Grows r - some pixels of row seed_y, and nothing in other rows - to all
 * pixels connected to them in g (h rows). */
void rowmask_flood(uint64_t *r, const struct rowmask_graph *g, int seed_y, int h);

#endif

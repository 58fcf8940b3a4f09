/* rowmask.c - connectivity on row masks (rowmask.h).
 *
 * rowmask_flood keeps a mask of rows to visit. A visited row takes every
 * pixel that an edge joins to the region in the rows above and below, then
 * everything joined to those along its own row (doubling: paths of length
 * 1, 2, 4, ... 32, so any run takes 6 steps); when it grew, the rows beside
 * it are visited again. It ends when no row grows: then no edge leaves the
 * region, which is exactly the seeds' connected part, found in a few word
 * operations per row and visit instead of a few per pixel.
 */
#include "rowmask.h"

#include <string.h>

#define BIT(x) (UINT64_C(1) << (x))

void rowmask_below(uint64_t *m, const float *plane, size_t stride, float limit, int w, int h)
{
    unsigned char c[ROWMASK_MAX];
    int n = ROWMASK_PACK_WIDTH(w); /* a variable, or GCC does not vectorise the loop */
    memset(m, 0, ROWMASK_ROWS * sizeof *m);
    for (int y = 0; y < h; y++) {
        const float *restrict p = plane + (size_t)y * stride;
        for (int x = 0; x < n; x++)
            c[x] = p[x] < limit;
        m[y + 1] = rowmask_pack(c, w);
    }
}

void rowmask_graph_of(struct rowmask_graph *g, const uint64_t *m, int h)
{
    memset(g, 0, sizeof *g);
    for (int y = 1; y <= h; y++) {
        g->e[y] = m[y] & m[y] >> 1;
        g->s[y] = m[y] & m[y + 1];
        g->se[y] = m[y] & m[y + 1] >> 1;
        g->sw[y] = m[y] & m[y + 1] << 1;
    }
}

/* m and everything joined to it along the row by e (e becomes the paths of
 * length 2k). */
static uint64_t along_row(uint64_t m, uint64_t e)
{
    for (int k = 1; k < 64 && e; k <<= 1) {
        m |= (m & e) << k | ((m >> k) & e);
        e &= e >> k;
    }
    return m;
}

void rowmask_flood(uint64_t *r, const struct rowmask_graph *g, int seed_y, int h)
{
    uint64_t pending =
        BIT(seed_y) | (seed_y > 0 ? BIT(seed_y - 1) : 0) | (seed_y + 1 < h ? BIT(seed_y + 1) : 0);
    while (pending) {
        int y = __builtin_ctzll(pending);
        uint64_t above = r[y], below = r[y + 2], old = r[y + 1];
        pending &= pending - 1;
        uint64_t m = old | (above & g->s[y]) | (above & g->se[y]) << 1 | (above & g->sw[y]) >> 1 |
                     (below & g->s[y + 1]) | ((below >> 1) & g->se[y + 1]) | ((below << 1) & g->sw[y + 1]);
        m = along_row(m, g->e[y + 1]);
        if (m == old)
            continue;
        r[y + 1] = m;
        pending |= (y > 0 ? BIT(y - 1) : 0) | (y + 1 < h ? BIT(y + 1) : 0);
    }
}

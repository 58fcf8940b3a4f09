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

#include <stddef.h>
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

/* The 8 neighbours of (x, y) in m as bits 0..7, row by row: (x - 1, y - 1),
 * (x, y - 1), (x + 1, y - 1), (x - 1, y), (x + 1, y), (x - 1, y + 1),
 * (x, y + 1), (x + 1, y + 1); those outside the picture are 0. */
static inline unsigned rowmask_around(const uint64_t *m, int x, int y)
{
    unsigned above = (unsigned)((x ? m[y] >> (x - 1) : m[y] << 1) & 7);
    unsigned mid = (unsigned)((x ? m[y + 1] >> (x - 1) : m[y + 1] << 1) & 7);
    unsigned below = (unsigned)((x ? m[y + 2] >> (x - 1) : m[y + 2] << 1) & 7);
    return above | (mid & 1) << 3 | (mid & 4) << 2 | below << 5;
}

/* Comparisons become masks 16 pixels at a time: computed into bytes over a
 * row's first ROWMASK_PACK_WIDTH(w) columns (loops of whole vectors, which
 * compilers vectorise), then 8 bytes folded into 8 bits by one
 * multiplication. */
#define ROWMASK_PACK_WIDTH(w) (((w) + 15) & ~15)

/* Bit x = c[x] (each 0 or 1) for x < w; c has ROWMASK_PACK_WIDTH(w)
 * bytes. */
static inline uint64_t rowmask_pack(const unsigned char *c, int w)
{
    uint64_t m = 0;
    for (int k = 0; k < w; k += 8) {
        const unsigned char *b = c + k; /* one little-endian load, where there is one */
        uint64_t v = (uint64_t)b[0] | (uint64_t)b[1] << 8 | (uint64_t)b[2] << 16 | (uint64_t)b[3] << 24 |
                     (uint64_t)b[4] << 32 | (uint64_t)b[5] << 40 | (uint64_t)b[6] << 48 |
                     (uint64_t)b[7] << 56;
        m |= (v * UINT64_C(0x0102040810204080)) >> 56 << k; /* byte i's bit 0 to bit 56 + i */
    }
    return m & rowmask_bits(w);
}

/* m (all ROWMASK_ROWS rows) = the pixels of the (h, w) plane (rows stride
 * floats apart) below limit. Reads each row's first ROWMASK_PACK_WIDTH(w)
 * values, which must be readable. */
void rowmask_below(uint64_t *m, const float *plane, size_t stride, float limit, int w, int h);

/* g = every pair of 8-neighbours both in m (h rows). */
void rowmask_graph_of(struct rowmask_graph *g, const uint64_t *m, int h);

/* Grows r - some pixels of row seed_y, and nothing in other rows - to all
 * pixels connected to them in g (h rows). */
void rowmask_flood(uint64_t *r, const struct rowmask_graph *g, int seed_y, int h);

#endif

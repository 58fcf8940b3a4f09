/* prep_background.c - prep_canonical's background (prep_work.h, the
 * algorithm in preprocess.c, steps 3 and 4): the calm pixels reachable from
 * the border, trimmed away from the ink, and filled in under it.
 *
 * The shipped weights were trained on these results bit for bit, so every
 * value is what the plain per-pixel search gave: regions and trims are sets
 * (their order never mattered), computed on row masks a row at a time; the
 * fill keeps its breadth-first order and its means in double, with only the
 * visits that could fill nothing left out.
 */
#include "prep_work.h"
#include "rowmask.h"

#include <math.h>
#include <string.h>

/* A pixel's 8 neighbours row by row (dy = -1..1, then dx = -1..1), the
 * order of rowmask_around's bits: the fill visits them in this order, on
 * which its means depend. */
static const int nb_offset[8] = {-STRIDE - 1, -STRIDE, -STRIDE + 1, -1, 1, STRIDE - 1, STRIDE, STRIDE + 1};

/* g joins the calm pixels that are 8-neighbours and differ by less than
 * step. */
static void step_edges(struct rowmask_graph *g, const struct prep_work *w, const uint64_t *calm, float step)
{
    unsigned char e[WORK_MAX], s[WORK_MAX], se[WORK_MAX], sw[WORK_MAX];
    int n = PACK_WIDTH(w->w);
    rowmask_graph_of(g, calm, w->h);
    for (int y = 0; y < w->h; y++) {
        const float *restrict p = w->px + AT(0, y), *restrict q = w->px + AT(0, y + 1); /* the frame is 0 */
        for (int x = 0; x < n; x++) {
            e[x] = fabsf(p[x + 1] - p[x]) < step;
            s[x] = fabsf(q[x] - p[x]) < step;
            se[x] = fabsf(q[x + 1] - p[x]) < step;
            sw[x] = fabsf(q[x - 1] - p[x]) < step;
        }
        g->e[y + 1] &= rowmask_pack(e, w->w);
        g->s[y + 1] &= rowmask_pack(s, w->w);
        g->se[y + 1] &= rowmask_pack(se, w->w);
        g->sw[y + 1] &= rowmask_pack(sw, w->w);
    }
}

/* The background (w->page): the calm pixels (structure below `calm`)
 * reachable from the border through calm pixels in steps below `step`
 * (8-connected); label = the region (1, 2, ...) each belongs to - parts of
 * the page at different levels, such as inverted bands, are separate
 * regions. Seeds are the border pixels in row order; a region is all that
 * is connected to its seed (|a - b| = |b - a|, so the search order does not
 * matter). Returns the number of background pixels. */
int prep_grow_background(struct prep_work *w, float calm, float step)
{
    int total = 0, regions = 0;
    uint64_t calm_rows[MASK_ROWS], r[MASK_ROWS];
    struct rowmask_graph g;
    rowmask_below(calm_rows, w->open + AT(0, 0), STRIDE, calm, w->w, w->h);
    step_edges(&g, w, calm_rows, step);
    memset(w->page, 0, sizeof w->page);
    for (int y = 0; y < w->h; y++) {
        int dx = y == 0 || y == w->h - 1 || w->w == 1 ? 1 : w->w - 1; /* inner rows: both ends */
        for (int x = 0; x < w->w; x += dx) {
            if (!(calm_rows[y + 1] & ~w->page[y + 1] & BIT(x)))
                continue;
            memset(r, 0, sizeof r);
            r[y + 1] = BIT(x);
            rowmask_flood(r, &g, y, w->h);
            regions++;
            for (int yy = 0; yy < w->h; yy++) {
                w->page[yy + 1] |= r[yy + 1];
                total += __builtin_popcountll(r[yy + 1]);
                for (uint64_t m = r[yy + 1]; m; m &= m - 1)
                    w->label[AT(__builtin_ctzll(m), yy)] = regions;
            }
        }
    }
    return total;
}

/* Background pixels closer than `margin` steps (chessboard distance) to any
 * non-background pixel are trimmed: their level is contaminated by
 * anti-aliased edges and blur, so it is filled in like the ink's. Unless
 * that would leave no background at all. Within chessboard distance margin
 * of a non-background pixel = under the non-background dilated by a
 * (2 margin + 1) square: separable, on the row masks. */
void prep_trim_background(struct prep_work *w, int margin)
{
    int W = w->w, H = w->h, kept = 0;
    uint64_t all = rowmask_bits(W), wide[WORK_MAX];
    for (int y = 0; y < H; y++) {
        uint64_t m = all & ~w->page[y + 1], d = m;
        for (int k = 1; k <= margin && k < 64; k++)
            d |= m << k | m >> k;
        wide[y] = d & all;
    }
    memset(w->trimmed, 0, sizeof w->trimmed);
    for (int y = 0; y < H; y++) {
        uint64_t near = 0;
        for (int yy = MAX(0, y - margin); yy <= y + margin && yy < H; yy++)
            near |= wide[yy];
        w->trimmed[y + 1] = w->page[y + 1] & near;
        kept += __builtin_popcountll(w->page[y + 1] & ~near);
    }
    if (!kept)
        memset(w->trimmed, 0, sizeof w->trimmed);
    for (int y = 0; y < MASK_ROWS; y++)
        w->page[y] &= ~w->trimmed[y];
}

/* Fills bg at (x, y) with the mean of its known 8-neighbours (in
 * nb_offset's order) - for a trimmed pixel only those of its own background
 * region (label; 0 = any) - and marks it known. Returns 0 when there is
 * none. */
static inline int fill_from_neighbours(struct prep_work *w, uint64_t *known, int x, int y, int region)
{
    int j = AT(x, y), cnt = 0;
    double sum = 0;
    for (unsigned nb = rowmask_around(known, x, y); nb; nb &= nb - 1) {
        int k = j + nb_offset[__builtin_ctz(nb)];
        if (region && w->label[k] != region)
            continue;
        sum += w->bg[k];
        cnt++;
    }
    if (!cnt)
        return 0;
    w->bg[j] = (float)(sum / cnt);
    w->label[j] = region;
    known[y + 1] |= BIT(x);
    return 1;
}

/* Queues, in row order, the known pixels with an unknown neighbour (the
 * others would find nothing to fill) as y * 64 + x. Returns how many. */
static int queue_frontier(int *queue, const uint64_t *known, const uint64_t *unknown, int w, int h)
{
    int n = 0;
    for (int y = 0; y < h; y++) {
        uint64_t near = unknown[y] | unknown[y + 1] | unknown[y + 2];
        for (uint64_t m = known[y + 1] & (near | near << 1 | near >> 1) & rowmask_bits(w); m; m &= m - 1)
            queue[n++] = y * 64 + __builtin_ctzll(m);
    }
    return n;
}

/* Is the kept background one level (all of it equal to *level)? */
static int flat_page(const struct prep_work *w, float *level)
{
    int first = 1, n = PACK_WIDTH(w->w);
    float v = 0;
    for (int y = 0; y < w->h; y++) {
        unsigned char c[WORK_MAX];
        const float *restrict p = w->px + AT(0, y);
        if (!w->page[y + 1])
            continue;
        if (first)
            v = p[__builtin_ctzll(w->page[y + 1])];
        first = 0;
        for (int x = 0; x < n; x++)
            c[x] = p[x] != v;
        if (rowmask_pack(c, w->w) & w->page[y + 1])
            return 0;
    }
    *level = v;
    return !first;
}

/* bg = the picture on the kept background, and under everything else the
 * mean of the already filled 8-neighbours, breadth-first outwards from the
 * known pixels in row order (a diffusion inpainting; deterministic). A
 * trimmed pixel is filled only from its own background region, so the
 * level of a band never leaks into the page beside it; what stays unfilled
 * that way is filled from any region in a second round. Every pixel is
 * filled in the end, so bg starts as a copy of the picture. On a flat page
 * (level v) every mean is of copies of v - k v exact in double for k <= 8,
 * and k v / k = v - so every pixel is v, in any order. */
void prep_fill_background(struct prep_work *w)
{
    static const signed char dx[8] = {-1, 0, 1, -1, 1, -1, 0, 1}, dy[8] = {-1, -1, -1, 0, 0, 1, 1, 1};
    uint64_t known[MASK_ROWS], unknown[MASK_ROWS], all = rowmask_bits(w->w);
    float level;
    if (flat_page(w, &level)) {
        for (int y = 0; y < w->h; y++)
            for (int x = 0; x < PACK_WIDTH(w->w); x++)
                w->bg[AT(x, y)] = x < w->w ? level : 0;
        return;
    }
    for (int y = 0; y < w->h; y++)
        memcpy(w->bg + AT(0, y), w->px + AT(0, y), (size_t)PACK_WIDTH(w->w) * sizeof *w->bg);
    for (int y = 0; y < MASK_ROWS; y++) {
        known[y] = w->page[y];
        unknown[y] = y > 0 && y <= w->h ? all & ~w->page[y] : 0;
    }
    for (int round = 0; round < 2; round++) {
        int head = 0, tail = queue_frontier(w->queue, known, unknown, w->w, w->h);
        while (head < tail) {
            int x = w->queue[head] % 64, y = w->queue[head++] / 64;
            for (unsigned nb = rowmask_around(unknown, x, y); nb; nb &= nb - 1) {
                int b = __builtin_ctz(nb), jx = x + dx[b], jy = y + dy[b];
                int region = round == 0 && (w->trimmed[jy + 1] >> jx & 1) ? w->label[AT(jx, jy)] : 0;
                if (!fill_from_neighbours(w, known, jx, jy, region))
                    continue;
                unknown[jy + 1] &= ~BIT(jx);
                w->queue[tail++] = jy * 64 + jx;
            }
        }
    }
}

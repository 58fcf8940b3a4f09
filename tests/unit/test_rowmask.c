/* test_rowmask.c - rowmask_graph_of and rowmask_flood against a naive
 * breadth-first search over the same graph, pixel by pixel, on random
 * masks and graphs of every shape class (1 x 1, one row, one column, the
 * full 64 x 64, bit 63 set), with dense and sparse edges, snakes that turn
 * back on themselves many times, and seeds of several pixels in a row;
 * rowmask_pack, rowmask_below and rowmask_around bit by bit against plain
 * loops, at every width 1..64 and every pixel.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "rowmask.h"

static uint64_t g_rng = 0xD1B54A32D192ED03ull;

static uint64_t next_u64(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static int has(const uint64_t *m, int x, int y)
{
    return (int)(m[y + 1] >> x & 1);
}

/* Is (x, y) joined to (x + dx, y + dy) in g? (dy = 0, dx = 1 or dy = 1) */
static int joined(const struct rowmask_graph *g, int x, int y, int dx, int dy)
{
    if (dy == 0)
        return has(g->e, x, y);
    return dx == 0 ? has(g->s, x, y) : dx == 1 ? has(g->se, x, y) : has(g->sw, x, y);
}

/* The naive reference: breadth-first from the seeds over g's edges. */
static void ref_flood(uint64_t *r, const struct rowmask_graph *g, int w, int h)
{
    static int queue[ROWMASK_MAX * ROWMASK_MAX][2];
    int head = 0, tail = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (has(r, x, y)) {
                queue[tail][0] = x;
                queue[tail++][1] = y;
            }
    while (head < tail) {
        int x = queue[head][0], y = queue[head++][1];
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                int nx = x + dx, ny = y + dy;
                if ((!dx && !dy) || nx < 0 || ny < 0 || nx >= w || ny >= h || has(r, nx, ny))
                    continue;
                /* the edge is stored at its upper (or left) end */
                int ok =
                    dy > 0 || (dy == 0 && dx > 0) ? joined(g, x, y, dx, dy) : joined(g, nx, ny, -dx, -dy);
                if (!ok)
                    continue;
                r[ny + 1] |= UINT64_C(1) << nx;
                queue[tail][0] = nx;
                queue[tail++][1] = ny;
            }
    }
}

/* A random graph inside w x h (density: 1 of `sparse` bits kept). */
static void random_graph(struct rowmask_graph *g, int w, int h, int sparse)
{
    memset(g, 0, sizeof *g);
    uint64_t all = rowmask_bits(w);
    for (int y = 1; y <= h; y++) {
        uint64_t keep = ~UINT64_C(0);
        for (int k = 1; k < sparse; k++)
            keep &= next_u64() | next_u64();
        g->e[y] = next_u64() & keep & all & all >> 1;
        if (y < h) {
            g->s[y] = next_u64() & keep & all;
            g->se[y] = next_u64() & keep & all & all >> 1;
            g->sw[y] = next_u64() & keep & all & ~UINT64_C(1);
        }
    }
}

static void check_flood(const struct rowmask_graph *g, int w, int h, int seed_y, uint64_t seeds)
{
    uint64_t got[ROWMASK_ROWS] = {0}, want[ROWMASK_ROWS] = {0};
    got[seed_y + 1] = want[seed_y + 1] = seeds;
    rowmask_flood(got, g, seed_y, h);
    ref_flood(want, g, w, h);
    assert_memory_equal(got, want, sizeof got);
}

static void test_random_graphs(void **state)
{
    (void)state;
    static const int dims[][2] = {{1, 1}, {64, 1}, {1, 64}, {64, 64}, {28, 28}, {5, 9}, {63, 17}, {33, 64}};
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
        for (int sparse = 1; sparse <= 4; sparse++)
            for (int round = 0; round < 40; round++) {
                int w = dims[d][0], h = dims[d][1], y = (int)(next_u64() % (uint64_t)h);
                struct rowmask_graph g;
                random_graph(&g, w, h, sparse);
                uint64_t seeds = next_u64() & rowmask_bits(w);
                check_flood(&g, w, h, y, seeds ? seeds & -seeds : 1);
                if (seeds)
                    check_flood(&g, w, h, y, seeds & (next_u64() | next_u64()) ? seeds : seeds & -seeds);
            }
}

/* A mask's own graph: every 8-neighbour pair inside it, checked pair by
 * pair; and a snake of 1 px wide rows joined at alternating ends (each row
 * is reached only after the one before it is done) is flooded whole. */
static void test_mask_graph_and_snake(void **state)
{
    (void)state;
    uint64_t m[ROWMASK_ROWS] = {0};
    struct rowmask_graph g;
    for (int y = 0; y < 64; y++)
        m[y + 1] = next_u64();
    rowmask_graph_of(&g, m, 64);
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++) {
            int in = has(m, x, y);
            assert_int_equal(has(g.e, x, y), in && x < 63 && has(m, x + 1, y));
            assert_int_equal(has(g.s, x, y), in && y < 63 && has(m, x, y + 1));
            assert_int_equal(has(g.se, x, y), in && x < 63 && y < 63 && has(m, x + 1, y + 1));
            assert_int_equal(has(g.sw, x, y), in && x > 0 && y < 63 && has(m, x - 1, y + 1));
        }
    memset(m, 0, sizeof m);
    for (int y = 0; y < 64; y++)
        m[y + 1] = y % 2 == 0 ? ~UINT64_C(0) : (y % 4 == 1 ? UINT64_C(1) << 63 : 1);
    rowmask_graph_of(&g, m, 64);
    uint64_t r[ROWMASK_ROWS] = {0};
    r[64] = 1; /* the far end of the snake */
    rowmask_flood(r, &g, 63, 64);
    assert_memory_equal(r, m, sizeof r);
}

static void test_pack_and_below(void **state)
{
    (void)state;
    static float plane[70 * 80];
    for (int w = 1; w <= ROWMASK_MAX; w++) {
        unsigned char c[ROWMASK_PACK_WIDTH(ROWMASK_MAX)];
        uint64_t want = 0, bits = next_u64();
        for (int x = 0; x < ROWMASK_PACK_WIDTH(w); x++) {
            c[x] = (unsigned char)(bits >> (x % 64) & 1);
            if (x < w)
                want |= (uint64_t)c[x] << x;
        }
        assert_true(rowmask_pack(c, w) == want); /* bits past w are dropped */
        int h = 1 + (int)(next_u64() % 64);
        float limit = (float)(next_u64() % 1000) / 1000.0f;
        uint64_t m[ROWMASK_ROWS];
        for (int i = 0; i < 70 * 80; i++)
            plane[i] = (float)(next_u64() % 1000) / 1000.0f;
        rowmask_below(m, plane, 80, limit, w, h);
        assert_true(m[0] == 0);
        for (int y = 0; y < h; y++) {
            uint64_t row = 0;
            for (int x = 0; x < w; x++)
                row |= (uint64_t)(plane[y * 80 + x] < limit) << x;
            assert_true(m[y + 1] == row);
        }
        for (int y = h + 1; y < ROWMASK_ROWS; y++)
            assert_true(m[y] == 0);
    }
}

/* rowmask_around: each of the 8 bits is the neighbour it names. */
static void test_around(void **state)
{
    (void)state;
    static const int dx[8] = {-1, 0, 1, -1, 1, -1, 0, 1}, dy[8] = {-1, -1, -1, 0, 0, 1, 1, 1};
    for (int round = 0; round < 20; round++) {
        int w = round < 10 ? 64 : 1 + (int)(next_u64() % 64), h = 1 + (int)(next_u64() % 64);
        uint64_t m[ROWMASK_ROWS] = {0};
        for (int y = 0; y < h; y++)
            m[y + 1] = next_u64() & rowmask_bits(w);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                unsigned nb = rowmask_around(m, x, y);
                for (int b = 0; b < 8; b++) {
                    int nx = x + dx[b], ny = y + dy[b];
                    int in = nx >= 0 && ny >= 0 && nx < w && ny < h && has(m, nx, ny);
                    assert_int_equal((int)(nb >> b & 1), in);
                }
            }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_graphs),
        cmocka_unit_test(test_mask_graph_and_snake),
        cmocka_unit_test(test_pack_and_below),
        cmocka_unit_test(test_around),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

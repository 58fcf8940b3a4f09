/* test_morph.c - morph_open_close against a naive reference (min and max
 * over each square, cut off at the edges, by brute force) on random planes
 * of every shape class: 1 x 1, single rows and columns, widths around the
 * vector size, the largest width, radii 0..MORPH_MAX_R; the columns past
 * the width are ignored on input (even NaN there changes nothing) and the
 * planes' columns past the vector width are never written.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "morph.h"

#define STRIDE (MORPH_MAX_W + 3)
#define H_MAX 40
#define SENTINEL -7.0f

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

static float next_value(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)(g_rng >> 40) / (float)(1u << 24); /* [0, 1) */
}

/* min (take_max 0) or max of in over the (2r+1) square at (x, y), cut off */
static float ref_square(const float *in, int w, int h, int x, int y, int r, int take_max)
{
    float v = in[y * STRIDE + x];
    for (int yy = y - r; yy <= y + r; yy++)
        for (int xx = x - r; xx <= x + r; xx++) {
            if (xx < 0 || yy < 0 || xx >= w || yy >= h)
                continue;
            float u = in[yy * STRIDE + xx];
            v = take_max ? (u > v ? u : v) : (u < v ? u : v);
        }
    return v;
}

static void ref_filter(float *out, const float *in, int w, int h, int r, int take_max)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            out[y * STRIDE + x] = ref_square(in, w, h, x, y, r, take_max);
}

static void check_shape(int w, int h, int r, int levels)
{
    static float in[H_MAX * STRIDE], open[H_MAX * STRIDE], close[H_MAX * STRIDE], t1[H_MAX * STRIDE],
        t2[H_MAX * STRIDE], e[H_MAX * STRIDE], want_open[H_MAX * STRIDE], want_close[H_MAX * STRIDE];
    for (int i = 0; i < H_MAX * STRIDE; i++) {
        float v = next_value();
        in[i] = levels ? floorf(v * (float)levels) / (float)levels : v; /* few levels: plateaus, ties */
        open[i] = close[i] = t1[i] = t2[i] = SENTINEL;
    }
    for (int y = 0; y < h; y++)
        for (int x = w; x < STRIDE; x++)
            in[y * STRIDE + x] = NAN; /* past the width: must not matter */
    morph_open_close(open, close, in, t1, t2, w, h, STRIDE, r);
    ref_filter(e, in, w, h, r, 0);
    ref_filter(want_open, e, w, h, r, 1);
    ref_filter(e, in, w, h, r, 1);
    ref_filter(want_close, e, w, h, r, 0);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            int i = y * STRIDE + x;
            assert_true(open[i] == want_open[i]);
            assert_true(close[i] == want_close[i]);
            assert_true(open[i] <= in[i] && in[i] <= close[i]);
        }
        for (int x = morph_width(w); x < STRIDE; x++)
            assert_true(open[y * STRIDE + x] == SENTINEL && close[y * STRIDE + x] == SENTINEL);
    }
}

static void test_matches_reference(void **state)
{
    (void)state;
    static const int widths[] = {1, 2, 3, 4, 5, 7, 8, 9, 28, 31, 63, 64};
    static const int heights[] = {1, 2, 3, 5, 28, 40};
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++)
        for (size_t hi = 0; hi < sizeof heights / sizeof heights[0]; hi++)
            for (int r = 0; r <= MORPH_MAX_R; r += r < 3 ? 1 : MORPH_MAX_R - 3) {
                check_shape(widths[wi], heights[hi], r, 0);
                check_shape(widths[wi], heights[hi], r, 3);
            }
}

/* A bright line 1 px wide vanishes in the opening, a dark one in the
 * closing; a wide plateau stays. */
static void test_thin_structure(void **state)
{
    (void)state;
    static float in[8 * STRIDE], open[8 * STRIDE], close[8 * STRIDE], t1[8 * STRIDE], t2[8 * STRIDE];
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 20; x++)
            in[y * STRIDE + x] = x == 3 ? 1.0f : x == 12 ? 0.0f : x >= 14 ? 0.75f : 0.5f;
    morph_open_close(open, close, in, t1, t2, 20, 8, STRIDE, 1);
    for (int y = 0; y < 8; y++) {
        assert_true(open[y * STRIDE + 3] == 0.5f);
        assert_true(close[y * STRIDE + 12] == 0.5f);
        assert_true(open[y * STRIDE + 17] == 0.75f && close[y * STRIDE + 17] == 0.75f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_thin_structure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

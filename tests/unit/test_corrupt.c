/* test_corrupt.c - the 15 MNIST-C-style corruptions on real MNIST test
 * digits (build/data/mnist, or $BNN_DATA): determinism per (seed, index),
 * and one property per corruption that a wrong implementation would break.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "corrupt.h"
#include "idx.h"

#define N_IMAGES 64 /* real digits per property test */

struct fixture {
    struct idx_images im;
    struct idx_labels lb;
};

static int setup(void **state)
{
    static struct fixture fx;
    char err[BNN_ERR_LEN];
    const char *dir = getenv("BNN_DATA") ? getenv("BNN_DATA") : "build/data/mnist";
    if (idx_load_mnist(&fx.im, &fx.lb, dir, "t10k", err) != BNN_OK) {
        print_error("MNIST test set needed (make data): %s\n", err);
        return -1;
    }
    *state = &fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    idx_images_free(&fx->im);
    idx_labels_free(&fx->lb);
    return 0;
}

static const uint8_t *digit(void **state, size_t i)
{
    struct fixture *fx = *state;
    return fx->im.pixels + i * CORRUPT_PIXELS;
}

static double mean_of(const uint8_t *x)
{
    double s = 0;
    for (int i = 0; i < CORRUPT_PIXELS; i++)
        s += x[i];
    return s / CORRUPT_PIXELS;
}

/* centre of mass (row, col) of the intensities */
static void centre_of_mass(const uint8_t *x, double *row, double *col)
{
    double s = 0, sr = 0, sc = 0;
    for (int r = 0; r < 28; r++)
        for (int c = 0; c < 28; c++) {
            s += x[r * 28 + c];
            sr += r * (double)x[r * 28 + c];
            sc += c * (double)x[r * 28 + c];
        }
    *row = sr / s;
    *col = sc / s;
}

/* ink bounding box (pixels > 64): height and width */
static void ink_box(const uint8_t *x, int *h, int *w)
{
    int r0 = 28, r1 = -1, c0 = 28, c1 = -1;
    for (int r = 0; r < 28; r++)
        for (int c = 0; c < 28; c++)
            if (x[r * 28 + c] > 64) {
                r0 = r < r0 ? r : r0, r1 = r > r1 ? r : r1;
                c0 = c < c0 ? c : c0, c1 = c > c1 ? c : c1;
            }
    *h = r1 - r0 + 1;
    *w = c1 - c0 + 1;
}

static void names_roundtrip(void **state)
{
    (void)state;
    for (int k = 0; k < CORRUPT_COUNT; k++) {
        enum corrupt_kind back;
        const char *name = corrupt_name((enum corrupt_kind)k);
        assert_non_null(name);
        assert_int_equal(corrupt_parse(name, &back), 0);
        assert_int_equal(back, k);
    }
    enum corrupt_kind dummy;
    assert_int_equal(corrupt_parse("identity", &dummy), -1);
    assert_int_equal(corrupt_parse("", &dummy), -1);
    assert_null(corrupt_name(CORRUPT_COUNT));
    assert_string_equal(corrupt_name(CORRUPT_SHOT_NOISE), "shot_noise");
    assert_string_equal(corrupt_name(CORRUPT_CANNY_EDGES), "canny_edges");
}

static void bad_kind_leaves_output(void **state)
{
    uint8_t out[CORRUPT_PIXELS];
    memset(out, 7, sizeof out);
    assert_int_equal(corrupt_apply(out, digit(state, 0), CORRUPT_COUNT, 1, 0), -1);
    for (int i = 0; i < CORRUPT_PIXELS; i++)
        assert_int_equal(out[i], 7);
}

/* Same (seed, index) -> same bytes; every corruption changes a real digit;
 * the random ones depend on the seed and on the index. */
static void deterministic_and_addressed(void **state)
{
    static const int is_random[CORRUPT_COUNT] = {
        [CORRUPT_SHOT_NOISE] = 1,  [CORRUPT_IMPULSE_NOISE] = 1, [CORRUPT_GLASS_BLUR] = 1,
        [CORRUPT_MOTION_BLUR] = 1, [CORRUPT_SHEAR] = 1,         [CORRUPT_ROTATE] = 1,
        [CORRUPT_TRANSLATE] = 1,   [CORRUPT_FOG] = 1,           [CORRUPT_SPATTER] = 1,
        [CORRUPT_DOTTED_LINE] = 1, [CORRUPT_ZIGZAG] = 1,
    };
    for (int k = 0; k < CORRUPT_COUNT; k++) {
        int seed_matters = 0, index_matters = 0;
        for (size_t i = 0; i < 8; i++) {
            uint8_t a[CORRUPT_PIXELS], b[CORRUPT_PIXELS], c[CORRUPT_PIXELS], e[CORRUPT_PIXELS];
            const uint8_t *x = digit(state, i);
            assert_int_equal(corrupt_apply(a, x, (enum corrupt_kind)k, 42, i), 0);
            assert_int_equal(corrupt_apply(b, x, (enum corrupt_kind)k, 42, i), 0);
            assert_memory_equal(a, b, CORRUPT_PIXELS);
            if (memcmp(a, x, CORRUPT_PIXELS) == 0)
                fail_msg("%s left digit %zu unchanged", corrupt_name((enum corrupt_kind)k), i);
            assert_int_equal(corrupt_apply(c, x, (enum corrupt_kind)k, 43, i), 0);
            assert_int_equal(corrupt_apply(e, x, (enum corrupt_kind)k, 42, i + 1000), 0);
            seed_matters |= memcmp(a, c, CORRUPT_PIXELS) != 0;
            index_matters |= memcmp(a, e, CORRUPT_PIXELS) != 0;
        }
        if (seed_matters != is_random[k] || index_matters != is_random[k])
            fail_msg("%s: expected randomness %d, got seed %d index %d", corrupt_name((enum corrupt_kind)k),
                     is_random[k], seed_matters, index_matters);
    }
}

static void rotate_zero_is_identity(void **state)
{
    uint8_t out[CORRUPT_PIXELS];
    for (size_t i = 0; i < N_IMAGES; i++) {
        corrupt_rotate(out, digit(state, i), 0.0);
        assert_memory_equal(out, digit(state, i), CORRUPT_PIXELS);
    }
}

/* A lone pixel at (row 3, col 10) turned 90 deg counter-clockwise about
 * (13.5, 13.5) lands on (row 17, col 3). */
static void rotate_direction(void **state)
{
    (void)state;
    uint8_t in[CORRUPT_PIXELS] = {0}, out[CORRUPT_PIXELS];
    in[3 * 28 + 10] = 255;
    corrupt_rotate(out, in, 90.0);
    assert_in_range(out[17 * 28 + 3], 250, 255);
    assert_in_range(mean_of(out) * CORRUPT_PIXELS, 250, 260);
}

/* The rotate corruption is the rotation by +-0.4 rad. */
static void rotate_corruption_is_04_rad(void **state)
{
    for (size_t i = 0; i < 16; i++) {
        uint8_t a[CORRUPT_PIXELS], plus[CORRUPT_PIXELS], minus[CORRUPT_PIXELS];
        corrupt_apply(a, digit(state, i), CORRUPT_ROTATE, 5, i);
        corrupt_rotate(plus, digit(state, i), 0.4 * 180.0 / M_PI);
        corrupt_rotate(minus, digit(state, i), -0.4 * 180.0 / M_PI);
        assert_true(memcmp(a, plus, CORRUPT_PIXELS) == 0 || memcmp(a, minus, CORRUPT_PIXELS) == 0);
    }
}

static void brightness_raises_mean(void **state)
{
    for (size_t i = 0; i < N_IMAGES; i++) {
        uint8_t out[CORRUPT_PIXELS];
        const uint8_t *x = digit(state, i);
        corrupt_apply(out, x, CORRUPT_BRIGHTNESS, 1, i);
        assert_true(mean_of(out) > mean_of(x) + 60.0);
        for (int p = 0; p < CORRUPT_PIXELS; p++) {
            int expect = x[p] + 128 > 255 ? 255 : x[p] + 128; /* 0.5 * 255 = 127.5 rounds up */
            assert_in_range(out[p], expect - 1, expect);
        }
    }
}

static void stripe_is_involution(void **state)
{
    for (size_t i = 0; i < N_IMAGES; i++) {
        uint8_t once[CORRUPT_PIXELS], twice[CORRUPT_PIXELS];
        const uint8_t *x = digit(state, i);
        corrupt_apply(once, x, CORRUPT_STRIPE, 1, i);
        corrupt_apply(twice, once, CORRUPT_STRIPE, 1, i);
        assert_memory_equal(twice, x, CORRUPT_PIXELS);
        for (int r = 0; r < 28; r++) {
            assert_int_equal(once[r * 28 + 0], 255 - x[r * 28 + 0]);
            assert_int_equal(once[r * 28 + 14], x[r * 28 + 14]);
            assert_int_equal(once[r * 28 + 27], 255 - x[r * 28 + 27]);
        }
    }
}

/* An integer shift of (+-3, +-3): bilinear sampling is then exact, so the
 * output is the input moved by 3 px on each axis, zero where it came from
 * outside; and where no ink is lost the centre of mass moves by 3 px. */
static void translate_moves_3px(void **state)
{
    for (size_t i = 0; i < N_IMAGES; i++) {
        uint8_t out[CORRUPT_PIXELS];
        const uint8_t *x = digit(state, i);
        corrupt_apply(out, x, CORRUPT_TRANSLATE, 9, i);
        int matches = 0;
        for (int sy = -3; sy <= 3; sy += 6)
            for (int sx = -3; sx <= 3; sx += 6) {
                int ok = 1;
                for (int r = 0; r < 28 && ok; r++)
                    for (int c = 0; c < 28 && ok; c++) {
                        int rr = r + sy, cc = c + sx;
                        int v = rr >= 0 && rr < 28 && cc >= 0 && cc < 28 ? x[rr * 28 + cc] : 0;
                        ok = out[r * 28 + c] == v;
                    }
                matches += ok;
            }
        assert_int_equal(matches, 1);
        double lost = 0;
        for (int r = 0; r < 28; r++)
            for (int c = 0; c < 28; c++)
                if (r < 3 || r >= 25 || c < 3 || c >= 25)
                    lost += x[r * 28 + c];
        if (lost == 0) {
            double r0, c0, r1, c1;
            centre_of_mass(x, &r0, &c0);
            centre_of_mass(out, &r1, &c1);
            assert_true(fabs(fabs(r1 - r0) - 3.0) < 1e-9);
            assert_true(fabs(fabs(c1 - c0) - 3.0) < 1e-9);
        }
    }
}

static void scale_shrinks_box(void **state)
{
    for (size_t i = 0; i < N_IMAGES; i++) {
        uint8_t out[CORRUPT_PIXELS];
        int h0, w0, h1, w1;
        double r0, c0, r1, c1;
        corrupt_apply(out, digit(state, i), CORRUPT_SCALE, 1, i);
        ink_box(digit(state, i), &h0, &w0);
        ink_box(out, &h1, &w1);
        assert_true(h1 <= 0.7 * h0 + 2.0);
        assert_true(w1 <= 0.7 * w0 + 2.0);
        assert_true(h1 < h0);
        /* the centre (13.5, 13.5) is fixed: centre of mass moves towards it */
        centre_of_mass(digit(state, i), &r0, &c0);
        centre_of_mass(out, &r1, &c1);
        assert_true(fabs(r1 - 13.5) <= fabs(r0 - 13.5) * 0.7 + 0.2);
    }
}

static void shot_noise_levels(void **state)
{
    double before = 0, after = 0;
    for (size_t i = 0; i < N_IMAGES; i++) {
        uint8_t out[CORRUPT_PIXELS];
        corrupt_apply(out, digit(state, i), CORRUPT_SHOT_NOISE, 3, i);
        for (int p = 0; p < CORRUPT_PIXELS; p++) {
            if (out[p] % 85 != 0)
                fail_msg("expected a multiple of 85, got %d", out[p]);
            if (digit(state, i)[p] == 0)
                assert_int_equal(out[p], 0); /* Poisson(0) = 0 */
        }
        before += mean_of(digit(state, i));
        after += mean_of(out);
    }
    /* E[min(Poisson(3x), 3)] / 3 < x: clipping loses some mass, not most */
    assert_true(after < before && after > 0.6 * before);
}

static void impulse_fraction(void **state)
{
    (void)state;
    uint8_t gray[CORRUPT_PIXELS], out[CORRUPT_PIXELS];
    memset(gray, 128, sizeof gray);
    size_t changed = 0, salt = 0, total = 0;
    for (size_t i = 0; i < 100; i++) {
        corrupt_apply(out, gray, CORRUPT_IMPULSE_NOISE, 11, i);
        for (int p = 0; p < CORRUPT_PIXELS; p++) {
            changed += out[p] != 128;
            salt += out[p] == 255;
            assert_true(out[p] == 0 || out[p] == 128 || out[p] == 255);
        }
        total += CORRUPT_PIXELS;
    }
    double frac = (double)changed / total, salt_frac = (double)salt / changed;
    if (fabs(frac - 0.17) > 0.005)
        fail_msg("expected 17%% of pixels changed, got %.4f", frac);
    if (fabs(salt_frac - 0.5) > 0.02)
        fail_msg("expected half salt, got %.4f", salt_frac);
}

static void canny_binary_and_blank(void **state)
{
    uint8_t blank[CORRUPT_PIXELS] = {0}, out[CORRUPT_PIXELS];
    corrupt_apply(out, blank, CORRUPT_CANNY_EDGES, 1, 0);
    for (int p = 0; p < CORRUPT_PIXELS; p++)
        assert_int_equal(out[p], 0);
    for (size_t i = 0; i < N_IMAGES; i++) {
        const uint8_t *x = digit(state, i);
        int edges = 0, far = 0;
        corrupt_apply(out, x, CORRUPT_CANNY_EDGES, 1, i);
        for (int r = 0; r < 28; r++)
            for (int c = 0; c < 28; c++) {
                int v = out[r * 28 + c];
                assert_true(v == 0 || v == 255);
                if (!v)
                    continue;
                edges++;
                int near = 0; /* an edge has ink within 2 px */
                for (int dr = -2; dr <= 2; dr++)
                    for (int dc = -2; dc <= 2; dc++) {
                        int rr = r + dr, cc = c + dc;
                        if (rr >= 0 && rr < 28 && cc >= 0 && cc < 28 && x[rr * 28 + cc] > 0)
                            near = 1;
                    }
                far += !near;
            }
        assert_true(edges > 10);
        assert_int_equal(far, 0);
    }
}

/* A filled square's outline: canny marks its border, not its inside. */
static void canny_square_outline(void **state)
{
    (void)state;
    uint8_t sq[CORRUPT_PIXELS] = {0}, out[CORRUPT_PIXELS];
    for (int r = 8; r < 20; r++)
        for (int c = 8; c < 20; c++)
            sq[r * 28 + c] = 255;
    corrupt_apply(out, sq, CORRUPT_CANNY_EDGES, 1, 0);
    assert_int_equal(out[13 * 28 + 13], 0);
    int on_border = 0;
    for (int r = 9; r < 19; r++)
        on_border += out[r * 28 + 7] || out[r * 28 + 8] || out[r * 28 + 19] || out[r * 28 + 20];
    assert_true(on_border >= 9);
}

static void blurs_spread_ink(void **state)
{
    const enum corrupt_kind kinds[] = {CORRUPT_GLASS_BLUR, CORRUPT_MOTION_BLUR};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < N_IMAGES; i++) {
            uint8_t out[CORRUPT_PIXELS];
            const uint8_t *x = digit(state, i);
            corrupt_apply(out, x, kinds[k], 2, i);
            int lit0 = 0, lit1 = 0;
            for (int p = 0; p < CORRUPT_PIXELS; p++)
                lit0 += x[p] > 0, lit1 += out[p] > 0;
            assert_true(lit1 > lit0); /* ink spreads */
            double m0 = mean_of(x), m1 = mean_of(out);
            assert_true(m1 > 0.85 * m0 && m1 < 1.05 * m0); /* ink is conserved */
        }
    }
}

static void shear_keeps_centre(void **state)
{
    for (size_t i = 0; i < N_IMAGES; i++) {
        uint8_t out[CORRUPT_PIXELS];
        double r0, c0, r1, c1;
        corrupt_apply(out, digit(state, i), CORRUPT_SHEAR, 4, i);
        centre_of_mass(digit(state, i), &r0, &c0);
        centre_of_mass(out, &r1, &c1);
        /* shear +-0.4 about (13.5,13.5): x_in = x - sin(s) y', y_in = cos(s) y' */
        assert_true(fabs(c1 - c0) <= fabs(sin(0.4)) * fabs(r0 - 13.5) / cos(0.4) + 0.6);
        assert_true(fabs(r1 - 13.5) >= fabs(r0 - 13.5) - 0.6); /* cos < 1 stretches rows */
    }
}

static void fog_hazes_background(void **state)
{
    for (size_t i = 0; i < N_IMAGES; i++) {
        uint8_t out[CORRUPT_PIXELS];
        const uint8_t *x = digit(state, i);
        corrupt_apply(out, x, CORRUPT_FOG, 6, i);
        double bg = 0;
        int n_bg = 0, nonzero = 0;
        for (int p = 0; p < CORRUPT_PIXELS; p++)
            if (x[p] == 0)
                bg += out[p], n_bg++, nonzero += out[p] > 0;
        /* background becomes 3 p / 4 * 255 with p the fractal in [0,1] */
        assert_true(bg / n_bg > 10.0);
        assert_true(nonzero > n_bg / 2);
    }
}

static void spatter_is_mud(void **state)
{
    size_t touched = 0;
    for (size_t i = 0; i < 200; i++) {
        uint8_t out[CORRUPT_PIXELS];
        const uint8_t *x = digit(state, i % N_IMAGES);
        corrupt_apply(out, x, CORRUPT_SPATTER, 8, i);
        for (int p = 0; p < CORRUPT_PIXELS; p++) {
            if (out[p] == x[p])
                continue;
            touched++;
            /* x (1 - m) + 63 m with m in [0.8, 1]: pulled to within 20 % of 63 */
            assert_true(fabs(out[p] - 63.0) <= 0.2 * fabs(x[p] - 63.0) + 1.0);
        }
    }
    assert_true(touched > 0);
}

static void dotted_line_dashes(void **state)
{
    (void)state;
    uint8_t blank[CORRUPT_PIXELS] = {0}, out[CORRUPT_PIXELS];
    for (size_t i = 0; i < 50; i++) {
        corrupt_apply(out, blank, CORRUPT_DOTTED_LINE, 12, i);
        int lit = 0;
        for (int r = 0; r < 28; r++)
            for (int c = 0; c < 28; c++) {
                if (c % 4 < 2 || c == 27)
                    assert_int_equal(out[r * 28 + c], 0);
                lit += out[r * 28 + c] > 0;
            }
        /* 6 dashes x 2 columns, each column 2-5 rows bright */
        assert_in_range(lit, 24, 12 * 5);
    }
}

static void zigzag_spans_width(void **state)
{
    (void)state;
    uint8_t blank[CORRUPT_PIXELS] = {0}, out[CORRUPT_PIXELS];
    for (size_t i = 0; i < 50; i++) {
        corrupt_apply(out, blank, CORRUPT_ZIGZAG, 13, i);
        int cols = 0, rows_in_col = 0;
        for (int c = 0; c < 28; c++) {
            int lit = 0;
            for (int r = 0; r < 28; r++)
                lit += out[r * 28 + c] > 0;
            cols += lit > 0;
            if (c < 2 || c > 26)
                assert_int_equal(lit, 0); /* from c0 = 2 to about c1 = 25 */
            rows_in_col = lit > rows_in_col ? lit : rows_in_col;
        }
        assert_in_range(cols, 20, 25);
        assert_true(rows_in_col >= 3); /* a zigzag, not a thin straight line */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_roundtrip),
        cmocka_unit_test(bad_kind_leaves_output),
        cmocka_unit_test(deterministic_and_addressed),
        cmocka_unit_test(rotate_zero_is_identity),
        cmocka_unit_test(rotate_direction),
        cmocka_unit_test(rotate_corruption_is_04_rad),
        cmocka_unit_test(brightness_raises_mean),
        cmocka_unit_test(stripe_is_involution),
        cmocka_unit_test(translate_moves_3px),
        cmocka_unit_test(scale_shrinks_box),
        cmocka_unit_test(shot_noise_levels),
        cmocka_unit_test(impulse_fraction),
        cmocka_unit_test(canny_binary_and_blank),
        cmocka_unit_test(canny_square_outline),
        cmocka_unit_test(blurs_spread_ink),
        cmocka_unit_test(shear_keeps_centre),
        cmocka_unit_test(fog_hazes_background),
        cmocka_unit_test(spatter_is_mud),
        cmocka_unit_test(dotted_line_dashes),
        cmocka_unit_test(zigzag_spans_width),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* test_preprocess.c - prep_to_mnist on real MNIST digits: 28x28 light on
 * dark passes through untouched; the same digits drawn dark on white pages
 * of other sizes and positions come back close to the originals (Pearson
 * correlation), with the centre of mass at (14, 14) and a 20 px bounding
 * box; blank, tiny and extreme-aspect pictures never fail.
 * Needs build/data/mnist (make data); fails, does not skip, without it.
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

#include "idx.h"
#include "infer.h"
#include "preprocess.h"
#include "weights.h"

#define MNIST_DIR "build/data/mnist"
#define WEIGHTS "model/weights/mnist-bnn.safetensors"
#define N_DIGITS 300

static struct idx_images g_im;
static struct idx_labels g_lb;

static int load(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    if (idx_load_mnist(&g_im, &g_lb, MNIST_DIR, "t10k", err) != BNN_OK) {
        fprintf(stderr, "test_preprocess: cannot load MNIST (run 'make data'): %s\n", err);
        return -1;
    }
    return 0;
}

static int unload(void **state)
{
    (void)state;
    idx_images_free(&g_im);
    idx_labels_free(&g_lb);
    return 0;
}

static const uint8_t *digit(size_t i)
{
    return g_im.pixels + i * 784;
}

static double correlation(const float *a, const uint8_t *b)
{
    double ma = 0, mb = 0;
    for (int i = 0; i < 784; i++) {
        ma += a[i];
        mb += b[i];
    }
    ma /= 784;
    mb /= 784;
    double sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < 784; i++) {
        double da = a[i] - ma, db = b[i] - mb;
        sab += da * db;
        saa += da * da;
        sbb += db * db;
    }
    return sab / sqrt(saa * sbb);
}

/* In pixel-index coordinates, MNIST's convention: its digits' centres of
 * mass lie within 0.5 px of (14, 14) this way. */
static void centre_of_mass(const float *img, double *cx, double *cy)
{
    double m = 0, x = 0, y = 0;
    for (int r = 0; r < 28; r++)
        for (int c = 0; c < 28; c++) {
            m += img[r * 28 + c];
            x += img[r * 28 + c] * c;
            y += img[r * 28 + c] * r;
        }
    *cx = x / m;
    *cy = y / m;
}

/* Bounding box of pixels >= t: width and height. */
static void ink_box(const float *img, float t, int *w, int *h)
{
    int x0 = 28, x1 = -1, y0 = 28, y1 = -1;
    for (int r = 0; r < 28; r++)
        for (int c = 0; c < 28; c++)
            if (img[r * 28 + c] >= t) {
                x0 = c < x0 ? c : x0;
                x1 = c > x1 ? c : x1;
                y0 = r < y0 ? r : y0;
                y1 = r > y1 ? r : y1;
            }
    *w = x1 - x0 + 1;
    *h = y1 - y0 + 1;
}

static int all_zero(const float *img)
{
    for (int i = 0; i < 784; i++)
        if (img[i] != 0.0f)
            return 0;
    return 1;
}

/* Small deterministic generator for page sizes and positions. */
static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void test_28x28_light_on_dark_is_used_as_is(void **state)
{
    (void)state;
    float out[784];
    for (size_t i = 0; i < N_DIGITS; i++) {
        unsigned flags = prep_to_mnist(out, digit(i), 28, 28);
        if (flags != PREP_NONE)
            fail_msg("digit %zu: expected PREP_NONE, got 0x%x", i, flags);
        for (int p = 0; p < 784; p++)
            assert_true(out[p] == digit(i)[p] / 255.0f);
    }
}

/* Each digit scaled by k (nearest), inverted (dark ink), on a white page
 * of random size with a random offset. */
static void test_digits_on_white_pages_round_trip(void **state)
{
    (void)state;
    uint32_t seed = 12345;
    double sum_corr = 0, worst = 1, max_com_err = 0;
    float out[784];
    for (size_t i = 0; i < N_DIGITS; i++) {
        size_t k = 1 + lcg(&seed) % 8;
        size_t w = 28 * k + lcg(&seed) % 200, h = 28 * k + lcg(&seed) % 200;
        size_t ox = lcg(&seed) % (w - 28 * k + 1), oy = lcg(&seed) % (h - 28 * k + 1);
        uint8_t *page = malloc(w * h);
        memset(page, 255, w * h);
        for (size_t y = 0; y < 28 * k; y++)
            for (size_t x = 0; x < 28 * k; x++)
                page[(oy + y) * w + ox + x] = (uint8_t)(255 - digit(i)[(y / k) * 28 + x / k]);
        unsigned flags = prep_to_mnist(out, page, w, h);
        free(page);
        if (flags != (PREP_INVERTED | PREP_RESIZED))
            fail_msg("digit %zu on %zux%zu page: expected inverted+resized, got 0x%x", i, w, h, flags);
        double r = correlation(out, digit(i));
        sum_corr += r;
        worst = r < worst ? r : worst;
        double cx, cy;
        centre_of_mass(out, &cx, &cy);
        double e = fmax(fabs(cx - 14), fabs(cy - 14));
        max_com_err = e > max_com_err ? e : max_com_err;
        int bw, bh;
        ink_box(out, 0.25f, &bw, &bh);
        int longer = bw > bh ? bw : bh;
        if (longer < 19 || longer > 21)
            fail_msg("digit %zu: ink box %dx%d, expected the longer side 19..21", i, bw, bh);
    }
    double mean = sum_corr / N_DIGITS;
    print_message(
        "round trip over %d digits: mean correlation %.4f, worst %.4f, max centre-of-mass error %.3f px\n",
        N_DIGITS, mean, worst, max_com_err);
    /* Measured: mean 0.9993, worst 0.81 (a digit whose centre of mass sits
     * half a pixel off, so the whole-pixel shift rounds the other way). */
    if (mean < 0.98 || worst < 0.75)
        fail_msg("mean correlation %.4f (want >= 0.98), worst %.4f (want >= 0.75)", mean, worst);
    if (max_com_err > 0.5 + 1e-6)
        fail_msg("centre of mass off by %.3f px (want <= 0.5)", max_com_err);
}

static void test_inverted_28x28_is_detected(void **state)
{
    (void)state;
    float out[784];
    uint8_t inv[784];
    double sum = 0;
    for (size_t i = 0; i < 100; i++) {
        for (int p = 0; p < 784; p++)
            inv[p] = (uint8_t)(255 - digit(i)[p]);
        unsigned flags = prep_to_mnist(out, inv, 28, 28);
        assert_int_equal(flags, PREP_INVERTED | PREP_RESIZED);
        sum += correlation(out, digit(i));
    }
    print_message("inverted 28x28: mean correlation %.4f\n", sum / 100);
    assert_true(sum / 100 > 0.9);
}

/* Light-on-dark but not 28x28: resized, not inverted. */
static void test_light_on_dark_large(void **state)
{
    (void)state;
    float out[784];
    size_t w = 100, h = 90;
    uint8_t *page = calloc(w * h, 1);
    for (size_t y = 0; y < 84; y++)
        for (size_t x = 0; x < 84; x++)
            page[(y + 3) * w + x + 10] = digit(1)[(y / 3) * 28 + x / 3];
    assert_int_equal(prep_to_mnist(out, page, w, h), PREP_RESIZED);
    assert_true(correlation(out, digit(1)) > 0.9);
    free(page);
}

/* A gray page and faded ink are stretched to MNIST's 0 and 1. */
static void test_gray_page_is_stretched(void **state)
{
    (void)state;
    float out[784];
    size_t w = 60, h = 60;
    uint8_t *page = malloc(w * h);
    memset(page, 190, w * h);
    for (size_t y = 0; y < 56; y++)
        for (size_t x = 0; x < 56; x++) {
            unsigned v = digit(2)[(y / 2) * 28 + x / 2];
            page[(y + 2) * w + x + 2] = (uint8_t)(190 - v * 100 / 255); /* ink at 90 */
        }
    assert_int_equal(prep_to_mnist(out, page, w, h), PREP_INVERTED | PREP_RESIZED);
    float mx = 0;
    for (int i = 0; i < 784; i++)
        mx = out[i] > mx ? out[i] : mx;
    assert_true(mx > 0.95f);
    assert_true(out[0] == 0.0f && out[783] == 0.0f);
    assert_true(correlation(out, digit(2)) > 0.9);
    free(page);
}

/* Ink touching an edge does not flip the polarity (median of the frame). */
static void test_ink_touching_the_border(void **state)
{
    (void)state;
    float out[784];
    size_t w = 40, h = 28;
    uint8_t *page = malloc(w * h);
    memset(page, 255, w * h);
    for (size_t y = 0; y < 28; y++) /* digit at the left edge, full height */
        for (size_t x = 0; x < 28; x++)
            page[y * w + x] = (uint8_t)(255 - digit(3)[y * 28 + x]);
    for (size_t y = 0; y < 28; y++) /* a solid bar along the left edge */
        page[y * w] = 0;
    unsigned flags = prep_to_mnist(out, page, w, h);
    assert_int_equal(flags, PREP_INVERTED | PREP_RESIZED);
    free(page);
}

static void test_blank_pictures_are_empty(void **state)
{
    (void)state;
    float out[784];
    static const uint8_t values[] = {0, 1, 127, 128, 200, 255};
    uint8_t *page = malloc(500 * 300);
    for (size_t i = 0; i < sizeof values; i++) {
        memset(page, values[i], 500 * 300);
        unsigned flags = prep_to_mnist(out, page, 500, 300);
        assert_true(flags & PREP_EMPTY);
        assert_false(flags & PREP_RESIZED);
        assert_true(all_zero(out));
        flags = prep_to_mnist(out, page, 28, 28);
        assert_true(flags & PREP_EMPTY);
        assert_true(all_zero(out));
    }
    /* Low-contrast noise is not a digit either. */
    uint32_t seed = 7;
    for (size_t i = 0; i < 500 * 300; i++)
        page[i] = (uint8_t)(240 + lcg(&seed) % 16);
    assert_true(prep_to_mnist(out, page, 500, 300) & PREP_EMPTY);
    assert_true(all_zero(out));
    free(page);
}

static void test_tiny_pictures(void **state)
{
    (void)state;
    float out[784];
    uint8_t px[9];
    for (unsigned v = 0; v < 256; v += 51) {
        px[0] = (uint8_t)v;
        unsigned flags = prep_to_mnist(out, px, 1, 1);
        assert_true(flags & PREP_EMPTY);
        assert_true(all_zero(out));
    }
    /* One white pixel in a black 3x3: scaled to a 20x20 block, centred. */
    memset(px, 0, 9);
    px[4] = 255;
    assert_int_equal(prep_to_mnist(out, px, 3, 3), PREP_RESIZED);
    int bw, bh;
    ink_box(out, 0.5f, &bw, &bh);
    assert_int_equal(bw, 20);
    assert_int_equal(bh, 20);
    double cx, cy;
    centre_of_mass(out, &cx, &cy);
    assert_true(fabs(cx - 14) <= 0.5 && fabs(cy - 14) <= 0.5);
    /* 2x1 and 1x2, one dark and one light pixel: either reading is fine,
     * but the answer is one of them and the output is in [0, 1]. */
    uint8_t two[2] = {255, 0};
    for (int vertical = 0; vertical < 2; vertical++) {
        unsigned flags = prep_to_mnist(out, two, vertical ? 1 : 2, vertical ? 2 : 1);
        assert_true(flags & (PREP_RESIZED | PREP_EMPTY));
        for (int i = 0; i < 784; i++)
            assert_true(out[i] >= 0.0f && out[i] <= 1.0f);
    }
    /* NULL or zero-sized input: an empty result, not a crash. */
    assert_int_equal(prep_to_mnist(out, NULL, 28, 28), PREP_EMPTY);
    assert_int_equal(prep_to_mnist(out, px, 0, 5), PREP_EMPTY);
    assert_int_equal(prep_to_mnist(out, px, 5, 0), PREP_EMPTY);
}

/* A long thin stroke on a white page, both ways round. */
static void test_extreme_aspect_ratios(void **state)
{
    (void)state;
    float out[784];
    size_t long_side = 4000, short_side = 5;
    uint8_t *page = malloc(long_side * short_side);
    for (int vertical = 0; vertical < 2; vertical++) {
        size_t w = vertical ? short_side : long_side, h = vertical ? long_side : short_side;
        memset(page, 255, w * h);
        for (size_t i = 100; i < long_side - 100; i++) { /* a dark line through the middle */
            if (vertical)
                page[i * w + 2] = 0;
            else
                page[2 * w + i] = 0;
        }
        unsigned flags = prep_to_mnist(out, page, w, h);
        assert_int_equal(flags, PREP_INVERTED | PREP_RESIZED);
        int bw, bh;
        ink_box(out, 0.5f, &bw, &bh);
        assert_int_equal(vertical ? bh : bw, 20);
        assert_int_equal(vertical ? bw : bh, 1);
        double cx, cy;
        centre_of_mass(out, &cx, &cy);
        assert_true(fabs(cx - 14) <= 0.5 && fabs(cy - 14) <= 0.5);
    }
    /* A picture that is all ink, 1 px high: its own background. */
    memset(page, 0, long_side);
    assert_true(prep_to_mnist(out, page, long_side, 1) & PREP_EMPTY);
    free(page);
}

/* Class of the mean probability over a few Monte-Carlo passes. */
static int classify(const struct bnn_model *m, struct bnn_workspace *ws, const float *img, float *probs)
{
    enum { T = 16 };
    char err[BNN_ERR_LEN];
    if (bnn_sample_probs(probs, ws, m, img, T, 1, BNN_MODE_LRT, err) != BNN_OK)
        fail_msg("bnn_sample_probs: %s", err);
    double mean[10] = {0};
    for (int t = 0; t < T; t++)
        for (int k = 0; k < 10; k++)
            mean[k] += probs[t * 10 + k];
    int best = 0;
    for (int k = 1; k < 10; k++)
        if (mean[k] > mean[best])
            best = k;
    return best;
}

/* End to end with the shipped model: the same test digits drawn dark on
 * white pages of random size, scale and position are classified as well as
 * the originals once preprocessed. */
static void test_shipped_model_accuracy_on_pages(void **state)
{
    (void)state;
    enum { N = 1000 };
    struct bnn_model *m = NULL;
    char err[BNN_ERR_LEN];
    if (bnn_weights_load(&m, WEIGHTS, err) != BNN_OK)
        fail_msg("cannot load the shipped model %s: %s", WEIGHTS, err);
    struct bnn_workspace *ws = bnn_workspace_new(m);
    assert_non_null(ws);
    float probs[16 * 10], out[784], raw[784];
    uint32_t seed = 99;
    int right_raw = 0, right_page = 0;
    for (size_t i = 0; i < N; i++) {
        for (int p = 0; p < 784; p++)
            raw[p] = digit(i)[p] / 255.0f;
        right_raw += classify(m, ws, raw, probs) == g_lb.labels[i];
        size_t k = 1 + lcg(&seed) % 6;
        size_t w = 28 * k + lcg(&seed) % 150, h = 28 * k + lcg(&seed) % 150;
        size_t ox = lcg(&seed) % (w - 28 * k + 1), oy = lcg(&seed) % (h - 28 * k + 1);
        uint8_t *page = malloc(w * h);
        memset(page, 255, w * h);
        for (size_t y = 0; y < 28 * k; y++)
            for (size_t x = 0; x < 28 * k; x++)
                page[(oy + y) * w + ox + x] = (uint8_t)(255 - digit(i)[(y / k) * 28 + x / k]);
        prep_to_mnist(out, page, w, h);
        free(page);
        right_page += classify(m, ws, out, probs) == g_lb.labels[i];
    }
    print_message("shipped model on %d t10k digits: %.1f %% as given, %.1f %% drawn on white pages and "
                  "preprocessed\n",
                  N, 100.0 * right_raw / N, 100.0 * right_page / N);
    if (right_page < right_raw - N / 100)
        fail_msg("preprocessed pages: %d right, originals %d (want at most %d fewer)", right_page, right_raw,
                 N / 100);
    bnn_workspace_free(ws);
    bnn_model_free(m);
}

static void test_describe(void **state)
{
    (void)state;
    char buf[64];
    assert_string_equal(prep_describe(PREP_NONE, buf, sizeof buf), "none");
    assert_string_equal(prep_describe(PREP_INVERTED, buf, sizeof buf), "inverted");
    assert_string_equal(prep_describe(PREP_RESIZED, buf, sizeof buf), "resized");
    assert_string_equal(prep_describe(PREP_INVERTED | PREP_RESIZED, buf, sizeof buf), "inverted+resized");
    assert_string_equal(prep_describe(PREP_INVERTED | PREP_EMPTY, buf, sizeof buf), "inverted+empty");
    assert_string_equal(prep_describe(PREP_EMPTY, buf, sizeof buf), "empty");
    char small[6];
    prep_describe(PREP_INVERTED | PREP_RESIZED, small, sizeof small);
    assert_true(strlen(small) < sizeof small);
    assert_null(prep_describe(PREP_NONE, NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_28x28_light_on_dark_is_used_as_is),
        cmocka_unit_test(test_digits_on_white_pages_round_trip),
        cmocka_unit_test(test_inverted_28x28_is_detected),
        cmocka_unit_test(test_light_on_dark_large),
        cmocka_unit_test(test_gray_page_is_stretched),
        cmocka_unit_test(test_ink_touching_the_border),
        cmocka_unit_test(test_blank_pictures_are_empty),
        cmocka_unit_test(test_tiny_pictures),
        cmocka_unit_test(test_extreme_aspect_ratios),
        cmocka_unit_test(test_shipped_model_accuracy_on_pages),
        cmocka_unit_test(test_describe),
    };
    return cmocka_run_group_tests_name("preprocess", tests, load, unload);
}

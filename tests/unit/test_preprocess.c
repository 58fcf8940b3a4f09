/* test_preprocess.c - prep_canonical, step by step, on real MNIST test
 * digits: each synthetic change a real picture brings (a +0.5 background, a
 * fog-like smooth field, inverted bands beside the digit, a 6 px shift, a
 * digit shrunk to 50 %, dark ink on white pages of any size) comes back
 * close to the clean digit's canonical image (Pearson correlation), with
 * the step named; clean digits stay what they were; blank pages of any
 * colour and noise are no digit; tiny and extreme pictures never fail; and
 * end to end with the shipped model, digits on pages classify as well as
 * the originals. Needs build/data/mnist (make data); fails without it.
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

static double correlation(const float *a, const float *b)
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
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : 0;
}

/* In pixel-index coordinates, MNIST's convention. */
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

static int all_zero(const float *img)
{
    for (int i = 0; i < 784; i++)
        if (img[i] != 0.0f)
            return 0;
    return 1;
}

static int in_range(const float *img)
{
    for (int i = 0; i < 784; i++)
        if (!(img[i] >= 0.0f && img[i] <= 1.0f))
            return 0;
    return 1;
}

/* Small deterministic generator for sizes and positions. */
static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* A change to a clean 28x28 digit (x in [0,1] per pixel); returns 0 when
 * the change does not apply to this digit (it is skipped). */
typedef int (*change_fn)(uint8_t *out, const uint8_t *in);

/* Applies change to the first N_DIGITS digits; each changed picture's
 * canonical image must be a digit with the steps in want_steps set, and
 * correlate with the clean digit's canonical image: at least min_mean on
 * average and min_each for each. */
static void check_change(const char *name, change_fn change, unsigned want_steps, double min_mean,
                         double min_each)
{
    double sum = 0, worst = 1;
    int n = 0;
    for (size_t i = 0; i < N_DIGITS; i++) {
        uint8_t pic[784];
        float clean[784], out[784];
        struct prep_result rc, r;
        if (!change(pic, digit(i)))
            continue;
        prep_canonical(clean, &rc, digit(i), 28, 28);
        prep_canonical(out, &r, pic, 28, 28);
        if (r.verdict != PREP_DIGIT)
            fail_msg("%s, digit %zu: expected a digit, got %s", name, i, prep_verdict_name(r.verdict));
        if ((r.steps & want_steps) != want_steps)
            fail_msg("%s, digit %zu: expected steps 0x%x among 0x%x", name, i, want_steps, r.steps);
        assert_true(in_range(out));
        double c = correlation(out, clean);
        sum += c;
        worst = c < worst ? c : worst;
        n++;
    }
    print_message("%-22s %3d digits: correlation with the clean canonical mean %.3f, worst %.3f\n", name, n,
                  sum / n, worst);
    if (n < N_DIGITS / 3)
        fail_msg("%s: only %d digits to test", name, n);
    if (sum / n < min_mean || worst < min_each)
        fail_msg("%s: correlation mean %.3f (want >= %.2f), worst %.3f (want >= %.2f)", name, sum / n,
                 min_mean, worst, min_each);
}

static int add_half(uint8_t *out, const uint8_t *in)
{
    for (int i = 0; i < 784; i++)
        out[i] = (uint8_t)(in[i] + 128 > 255 ? 255 : in[i] + 128);
    return 1;
}

/* A smooth field: a ramp from 0.15 to 0.45 across the diagonal with a
 * gentle bump, and the ink at half contrast over it. */
static int fog(uint8_t *out, const uint8_t *in)
{
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            double f = 0.15 + 0.3 * (x + y) / 54.0 + 0.1 * sin(x * 0.15) * cos(y * 0.12);
            double v = f + 0.5 * in[y * 28 + x] / 255.0 * (1 - f);
            out[y * 28 + x] = (uint8_t)lround(v * 255);
        }
    return 1;
}

/* Columns 0-3 and 24-27 inverted, for digits at least 3 px from them. */
static int bands(uint8_t *out, const uint8_t *in)
{
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            int band = x < 4 || x > 23;
            if ((x < 7 || x > 20) && in[y * 28 + x])
                return 0;
            out[y * 28 + x] = band ? (uint8_t)(255 - in[y * 28 + x]) : in[y * 28 + x];
        }
    return 1;
}

/* 6 px to the right, for digits that fit. */
static int shift6(uint8_t *out, const uint8_t *in)
{
    memset(out, 0, 784);
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            if (x >= 22 && in[y * 28 + x])
                return 0;
            if (x < 22)
                out[y * 28 + x + 6] = in[y * 28 + x];
        }
    return 1;
}

/* Area-averaged to 14x14 and placed off-centre. */
static int half_size(uint8_t *out, const uint8_t *in)
{
    memset(out, 0, 784);
    for (int y = 0; y < 14; y++)
        for (int x = 0; x < 14; x++) {
            int s = in[2 * y * 28 + 2 * x] + in[2 * y * 28 + 2 * x + 1] + in[(2 * y + 1) * 28 + 2 * x] +
                    in[(2 * y + 1) * 28 + 2 * x + 1];
            out[(y + 3) * 28 + x + 10] = (uint8_t)((s + 2) / 4);
        }
    return 1;
}

static void test_background_offset(void **state)
{
    (void)state;
    check_change("+0.5 background", add_half, PREP_BACKGROUND, 0.93, 0.5);
}

static void test_fog_like_field(void **state)
{
    (void)state;
    check_change("fog-like field", fog, PREP_BACKGROUND | PREP_CONTRAST, 0.88, 0.3);
}

static void test_inverted_bands(void **state)
{
    (void)state;
    check_change("inverted bands", bands, PREP_BACKGROUND, 0.95, 0.7);
}

static void test_shifted_6px(void **state)
{
    (void)state;
    check_change("shifted 6 px", shift6, PREP_CENTRED, 0.99, 0.9);
}

static void test_shrunk_to_half(void **state)
{
    (void)state;
    check_change("shrunk to 50 %", half_size, PREP_RESIZED | PREP_CENTRED, 0.85, 0.6);
}

/* Clean MNIST digits already follow the convention: the canonical image is
 * nearly the digit itself, centre of mass at (14, 14) within half a pixel. */
static void test_clean_digits_stay(void **state)
{
    (void)state;
    double sum = 0;
    for (size_t i = 0; i < N_DIGITS; i++) {
        float out[784], raw[784];
        struct prep_result r;
        prep_canonical(out, &r, digit(i), 28, 28);
        assert_int_equal(r.verdict, PREP_DIGIT);
        assert_false(r.steps & (PREP_INVERTED | PREP_MIXED | PREP_DOWNSCALED));
        for (int p = 0; p < 784; p++)
            raw[p] = digit(i)[p] / 255.0f;
        sum += correlation(out, raw);
        double cx, cy;
        centre_of_mass(out, &cx, &cy);
        if (fabs(cx - 14) > 0.5 || fabs(cy - 14) > 0.5)
            fail_msg("digit %zu: centre of mass (%.2f, %.2f), expected (14, 14) +- 0.5", i, cx, cy);
    }
    print_message("clean digits: correlation with the original mean %.4f\n", sum / N_DIGITS);
    assert_true(sum / N_DIGITS > 0.98);
}

/* Each digit scaled by k (nearest), dark on a white page of random size at
 * a random offset: inverted, resized, close to the clean canonical. */
static void test_digits_on_white_pages(void **state)
{
    (void)state;
    uint32_t seed = 12345;
    double sum = 0, worst = 1;
    for (size_t i = 0; i < N_DIGITS; i++) {
        size_t k = 1 + lcg(&seed) % 8;
        size_t w = 28 * k + lcg(&seed) % 200, h = 28 * k + lcg(&seed) % 200;
        size_t ox = lcg(&seed) % (w - 28 * k + 1), oy = lcg(&seed) % (h - 28 * k + 1);
        uint8_t *page = malloc(w * h);
        assert_non_null(page);
        memset(page, 255, w * h);
        for (size_t y = 0; y < 28 * k; y++)
            for (size_t x = 0; x < 28 * k; x++)
                page[(oy + y) * w + ox + x] = (uint8_t)(255 - digit(i)[(y / k) * 28 + x / k]);
        float out[784], clean[784];
        struct prep_result r, rc;
        prep_canonical(out, &r, page, w, h);
        free(page);
        prep_canonical(clean, &rc, digit(i), 28, 28);
        if (r.verdict != PREP_DIGIT || !(r.steps & PREP_INVERTED))
            fail_msg("digit %zu on a %zux%zu page: expected an inverted digit, got %s 0x%x", i, w, h,
                     prep_verdict_name(r.verdict), r.steps);
        double c = correlation(out, clean);
        sum += c;
        worst = c < worst ? c : worst;
    }
    print_message("digits on white pages: correlation mean %.3f, worst %.3f\n", sum / N_DIGITS, worst);
    assert_true(sum / N_DIGITS > 0.9);
    assert_true(worst > 0.5);
}

static void expect_no_digit(const uint8_t *px, size_t w, size_t h, enum prep_verdict want)
{
    float out[784];
    struct prep_result r;
    prep_canonical(out, &r, px, w, h);
    if (r.verdict != want)
        fail_msg("%zux%zu picture: expected %s, got %s", w, h, prep_verdict_name(want),
                 prep_verdict_name(r.verdict));
    assert_true(all_zero(out));
    assert_int_equal(r.steps, 0);
}

/* Blank pages of any colour and size are blank; a NULL or empty picture
 * too. */
static void test_blank_pages(void **state)
{
    (void)state;
    static const uint8_t levels[] = {0, 1, 37, 128, 200, 254, 255};
    static const size_t sizes[][2] = {{1, 1}, {28, 28}, {64, 64}, {500, 300}, {7, 1000}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t w = sizes[s][0], h = sizes[s][1];
        uint8_t *page = malloc(w * h);
        assert_non_null(page);
        for (size_t l = 0; l < sizeof levels; l++) {
            memset(page, levels[l], w * h);
            expect_no_digit(page, w, h, PREP_BLANK);
        }
        /* a faint smudge (contrast 20/255) is still blank */
        memset(page, 200, w * h);
        page[(h / 2) * w + w / 2] = 180;
        expect_no_digit(page, w, h, PREP_BLANK);
        free(page);
    }
    uint8_t px = 0;
    expect_no_digit(NULL, 28, 28, PREP_BLANK);
    expect_no_digit(&px, 0, 5, PREP_BLANK);
    expect_no_digit(&px, 5, 0, PREP_BLANK);
}

/* Uniform noise and random binary noise have no calm background. */
static void test_noise_is_no_digit(void **state)
{
    (void)state;
    static const size_t sizes[][2] = {{28, 28}, {64, 64}, {280, 280}, {500, 300}};
    uint32_t seed = 7;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t w = sizes[s][0], h = sizes[s][1];
        uint8_t *page = malloc(w * h);
        assert_non_null(page);
        for (size_t i = 0; i < w * h; i++)
            page[i] = (uint8_t)(lcg(&seed) & 255);
        expect_no_digit(page, w, h, PREP_NO_BACKGROUND);
        for (size_t i = 0; i < w * h; i++)
            page[i] = lcg(&seed) & 1 ? 255 : 0;
        expect_no_digit(page, w, h, PREP_NO_BACKGROUND);
        free(page);
    }
}

/* Tiny, thin and long pictures: a valid image in [0, 1] whatever happens. */
static void test_tiny_and_extreme_pictures(void **state)
{
    (void)state;
    static const size_t sizes[][2] = {{1, 1},    {2, 1},    {1, 2},    {3, 3},
                                      {1, 4096}, {4096, 1}, {2, 3000}, {5, 5}};
    uint32_t seed = 3;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t w = sizes[s][0], h = sizes[s][1];
        uint8_t *page = malloc(w * h);
        assert_non_null(page);
        for (int pattern = 0; pattern < 3; pattern++) {
            for (size_t i = 0; i < w * h; i++)
                page[i] = pattern == 0 ? 0 : pattern == 1 ? (i % 3 ? 255 : 0) : (uint8_t)lcg(&seed);
            if (w * h > 2)
                page[(w * h) / 2] = 255;
            float out[784];
            struct prep_result r;
            prep_canonical(out, &r, page, w, h);
            assert_true(in_range(out));
            assert_true(r.verdict == PREP_DIGIT || all_zero(out));
        }
        free(page);
    }
}

/* Class of the mean probability over a few Monte-Carlo passes. */
static int classify(const struct bnn_model *m, struct bnn_workspace *ws, const float *img)
{
    enum { T = 16 };
    char err[BNN_ERR_LEN];
    float probs[T * 10];
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

/* End to end with the shipped model: the test digits, and the same digits
 * drawn dark on white pages of random size, scale and position, both through
 * the canonicalisation, are classified equally well. */
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
    float out[784];
    struct prep_result r;
    uint32_t seed = 99;
    int right_digit = 0, right_page = 0;
    for (size_t i = 0; i < N; i++) {
        prep_canonical(out, &r, digit(i), 28, 28);
        right_digit += classify(m, ws, out) == g_lb.labels[i];
        size_t k = 1 + lcg(&seed) % 6;
        size_t w = 28 * k + lcg(&seed) % 150, h = 28 * k + lcg(&seed) % 150;
        size_t ox = lcg(&seed) % (w - 28 * k + 1), oy = lcg(&seed) % (h - 28 * k + 1);
        uint8_t *page = malloc(w * h);
        assert_non_null(page);
        memset(page, 255, w * h);
        for (size_t y = 0; y < 28 * k; y++)
            for (size_t x = 0; x < 28 * k; x++)
                page[(oy + y) * w + ox + x] = (uint8_t)(255 - digit(i)[(y / k) * 28 + x / k]);
        prep_canonical(out, &r, page, w, h);
        free(page);
        right_page += classify(m, ws, out) == g_lb.labels[i];
    }
    print_message("shipped model on %d t10k digits: %.1f %% as given, %.1f %% drawn on white pages\n", N,
                  100.0 * right_digit / N, 100.0 * right_page / N);
    if (right_page < right_digit - N / 100)
        fail_msg("pages: %d right, the digits as given %d (want at most %d fewer)", right_page, right_digit,
                 N / 100);
    bnn_workspace_free(ws);
    bnn_model_free(m);
}

static void test_describe(void **state)
{
    (void)state;
    char buf[160];
    assert_string_equal(prep_describe(0, buf, sizeof buf), "none");
    assert_string_equal(prep_describe(PREP_INVERTED, buf, sizeof buf), "inverted");
    assert_string_equal(prep_describe(PREP_RESIZED | PREP_CENTRED, buf, sizeof buf), "resized+centred");
    assert_string_equal(prep_describe(PREP_DOWNSCALED | PREP_INVERTED | PREP_MIXED | PREP_BACKGROUND |
                                          PREP_CONTRAST | PREP_SPECKS | PREP_RESIZED | PREP_CENTRED,
                                      buf, sizeof buf),
                        "downscaled+inverted+mixed_polarity+background+contrast+specks+resized+centred");
    char small[6];
    prep_describe(PREP_INVERTED | PREP_RESIZED, small, sizeof small);
    assert_true(strlen(small) < sizeof small);
    assert_null(prep_describe(0, NULL, 0));
    assert_string_equal(prep_verdict_name(PREP_DIGIT), "digit");
    assert_string_equal(prep_verdict_name(PREP_BLANK), "blank");
    assert_string_equal(prep_verdict_name(PREP_NO_BACKGROUND), "no_background");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_digits_stay),
        cmocka_unit_test(test_background_offset),
        cmocka_unit_test(test_fog_like_field),
        cmocka_unit_test(test_inverted_bands),
        cmocka_unit_test(test_shifted_6px),
        cmocka_unit_test(test_shrunk_to_half),
        cmocka_unit_test(test_digits_on_white_pages),
        cmocka_unit_test(test_blank_pages),
        cmocka_unit_test(test_noise_is_no_digit),
        cmocka_unit_test(test_tiny_and_extreme_pictures),
        cmocka_unit_test(test_shipped_model_accuracy_on_pages),
        cmocka_unit_test(test_describe),
    };
    return cmocka_run_group_tests_name("preprocess", tests, load, unload);
}

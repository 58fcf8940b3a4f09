/* test_calibrate.c - fitting the answer policy (calibrate.h).
 *
 * The abstain rule flags exactly the share of images it states, on
 * synthetic scores and on the 5,000 real validation digits through the
 * daemon's path (replayed with eval.h); it prefers the split between
 * entropy and epistemic that catches the most wrong answers. Split
 * conformal levels match a hand count, and - the guarantee itself - sets
 * calibrated on half the validation digits hold the label of the other
 * half, and of the test digits, at the promised 0.95 within a binomial
 * tolerance. Needs build/data/mnist and the shipped weights (BNN_WEIGHTS);
 * missing either fails, never skips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnn.h"
#include "calibrate.h"
#include "decide.h"
#include "eval.h"
#include "idx.h"
#include "rng.h"
#include "weights.h"

#define VAL_COUNT 5000 /* the trainer's validation digits: the last of the training split */
#define T_REAL 20      /* passes per image in the real-data tests */

static const char *data_dir(void)
{
    const char *d = getenv("BNN_DATA");
    return d ? d : "build/data/mnist";
}

static const char *weights_path(void)
{
    const char *p = getenv("BNN_WEIGHTS");
    return p ? p : "model/weights/mnist-bnn.safetensors";
}

/* How many of n images the policy flags (digits all found), and how many
 * of the wrong ones. */
static size_t flagged_by(const struct bnn_policy *p, const double *ent, const double *epi,
                         const unsigned char *correct, size_t n, size_t *caught)
{
    size_t f = 0;
    *caught = 0;
    for (size_t i = 0; i < n; i++) {
        int flag = bnn_decide(p, ent[i], epi[i], 1) != 0;
        f += flag;
        *caught += flag && !correct[i];
    }
    return f;
}

/* Wrong answers among the k highest values (no ties in the tests' data). */
static size_t caught_by_top(const double *v, const unsigned char *correct, size_t n, size_t k)
{
    size_t caught = 0;
    for (size_t i = 0; i < n; i++) {
        size_t above = 0;
        for (size_t j = 0; j < n; j++)
            above += v[j] > v[i];
        caught += above < k && !correct[i];
    }
    return caught;
}

static void test_abstain_synthetic(void **state)
{
    (void)state;
    enum { N = 1000 };
    static double ent[N], epi[N];
    static unsigned char correct[N];
    float u[2 * N];
    rng_uniforms(u, 2 * N, 42, 1, 0, 0);
    for (size_t i = 0; i < N; i++) {
        ent[i] = 2.3 * u[i];
        epi[i] = 0.5 * u[N + i];
        correct[i] = !(i % 10 == 0 || (ent[i] > 1.8 && i % 3 == 0));
    }
    const double rates[] = {0.001, 0.01, 0.05, 0.123, 0.5};
    char err[BNN_ERR_LEN];
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        struct bnn_policy p;
        bnn_policy_none(&p);
        assert_int_equal(calib_abstain(&p, ent, epi, correct, N, rates[r], NULL, err), BNN_OK);
        size_t caught, f = flagged_by(&p, ent, epi, correct, N, &caught);
        size_t want = (size_t)llround(rates[r] * N);
        if (f != want)
            fail_msg("rate %g: expected %zu of %d flagged, got %zu", rates[r], want, N, f);
        assert_float_equal(p.clean_flag_rate, (double)f / N, 1e-15);
        /* at least as good as either score alone at the same budget */
        size_t by_ent = caught_by_top(ent, correct, N, want), by_epi = caught_by_top(epi, correct, N, want);
        if (caught < by_ent || caught < by_epi)
            fail_msg("rate %g: caught %zu wrong answers, entropy alone %zu, epistemic alone %zu", rates[r],
                     caught, by_ent, by_epi);
    }
}

/* Wrong answers that only the epistemic part sees: the rule must give the
 * whole budget to it and catch every one. */
static void test_abstain_prefers_the_score_that_catches(void **state)
{
    (void)state;
    enum { N = 200 };
    double ent[N], epi[N];
    unsigned char correct[N];
    for (size_t i = 0; i < N; i++) {
        correct[i] = i % 20 != 7;                       /* 10 wrong */
        ent[i] = correct[i] ? 0.01 * (double)i : 0.001; /* the wrong ones look calm */
        epi[i] = correct[i] ? 1e-4 * (double)(i % 50) : 0.9 + 1e-3 * (double)i;
    }
    struct bnn_policy p;
    char err[BNN_ERR_LEN];
    assert_int_equal(calib_abstain(&p, ent, epi, correct, N, 0.05, NULL, err), BNN_OK);
    size_t caught, f = flagged_by(&p, ent, epi, correct, N, &caught);
    assert_int_equal(f, 10);
    assert_int_equal(caught, 10);
    assert_true(isinf(p.entropy_max)); /* the whole budget went to the epistemic part */
    assert_true(p.epistemic_max > 0.0049 && p.epistemic_max < 0.9);
}

/* With tied values no threshold flags exactly the budget: the rule flags
 * fewer, and says how many. */
static void test_abstain_ties_and_errors(void **state)
{
    (void)state;
    double same[10], epi[10];
    unsigned char correct[10];
    for (int i = 0; i < 10; i++)
        same[i] = epi[i] = 0.3, correct[i] = 1;
    struct bnn_policy p;
    char err[BNN_ERR_LEN] = "";
    assert_int_equal(calib_abstain(&p, same, epi, correct, 10, 0.2, NULL, err), BNN_OK);
    size_t caught, f = flagged_by(&p, same, epi, correct, 10, &caught);
    assert_int_equal(f, 0);
    assert_float_equal(p.clean_flag_rate, 0.0, 0);
    assert_int_equal(calib_abstain(&p, same, epi, correct, 0, 0.05, NULL, err), BNN_E_INVALID);
    assert_non_null(strstr(err, "got 0, 0.05"));
    assert_int_equal(calib_abstain(&p, same, epi, correct, 10, 0.0, NULL, err), BNN_E_INVALID);
    assert_int_equal(calib_abstain(&p, same, epi, correct, 10, 0.6, NULL, err), BNN_E_INVALID);
    assert_non_null(strstr(err, "0.6"));
}

/* Hand count: scores 1 - p = 0.0, 0.1, ..., 0.8 (n = 9). Coverage 0.8 ->
 * rank ceil(10 * 0.8) = 8 -> q = 0.7, min_prob 0.3; coverage 0.5 -> rank
 * 5 -> q = 0.4, min_prob 0.6; coverage 0.95 -> rank 10 > 9 -> every class. */
static void test_conformal_hand_count(void **state)
{
    (void)state;
    const double label_prob[9] = {0.2, 1.0, 0.9, 0.3, 0.8, 0.7, 0.6, 0.5, 0.4};
    const double cov[3] = {0.5, 0.8, 0.95};
    struct bnn_policy p;
    char err[BNN_ERR_LEN] = "";
    bnn_policy_none(&p);
    assert_int_equal(calib_conformal(&p, label_prob, 9, cov, 3, err), BNN_OK);
    assert_int_equal(p.n_levels, 3);
    assert_float_equal(p.min_prob[0], 0.6, 1e-12);
    assert_float_equal(p.min_prob[1], 0.3, 1e-12);
    assert_float_equal(p.min_prob[2], 0.0, 0);
    for (int l = 0; l < 3; l++)
        assert_float_equal(p.coverage[l], cov[l], 0);
    const double descending[2] = {0.9, 0.8}, out_of_range[1] = {1.0};
    assert_int_equal(calib_conformal(&p, label_prob, 9, descending, 2, err), BNN_E_INVALID);
    assert_non_null(strstr(err, "coverage 1"));
    assert_int_equal(calib_conformal(&p, label_prob, 9, out_of_range, 1, err), BNN_E_INVALID);
    assert_int_equal(calib_conformal(&p, label_prob, 0, cov, 3, err), BNN_E_INVALID);
    assert_int_equal(calib_conformal(&p, label_prob, 9, cov, BNN_MAX_LEVELS + 1, err), BNN_E_INVALID);
}

struct fixture {
    struct bnn_model *m;
    struct idx_images train, test;
    struct idx_labels train_lb, test_lb;
};

static int load(void **state)
{
    static struct fixture f;
    char err[BNN_ERR_LEN];
    if (bnn_weights_load(&f.m, weights_path(), err) ||
        idx_load_mnist(&f.train, &f.train_lb, data_dir(), "train", err) ||
        idx_load_mnist(&f.test, &f.test_lb, data_dir(), "t10k", err)) {
        fprintf(stderr, "test_calibrate: %s (make data; the shipped weights or BNN_WEIGHTS)\n", err);
        return -1;
    }
    *state = &f;
    return 0;
}

static int unload(void **state)
{
    struct fixture *f = *state;
    bnn_model_free(f->m);
    idx_images_free(&f->train);
    idx_images_free(&f->test);
    idx_labels_free(&f->train_lb);
    idx_labels_free(&f->test_lb);
    return 0;
}

static const uint8_t *val_pixels(const struct fixture *f)
{
    return f->train.pixels + (f->train.n - VAL_COUNT) * BNN_MNIST_PIXELS;
}

static const uint8_t *val_labels(const struct fixture *f)
{
    return f->train_lb.labels + (f->train_lb.n - VAL_COUNT);
}

/* The policy fitted on the validation digits, replayed on them through the
 * daemon's path (the same seed, T and images), flags exactly its stated
 * share: 250 of 5,000. */
static void test_abstain_real_validation(void **state)
{
    struct fixture *f = *state;
    char err[BNN_ERR_LEN];
    struct bnn_policy p;
    if (calib_policy(&p, f->m, val_pixels(f), val_labels(f), VAL_COUNT, T_REAL, 2, 0.05, err))
        fail_msg("calib_policy: %s", err);
    assert_int_equal(p.samples, T_REAL);
    assert_int_equal(p.n_levels, CALIB_LEVELS);
    assert_float_equal(p.clean_flag_rate, 0.05, 1e-12);
    struct eval_options o;
    eval_options_default(&o);
    o.samples = T_REAL;
    o.seed = CALIB_SEED;
    o.threads = 3; /* the figures do not depend on the thread count */
    o.policy = &p;
    o.set_level = bnn_policy_level(&p, 0.95);
    struct eval_metrics e;
    if (eval_model(&e, NULL, NULL, f->m, val_pixels(f), val_labels(f), VAL_COUNT, &o, err))
        fail_msg("eval_model: %s", err);
    print_message(
        "validation, T=%d: entropy > %.4g or epistemic > %.4g flags %.4f (stated %.4f); no digit %.4f; "
        "0.95 sets cover %.4f\n",
        T_REAL, p.entropy_max, p.epistemic_max, e.flagged, p.clean_flag_rate, e.no_digit, e.set_coverage);
    if (e.flagged != p.clean_flag_rate)
        fail_msg("expected the stated %.4f of validation digits flagged on replay, got %.4f",
                 p.clean_flag_rate, e.flagged);
    /* split conformal's finite-sample bound, on its own calibration set */
    assert_true(e.set_coverage >= 0.95);
}

/* Coverage of sets calibrated at `cov` on cal (n_cal), measured on the
 * images (n): returns the share of sets that hold the label. */
static double held_out_coverage(const struct fixture *f, const struct bnn_policy *p, const uint8_t *pixels,
                                const uint8_t *labels, size_t n, uint64_t seed)
{
    char err[BNN_ERR_LEN];
    struct eval_options o;
    eval_options_default(&o);
    o.samples = T_REAL;
    o.seed = seed;
    o.policy = p;
    o.set_level = 0;
    struct eval_metrics e;
    if (eval_model(&e, NULL, NULL, f->m, pixels, labels, n, &o, err))
        fail_msg("eval_model: %s", err);
    return e.set_coverage;
}

/* The guarantee: calibrate 0.95 sets on the first half of the validation
 * digits, then the other half and the test digits are covered at 0.95
 * within 4 standard deviations of the binomial noise of both samples. */
static void test_conformal_held_out(void **state)
{
    struct fixture *f = *state;
    const size_t n_cal = VAL_COUNT / 2, n_hold = VAL_COUNT - n_cal;
    const double level = 0.95;
    char err[BNN_ERR_LEN];
    struct eval_options o;
    eval_options_default(&o);
    o.samples = T_REAL;
    o.seed = 11;
    struct eval_image *img = malloc(n_cal * sizeof *img);
    double *lp = malloc(n_cal * sizeof *lp);
    assert_non_null(img);
    assert_non_null(lp);
    struct eval_metrics e;
    if (eval_model(&e, img, NULL, f->m, val_pixels(f), val_labels(f), n_cal, &o, err))
        fail_msg("eval_model: %s", err);
    for (size_t i = 0; i < n_cal; i++)
        lp[i] = img[i].label_prob;
    struct bnn_policy p;
    bnn_policy_none(&p);
    assert_int_equal(calib_conformal(&p, lp, n_cal, &level, 1, err), BNN_OK);
    double hold =
        held_out_coverage(f, &p, val_pixels(f) + n_cal * BNN_MNIST_PIXELS, val_labels(f) + n_cal, n_hold, 12);
    double test = held_out_coverage(f, &p, f->test.pixels, f->test_lb.labels, f->test.n, 13);
    double var = level * (1 - level);
    double tol_hold = 4 * sqrt(var / (double)n_cal + var / (double)n_hold);
    double tol_test = 4 * sqrt(var / (double)n_cal + var / (double)f->test.n);
    print_message(
        "0.95 sets (mean probability >= %.4g) calibrated on %zu validation digits: coverage %.4f on the "
        "other %zu (tolerance %.4f), %.4f on the %zu test digits (tolerance %.4f)\n",
        p.min_prob[0], n_cal, hold, n_hold, tol_hold, test, f->test.n, tol_test);
    if (fabs(hold - level) > tol_hold)
        fail_msg("held-out validation coverage %.4f, expected %.2f +- %.4f", hold, level, tol_hold);
    if (fabs(test - level) > tol_test)
        fail_msg("test coverage %.4f, expected %.2f +- %.4f", test, level, tol_test);
    free(img);
    free(lp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_abstain_synthetic),
        cmocka_unit_test(test_abstain_prefers_the_score_that_catches),
        cmocka_unit_test(test_abstain_ties_and_errors),
        cmocka_unit_test(test_conformal_hand_count),
    };
    const struct CMUnitTest real[] = {
        cmocka_unit_test(test_abstain_real_validation),
        cmocka_unit_test(test_conformal_held_out),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed + cmocka_run_group_tests(real, load, unload);
}

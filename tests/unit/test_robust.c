/* test_robust.c - OOD AUROC against hand-computed cases and a brute-force
 * pair count, selective prediction, thresholds, reliability bins,
 * histograms, and the whole-set corruption helpers.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "corrupt.h"
#include "robust.h"
#include "rng.h"

static void auroc_hand_computed(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    double a;
    /* 12 pairs: 0.9 beats all 4; 0.8 beats 3 and ties 1 (3.5); 0.5 beats 2
     * and ties 1 (2.5) -> 10 / 12 */
    const double pos[] = {0.9, 0.8, 0.5}, neg[] = {0.5, 0.3, 0.1, 0.8};
    assert_int_equal(robust_auroc(&a, pos, 3, neg, 4, err), BNN_OK);
    assert_true(fabs(a - 10.0 / 12.0) < 1e-12);
    /* swapping the roles gives 1 - AUROC */
    assert_int_equal(robust_auroc(&a, neg, 4, pos, 3, err), BNN_OK);
    assert_true(fabs(a - 2.0 / 12.0) < 1e-12);
}

static void auroc_extremes(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    double a;
    const double hi[] = {3, 4, 5}, lo[] = {0, 1, 2}, same[] = {7, 7, 7, 7};
    assert_int_equal(robust_auroc(&a, hi, 3, lo, 3, err), BNN_OK);
    assert_true(a == 1.0);
    assert_int_equal(robust_auroc(&a, lo, 3, hi, 3, err), BNN_OK);
    assert_true(a == 0.0);
    assert_int_equal(robust_auroc(&a, same, 4, same, 2, err), BNN_OK);
    assert_true(a == 0.5);
    assert_int_equal(robust_auroc(&a, hi, 1, lo, 1, err), BNN_OK);
    assert_true(a == 1.0);
}

static void auroc_errors(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN] = "";
    double a = 0, x[] = {1.0, NAN};
    assert_int_equal(robust_auroc(&a, x, 0, x, 1, err), BNN_E_INVALID);
    assert_non_null(strstr(err, "0 positives"));
    assert_true(isnan(a));
    assert_int_equal(robust_auroc(&a, x, 2, x, 1, err), BNN_E_INVALID);
    assert_non_null(strstr(err, "score 1 of the positive set is NaN"));
}

/* Ranks against the definition: count pairs, ties as 1/2. Scores are coarse
 * (multiples of 1/8) so that ties are frequent. */
static void auroc_matches_pair_count(void **state)
{
    (void)state;
    enum { NP = 300, NN = 500 };
    double pos[NP], neg[NN];
    float u[NP + NN];
    char err[BNN_ERR_LEN];
    rng_uniforms(u, NP + NN, 77, 1, 0, 0);
    for (int i = 0; i < NP; i++)
        pos[i] = floor(u[i] * 8.0 + 1.0) / 8.0; /* shifted up */
    for (int i = 0; i < NN; i++)
        neg[i] = floor(u[NP + i] * 8.0) / 8.0;
    double pairs = 0;
    for (int i = 0; i < NP; i++)
        for (int j = 0; j < NN; j++)
            pairs += pos[i] > neg[j] ? 1.0 : (pos[i] == neg[j] ? 0.5 : 0.0);
    double a;
    assert_int_equal(robust_auroc(&a, pos, NP, neg, NN, err), BNN_OK);
    assert_true(fabs(a - pairs / (NP * NN)) < 1e-12);
    assert_true(a > 0.5 && a < 1.0);
}

static void selective_hand_computed(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    const double u[] = {0.1, 0.9, 0.5, 0.7};
    const unsigned char ok[] = {1, 0, 1, 0};
    const double fr[] = {0.0, 0.25, 0.5, 0.75};
    double acc[4];
    assert_int_equal(robust_selective(acc, fr, 4, u, ok, 4, err), BNN_OK);
    assert_true(acc[0] == 0.5);
    assert_true(fabs(acc[1] - 2.0 / 3.0) < 1e-12);
    assert_true(acc[2] == 1.0);
    assert_true(acc[3] == 1.0);
    /* ties: the higher index abstains first */
    const double flat[] = {1, 1, 1, 1};
    const unsigned char last_wrong[] = {1, 1, 1, 0};
    assert_int_equal(robust_selective(acc, fr, 2, flat, last_wrong, 4, err), BNN_OK);
    assert_true(acc[0] == 0.75);
    assert_true(acc[1] == 1.0);
    const double bad[] = {1.0};
    assert_int_equal(robust_selective(acc, bad, 1, u, ok, 4, err), BNN_E_INVALID);
    assert_int_equal(robust_selective(acc, fr, 1, u, ok, 0, err), BNN_E_INVALID);
}

static void reliability_bins(void **state)
{
    (void)state;
    /* 1/15 goes to bin 0 (right-closed), 0 to bin 0, 1 to bin 14 */
    const double conf[] = {0.0, 1.0 / 15.0, 0.5, 0.5, 1.0};
    const unsigned char ok[] = {0, 1, 1, 0, 1};
    struct robust_reliability r;
    robust_reliability(&r, conf, ok, 5);
    assert_int_equal(r.count[0], 2);
    assert_true(fabs(r.confidence[0] - 1.0 / 30.0) < 1e-12);
    assert_true(r.accuracy[0] == 0.5);
    assert_int_equal(r.count[7], 2); /* 0.5 in (7/15, 8/15] */
    assert_true(r.accuracy[7] == 0.5);
    assert_int_equal(r.count[14], 1);
    assert_true(r.accuracy[14] == 1.0);
    size_t total = 0;
    for (int b = 0; b < ROBUST_BINS; b++)
        total += r.count[b];
    assert_int_equal(total, 5);
}

static void histogram_sums_to_one(void **state)
{
    (void)state;
    const double v[] = {-1.0, 0.0, 0.24, 0.25, 0.99, 1.0, 5.0};
    double f[4];
    robust_histogram(f, 4, 0.0, 1.0, v, 7);
    assert_true(fabs(f[0] - 3.0 / 7) < 1e-12); /* -1 clamped, 0, 0.24 */
    assert_true(fabs(f[1] - 1.0 / 7) < 1e-12);
    assert_true(fabs(f[3] - 3.0 / 7) < 1e-12); /* 0.99, 1.0, 5 clamped */
    assert_true(fabs(f[0] + f[1] + f[2] + f[3] - 1.0) < 1e-12);
}

static void corrupt_set_matches_per_image(void **state)
{
    (void)state;
    enum { N = 5 };
    uint8_t in[N * CORRUPT_PIXELS], out[N * CORRUPT_PIXELS], one[CORRUPT_PIXELS];
    float u[N * CORRUPT_PIXELS];
    char err[BNN_ERR_LEN];
    rng_uniforms(u, N * CORRUPT_PIXELS, 3, 2, 0, 0);
    for (int i = 0; i < N * CORRUPT_PIXELS; i++)
        in[i] = (uint8_t)(u[i] * 256.0f);
    assert_int_equal(robust_corrupt_set(out, in, N, CORRUPT_ZIGZAG, 9, err), BNN_OK);
    for (int i = 0; i < N; i++) {
        corrupt_apply(one, in + i * CORRUPT_PIXELS, CORRUPT_ZIGZAG, 9, (uint64_t)i);
        assert_memory_equal(one, out + i * CORRUPT_PIXELS, CORRUPT_PIXELS);
    }
    assert_int_equal(robust_corrupt_set(out, in, N, CORRUPT_COUNT, 9, err), BNN_E_INVALID);
    robust_rotate_set(out, in, N, 0.0);
    assert_memory_equal(out, in, sizeof in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(auroc_hand_computed),
        cmocka_unit_test(auroc_extremes),
        cmocka_unit_test(auroc_errors),
        cmocka_unit_test(auroc_matches_pair_count),
        cmocka_unit_test(selective_hand_computed),
        cmocka_unit_test(reliability_bins),
        cmocka_unit_test(histogram_sums_to_one),
        cmocka_unit_test(corrupt_set_matches_per_image),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

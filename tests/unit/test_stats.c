/* test_stats.c - quantiles (numpy's linear method), entropy, ECE and the
 * two-sample KS test against reference numbers worked out independently:
 * quantiles and ECE by hand (the arithmetic is in the comments), KS D by
 * brute force and its p-value by the Kolmogorov series in plain Python
 * (Q(x) = 2 sum_{k=1}^{400} (-1)^(k-1) exp(-2 k^2 x^2)). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "stats.h"

static void test_quantiles(void **state)
{
    (void)state;
    /* x sorted: 1 1 2 3 4 5 6 9 (n = 8), h = 7 q */
    static const struct {
        double q, want;
    } cases[] = {
        {0.0, 1.0},     {0.025, 1.0}, /* h = 0.175: between 1 and 1 */
        {0.3, 2.1},                   /* h = 2.1: 2 + 0.1 (3 - 2) */
        {0.5, 3.5},                   /* h = 3.5: 3 + 0.5 (4 - 3) */
        {0.975, 8.475},               /* h = 6.825: 6 + 0.825 (9 - 6) */
        {1.0, 9.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double x[] = {3, 1, 4, 1, 5, 9, 2, 6};
        assert_float_equal(stats_quantile(x, 8, cases[i].q), cases[i].want, 1e-12);
        assert_float_equal(stats_quantile_sorted(x, 8, cases[i].q), cases[i].want, 1e-12);
    }
    /* boundaries: n = 1 is that value at every q; n = 2 interpolates */
    double one[] = {0.25};
    assert_float_equal(stats_quantile(one, 1, 0.0), 0.25, 0.0);
    assert_float_equal(stats_quantile(one, 1, 0.975), 0.25, 0.0);
    double two[] = {10, 0};
    assert_float_equal(stats_quantile(two, 2, 0.25), 2.5, 1e-12);
    assert_float_equal(stats_quantile_sorted(two, 2, 0.975), 9.75, 1e-12);
    /* n = 0 has no quantile */
    assert_true(isnan(stats_quantile_sorted(two, 0, 0.5)));
}

static void test_entropy(void **state)
{
    (void)state;
    double uniform[10], onehot[10] = {0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, half[2] = {0.5, 0.5};
    for (int i = 0; i < 10; i++)
        uniform[i] = 0.1;
    assert_float_equal(stats_entropy(uniform, 10), log(10.0), 1e-12); /* 2.302585 nats, the maximum */
    assert_float_equal(stats_entropy(half, 2), log(2.0), 1e-12);
    /* zeros are clamped to 1e-15: 9 x 1e-15 x 34.54 = 3.1e-13, not NaN */
    double h = stats_entropy(onehot, 10);
    assert_true(h > 0.0 && h < 1e-12);
    assert_float_equal(stats_entropy(onehot, 0), 0.0, 0.0);
    double p[3] = {0.7, 0.2, 0.1}; /* -(.7 ln .7 + .2 ln .2 + .1 ln .1) */
    assert_float_equal(stats_entropy(p, 3), 0.2496725 + 0.3218876 + 0.2302585, 1e-6);
}

static void test_ece(void **state)
{
    (void)state;
    /* bins of width 1/15, right-closed:
     * 0.95, 0.95 -> bin 14: acc 1/2, conf 0.95: (2/5) 0.45 = 0.18
     * 0.62       -> bin 9:  acc 1,   conf 0.62: (1/5) 0.38 = 0.076
     * 0.31       -> bin 4:  acc 0,   conf 0.31: (1/5) 0.31 = 0.062
     * 0.0        -> 1e-8, bin 0: acc 0, conf 0:  0
     * ECE = 0.318 */
    double conf[] = {0.95, 0.95, 0.62, 0.31, 0.0};
    unsigned char ok[] = {1, 0, 1, 0, 0};
    assert_float_equal(stats_ece(conf, ok, 5), 0.318, 1e-12);
    /* perfectly confident and right: 0; confident and wrong: 1 */
    double ones[] = {1.0, 1.0, 1.0};
    unsigned char yes[] = {1, 1, 1}, no[] = {0, 0, 0};
    assert_float_equal(stats_ece(ones, yes, 3), 0.0, 0.0);
    assert_float_equal(stats_ece(ones, no, 3), 1.0, 1e-12);
    /* the same confidence split into separate bins is not averaged away:
     * 0.55 right (bin 8), 0.45 wrong (bin 6): (|1-.55| + |0-.45|)/2 = 0.45 */
    double c2[] = {0.55, 0.45};
    unsigned char o2[] = {1, 0};
    assert_float_equal(stats_ece(c2, o2, 2), 0.45, 1e-12);
    assert_float_equal(stats_ece(NULL, NULL, 0), 0.0, 0.0); /* empty */
}

static void test_ks(void **state)
{
    (void)state;
    static const struct {
        double a[100], b[100];
        size_t na, nb;
        double d, p;
    } cases[] = {
        {{1, 2, 3, 4, 5}, {3.5, 4.5, 5.5, 6.5, 7.5, 8.5}, 5, 6, 0.6666666666666667, 0.1769674083331658},
        {{1, 1, 2}, {1, 2, 2}, 3, 3, 0.3333333333333333, 0.9962551923793989}, /* ties */
        {{0.12, 0.5, 0.33, 0.9, 0.71, 0.05, 0.44, 0.61},
         {0.2, 0.8, 0.95, 0.55, 0.67, 0.91, 0.38},
         8,
         7,
         0.3392857142857143,
         0.7833473848051559},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double a[100], b[100], p;
        memcpy(a, cases[i].a, sizeof a);
        memcpy(b, cases[i].b, sizeof b);
        double d = stats_ks_2samp(a, cases[i].na, b, cases[i].nb, &p);
        assert_float_equal(d, cases[i].d, 1e-12);
        assert_float_equal(p, cases[i].p, 1e-9);
        assert_true(a[0] <= a[1] && b[0] <= b[1]); /* sorted in place */
    }
    /* 100 vs 80 shifted grids: D = 0.3 exactly, sqrt(en) D = 2.0, p = 6.709e-4 */
    double a[100], b[80], p;
    for (int i = 0; i < 100; i++)
        a[i] = i * 0.01;
    for (int i = 0; i < 80; i++)
        b[i] = 0.3 + i * 0.01;
    assert_float_equal(stats_ks_2samp(a, 100, b, 80, &p), 0.3, 1e-9);
    assert_float_equal(p, 0.0006709252557796953, 1e-9);
    /* identical samples: D = 0, p = 1; disjoint: D = 1 */
    double x[4] = {1, 2, 3, 4}, y[4] = {4, 3, 2, 1}, far[4] = {10, 11, 12, 13};
    assert_float_equal(stats_ks_2samp(x, 4, y, 4, &p), 0.0, 0.0);
    assert_float_equal(p, 1.0, 0.0);
    assert_float_equal(stats_ks_2samp(x, 4, far, 4, &p), 1.0, 0.0);
    assert_float_equal(p, 0.03663105270711938, 1e-9); /* Q(sqrt(2)) */
    /* empty input: NaN, no crash */
    assert_true(isnan(stats_ks_2samp(x, 0, y, 4, &p)));
    assert_true(isnan(p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantiles),
        cmocka_unit_test(test_entropy),
        cmocka_unit_test(test_ece),
        cmocka_unit_test(test_ks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

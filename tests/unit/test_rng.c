/* test_rng.c - the Philox generator: Random123's known-answer vectors, the
 * vectorised generator bit for bit against Random123 (including the 32-bit
 * counter carry), Box-Muller against a double-precision libm reference,
 * determinism and independence of (seed, stream, pass), unit addressing,
 * and the moments and tails of 10^6 normals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

static void test_known_answers(void **state)
{
    (void)state;
    /* Random123 examples/kat_vectors, philox4x32 10 rounds: counter, key, expected. */
    static const struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t i = 0; i < 3; i++) {
        uint32_t w[4];
        uint64_t block = (uint64_t)kat[i].ctr[1] << 32 | kat[i].ctr[0];
        uint64_t seed = (uint64_t)kat[i].key[1] << 32 | kat[i].key[0];
        rng_philox_block(w, seed, kat[i].ctr[3], kat[i].ctr[2], block);
        assert_memory_equal(w, kat[i].out, sizeof w);
    }
}

static float u_ref(uint32_t w)
{
    return (float)(((double)(w >> 8) + 0.5) / 16777216.0);
}

/* rng_uniforms exposes the vectorised Philox words exactly (u is a bijection
 * of the top 24 bits), so comparing them checks the generator bit for bit. */
static void check_uniforms_against_reference(uint64_t seed, uint32_t stream, uint32_t pass, uint64_t first,
                                             size_t n)
{
    float *u = malloc(n * sizeof *u);
    rng_uniforms(u, n, seed, stream, pass, first);
    for (size_t i = 0; i < n; i++) {
        uint64_t unit = first + i;
        uint32_t w[4];
        rng_philox_block(w, seed, stream, pass, unit / 4);
        if (u[i] != u_ref(w[unit % 4]))
            fail_msg("unit %llu: %.9g != reference %.9g", (unsigned long long)unit, (double)u[i],
                     (double)u_ref(w[unit % 4]));
        assert_true(u[i] > 0.0f && u[i] < 1.0f);
    }
    free(u);
}

static void test_vectorised_matches_random123(void **state)
{
    (void)state;
    check_uniforms_against_reference(42, 0, 0, 0, 1000);
    check_uniforms_against_reference(0xdeadbeefcafef00dULL, 0xC0000003u, 77, 12345, 777);
    /* crossing the low counter word's wrap: block 2^32 - 3 .. 2^32 + 60 */
    check_uniforms_against_reference(7, 1, 2, 4 * (((uint64_t)1 << 32) - 3), 256);
    check_uniforms_against_reference(UINT64_MAX, UINT32_MAX, UINT32_MAX, UINT64_MAX - 300, 300);
    uint32_t w[4];
    rng_philox_block(w, 9, 3, 4, 5);
    assert_true(rng_u64(9, 3, 4, 10) == ((uint64_t)w[1] << 32 | w[0]));
    assert_true(rng_u64(9, 3, 4, 11) == ((uint64_t)w[3] << 32 | w[2]));
}

static void test_box_muller_reference(void **state)
{
    (void)state;
    const size_t n = 20000;
    float *z = malloc(n * sizeof *z);
    const uint64_t seed = 0x123456789abcdefULL;
    rng_normals(z, n, seed, 7, 9, 3);
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        uint64_t unit = i + 3;
        uint32_t w[4];
        rng_philox_block(w, seed, 7, 9, unit / 4);
        int pair = (int)(unit % 4) / 2 * 2;
        double u1 = ((double)(w[pair] >> 8) + 0.5) / 16777216.0,
               u2 = ((double)(w[pair + 1] >> 8) + 0.5) / 16777216.0;
        double r = sqrt(-2.0 * log(u1));
        double ref = unit % 2 == 0 ? r * cos(2.0 * M_PI * u2) : r * sin(2.0 * M_PI * u2);
        double d = fabs(ref - z[i]);
        if (d > worst)
            worst = d;
    }
    /* float polynomials: a few ulp of values up to ~6 */
    assert_true(worst < 2e-5);
    free(z);
}

static void test_determinism_and_addressing(void **state)
{
    (void)state;
    float a[300], b[300], c[8];
    rng_normals(a, 300, 1, 2, 3, 0);
    rng_normals(b, 300, 1, 2, 3, 0);
    assert_memory_equal(a, b, sizeof a);
    /* any window equals the slice of a longer run: first_unit 5 n 3, across a
     * chunk boundary (250..270), n = 1 and n = 0 */
    rng_normals(c, 3, 1, 2, 3, 5);
    assert_memory_equal(c, a + 5, 3 * sizeof(float));
    rng_normals(b, 20, 1, 2, 3, 250);
    assert_memory_equal(b, a + 250, 20 * sizeof(float));
    rng_normals(c, 1, 1, 2, 3, 299);
    assert_memory_equal(c, a + 299, sizeof(float));
    c[0] = 123.0f;
    rng_normals(c, 0, 1, 2, 3, 0);
    assert_true(c[0] == 123.0f);
    /* each address component changes the draws */
    static const uint64_t seeds[] = {2, 1, 1, 1ULL << 32};
    static const uint32_t streams[] = {2, 3, 2, 2}, passes[] = {3, 3, 4, 3};
    for (int k = 0; k < 4; k++) {
        rng_normals(b, 300, seeds[k], streams[k], passes[k], 0);
        int same = 0;
        for (int i = 0; i < 300; i++)
            same += a[i] == b[i];
        assert_true(same < 3);
    }
    /* uniforms follow the same addressing */
    float u[40], v[10];
    rng_uniforms(u, 40, 5, 6, 7, 0);
    rng_uniforms(v, 10, 5, 6, 7, 30);
    assert_memory_equal(v, u + 30, 10 * sizeof(float));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_moments(void **state)
{
    (void)state;
    const size_t n = 1000000;
    float *z = malloc(n * sizeof *z);
    rng_normals(z, n, 2024, 0, 0, 0);
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0, lane[4] = {0}, cross = 0;
    size_t tail = 0;
    for (size_t i = 0; i < n; i++) {
        double x = z[i];
        s1 += x, s2 += x * x, s3 += x * x * x, s4 += x * x * x * x;
        lane[i % 4] += x;
        if (i % 2 == 0)
            cross += x * z[i + 1]; /* the cos/sin pair of one Box-Muller draw */
        tail += fabs(x) > 1.959964;
    }
    double mean = s1 / n, var = s2 / n - mean * mean;
    /* 5-sigma bounds for n = 10^6: sd(mean) = 1e-3, sd(var) = 1.4e-3,
     * sd(skew) = 2.4e-3, sd(kurtosis) = 4.9e-3, sd(tail fraction) = 2.2e-4 */
    assert_true(fabs(mean) < 5e-3);
    assert_true(fabs(var - 1.0) < 7e-3);
    assert_true(fabs(s3 / n) < 1.3e-2);
    assert_true(fabs(s4 / n - 3.0) < 2.5e-2);
    assert_true(fabs((double)tail / n - 0.05) < 1.1e-3);
    for (int j = 0; j < 4; j++)
        assert_true(fabs(lane[j] / (n / 4)) < 1e-2);
    assert_true(fabs(cross / (n / 2)) < 7e-3);
    /* Kolmogorov-Smirnov distance to the N(0,1) CDF on a 10^5 subsample:
     * critical value at 1 % is 1.63 / sqrt(10^5) = 5.2e-3 */
    size_t m = 100000;
    double *s = malloc(m * sizeof *s);
    for (size_t i = 0; i < m; i++)
        s[i] = z[i * 10];
    qsort(s, m, sizeof *s, cmp_double);
    double d = 0;
    for (size_t i = 0; i < m; i++) {
        double F = 0.5 * erfc(-s[i] / sqrt(2.0));
        double lo = fabs(F - (double)i / m), hi = fabs(F - (double)(i + 1) / m);
        d = fmax(d, fmax(lo, hi));
    }
    assert_true(d < 5.2e-3);
    free(s);
    /* uniforms: mean 1/2, variance 1/12 */
    rng_uniforms(z, n, 99, 1, 1, 0);
    s1 = s2 = 0;
    for (size_t i = 0; i < n; i++)
        s1 += z[i], s2 += (double)z[i] * z[i];
    assert_true(fabs(s1 / n - 0.5) < 1.5e-3);
    assert_true(fabs(s2 / n - (s1 / n) * (s1 / n) - 1.0 / 12) < 1e-3);
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_vectorised_matches_random123),
        cmocka_unit_test(test_box_muller_reference),
        cmocka_unit_test(test_determinism_and_addressing),
        cmocka_unit_test(test_moments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

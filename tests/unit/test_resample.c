/* test_resample.c - resample_area: a copy at the same size, cases worked
 * out by hand up and down, the total ink preserved at any ratio, a
 * rectangle at an offset, extreme shapes, and bit for bit against a
 * deliberately naive reference that computes every weight where it uses
 * it, in the order prep_canonical's canonical images (and so the shipped
 * weights) were made with.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "resample.h"

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;

static uint32_t next_u32(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

/* The reference: per destination pixel, per covered source row, per
 * covered source pixel, the weight of each computed on the spot. */
static double ref_weight(double a, double b, size_t i)
{
    double lo = a > (double)i ? a : (double)i, hi = b < (double)i + 1 ? b : (double)i + 1;
    return hi > lo ? hi - lo : 0;
}

static float ref_value(const struct resample_src *p, size_t x, size_t y)
{
    size_t i = y * p->stride + x;
    return (p->u8 ? (float)p->u8[i] : p->f[i]) * p->scale;
}

static void ref_area(float *dst, size_t dw, size_t dh, const struct resample_src *src, size_t sx0, size_t sy0,
                     size_t sw, size_t sh)
{
    double fx = (double)sw / (double)dw, fy = (double)sh / (double)dh, acc[RESAMPLE_MAX];
    for (size_t y = 0; y < dh; y++) {
        double ya = (double)y * fy, yb = (double)(y + 1) * fy;
        for (size_t x = 0; x < dw; x++)
            acc[x] = 0;
        for (size_t sy = (size_t)ya; sy < sh && (double)sy < yb; sy++) {
            double wy = ref_weight(ya, yb, sy);
            for (size_t x = 0; x < dw && wy > 0; x++) {
                double xa = (double)x * fx, xb = (double)(x + 1) * fx, row = 0;
                for (size_t sx = (size_t)xa; sx < sw && (double)sx < xb; sx++)
                    row += ref_weight(xa, xb, sx) * ref_value(src, sx0 + sx, sy0 + sy);
                acc[x] += wy * row;
            }
        }
        for (size_t x = 0; x < dw; x++)
            dst[y * dw + x] = (float)(acc[x] / (fx * fy));
    }
}

static void test_same_size_is_a_copy(void **state)
{
    (void)state;
    uint8_t px[5 * 3];
    float out[5 * 3];
    for (int i = 0; i < 15; i++)
        px[i] = (uint8_t)(i * 17);
    struct resample_src src = {px, NULL, 5, 1.0f / 255.0f};
    resample_area(out, 5, 5, 3, &src, 0, 0, 5, 3);
    for (int i = 0; i < 15; i++)
        assert_true(out[i] == (float)px[i] * (1.0f / 255.0f));
}

static void test_by_hand(void **state)
{
    (void)state;
    /* 3 -> 2: pixel 0 covers [0, 1.5): (0 * 1 + 255 * 0.5) / 1.5 / 255 =
     * 1/3; pixel 1 covers [1.5, 3): (255 * 0.5 + 255 * 1) / 1.5 / 255 = 1. */
    uint8_t down[3] = {0, 255, 255};
    float out[5];
    struct resample_src src = {down, NULL, 3, 1.0f / 255.0f};
    resample_area(out, 2, 2, 1, &src, 0, 0, 3, 1);
    assert_float_equal(out[0], 1.0 / 3.0, 1e-7);
    assert_float_equal(out[1], 1.0, 1e-7);
    /* 2 -> 5 (f = 0.4): [0, .4) [.4, .8) in pixel 0; [.8, 1.2) half and
     * half; [1.2, 1.6) [1.6, 2) in pixel 1. */
    const float up[2] = {0.0f, 1.0f};
    struct resample_src fsrc = {NULL, up, 2, 1.0f};
    resample_area(out, 5, 5, 1, &fsrc, 0, 0, 2, 1);
    const float want[5] = {0, 0, 0.5f, 1, 1};
    for (int i = 0; i < 5; i++)
        assert_float_equal(out[i], want[i], 1e-6);
    /* a column: 4 -> 3 (f = 4/3): [0, 4/3) = (8 + 16/3) / (4/3) = 10. */
    const float col[4] = {8, 16, 32, 64};
    struct resample_src csrc = {NULL, col, 1, 1.0f};
    resample_area(out, 1, 1, 3, &csrc, 0, 0, 1, 4);
    assert_float_equal(out[0], 10.0, 1e-5);
    assert_float_equal(out[1], (16.0 * 2 / 3 + 32.0 * 2 / 3) / (4.0 / 3), 1e-5);
    assert_float_equal(out[2], (32.0 / 3 + 64.0) / (4.0 / 3), 1e-5);
}

static void test_total_preserved(void **state)
{
    (void)state;
    static uint8_t px[300 * 170];
    float out[RESAMPLE_MAX * RESAMPLE_MAX];
    static const size_t shapes[][4] = {
        {300, 170, 64, 36}, {170, 300, 37, 64}, {7, 5, 64, 61}, {300, 1, 64, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t sw = shapes[s][0], sh = shapes[s][1], dw = shapes[s][2], dh = shapes[s][3];
        double in = 0, got = 0;
        for (size_t i = 0; i < sw * sh; i++) {
            px[i] = (uint8_t)next_u32();
            in += px[i];
        }
        struct resample_src src = {px, NULL, sw, 1.0f};
        resample_area(out, dw, dw, dh, &src, 0, 0, sw, sh);
        for (size_t i = 0; i < dw * dh; i++)
            got += out[i];
        got *= ((double)sw / (double)dw) * ((double)sh / (double)dh);
        assert_float_equal(got, in, 1e-5 * in);
    }
}

static void test_rectangle_at_offset(void **state)
{
    (void)state;
    static float plane[90 * 40], rect[31 * 17];
    float a[20 * 11], b[20 * 11];
    for (size_t i = 0; i < 90 * 40; i++)
        plane[i] = (float)(next_u32() % 1000) / 7.0f;
    for (size_t y = 0; y < 17; y++)
        memcpy(rect + y * 31, plane + (y + 9) * 90 + 50, 31 * sizeof *rect);
    struct resample_src whole = {NULL, plane, 90, 0.5f}, part = {NULL, rect, 31, 0.5f};
    resample_area(a, 20, 20, 11, &whole, 50, 9, 31, 17);
    resample_area(b, 20, 20, 11, &part, 0, 0, 31, 17);
    assert_memory_equal(a, b, sizeof a);
    /* rows dst_stride apart, the gaps untouched */
    float wide[11 * 25];
    for (size_t i = 0; i < 11 * 25; i++)
        wide[i] = -1.0f;
    resample_area(wide, 25, 20, 11, &part, 0, 0, 31, 17);
    for (size_t y = 0; y < 11; y++) {
        assert_memory_equal(wide + y * 25, b + y * 20, 20 * sizeof *b);
        for (size_t x = 20; x < 25; x++)
            assert_true(wide[y * 25 + x] == -1.0f);
    }
}

/* Random shapes and ratios, 8-bit and float, against the reference: equal
 * to the bit. */
static void test_matches_reference_bit_for_bit(void **state)
{
    (void)state;
    static uint8_t px[700 * 300];
    static float fpx[700 * 300];
    float a[RESAMPLE_MAX * RESAMPLE_MAX], b[RESAMPLE_MAX * RESAMPLE_MAX];
    for (size_t i = 0; i < sizeof px; i++) {
        px[i] = (uint8_t)next_u32();
        fpx[i] = (float)(next_u32() % 100000) / 99999.0f;
    }
    for (int round = 0; round < 3000; round++) {
        size_t sw = 1 + next_u32() % (round % 3 ? 64 : 300), sh = 1 + next_u32() % (round % 5 ? 64 : 300);
        size_t dw = 1 + next_u32() % RESAMPLE_MAX, dh = 1 + next_u32() % RESAMPLE_MAX;
        size_t sx0 = next_u32() % (700 - sw + 1), sy0 = next_u32() % (300 - sh + 1);
        struct resample_src src = {px, NULL, 700, 1.0f / 255.0f};
        if (round % 2) {
            src.u8 = NULL;
            src.f = fpx;
            src.scale = 1.0f / (0.1f + (float)(next_u32() % 1000) / 1000.0f);
        }
        resample_area(a, dw, dw, dh, &src, sx0, sy0, sw, sh);
        ref_area(b, dw, dh, &src, sx0, sy0, sw, sh);
        assert_memory_equal(a, b, dw * dh * sizeof *a);
    }
}

static void test_extreme_shapes(void **state)
{
    (void)state;
    static uint8_t line[100000];
    float out[RESAMPLE_MAX];
    memset(line, 200, sizeof line);
    struct resample_src src = {line, NULL, sizeof line, 1.0f / 255.0f};
    resample_area(out, RESAMPLE_MAX, RESAMPLE_MAX, 1, &src, 0, 0, sizeof line, 1);
    for (int i = 0; i < RESAMPLE_MAX; i++)
        assert_float_equal(out[i], 200.0 / 255.0, 1e-6);
    /* one pixel to the largest size */
    static const uint8_t one = 77;
    static float big[RESAMPLE_MAX * RESAMPLE_MAX];
    struct resample_src s1 = {&one, NULL, 1, 1.0f};
    resample_area(big, RESAMPLE_MAX, RESAMPLE_MAX, RESAMPLE_MAX, &s1, 0, 0, 1, 1);
    for (int i = 0; i < RESAMPLE_MAX * RESAMPLE_MAX; i++)
        assert_float_equal(big[i], 77.0, 1e-4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_size_is_a_copy),
        cmocka_unit_test(test_by_hand),
        cmocka_unit_test(test_total_preserved),
        cmocka_unit_test(test_rectangle_at_offset),
        cmocka_unit_test(test_matches_reference_bit_for_bit),
        cmocka_unit_test(test_extreme_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

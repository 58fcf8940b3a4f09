/* fastmath.h - branch-free float kernels shared by rng.c and infer.c so
 * their elementwise loops vectorise at -O2. Internal to libbnn.
 *
 * libm's sqrtf keeps an errno branch for x < 0 that stops gcc's vectoriser
 * (the build does not use -fno-math-errno), so the square root is written
 * out: a bit-trick seed for 1/sqrt(x) and three Newton steps (relative error
 * 3e-2 -> 2e-3 -> 5e-6 -> float rounding).
 */
#ifndef BNN_FASTMATH_H
#define BNN_FASTMATH_H

#include <stdint.h>
#include <string.h>

/* sqrt(x) for a normal, positive float x (callers clamp if they must). */
static inline float fm_sqrt_pos(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits = 0x5f3759dfu - (bits >> 1);
    float y;
    memcpy(&y, &bits, sizeof y);
    float hx = 0.5f * x;
    y = y * (1.5f - hx * y * y);
    y = y * (1.5f - hx * y * y);
    y = y * (1.5f - hx * y * y);
    return x * y;
}

#endif

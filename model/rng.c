/* rng.c - Philox4x32-10 normals and uniforms (layout in rng.h).
 *
 * The generator runs CHUNK counter blocks at a time in structure-of-arrays
 * form so the compiler vectorises the rounds, the log and the sin/cos;
 * Random123's philox4x32 (rng_philox_block) is the reference it is tested
 * against bit for bit. Box-Muller (1958): for u1, u2 ~ U(0,1),
 * sqrt(-2 ln u1) (cos 2 pi u2, sin 2 pi u2) are two independent N(0,1).
 */
#include "rng.h"
#include "fastmath.h"

#include <Random123/philox.h>
#include <string.h>

#define CHUNK 64 /* counter blocks per batch = 256 outputs */

/* Philox4x32 constants (Salmon et al., SC'11): multipliers and Weyl key bumps. */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void rng_philox_block(uint32_t out[4], uint64_t seed, uint32_t stream, uint32_t pass, uint64_t block)
{
    philox4x32_ctr_t ctr = {{(uint32_t)block, (uint32_t)(block >> 32), pass, stream}};
    philox4x32_key_t key = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
    philox4x32_ctr_t r = philox4x32_R(10, ctr, key);
    memcpy(out, r.v, sizeof r.v);
}

/* w[4 i + j] = word j of block first_block + i, i < CHUNK (the unit order).
 * Same arithmetic as Random123's philox4x32round / bumpkey, one lane per block. */
static void philox_chunk(uint32_t w[4 * CHUNK], uint64_t seed, uint32_t stream, uint32_t pass,
                         uint64_t first_block)
{
    const uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    const uint32_t c1_base = (uint32_t)(first_block >> 32), c0_base = (uint32_t)first_block;
    for (int i = 0; i < CHUNK; i++) {
        /* The low word may wrap inside a chunk: carry into the high word. */
        uint32_t c0_32 = c0_base + (uint32_t)i;
        /* State in 64-bit lanes holding 32-bit values (masked after each
         * step): gcc 12 vectorises this better than uint32 lanes widened for
         * the 32x32->64 products (1.68 -> 1.41 ns per normal, -O2 -march=native). */
        uint64_t c0 = c0_32, c1 = c1_base + (c0_32 < c0_base), c2 = pass, c3 = stream, a = k0, b = k1;
        for (int r = 0; r < 10; r++) {
            uint64_t p0 = (c0 & 0xffffffffu) * PHILOX_M0, p1 = (c2 & 0xffffffffu) * PHILOX_M1;
            uint64_t n0 = ((p1 >> 32) ^ c1 ^ a) & 0xffffffffu;
            uint64_t n2 = ((p0 >> 32) ^ c3 ^ b) & 0xffffffffu;
            c1 = p1 & 0xffffffffu;
            c3 = p0 & 0xffffffffu;
            c0 = n0;
            c2 = n2;
            a = (a + PHILOX_W0) & 0xffffffffu;
            b = (b + PHILOX_W1) & 0xffffffffu;
        }
        w[4 * i] = (uint32_t)c0, w[4 * i + 1] = (uint32_t)c1, w[4 * i + 2] = (uint32_t)c2,
              w[4 * i + 3] = (uint32_t)c3;
    }
}

/* 24 high bits, centred in their interval: (0, 1) open, exact in float. */
static inline float u01(uint32_t w)
{
    return ((float)(int32_t)(w >> 8) + 0.5f) * (1.0f / 16777216.0f);
}

/* ln x for normal positive float x: x = 2^e m, m in [sqrt(1/2), sqrt(2)),
 * ln m = 2 atanh(s), s = (m-1)/(m+1), |s| < 0.172, series to s^9 (truncation
 * < 1e-9). ln 2 split hi + lo so e ln 2 is exact to float precision. */
static inline float log_poly(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    int32_t e = (int32_t)(bits >> 23) - 127;
    uint32_t mbits = (bits & 0x007fffffu) | 0x3f800000u;
    float m;
    memcpy(&m, &mbits, sizeof m);
    int big = m > 1.41421356f;
    m = big ? 0.5f * m : m;
    e += big;
    float f = m - 1.0f, s = f / (2.0f + f), s2 = s * s;
    float p = s2 * (1.0f / 3 + s2 * (1.0f / 5 + s2 * (1.0f / 7 + s2 * (1.0f / 9))));
    float fe = (float)e;
    return fe * 0.693145752f + (fe * 1.42860677e-06f + 2.0f * (s + s * p));
}

/* cos, sin of 2 pi u for u in (0,1): quadrant q = round(4u), remainder
 * angle phi in [-pi/4, pi/4], Taylor series to phi^9 / phi^10 (< 3e-8). */
static inline void sincos_2pi(float u, float *c_out, float *s_out)
{
    float t = 4.0f * u;
    int32_t q = (int32_t)(t + 0.5f);
    float phi = (t - (float)q) * 1.57079633f, p2 = phi * phi;
    float s =
        phi * (1.0f + p2 * (-1.0f / 6 + p2 * (1.0f / 120 + p2 * (-1.0f / 5040 + p2 * (1.0f / 362880)))));
    float c =
        1.0f +
        p2 * (-0.5f + p2 * (1.0f / 24 + p2 * (-1.0f / 720 + p2 * (1.0f / 40320 + p2 * (-1.0f / 3628800)))));
    q &= 3;
    float cq = (q & 1) ? s : c, sq = (q & 1) ? c : s;
    *c_out = (q == 1 || q == 2) ? -cq : cq;
    *s_out = (q & 2) ? -sq : sq;
}

/* Box-Muller radii lie in [2^-25, 64]: fm_sqrt_pos (fastmath.h) applies. */

/* 4*CHUNK normals of blocks first_block.. into z (unit order): each pair of
 * words (w[2p], w[2p+1]) gives units 2p, 2p+1. */
static void normals_chunk(float z[4 * CHUNK], uint64_t seed, uint32_t stream, uint32_t pass,
                          uint64_t first_block)
{
    uint32_t w[4 * CHUNK];
    philox_chunk(w, seed, stream, pass, first_block);
    for (int p = 0; p < 2 * CHUNK; p++) {
        float r = fm_sqrt_pos(-2.0f * log_poly(u01(w[2 * p]))), c, s;
        sincos_2pi(u01(w[2 * p + 1]), &c, &s);
        z[2 * p] = r * c;
        z[2 * p + 1] = r * s;
    }
}

static void uniforms_chunk(float u[4 * CHUNK], uint64_t seed, uint32_t stream, uint32_t pass,
                           uint64_t first_block)
{
    uint32_t w[4 * CHUNK];
    philox_chunk(w, seed, stream, pass, first_block);
    for (int i = 0; i < 4 * CHUNK; i++)
        u[i] = u01(w[i]);
}

typedef void chunk_fn(float *, uint64_t, uint32_t, uint32_t, uint64_t);

/* Generates whole chunks and copies the requested window [first_unit, +n). */
static void fill(chunk_fn *gen, float *out, size_t n, uint64_t seed, uint32_t stream, uint32_t pass,
                 uint64_t first_unit)
{
    float buf[4 * CHUNK];
    while (n > 0) {
        uint64_t block = first_unit / 4;
        size_t skip = (size_t)(first_unit % 4), take = 4 * CHUNK - skip;
        if (take > n)
            take = n;
        if (skip == 0 && take == 4 * CHUNK) {
            gen(out, seed, stream, pass, block);
        } else {
            gen(buf, seed, stream, pass, block);
            memcpy(out, buf + skip, take * sizeof(float));
        }
        out += take;
        n -= take;
        first_unit += take;
    }
}

void rng_normals(float *out, size_t n, uint64_t seed, uint32_t stream, uint32_t pass, uint64_t first_unit)
{
    fill(normals_chunk, out, n, seed, stream, pass, first_unit);
}

void rng_uniforms(float *out, size_t n, uint64_t seed, uint32_t stream, uint32_t pass, uint64_t first_unit)
{
    fill(uniforms_chunk, out, n, seed, stream, pass, first_unit);
}

uint64_t rng_u64(uint64_t seed, uint32_t stream, uint32_t pass, uint64_t index)
{
    uint32_t w[4];
    rng_philox_block(w, seed, stream, pass, index / 2);
    int j = (int)(index % 2) * 2;
    return (uint64_t)w[j] | (uint64_t)w[j + 1] << 32;
}

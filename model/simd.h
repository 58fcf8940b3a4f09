/* simd.h - the few vector operations kernels.c is written in, one
 * definition per instruction set, chosen by the compiler's target macros:
 * AVX-512 (F: 16 lanes), AVX2 + FMA (8 lanes), SSE2 (4 lanes, every
 * x86-64) or plain C (1 lane, other architectures). kernels.c is compiled
 * once per code path with that path's target flags (Makefile), so each
 * object gets one of these sets. Internal to libbnn; include only from
 * kernels.c.
 *
 * vf: VL floats, vi: VL 32-bit integers. Masks are integer vectors whose
 * lanes are all ones or all zeros. Every operation is lane-wise and IEEE
 * (no approximate reciprocals), so a lane's result does not depend on the
 * lane count; vf_fma fuses (one rounding) only where the set has FMA, which
 * is the one difference between paths (a float rounding).
 */
#ifndef BNN_SIMD_H
#define BNN_SIMD_H

#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#define VL 16
typedef __m512 vf;
typedef __m512i vi;
#define vf_set1(a) _mm512_set1_ps((a))
#define vi_set1(a) _mm512_set1_epi32((int)(a))
#define vf_load(p) _mm512_loadu_ps((p))
#define vf_store(p, a) _mm512_storeu_ps((p), (a))
#define vi_load(p) _mm512_loadu_si512((p))
#define vf_add(a, b) _mm512_add_ps((a), (b))
#define vf_sub(a, b) _mm512_sub_ps((a), (b))
#define vf_mul(a, b) _mm512_mul_ps((a), (b))
#define vf_div(a, b) _mm512_div_ps((a), (b))
#define vf_fma(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define vf_sqrt(a) _mm512_sqrt_ps((a))
#define vf_max(a, b) _mm512_max_ps((a), (b))
#define vf_min(a, b) _mm512_min_ps((a), (b))
#define vi_add(a, b) _mm512_add_epi32((a), (b))
#define vi_sub(a, b) _mm512_sub_epi32((a), (b))
#define vi_and(a, b) _mm512_and_si512((a), (b))
#define vi_xor(a, b) _mm512_xor_si512((a), (b))
#define vi_xor3(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0x96)
#define vi_srli(a, n) _mm512_srli_epi32((a), (n))
#define vi_slli(a, n) _mm512_slli_epi32((a), (n))
#define vi_srai(a, n) _mm512_srai_epi32((a), (n))
#define vi_to_vf(a) _mm512_cvtepi32_ps((a))
#define vf_to_vi_trunc(a) _mm512_cvttps_epi32((a))
#define vf_bits(a) _mm512_castps_si512((a))
#define vi_bits(a) _mm512_castsi512_ps((a))
/* mask ? a : b, mask lanes all ones or zeros (bitwise select) */
static inline vf vf_select(vi mask, vf a, vf b)
{
    return _mm512_castsi512_ps(
        _mm512_ternarylogic_epi32(mask, _mm512_castps_si512(a), _mm512_castps_si512(b), 0xCA));
}
/* Philox's 32 x 32 -> 64 bit products a * m: high and low words. Even lanes
 * from one vpmuludq, odd lanes (shifted down) from another, merged by masked
 * dword shuffles. */
static inline void vi_mulhilo(vi a, vi m, vi *hi, vi *lo)
{
    vi pe = _mm512_mul_epu32(a, m), po = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    *hi = _mm512_mask_shuffle_epi32(po, 0x5555, pe, _MM_PERM_CDAB);
    *lo = _mm512_mask_shuffle_epi32(pe, 0xAAAA, po, _MM_PERM_CDAB);
}
/* out[4 i + j] = zj lane i: four SoA vectors to unit order (a 4 x 16 transpose). */
static inline void vf_store4_interleaved(float *out, vf z0, vf z1, vf z2, vf z3)
{
    vf t0 = _mm512_unpacklo_ps(z0, z1), t1 = _mm512_unpackhi_ps(z0, z1);
    vf t2 = _mm512_unpacklo_ps(z2, z3), t3 = _mm512_unpackhi_ps(z2, z3);
    /* u_k 128-bit lane g = lanes 4g + k of z0..z3 */
    vf u0 = _mm512_shuffle_ps(t0, t2, 0x44), u1 = _mm512_shuffle_ps(t0, t2, 0xEE);
    vf u2 = _mm512_shuffle_ps(t1, t3, 0x44), u3 = _mm512_shuffle_ps(t1, t3, 0xEE);
    vf p0 = _mm512_shuffle_f32x4(u0, u1, 0x44), p1 = _mm512_shuffle_f32x4(u2, u3, 0x44);
    vf p2 = _mm512_shuffle_f32x4(u0, u1, 0xEE), p3 = _mm512_shuffle_f32x4(u2, u3, 0xEE);
    _mm512_storeu_ps(out, _mm512_shuffle_f32x4(p0, p1, 0x88));
    _mm512_storeu_ps(out + 16, _mm512_shuffle_f32x4(p0, p1, 0xDD));
    _mm512_storeu_ps(out + 32, _mm512_shuffle_f32x4(p2, p3, 0x88));
    _mm512_storeu_ps(out + 48, _mm512_shuffle_f32x4(p2, p3, 0xDD));
}

#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define VL 8
typedef __m256 vf;
typedef __m256i vi;
#define vf_set1(a) _mm256_set1_ps((a))
#define vi_set1(a) _mm256_set1_epi32((int)(a))
#define vf_load(p) _mm256_loadu_ps((p))
#define vf_store(p, a) _mm256_storeu_ps((p), (a))
#define vi_load(p) _mm256_loadu_si256((const __m256i *)(p))
#define vf_add(a, b) _mm256_add_ps((a), (b))
#define vf_sub(a, b) _mm256_sub_ps((a), (b))
#define vf_mul(a, b) _mm256_mul_ps((a), (b))
#define vf_div(a, b) _mm256_div_ps((a), (b))
#define vf_fma(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define vf_sqrt(a) _mm256_sqrt_ps((a))
#define vf_max(a, b) _mm256_max_ps((a), (b))
#define vf_min(a, b) _mm256_min_ps((a), (b))
#define vi_add(a, b) _mm256_add_epi32((a), (b))
#define vi_sub(a, b) _mm256_sub_epi32((a), (b))
#define vi_and(a, b) _mm256_and_si256((a), (b))
#define vi_xor(a, b) _mm256_xor_si256((a), (b))
#define vi_xor3(a, b, c) _mm256_xor_si256(_mm256_xor_si256((a), (b)), (c))
#define vi_srli(a, n) _mm256_srli_epi32((a), (n))
#define vi_slli(a, n) _mm256_slli_epi32((a), (n))
#define vi_srai(a, n) _mm256_srai_epi32((a), (n))
#define vi_to_vf(a) _mm256_cvtepi32_ps((a))
#define vf_to_vi_trunc(a) _mm256_cvttps_epi32((a))
#define vf_bits(a) _mm256_castps_si256((a))
#define vi_bits(a) _mm256_castsi256_ps((a))
#define vf_select(mask, a, b) _mm256_blendv_ps((b), (a), _mm256_castsi256_ps((mask)))
static inline void vi_mulhilo(vi a, vi m, vi *hi, vi *lo)
{
    vi pe = _mm256_mul_epu32(a, m), po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
    *lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
}
static inline void vf_store4_interleaved(float *out, vf z0, vf z1, vf z2, vf z3)
{
    vf t0 = _mm256_unpacklo_ps(z0, z1), t1 = _mm256_unpackhi_ps(z0, z1);
    vf t2 = _mm256_unpacklo_ps(z2, z3), t3 = _mm256_unpackhi_ps(z2, z3);
    vf u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    vf u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    _mm256_storeu_ps(out, _mm256_permute2f128_ps(u0, u1, 0x20));
    _mm256_storeu_ps(out + 8, _mm256_permute2f128_ps(u2, u3, 0x20));
    _mm256_storeu_ps(out + 16, _mm256_permute2f128_ps(u0, u1, 0x31));
    _mm256_storeu_ps(out + 24, _mm256_permute2f128_ps(u2, u3, 0x31));
}

#elif defined(__SSE2__)
#include <emmintrin.h>
#define VL 4
typedef __m128 vf;
typedef __m128i vi;
#define vf_set1(a) _mm_set1_ps((a))
#define vi_set1(a) _mm_set1_epi32((int)(a))
#define vf_load(p) _mm_loadu_ps((p))
#define vf_store(p, a) _mm_storeu_ps((p), (a))
#define vi_load(p) _mm_loadu_si128((const __m128i *)(p))
#define vf_add(a, b) _mm_add_ps((a), (b))
#define vf_sub(a, b) _mm_sub_ps((a), (b))
#define vf_mul(a, b) _mm_mul_ps((a), (b))
#define vf_div(a, b) _mm_div_ps((a), (b))
#define vf_fma(a, b, c) _mm_add_ps(_mm_mul_ps((a), (b)), (c))
#define vf_sqrt(a) _mm_sqrt_ps((a))
#define vf_max(a, b) _mm_max_ps((a), (b))
#define vf_min(a, b) _mm_min_ps((a), (b))
#define vi_add(a, b) _mm_add_epi32((a), (b))
#define vi_sub(a, b) _mm_sub_epi32((a), (b))
#define vi_and(a, b) _mm_and_si128((a), (b))
#define vi_xor(a, b) _mm_xor_si128((a), (b))
#define vi_xor3(a, b, c) _mm_xor_si128(_mm_xor_si128((a), (b)), (c))
#define vi_srli(a, n) _mm_srli_epi32((a), (n))
#define vi_slli(a, n) _mm_slli_epi32((a), (n))
#define vi_srai(a, n) _mm_srai_epi32((a), (n))
#define vi_to_vf(a) _mm_cvtepi32_ps((a))
#define vf_to_vi_trunc(a) _mm_cvttps_epi32((a))
#define vf_bits(a) _mm_castps_si128((a))
#define vi_bits(a) _mm_castsi128_ps((a))
static inline vf vf_select(vi mask, vf a, vf b)
{
    vf m = _mm_castsi128_ps(mask);
    return _mm_or_ps(_mm_and_ps(m, a), _mm_andnot_ps(m, b));
}
/* SSE2 has no dword blend: gather the even and odd products' words with
 * shuffles, then interleave them. */
static inline void vi_mulhilo(vi a, vi m, vi *hi, vi *lo)
{
    vi pe = _mm_mul_epu32(a, m), po = _mm_mul_epu32(_mm_srli_epi64(a, 32), m);
    vi e = _mm_shuffle_epi32(pe, _MM_SHUFFLE(3, 1, 2, 0)), o = _mm_shuffle_epi32(po, _MM_SHUFFLE(3, 1, 2, 0));
    *lo = _mm_unpacklo_epi32(e, o);
    *hi = _mm_unpackhi_epi32(e, o);
}
static inline void vf_store4_interleaved(float *out, vf z0, vf z1, vf z2, vf z3)
{
    _MM_TRANSPOSE4_PS(z0, z1, z2, z3);
    _mm_storeu_ps(out, z0);
    _mm_storeu_ps(out + 4, z1);
    _mm_storeu_ps(out + 8, z2);
    _mm_storeu_ps(out + 12, z3);
}

#else /* plain C: one lane */
#define VL 1
typedef float vf;
typedef uint32_t vi;
#define vf_set1(a) ((a))
#define vi_set1(a) ((a))
#define vf_load(p) (*(p))
#define vf_store(p, a) ((*(p) = (a)))
#define vi_load(p) (*(p))
#define vf_add(a, b) ((a) + (b))
#define vf_sub(a, b) ((a) - (b))
#define vf_mul(a, b) ((a) * (b))
#define vf_div(a, b) ((a) / (b))
#define vf_fma(a, b, c) ((a) * (b) + (c))
#define vf_sqrt(a) __builtin_sqrtf((a))
#define vf_max(a, b) ((a) > (b) ? (a) : (b))
#define vf_min(a, b) ((a) < (b) ? (a) : (b))
#define vi_add(a, b) ((a) + (b))
#define vi_sub(a, b) ((a) - (b))
#define vi_and(a, b) ((a) & (b))
#define vi_xor(a, b) ((a) ^ (b))
#define vi_xor3(a, b, c) ((a) ^ (b) ^ (c))
#define vi_srli(a, n) ((vi)(a) >> (n))
#define vi_slli(a, n) ((vi)(a) << (n))
#define vi_srai(a, n) ((vi)((int32_t)(a) >> (n)))
#define vi_to_vf(a) ((float)(int32_t)(a))
#define vf_to_vi_trunc(a) ((vi)(int32_t)(a))
static inline vi vf_bits(vf a)
{
    vi b;
    memcpy(&b, &a, sizeof b);
    return b;
}
static inline vf vi_bits(vi a)
{
    vf f;
    memcpy(&f, &a, sizeof f);
    return f;
}
#define vf_select(mask, a, b) ((mask) ? (a) : (b))
static inline void vi_mulhilo(vi a, vi m, vi *hi, vi *lo)
{
    uint64_t p = (uint64_t)a * m;
    *hi = (vi)(p >> 32);
    *lo = (vi)p;
}
static inline void vf_store4_interleaved(float *out, vf z0, vf z1, vf z2, vf z3)
{
    out[0] = z0, out[1] = z1, out[2] = z2, out[3] = z3;
}
#endif

#endif

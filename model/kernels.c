/* kernels.c - the kernels of kernels.h, written once in simd.h's vector
 * operations and compiled once per code path: the Makefile builds this file
 * with -DBNN_KERNEL_PATH=baseline|avx2|avx512 and that path's target flags,
 * giving the table bnn_kernels_<path>. Not compiled on its own.
 *
 * Normals: Philox4x32-10 (Salmon et al., SC'11) on VL counter blocks at a
 * time, one block per lane (structure of arrays), then Box-Muller (1958):
 * for u1, u2 ~ U(0,1), sqrt(-2 ln u1) (cos 2 pi u2, sin 2 pi u2) are two
 * independent N(0,1). The words are exactly Random123's philox4x32 (tested
 * against it); layout and addressing in rng.h.
 *
 * Tails: a kernel runs whole vectors, then pads the last n % VL elements into
 * a vector's worth of scratch and runs the same vector code on it, so an
 * element's bits never depend on where it falls.
 */
#include "kernels.h"
#include "simd.h"

#include <string.h>

#ifndef BNN_KERNEL_PATH
#error "kernels.c is compiled once per code path with -DBNN_KERNEL_PATH=<path> (see the Makefile)"
#endif
#define KCAT2(a, b) a##b
#define KCAT(a, b) KCAT2(a, b)
#define KSTR2(a) #a
#define KSTR(a) KSTR2(a)

/* Philox4x32 constants: multipliers and Weyl key bumps. */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u
#define PHILOX_ROUNDS 10

#define CHUNK (4 * VL) /* outputs of one vector of counter blocks */
#ifndef NV_MAX
#define NV_MAX 4
#endif

/* The generator's helpers must inline into fill: called, gcc passes the
 * second vector's Philox state through memory, a store-to-load latency in
 * every round. */
#define HOT static inline __attribute__((always_inline))

struct philox_keys {
    vi k0[PHILOX_ROUNDS], k1[PHILOX_ROUNDS]; /* round r's key, broadcast */
};

static void philox_keys_init(struct philox_keys *k, uint64_t seed)
{
    uint32_t a = (uint32_t)seed, b = (uint32_t)(seed >> 32);
    for (int r = 0; r < PHILOX_ROUNDS; r++, a += PHILOX_W0, b += PHILOX_W1) {
        k->k0[r] = vi_set1(a);
        k->k1[r] = vi_set1(b);
    }
}

/* Counter vector of blocks block .. block + VL - 1 (one per lane). */
HOT void philox_counter(vi c[4], uint32_t pass, uint32_t stream, uint64_t block)
{
    static const uint32_t iota[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    uint32_t lo = (uint32_t)block, hi = (uint32_t)(block >> 32);
    if (lo <= UINT32_MAX - (VL - 1)) {
        c[0] = vi_add(vi_set1(lo), vi_load(iota));
        c[1] = vi_set1(hi);
    } else { /* the low word wraps inside the vector: carry into the high word */
        uint32_t c0[VL], c1[VL];
        for (uint32_t i = 0; i < VL; i++)
            c0[i] = lo + i, c1[i] = hi + (lo + i < lo);
        c[0] = vi_load(c0);
        c[1] = vi_load(c1);
    }
    c[2] = vi_set1(pass);
    c[3] = vi_set1(stream);
}

/* One Philox round on a counter vector: Random123's philox4x32round. */
HOT void philox_round(vi c[4], vi k0, vi k1)
{
    vi hi0, lo0, hi1, lo1;
    vi_mulhilo(c[0], vi_set1(PHILOX_M0), &hi0, &lo0);
    vi_mulhilo(c[2], vi_set1(PHILOX_M1), &hi1, &lo1);
    c[0] = vi_xor3(hi1, c[1], k0);
    c[1] = lo1;
    c[2] = vi_xor3(hi0, c[3], k1);
    c[3] = lo0;
}

/* The words of nv (1, 2 or NV_MAX) vectors of blocks from block: c[v][j]
 * lane i = word j of block + v VL + i. A round is a chain of dependent
 * multiplies and shuffles, so independent vectors' rounds interleave to
 * fill the pipeline (two vectors: 1.5x the throughput of one on Zen 5). */
HOT void philox_vecs(vi c[NV_MAX][4], int nv, const struct philox_keys *k, uint32_t pass, uint32_t stream,
                     uint64_t block)
{
    for (int v = 0; v < NV_MAX; v++)
        if (v < nv)
            philox_counter(c[v], pass, stream, block + (uint64_t)v * VL);
    for (int r = 0; r < PHILOX_ROUNDS; r++) {
        philox_round(c[0], k->k0[r], k->k1[r]);
        if (nv >= 2)
            philox_round(c[1], k->k0[r], k->k1[r]);
#if NV_MAX == 4
        if (nv == 4) {
            philox_round(c[2], k->k0[r], k->k1[r]);
            philox_round(c[3], k->k0[r], k->k1[r]);
        }
#endif
    }
}

/* u(w) = ((w >> 8) + 0.5) / 2^24 rounded to float (x 2^-24 is exact, so
 * the fused and unfused forms agree), capped at the float below 1: in the
 * open interval (0, 1), so ln u is finite and negative. */
HOT vf u01(vi w)
{
    vf u = vf_fma(vi_to_vf(vi_srli(w, 8)), vf_set1(0x1p-24f), vf_set1(0x1p-25f));
    return vf_min(u, vf_set1(0x1.fffffep-1f));
}

/* sqrt(-2 ln u) for u in (0, 1). u = 2^e m with m in [sqrt(1/2), sqrt(2))
 * (e from the bits relative to sqrt(1/2)'s, no compare); ln m = 2 atanh(s),
 * s = (m - 1)/(m + 1), |s| < 0.172, series to s^9 (truncation < 1e-9); ln 2
 * split hi + lo so e ln 2 is exact to float precision. */
HOT vf box_muller_radius(vf u)
{
    vi bits = vf_bits(u);
    vi e = vi_srai(vi_sub(bits, vi_set1(0x3F3504F3u)), 23);
    vf m = vi_bits(vi_sub(bits, vi_slli(e, 23)));
    vf f = vf_sub(m, vf_set1(1.0f)), s = vf_div(f, vf_add(f, vf_set1(2.0f))), s2 = vf_mul(s, s);
    vf t = vf_fma(s2, vf_set1(1.0f / 9), vf_set1(1.0f / 7));
    t = vf_fma(s2, t, vf_set1(1.0f / 5));
    t = vf_fma(s2, t, vf_set1(1.0f / 3));
    vf a = vf_fma(s, vf_mul(s2, t), s); /* atanh(s) */
    vf fe = vi_to_vf(e);
    vf ln = vf_fma(fe, vf_set1(0.693145752f), vf_fma(fe, vf_set1(1.42860677e-06f), vf_add(a, a)));
    return vf_sqrt(vf_max(vf_mul(ln, vf_set1(-2.0f)), vf_set1(0.0f)));
}

/* 4 u(w) (see u01; x 4 is exact), in (0, 4). */
HOT vf u04(vi w)
{
    vf t = vf_fma(vi_to_vf(vi_srli(w, 8)), vf_set1(0x1p-22f), vf_set1(0x1p-23f));
    return vf_min(t, vf_set1(0x1.fffffep+1f));
}

/* cos and sin of 2 pi u from t = 4 u in (0, 4): quadrant q = trunc(t + 1/2)
 * (0..4), d = t - q in [-1/2, 1/2], angle phi = d pi/2 in [-pi/4, pi/4];
 * Taylor series in phi to phi^9 / phi^10 (< 3e-8) with pi/2 folded into the
 * coefficients, so they are polynomials in d. The quadrant swaps sin and cos
 * (q odd) and flips signs through the sign bit. */
HOT void sincos_2pi(vf t, vf *c_out, vf *s_out)
{
    vi q = vf_to_vi_trunc(vf_add(t, vf_set1(0.5f)));
    vf d = vf_sub(t, vi_to_vf(q)), d2 = vf_mul(d, d);
    /* sin(phi) = d (S1 + d2 (S3 + d2 (S5 + d2 (S7 + d2 S9)))), Sk = (pi/2)^k (-1)^(k/2) / k! */
    vf s = vf_fma(d2, vf_set1(1.604411848e-04f), vf_set1(-4.681754135e-03f));
    s = vf_fma(d2, s, vf_set1(7.969262625e-02f));
    s = vf_fma(d2, s, vf_set1(-6.459640975e-01f));
    s = vf_mul(d, vf_fma(d2, s, vf_set1(1.570796327e+00f)));
    /* cos(phi) = C0 + d2 (C2 + ... + d2 C10), Ck = (pi/2)^k (-1)^(k/2) / k! */
    vf c = vf_fma(d2, vf_set1(-2.520204237e-05f), vf_set1(9.192602748e-04f));
    c = vf_fma(d2, c, vf_set1(-2.086348076e-02f));
    c = vf_fma(d2, c, vf_set1(2.536695079e-01f));
    c = vf_fma(d2, c, vf_set1(-1.233700550e+00f));
    c = vf_fma(d2, c, vf_set1(1.0f));
    vi swap = vi_srai(vi_slli(q, 31), 31);                             /* all ones when q is odd */
    vi neg_c = vi_slli(vi_and(vi_add(q, vi_set1(1)), vi_set1(2)), 30); /* q = 1, 2 */
    vi neg_s = vi_slli(vi_and(q, vi_set1(2)), 30);                     /* q = 2, 3 */
    *c_out = vi_bits(vi_xor(vf_bits(vf_select(swap, s, c)), neg_c));
    *s_out = vi_bits(vi_xor(vf_bits(vf_select(swap, c, s)), neg_s));
}

/* The normals of one vector of words (4 VL units from its first block). */
HOT void box_muller_store(float *out, const vi w[4])
{
    vf r01 = box_muller_radius(u01(w[0])), r23 = box_muller_radius(u01(w[2]));
    vf c1, s1, c3, s3;
    sincos_2pi(u04(w[1]), &c1, &s1);
    sincos_2pi(u04(w[3]), &c3, &s3);
    vf_store4_interleaved(out, vf_mul(r01, c1), vf_mul(r01, s1), vf_mul(r23, c3), vf_mul(r23, s3));
}

/* nv CHUNKs of normals of blocks block.. into out, unit order. */
HOT void normals_vec(float *out, int nv, const struct philox_keys *k, uint32_t pass, uint32_t stream,
                     uint64_t block)
{
    vi w[NV_MAX][4];
    philox_vecs(w, nv, k, pass, stream, block);
    for (int v = 0; v < NV_MAX; v++)
        if (v < nv)
            box_muller_store(out + v * CHUNK, w[v]);
}

HOT void uniforms_vec(float *out, int nv, const struct philox_keys *k, uint32_t pass, uint32_t stream,
                      uint64_t block)
{
    vi w[NV_MAX][4];
    philox_vecs(w, nv, k, pass, stream, block);
    for (int v = 0; v < NV_MAX; v++)
        if (v < nv)
            vf_store4_interleaved(out + v * CHUNK, u01(w[v][0]), u01(w[v][1]), u01(w[v][2]), u01(w[v][3]));
}

/* out[i] = mu[i] + sigma[i] * out[i], n a multiple of VL. */
static inline void affine_vec(float *out, const float *mu, const float *sigma, size_t n)
{
    for (size_t i = 0; i < n; i += VL)
        vf_store(out + i, vf_fma(vf_load(sigma + i), vf_load(out + i), vf_load(mu + i)));
}

/* Units [first_unit, first_unit + n): pairs of whole chunks, then a whole
 * chunk, straight into out; a partial one (unaligned start, short end)
 * through buf. With mu (and sigma) the affine map is applied on the way
 * (normals only). */
static void fill(float *out, const float *mu, const float *sigma, size_t n, uint64_t seed, uint32_t stream,
                 uint32_t pass, uint64_t first_unit, int uniform)
{
    struct philox_keys k;
    philox_keys_init(&k, seed);
    float buf[CHUNK];
    while (n > 0) {
        uint64_t block = first_unit / 4;
        size_t skip = (size_t)(first_unit % 4), take = CHUNK - skip;
        int nv = skip != 0 ? 1 : n >= NV_MAX * CHUNK ? NV_MAX : n >= 2 * CHUNK ? 2 : 1;
        take = nv > 1 ? (size_t)nv * CHUNK : take > n ? n : take;
        float *dst = skip == 0 && take >= CHUNK ? out : buf;
        /* nv a constant in each call, so each inlines without branches */
        if (uniform && nv == NV_MAX)
            uniforms_vec(dst, NV_MAX, &k, pass, stream, block);
        else if (uniform && nv == 2)
            uniforms_vec(dst, 2, &k, pass, stream, block);
        else if (uniform)
            uniforms_vec(dst, 1, &k, pass, stream, block);
        else if (nv == NV_MAX)
            normals_vec(dst, NV_MAX, &k, pass, stream, block);
        else if (nv == 2)
            normals_vec(dst, 2, &k, pass, stream, block);
        else
            normals_vec(dst, 1, &k, pass, stream, block);
        if (mu && dst == out) {
            affine_vec(out, mu, sigma, take);
        } else if (mu) {
            float m[CHUNK] = {0}, s[CHUNK] = {0};
            memcpy(m + skip, mu, take * sizeof(float));
            memcpy(s + skip, sigma, take * sizeof(float));
            affine_vec(buf, m, s, CHUNK);
        }
        if (dst == buf)
            memcpy(out, buf + skip, take * sizeof(float));
        out += take;
        n -= take;
        first_unit += take;
        if (mu)
            mu += take, sigma += take;
    }
}

static void k_normals(float *out, size_t n, uint64_t seed, uint32_t stream, uint32_t pass,
                      uint64_t first_unit)
{
    fill(out, NULL, NULL, n, seed, stream, pass, first_unit, 0);
}

static void k_uniforms(float *out, size_t n, uint64_t seed, uint32_t stream, uint32_t pass,
                       uint64_t first_unit)
{
    fill(out, NULL, NULL, n, seed, stream, pass, first_unit, 1);
}

static void k_normals_affine(float *out, const float *mu, const float *sigma, size_t n, uint64_t seed,
                             uint32_t stream, uint32_t pass, uint64_t first_unit)
{
    fill(out, mu, sigma, n, seed, stream, pass, first_unit, 0);
}

/* ---- elementwise ----------------------------------------------------------- */

/* The tail of an elementwise kernel: the last rem < VL elements of src,
 * zero-padded into a vector's worth of scratch. */
#define TAIL(dst, src, rem)                                                                                  \
    float dst[VL] = {0};                                                                                     \
    memcpy(dst, (src), (rem) * sizeof(float))

static inline vf act(vf z, int relu)
{
    return relu ? vf_max(z, vf_set1(0.0f)) : z;
}

static inline void store_z(float *z, float *z2, vf v)
{
    vf_store(z, v);
    if (z2)
        vf_store(z2, vf_mul(v, v));
}

static void k_draw_sd(float *z, float *z2, const float *mean, const float *sd, const float *eps, size_t n,
                      int relu)
{
    size_t i = 0;
    for (; i + VL <= n; i += VL)
        store_z(z + i, z2 ? z2 + i : NULL,
                act(vf_fma(vf_load(sd + i), vf_load(eps + i), vf_load(mean + i)), relu));
    if (i < n) {
        size_t rem = n - i;
        TAIL(m, mean + i, rem);
        TAIL(s, sd + i, rem);
        TAIL(e, eps + i, rem);
        float o[VL], o2[VL];
        store_z(o, o2, act(vf_fma(vf_load(s), vf_load(e), vf_load(m)), relu));
        memcpy(z + i, o, rem * sizeof(float));
        if (z2)
            memcpy(z2 + i, o2, rem * sizeof(float));
    }
}

static inline vf draw_var_vec(const float *mean, const float *b_mean, const float *var, const float *b_var,
                              const float *eps, int relu)
{
    vf sd = vf_sqrt(vf_max(vf_add(vf_load(var), vf_load(b_var)), vf_set1(0.0f)));
    return act(vf_fma(sd, vf_load(eps), vf_add(vf_load(mean), vf_load(b_mean))), relu);
}

static void k_draw_var(float *z, float *z2, const float *mean, const float *b_mean, const float *var,
                       const float *b_var, const float *eps, size_t n, int relu)
{
    size_t i = 0;
    for (; i + VL <= n; i += VL)
        store_z(z + i, z2 ? z2 + i : NULL,
                draw_var_vec(mean + i, b_mean + i, var + i, b_var + i, eps + i, relu));
    if (i < n) {
        size_t rem = n - i;
        TAIL(m, mean + i, rem);
        TAIL(bm, b_mean + i, rem);
        TAIL(v, var + i, rem);
        TAIL(bv, b_var + i, rem);
        TAIL(e, eps + i, rem);
        float o[VL], o2[VL];
        store_z(o, o2, draw_var_vec(m, bm, v, bv, e, relu));
        memcpy(z + i, o, rem * sizeof(float));
        if (z2)
            memcpy(z2 + i, o2, rem * sizeof(float));
    }
}

/* One vector of columns [j, j + VL) of the GEMV over g rows. */
HOT void gemv_cols(float *mean, float *var, const float *x, const size_t *rows, size_t g, const float *w_mean,
                   const float *w_var, size_t n, size_t j)
{
    vf m = vf_load(mean + j), v = vf_load(var + j);
    for (size_t r = 0; r < g; r++) {
        m = vf_fma(vf_set1(x[r]), vf_load(w_mean + rows[r] * n + j), m);
        v = vf_fma(vf_set1(x[r] * x[r]), vf_load(w_var + rows[r] * n + j), v);
    }
    vf_store(mean + j, m);
    vf_store(var + j, v);
}

/* mean += sum_r x[r] w_mean[rows[r], :], var += sum_r x[r]^2 w_var[rows[r], :]
 * (row-major n_in x n weights), rows in the order given. GEMV_ROWS rows at
 * a time, so the accumulators stay in registers while the rows stream in;
 * each element still adds its rows one by one in order. */
#define GEMV_ROWS 4
static void k_gemv_rows(float *mean, float *var, const float *x, const size_t *rows, size_t n_rows,
                        const float *w_mean, const float *w_var, size_t n)
{
    size_t nv = n / VL * VL;
    for (size_t r0 = 0; r0 < n_rows; r0 += GEMV_ROWS) {
        size_t g = n_rows - r0 < GEMV_ROWS ? n_rows - r0 : GEMV_ROWS;
        for (size_t j = 0; j < nv; j += VL)
            gemv_cols(mean, var, x + r0, rows + r0, g, w_mean, w_var, n, j);
        if (nv == n)
            continue;
        /* the tail columns through padded copies (rows of width VL) */
        float tm[GEMV_ROWS * VL] = {0}, tv[GEMV_ROWS * VL] = {0};
        size_t idx[GEMV_ROWS], rem = n - nv;
        for (size_t r = 0; r < g; r++) {
            memcpy(tm + r * VL, w_mean + rows[r0 + r] * n + nv, rem * sizeof(float));
            memcpy(tv + r * VL, w_var + rows[r0 + r] * n + nv, rem * sizeof(float));
            idx[r] = r;
        }
        TAIL(m, mean + nv, rem);
        TAIL(v, var + nv, rem);
        gemv_cols(m, v, x + r0, idx, g, tm, tv, VL, 0);
        memcpy(mean + nv, m, rem * sizeof(float));
        memcpy(var + nv, v, rem * sizeof(float));
    }
}

/* ---- the LRT GEMM ------------------------------------------------------------ */

/* Only the AVX2 and AVX-512 paths have it: on the baseline path (old x86
 * and other architectures) OpenBLAS's own kernels are faster (infer.c
 * falls back to cblas_sgemm when gemm_packed is NULL). */
#if VL >= 8

/* Register tile: MR rows by NV vectors of output, MR * NV accumulators plus
 * NV weight vectors and a broadcast in the vector registers (AVX-512 has 32,
 * AVX2 and SSE 16). Chosen by measuring 100 x 784 x 256 on a Zen 5: AVX-512
 * 6 x 4 (254 GFLOP/s; 12 x 2 gave 241, 8 x 3 226), AVX2 4 x 3 (128; 6 x 2
 * gave 119). */
#if VL == 16
#define GEMM_MR 6
#define GEMM_NV 4
#elif VL == 8
#define GEMM_MR 4
#define GEMM_NV 3
#endif
#define PANEL (GEMM_NV * VL)

/* Output rows [0, mr) by vectors [0, nv) of one panel of width nv VL (mr,
 * nv constants after inlining): every element's multiply-adds in the order
 * i = 0 .. k-1, from zero. The tile loops must unroll (the pragmas) for the
 * accumulators to live in registers. */
HOT void gemm_tile(float *c, size_t ldc, const float *a, size_t lda, const float *w, size_t k, int mr, int nv)
{
    vf acc[GEMM_MR][GEMM_NV];
#pragma GCC unroll 16
    for (int r = 0; r < GEMM_MR; r++) {
#pragma GCC unroll 16
        for (int v = 0; v < GEMM_NV; v++)
            acc[r][v] = vf_set1(0.0f);
    }
    size_t width = (size_t)nv * VL;
    for (size_t i = 0; i < k; i++) {
        vf wv[GEMM_NV];
#pragma GCC unroll 16
        for (int v = 0; v < GEMM_NV; v++)
            if (v < nv)
                wv[v] = vf_load(w + i * width + (size_t)v * VL);
#pragma GCC unroll 16
        for (int r = 0; r < GEMM_MR; r++) {
            if (r >= mr)
                continue;
            vf b = vf_set1(a[(size_t)r * lda + i]);
#pragma GCC unroll 16
            for (int v = 0; v < GEMM_NV; v++)
                if (v < nv)
                    acc[r][v] = vf_fma(b, wv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < GEMM_MR; r++) {
#pragma GCC unroll 16
        for (int v = 0; v < GEMM_NV; v++)
            if (r < mr && v < nv)
                vf_store(c + (size_t)r * ldc + (size_t)v * VL, acc[r][v]);
    }
}

/* gemm_tile with nv made a constant (one copy per width). */
HOT void gemm_tile_nv(float *c, size_t ldc, const float *a, size_t lda, const float *w, size_t k, int mr,
                      int nv)
{
    if (nv == GEMM_NV)
        gemm_tile(c, ldc, a, lda, w, k, mr, GEMM_NV);
    else if (nv == 1)
        gemm_tile(c, ldc, a, lda, w, k, mr, 1);
    else if (GEMM_NV > 2 && nv == 2)
        gemm_tile(c, ldc, a, lda, w, k, mr, 2);
    else if (GEMM_NV > 3 && nv == 3)
        gemm_tile(c, ldc, a, lda, w, k, mr, 3);
}

/* gemm_tile with mr and nv made constants: full tiles, and the rows left
 * at the end of a block (fewer than GEMM_MR). */
static void gemm_tile_any(float *c, size_t ldc, const float *a, size_t lda, const float *w, size_t k, int mr,
                          int nv)
{
    switch (mr) {
    case GEMM_MR:
        gemm_tile_nv(c, ldc, a, lda, w, k, GEMM_MR, nv);
        break;
    case 1:
        gemm_tile_nv(c, ldc, a, lda, w, k, 1, nv);
        break;
    case 2:
        gemm_tile_nv(c, ldc, a, lda, w, k, 2, nv);
        break;
    case 3:
        gemm_tile_nv(c, ldc, a, lda, w, k, 3, nv);
        break;
#if GEMM_MR > 4
    case 4:
        gemm_tile_nv(c, ldc, a, lda, w, k, 4, nv);
        break;
    case 5:
        gemm_tile_nv(c, ldc, a, lda, w, k, 5, nv);
        break;
#endif
    default:
        break;
    }
}

/* Vectors in the panel starting at column p of n. */
static inline int panel_vectors(size_t p, size_t n)
{
    size_t left = (n - p + VL - 1) / VL;
    return left >= GEMM_NV ? GEMM_NV : (int)left;
}

static size_t k_packed_floats(size_t k, size_t n)
{
    return k * ((n + VL - 1) / VL * VL);
}

static void k_pack(float *dst, const float *w, const size_t *rows, size_t k, size_t n)
{
    for (size_t p = 0; p < n; p += PANEL) {
        size_t width = (size_t)panel_vectors(p, n) * VL, cols = n - p < width ? n - p : width;
        for (size_t i = 0; i < k; i++, dst += width) {
            memcpy(dst, w + (rows ? rows[i] : i) * n + p, cols * sizeof(float));
            memset(dst + cols, 0, (width - cols) * sizeof(float));
        }
    }
}

/* Panel by panel, so one panel's weights stay in cache while every row tile
 * of the block streams past them. */
static void k_gemm_packed(float *c, size_t ldc, const float *a, size_t lda, const float *w, size_t m,
                          size_t k, size_t n)
{
    for (size_t p = 0; p < n; p += PANEL) {
        int nv = panel_vectors(p, n);
        const float *wp = w + p * k; /* the panels before are PANEL wide */
        size_t r = 0;
        for (; r + GEMM_MR <= m; r += GEMM_MR)
            gemm_tile_any(c + r * ldc + p, ldc, a + r * lda, lda, wp, k, GEMM_MR, nv);
        if (r < m)
            gemm_tile_any(c + r * ldc + p, ldc, a + r * lda, lda, wp, k, (int)(m - r), nv);
    }
}
#endif /* VL >= 8 */

static void k_sqrt_inplace(float *v, size_t n)
{
    size_t i = 0;
    for (; i + VL <= n; i += VL)
        vf_store(v + i, vf_sqrt(vf_max(vf_load(v + i), vf_set1(0.0f))));
    if (i < n) {
        TAIL(t, v + i, n - i);
        vf_store(t, vf_sqrt(vf_max(vf_load(t), vf_set1(0.0f))));
        memcpy(v + i, t, (n - i) * sizeof(float));
    }
}

static void k_relu_inplace(float *z, size_t n)
{
    size_t i = 0;
    for (; i + VL <= n; i += VL)
        vf_store(z + i, vf_max(vf_load(z + i), vf_set1(0.0f)));
    if (i < n) {
        TAIL(t, z + i, n - i);
        vf_store(t, vf_max(vf_load(t), vf_set1(0.0f)));
        memcpy(z + i, t, (n - i) * sizeof(float));
    }
}

const struct bnn_kernels KCAT(bnn_kernels_, BNN_KERNEL_PATH) = {
    .name = KSTR(BNN_KERNEL_PATH),
    .normals = k_normals,
    .uniforms = k_uniforms,
    .normals_affine = k_normals_affine,
    .draw_sd = k_draw_sd,
    .draw_var = k_draw_var,
    .gemv_rows = k_gemv_rows,
#if VL >= 8
    .packed_floats = k_packed_floats,
    .pack = k_pack,
    .gemm_packed = k_gemm_packed,
#endif
    .sqrt_inplace = k_sqrt_inplace,
    .relu_inplace = k_relu_inplace,
};

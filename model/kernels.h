/* kernels.h - libbnn's own compute kernels as a table of functions, one
 * table per code path (cpu.h). kernels.c is compiled once per path with that
 * path's target flags (Makefile) and defines bnn_kernels_<path>; cpu.c picks
 * the table at run time. Internal to libbnn: rng.c and infer.c call the
 * kernels through bnn_kernels().
 *
 * Every kernel works lane by lane, so unit j's result depends only on unit
 * j's inputs and address, never on n, alignment or where j falls in a
 * vector; within one path results are bit-exact. Across paths they differ
 * only where FMA fuses a multiply-add (a float rounding).
 * Pointers of one call never alias unless a comment says so.
 */
#ifndef BNN_KERNELS_H
#define BNN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

struct bnn_kernels {
    const char *name; /* cpu.h's path name */
    /* rng.h's rng_normals and rng_uniforms (layout and addressing there). */
    void (*normals)(float *out, size_t n, uint64_t seed, uint32_t stream, uint32_t pass, uint64_t first_unit);
    void (*uniforms)(float *out, size_t n, uint64_t seed, uint32_t stream, uint32_t pass,
                     uint64_t first_unit);
    /* out[i] = mu[i] + sigma[i] * normal(first_unit + i): a sampled weight
     * or bias (weight-sampling mode), without a separate pass. */
    void (*normals_affine)(float *out, const float *mu, const float *sigma, size_t n, uint64_t seed,
                           uint32_t stream, uint32_t pass, uint64_t first_unit);
    /* One LRT pass (row) of n units, eps its normals:
     *   draw_sd:  z = act(mean + sd * eps)                      (layer 0)
     *   draw_var: z = act(mean + b_mean + sqrt(var + b_var) * eps)
     * act = ReLU when relu, else identity; z2 = z * z when z2 is not NULL
     * (the next layer's squared input). The bias is added here rather than
     * copied into the GEMM's output first. */
    void (*draw_sd)(float *z, float *z2, const float *mean, const float *sd, const float *eps, size_t n,
                    int relu);
    void (*draw_var)(float *z, float *z2, const float *mean, const float *b_mean, const float *var,
                     const float *b_var, const float *eps, size_t n, int relu);
    /* A GEMV pair over selected rows of row-major (n_in, n) weights:
     * mean += sum_r x[r] w_mean[rows[r], :], var += sum_r x[r]^2 w_var[rows[r], :],
     * each element adding the rows one by one in the order given. */
    void (*gemv_rows)(float *mean, float *var, const float *x, const size_t *rows, size_t n_rows,
                      const float *w_mean, const float *w_var, size_t n);
    /* The LRT layers' GEMMs on weights packed for this path (AVX2 and
     * AVX-512 only; NULL on the baseline path, which uses OpenBLAS):
     *   pack:        dst = rows `rows[i]` (or i when rows is NULL), i < k, of
     *                the row-major (.., n) matrix w, in the layout below;
     *                packed_floats(k, n) floats.
     *   gemm_packed: c (m, n; row stride ldc) = a (m, k; row stride lda) . w,
     *                w packed by pack. Writes the n columns rounded up to
     *                whole vectors (ldc >= that, a multiple of 16 is enough).
     * Layout: the columns in panels of GEMM_NV vectors (the last one
     * narrower), each panel k rows of its width, so a tile of output reads
     * its weights as one stream. Every element of c is the sum over
     * i = 0 .. k-1, in that order, of a[r, i] w[i, j] by multiply-adds from
     * zero: its bits do not depend on m, on r, or on where it falls in a
     * tile, so a pass's result never depends on the block it ran in. */
    size_t (*packed_floats)(size_t k, size_t n);
    void (*pack)(float *dst, const float *w, const size_t *rows, size_t k, size_t n);
    void (*gemm_packed)(float *c, size_t ldc, const float *a, size_t lda, const float *w, size_t m, size_t k,
                        size_t n);
    /* v = sqrt(max(v, 0)) in place (variances to standard deviations). */
    void (*sqrt_inplace)(float *v, size_t n);
    /* z = max(z, 0) in place (NaN -> 0). */
    void (*relu_inplace)(float *z, size_t n);
};

extern const struct bnn_kernels bnn_kernels_baseline;
#if defined(__x86_64__)
extern const struct bnn_kernels bnn_kernels_avx2;
extern const struct bnn_kernels bnn_kernels_avx512;
#endif

/* The table of the path in use (cpu.c); selects it on the first call. */
const struct bnn_kernels *bnn_kernels(void);

#endif

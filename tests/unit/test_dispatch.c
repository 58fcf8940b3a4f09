/* test_dispatch.c - run-time CPU dispatch of libbnn's kernels (cpu.h,
 * kernels.h) and the fast paths they feed.
 *  1. Paths: names, parsing, what this machine supports, forcing, refusing
 *     an unsupported path, BNN_CPU_PATH as a cap and its bad values.
 *  2. Each path the machine supports, forced in turn, against the baseline
 *     path: Philox words bit for bit (uniforms), every kernel of the table
 *     within 1e-5 relative (|a - b| <= 1e-5 max(|b|, 1): the values are of
 *     order one, and near zero an absolute 1e-5 is the float rounding of
 *     the order-one terms that cancelled), over lengths and offsets that
 *     exercise the vector bodies, the tails and the counter carry.
 *  3. Whole predictions (logits and probabilities, both modes, the shipped
 *     model when present) per path against the baseline, and bit-exact
 *     replay on one path, also after switching paths in between; lrt on
 *     avx2 and avx512 bit for bit the same; a pass's bits independent of
 *     its block with the shipped model's GEMM shapes.
 *  4. bnn_summarize's quantiles by selection equal those of a full sort.
 *  5. The packed LRT GEMM of each path that has one: against a double
 *     reference over shapes with partial panels and row tiles, each row's
 *     bits the same whatever the rows around it, packing selected rows.
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
#include <unistd.h>

#include "bnn.h"
#include "cpu.h"
#include "infer.h"
#include "kernels.h"
#include "rng.h"
#include "stats.h"
#include "weights.h"

void openblas_set_num_threads(int n);

#define REL_TOL 1e-5

static void force(enum bnn_cpu_path p)
{
    char err[BNN_ERR_LEN];
    if (bnn_cpu_path_force(p, err) != BNN_OK)
        fail_msg("forcing %s: %s", bnn_cpu_path_label(p), err);
    assert_string_equal(bnn_cpu_path_name(), bnn_cpu_path_label(p));
    assert_int_equal(bnn_cpu_path(), p);
}

/* Largest |a - b| / max(|b|, 1) over n floats. */
static double worst_rel(const float *a, const float *b, size_t n)
{
    double w = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i]))
            return INFINITY;
        double d = fabs((double)a[i] - b[i]) / fmax(fabs((double)b[i]), 1.0);
        w = d > w ? d : w;
    }
    return w;
}

/* ---- 1. paths ------------------------------------------------------------- */

static void test_paths(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    enum bnn_cpu_path p, best = bnn_cpu_path_best();
    printf("best path here: %s\n", bnn_cpu_path_label(best));
    for (int i = 0; i < BNN_CPU_N_PATHS; i++) {
        assert_int_equal(bnn_cpu_path_parse(bnn_cpu_path_label((enum bnn_cpu_path)i), &p), 0);
        assert_int_equal(p, i);
        assert_int_equal(bnn_cpu_path_supported((enum bnn_cpu_path)i), i <= (int)best);
    }
    assert_true(bnn_cpu_path_supported(BNN_CPU_BASELINE));
    assert_int_equal(bnn_cpu_path_parse("AVX2", &p), -1);
    assert_int_equal(bnn_cpu_path_parse("", &p), -1);
    assert_string_equal(bnn_cpu_path_label(BNN_CPU_N_PATHS), "unknown");
    assert_string_equal(bnn_cpu_path_label((enum bnn_cpu_path) - 1), "unknown");
    /* out of range, and above what the machine has: refused, nothing changes */
    force(BNN_CPU_BASELINE);
    assert_int_equal(bnn_cpu_path_force(BNN_CPU_N_PATHS, err), BNN_E_INVALID);
    assert_non_null(strstr(err, "not supported"));
    if (best < BNN_CPU_AVX512) {
        assert_int_equal(bnn_cpu_path_force(BNN_CPU_AVX512, err), BNN_E_INVALID);
        assert_non_null(strstr(err, "avx512"));
    }
    assert_string_equal(bnn_cpu_path_name(), "baseline");
    for (int i = 0; i <= (int)best; i++)
        force((enum bnn_cpu_path)i);
}

static void test_environment_cap(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    enum bnn_cpu_path best = bnn_cpu_path_best();
    static const struct {
        const char *value;
        int rc;
        enum bnn_cpu_path want; /* before capping by best */
    } cases[] = {
        {"baseline", BNN_OK, BNN_CPU_BASELINE},  {"avx2", BNN_OK, BNN_CPU_AVX2},
        {"avx512", BNN_OK, BNN_CPU_AVX512},      {"", BNN_OK, BNN_CPU_AVX512},
        {"sse9", BNN_E_INVALID, BNN_CPU_AVX512}, {"avx512 ", BNN_E_INVALID, BNN_CPU_AVX512},
    };
    const char *saved = getenv("BNN_CPU_PATH");
    char *keep = saved ? strdup(saved) : NULL;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("BNN_CPU_PATH", cases[i].value, 1);
        force(BNN_CPU_BASELINE);
        int rc = bnn_cpu_init(err);
        enum bnn_cpu_path want = cases[i].want < best ? cases[i].want : best;
        if (rc != cases[i].rc || bnn_cpu_path() != want)
            fail_msg("BNN_CPU_PATH='%s': expected rc %d path %s, got rc %d path %s", cases[i].value,
                     cases[i].rc, bnn_cpu_path_label(want), rc, bnn_cpu_path_name());
        if (rc != BNN_OK) {
            char quoted[32];
            snprintf(quoted, sizeof quoted, "'%s'", cases[i].value);
            assert_non_null(strstr(err, "BNN_CPU_PATH"));
            assert_non_null(strstr(err, quoted));
        }
    }
    unsetenv("BNN_CPU_PATH");
    assert_int_equal(bnn_cpu_init(err), BNN_OK);
    assert_int_equal(bnn_cpu_path(), best);
    if (keep)
        setenv("BNN_CPU_PATH", keep, 1);
    free(keep);
}

/* ---- 2. kernels against the baseline ---------------------------------------- */

/* Random-address windows: (n, first_unit) covering empty, one, a partial
 * vector, whole chunks, unaligned starts and the 32-bit counter carry. */
static const struct {
    size_t n;
    uint64_t first;
} windows[] = {{0, 0},
               {1, 0},
               {3, 5},
               {10, 0},
               {64, 0},
               {100, 3},
               {256, 0},
               {257, 1},
               {784, 0},
               {1000, 6},
               {4096, 12},
               {333, 4 * 0xfffffff0ull},
               {777, 0x3ffffffffull},
               {50, UINT64_MAX - 60}};
#define N_WINDOWS (sizeof windows / sizeof windows[0])

static void test_generators_agree(void **state)
{
    (void)state;
    enum bnn_cpu_path best = bnn_cpu_path_best();
    float *ref = malloc(4096 * sizeof(float)), *got = malloc(4096 * sizeof(float));
    float *mu = malloc(4096 * sizeof(float)), *sigma = malloc(4096 * sizeof(float));
    for (size_t i = 0; i < 4096; i++)
        mu[i] = (float)sin((double)i), sigma[i] = 0.01f + (float)(i % 97) / 50.0f;
    for (int p = 1; p <= (int)best; p++) {
        double worst_n = 0.0, worst_a = 0.0;
        for (size_t w = 0; w < N_WINDOWS; w++) {
            size_t n = windows[w].n;
            uint64_t f = windows[w].first, seed = 0x9e3779b97f4a7c15ull * (w + 1);
            uint32_t stream = (uint32_t)w * 7, pass = (uint32_t)w * 1001;
            force(BNN_CPU_BASELINE);
            const struct bnn_kernels *kb = bnn_kernels();
            force((enum bnn_cpu_path)p);
            const struct bnn_kernels *kp = bnn_kernels();
            /* the Philox words, exactly (u is a bijection of the top 24 bits) */
            kb->uniforms(ref, n, seed, stream, pass, f);
            kp->uniforms(got, n, seed, stream, pass, f);
            if (n && memcmp(ref, got, n * sizeof(float)) != 0)
                fail_msg("%s uniforms differ from baseline at window %zu", bnn_cpu_path_label(p), w);
            kb->normals(ref, n, seed, stream, pass, f);
            kp->normals(got, n, seed, stream, pass, f);
            worst_n = fmax(worst_n, worst_rel(got, ref, n));
            kb->normals_affine(ref, mu, sigma, n, seed, stream, pass, f);
            kp->normals_affine(got, mu, sigma, n, seed, stream, pass, f);
            worst_a = fmax(worst_a, worst_rel(got, ref, n));
        }
        printf("%s vs baseline: normals %.2g, affine draws %.2g (relative)\n", bnn_cpu_path_label(p), worst_n,
               worst_a);
        assert_true(worst_n <= REL_TOL);
        assert_true(worst_a <= REL_TOL);
    }
    free(ref), free(got), free(mu), free(sigma);
}

/* Fills a buffer with values of order one, some negative. */
static void fill_values(float *x, size_t n, uint32_t stream, float lo, float span)
{
    rng_uniforms(x, n, 77, stream, 0, 0);
    for (size_t i = 0; i < n; i++)
        x[i] = lo + span * x[i];
}

enum { MAXN = 300 };
struct elementwise_inputs {
    float mean[MAXN], b_mean[MAXN], var[MAXN], b_var[MAXN], eps[MAXN], sd[MAXN];
};

/* Runs every elementwise kernel of k on n elements into out (7 n floats). */
static void run_elementwise(const struct bnn_kernels *k, const struct elementwise_inputs *in, size_t n,
                            float *out)
{
    float *z = out, *z2 = out + n, *zl = out + 2 * n, *m = out + 3 * n, *v = out + 4 * n, *s = out + 5 * n,
          *r = out + 6 * n;
    k->draw_sd(z, z2, in->mean, in->sd, in->eps, n, 1);
    k->draw_var(zl, NULL, in->mean, in->b_mean, in->var, in->b_var, in->eps, n, 0);
    /* a GEMV over rows 4, 0, 2, 1, 3 of a (5, n) matrix: two groups of rows and a remainder */
    static float w_mean[5 * MAXN], w_var[5 * MAXN];
    static const size_t rows[5] = {4, 0, 2, 1, 3};
    static const float x[5] = {0.7f, -1.3f, 0.25f, 2.0f, -0.5f};
    for (size_t q = 0; q < 5; q++)
        for (size_t i = 0; i < n; i++)
            w_mean[q * n + i] = in->eps[(i + 37 * q) % MAXN], w_var[q * n + i] = in->var[(i + 11 * q) % MAXN];
    memcpy(m, in->mean, n * sizeof(float));
    memcpy(v, in->b_var, n * sizeof(float));
    k->gemv_rows(m, v, x, rows, 5, w_mean, w_var, n);
    memcpy(s, in->var, n * sizeof(float));
    k->sqrt_inplace(s, n);
    memcpy(r, in->mean, n * sizeof(float));
    k->relu_inplace(r, n);
}

static void test_elementwise_agree(void **state)
{
    (void)state;
    enum bnn_cpu_path best = bnn_cpu_path_best();
    static struct elementwise_inputs in;
    fill_values(in.mean, MAXN, 1, -2.0f, 4.0f);
    fill_values(in.b_mean, MAXN, 2, -0.5f, 1.0f);
    fill_values(in.var, MAXN, 3, 0.0f, 3.0f);
    fill_values(in.b_var, MAXN, 4, 0.01f, 0.1f);
    fill_values(in.sd, MAXN, 5, 0.0f, 2.0f);
    rng_normals(in.eps, MAXN, 77, 6, 0, 0);
    in.var[7] = 0.0f, in.b_var[7] = 0.0f; /* sqrt(0) */
    in.mean[9] = NAN;                     /* ReLU turns NaN into 0 */
    static const size_t lengths[] = {0, 1, 7, 15, 16, 17, 33, 64, 100, 255, 256, 299, MAXN};
    static float ref[7 * MAXN], got[7 * MAXN];
    force(BNN_CPU_BASELINE);
    const struct bnn_kernels *kb = bnn_kernels();
    for (int p = 0; p <= (int)best; p++) {
        force((enum bnn_cpu_path)p);
        double worst = 0.0;
        for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++) {
            size_t n = lengths[l];
            run_elementwise(kb, &in, n, ref);
            run_elementwise(bnn_kernels(), &in, n, got);
            if (n > 9) { /* mean[9] is NaN: ReLU outputs 0, the others carry it, on every path */
                for (size_t j = 0; j < 7; j++) {
                    float g = got[j * n + 9], r = ref[j * n + 9];
                    if (j == 0 || j == 1 || j == 6)
                        assert_true(g == 0.0f && r == 0.0f);
                    else if (j == 2 || j == 3)
                        assert_true(isnan(g) && isnan(r));
                    if (j != 4 && j != 5) /* the outputs that read mean[9] */
                        got[j * n + 9] = ref[j * n + 9] = 0.0f;
                }
            }
            worst = fmax(worst, worst_rel(got, ref, 7 * n));
            /* an element's result does not depend on n (vector body vs tail) */
            if (n == MAXN)
                for (size_t m = 1; m < n; m += 37) {
                    static float part[7 * MAXN];
                    run_elementwise(bnn_kernels(), &in, m, part);
                    for (size_t j = 0; j < 7; j++)
                        for (size_t i = 0; i < m; i++)
                            if (i != 9 && memcmp(&part[j * m + i], &got[j * n + i], sizeof(float)) != 0)
                                fail_msg("%s: output %zu element %zu differs between n = %zu and n = %zu",
                                         bnn_cpu_path_name(), j, i, m, n);
                }
        }
        printf("%s vs baseline: elementwise kernels %.2g (relative)\n", bnn_cpu_path_name(), worst);
        assert_true(worst <= REL_TOL);
    }
}

/* ---- 3. whole predictions ------------------------------------------------- */

static struct bnn_model *model_for_test(void)
{
    char err[BNN_ERR_LEN];
    const char *path = getenv("BNN_WEIGHTS") ? getenv("BNN_WEIGHTS") : "model/weights/mnist-bnn.safetensors";
    struct bnn_model *m = NULL;
    if (access(path, R_OK) == 0) {
        assert_int_equal(bnn_weights_load(&m, path, err), BNN_OK);
        return m;
    }
    printf("%s absent: a random model of the shipped shape\n", path);
    const size_t dims[] = {784, 784, 256, 256, 10};
    m = bnn_model_new(dims, 4, err);
    assert_non_null(m);
    for (size_t l = 0; l < m->n_layers; l++) {
        struct bnn_layer *L = &m->layers[l];
        size_t nw = L->n_in * L->n_out;
        rng_normals(L->w_mu, nw, 3, 500 + (uint32_t)l, 0, 0);
        rng_uniforms(L->w_sigma, nw, 3, 600 + (uint32_t)l, 0, 0);
        for (size_t i = 0; i < nw; i++)
            L->w_mu[i] *= 0.05f, L->w_sigma[i] = 0.01f + 0.04f * L->w_sigma[i];
        for (size_t j = 0; j < L->n_out; j++)
            L->b_mu[j] = 0.01f * (float)j, L->b_sigma[j] = 0.05f;
    }
    bnn_model_update_var(m);
    return m;
}

static void digit_like_image(float *x)
{
    for (size_t i = 0; i < 784; i++) /* a thick slanted stroke with soft edges */
    {
        double r = (double)(i / 28), c = (double)(i % 28), d = fabs(c - 8.0 - 0.45 * r);
        x[i] = r > 4 && r < 24 ? (float)fmax(0.0, 1.0 - 0.4 * fmax(0.0, d - 1.5)) : 0.0f;
    }
}

static void test_predictions_agree_and_replay(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    struct bnn_model *m = model_for_test();
    struct bnn_workspace *ws = bnn_workspace_new(m);
    float x[784];
    digit_like_image(x);
    enum bnn_cpu_path best = bnn_cpu_path_best();
    const size_t k = 10, T[2] = {BNN_BLOCK + 30, 6};
    float *ref = malloc(T[0] * k * sizeof(float)), *got = malloc(T[0] * k * sizeof(float)),
          *again = malloc(T[0] * k * sizeof(float));
    for (int mode = 0; mode < 2; mode++)
        for (int probs = 0; probs < 2; probs++) {
            enum bnn_mode md = (enum bnn_mode)mode;
            size_t n = T[mode] * k;
            int (*run)(float *, struct bnn_workspace *, const struct bnn_model *, const float *, size_t,
                       uint64_t, enum bnn_mode, char *) = probs ? bnn_sample_probs : bnn_sample_logits;
            force(BNN_CPU_BASELINE);
            assert_int_equal(run(ref, ws, m, x, T[mode], 2024, md, err), BNN_OK);
            for (int p = 0; p <= (int)best; p++) {
                force((enum bnn_cpu_path)p);
                assert_int_equal(run(got, ws, m, x, T[mode], 2024, md, err), BNN_OK);
                double w = worst_rel(got, ref, n);
                printf("%s %s %s: vs baseline %.2g (relative)\n", bnn_cpu_path_label(p), bnn_mode_name(md),
                       probs ? "probabilities" : "logits", w);
                assert_true(w <= REL_TOL);
                /* replay on the same path is bit-exact, also after another path ran */
                force(p == 0 ? best : BNN_CPU_BASELINE);
                assert_int_equal(run(again, ws, m, x, T[mode], 2024, md, err), BNN_OK);
                force((enum bnn_cpu_path)p);
                assert_int_equal(run(again, ws, m, x, T[mode], 2024, md, err), BNN_OK);
                if (memcmp(again, got, n * sizeof(float)) != 0)
                    fail_msg("%s %s: replay differs", bnn_cpu_path_label(p), bnn_mode_name(md));
            }
        }
    /* lrt on avx2 and avx512 runs the same fused operations in the same
     * order (no OpenBLAS in it): the same bits */
    if (best >= BNN_CPU_AVX512) {
        force(BNN_CPU_AVX2);
        assert_int_equal(bnn_sample_logits(got, ws, m, x, T[0], 7, BNN_MODE_LRT, err), BNN_OK);
        force(BNN_CPU_AVX512);
        assert_int_equal(bnn_sample_logits(again, ws, m, x, T[0], 7, BNN_MODE_LRT, err), BNN_OK);
        assert_memory_equal(got, again, T[0] * k * sizeof(float));
    }
    free(ref), free(got), free(again);
    bnn_workspace_free(ws);
    bnn_model_free(m);
}

/* A pass's bits do not depend on the block it falls in, with the shipped
 * model's GEMM shapes (the GEMMs' row padding, infer.c), on every path:
 * T rows against the first T of 2 BNN_BLOCK + 7 (blocks 120, 120, 7), for
 * T across the padding boundaries. Run it with OPENBLAS_CORETYPE=Haswell,
 * SkylakeX, ... to check another OpenBLAS kernel. */
static void test_block_split_shipped_shapes(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    struct bnn_model *m = model_for_test();
    struct bnn_workspace *ws = bnn_workspace_new(m);
    float x[784];
    digit_like_image(x);
    const size_t k = 10, R = 2 * BNN_BLOCK + 7;
    static const size_t Ts[] = {1,  2,  4,  5,   11,  12,  13,        15,
                                16, 17, 50, 100, 108, 119, BNN_BLOCK, BNN_BLOCK + 1};
    float *ref = malloc(R * k * sizeof(float)), *got = malloc(R * k * sizeof(float));
    for (int p = 0; p <= (int)bnn_cpu_path_best(); p++) {
        force((enum bnn_cpu_path)p);
        assert_int_equal(bnn_sample_logits(ref, ws, m, x, R, 31, BNN_MODE_LRT, err), BNN_OK);
        for (size_t i = 0; i < sizeof Ts / sizeof Ts[0]; i++) {
            assert_int_equal(bnn_sample_logits(got, ws, m, x, Ts[i], 31, BNN_MODE_LRT, err), BNN_OK);
            if (memcmp(got, ref, Ts[i] * k * sizeof(float)) != 0)
                fail_msg("%s: T = %zu and T = %zu differ in their first %zu rows", bnn_cpu_path_name(), Ts[i],
                         R, Ts[i]);
        }
        /* and a shorter last block: T = R - 3 (blocks 120, 120, 4) */
        assert_int_equal(bnn_sample_logits(got, ws, m, x, R - 3, 31, BNN_MODE_LRT, err), BNN_OK);
        assert_memory_equal(got, ref, (R - 3) * k * sizeof(float));
    }
    free(ref), free(got);
    bnn_workspace_free(ws);
    bnn_model_free(m);
}

/* ---- 4. quantiles by selection --------------------------------------------- */

static void test_summary_quantiles_by_selection(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 2, 3, 4, 5, 10, 39, 100, 1000};
    static const double coverages[] = {0.5, 0.8, 0.9, 0.95, 0.99, 0.999};
    const size_t k = 3;
    float *probs = malloc(1000 * k * sizeof(float));
    double *scratch = malloc(1000 * sizeof(double)), *col = malloc(1000 * sizeof(double));
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        rng_uniforms(probs, n * k, 11, 3, (uint32_t)n, 0);
        for (size_t i = 0; i < n * k; i++) /* ties: class 1 on a coarse grid, class 2 constant */
            probs[i] = i % k == 1 ? floorf(probs[i] * 8.0f) / 8.0f : i % k == 2 ? 0.25f : probs[i];
        for (size_t c = 0; c < sizeof coverages / sizeof coverages[0]; c++) {
            struct bnn_prediction pred;
            bnn_summarize(&pred, probs, n, k, coverages[c], scratch);
            for (size_t j = 0; j < k; j++) {
                for (size_t t = 0; t < n; t++)
                    col[t] = probs[t * k + j];
                double lo = stats_quantile(col, n, (1.0 - coverages[c]) / 2.0);
                double hi = stats_quantile_sorted(col, n, (1.0 + coverages[c]) / 2.0);
                if (pred.classes[j].lower != lo || pred.classes[j].upper != hi)
                    fail_msg("n %zu coverage %g class %zu: [%.17g, %.17g], sorted gives [%.17g, %.17g]", n,
                             coverages[c], j, pred.classes[j].lower, pred.classes[j].upper, lo, hi);
            }
        }
    }
    free(probs), free(scratch), free(col);
}

/* ---- 5. the packed GEMM ----------------------------------------------------- */

/* c (m, n) by gemm_packed on path kernels kt, row stride ldc. */
static void packed_product(const struct bnn_kernels *kt, float *c, size_t ldc, const float *a, const float *w,
                           size_t m, size_t k, size_t n)
{
    float *wp = malloc(kt->packed_floats(k, n) * sizeof(float));
    kt->pack(wp, w, NULL, k, n);
    kt->gemm_packed(c, ldc, a, k, wp, m, k, n);
    free(wp);
}

static void gemm_shape(const struct bnn_kernels *kt, size_t m, size_t k, size_t n)
{
    size_t ldc = (n + 15) / 16 * 16;
    float *a = malloc(m * k * sizeof(float)), *w = malloc(k * n * sizeof(float));
    float *c = malloc(m * ldc * sizeof(float)), *row = malloc(ldc * sizeof(float));
    rng_normals(a, m * k, 5, 1, (uint32_t)(m * 1000 + k), 0);
    rng_normals(w, k * n, 5, 2, (uint32_t)(k * 1000 + n), 0);
    packed_product(kt, c, ldc, a, w, m, k, n);
    for (size_t r = 0; r < m; r++) {
        for (size_t j = 0; j < n; j++) {
            double want = 0.0, scale = 0.0;
            for (size_t i = 0; i < k; i++)
                want += (double)a[r * k + i] * w[i * n + j],
                    scale += fabs((double)a[r * k + i] * w[i * n + j]);
            if (fabs(c[r * ldc + j] - want) > 1e-6 * (scale + 1.0))
                fail_msg("%s: %zux%zux%zu c[%zu][%zu] = %.9g, want %.9g", kt->name, m, k, n, r, j,
                         c[r * ldc + j], want);
        }
        packed_product(kt, row, ldc, a + r * k, w, 1, k, n); /* the row alone */
        if (memcmp(row, c + r * ldc, n * sizeof(float)) != 0)
            fail_msg("%s: %zux%zux%zu row %zu differs computed alone", kt->name, m, k, n, r);
    }
    free(a), free(w), free(c), free(row);
}

static void test_gemm_packed(void **state)
{
    (void)state;
    static const size_t ms[] = {1, 2, 3, 5, 6, 7, 13, 100}, ks[] = {1, 3, 37, 256},
                        ns[] = {1, 10, 16, 33, 70, 256};
    int tested = 0;
    for (int p = 0; p <= (int)bnn_cpu_path_best(); p++) {
        force((enum bnn_cpu_path)p);
        const struct bnn_kernels *kt = bnn_kernels();
        if (!kt->gemm_packed)
            continue;
        tested++;
        for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
            for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++)
                for (size_t l = 0; l < sizeof ns / sizeof ns[0]; l++)
                    gemm_shape(kt, ms[i], ks[j], ns[l]);
        /* packing selected rows = packing the matrix of those rows */
        const size_t k = 9, n = 40, rows[] = {0, 2, 3, 7, 8};
        float w[9 * 40], sel[5 * 40];
        rng_normals(w, k * n, 6, 1, 0, 0);
        for (size_t r = 0; r < 5; r++)
            memcpy(sel + r * n, w + rows[r] * n, n * sizeof(float));
        size_t np = kt->packed_floats(5, n);
        float *p1 = malloc(np * sizeof(float)), *p2 = malloc(np * sizeof(float));
        kt->pack(p1, w, rows, 5, n);
        kt->pack(p2, sel, NULL, 5, n);
        assert_memory_equal(p1, p2, np * sizeof(float));
        free(p1), free(p2);
    }
    if (bnn_cpu_path_best() >= BNN_CPU_AVX2)
        assert_true(tested > 0);
    force(bnn_cpu_path_best());
}

int main(void)
{
    openblas_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_environment_cap),
        cmocka_unit_test(test_generators_agree),
        cmocka_unit_test(test_elementwise_agree),
        cmocka_unit_test(test_predictions_agree_and_replay),
        cmocka_unit_test(test_block_split_shipped_shapes),
        cmocka_unit_test(test_summary_quantiles_by_selection),
        cmocka_unit_test(test_gemm_packed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

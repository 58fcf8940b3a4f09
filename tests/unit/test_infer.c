/* test_infer.c - Monte-Carlo prediction.
 *  1. LRT and weight sampling give the same distribution: two-sample KS per
 *     class on real MNIST test images, small random model and the shipped
 *     model; each with a negative control (sigmas x1.3 must be rejected)
 *     showing that the test has power. Without MNIST or the shipped weights
 *     these tests skip, saying why ("skipped: ..." before cmocka's skip(),
 *     the reason tests/run.sh reports; tests/allowed-skips.txt lists none).
 *  2. Closed forms: a one-layer net's logits are exactly Gaussian with known
 *     mean and variance; a two-layer net whose ReLU never clips has known
 *     output moments. Both modes.
 *  3. Determinism: same seed same bits, other seeds differ, 1 thread vs 4
 *     concurrent threads, T split differently across blocks; the block entry
 *     point: any split of the passes, in any order, on two workspaces or two
 *     threads, gives the bits of one call (both modes, logits and probs).
 *  4. The GEMM-block path against a naive triple-loop reference (both modes).
 *  5. bnn_summarize on hand-computed numbers; argument errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bnn.h"
#include "idx.h"
#include "infer.h"
#include "rng.h"
#include "stats.h"
#include "weights.h"

void openblas_set_num_threads(int n);

static const char *data_dir(void)
{
    const char *d = getenv("BNN_DATA");
    return d ? d : "build/data/mnist";
}

static const char *weights_path(void)
{
    const char *p = getenv("BNN_WEIGHTS");
    return p ? p : "model/weights/mnist-bnn.safetensors";
}

/* mu ~ mu_scale N(0,1)/sqrt(n_in), sigma ~ U(lo, hi)/sqrt(n_in), biases
 * mu 0.1 N(0,1), sigma 0.1: wide enough that every class probability varies
 * from pass to pass. Draws from rng streams 1000+ (not the inference ones). */
static struct bnn_model *random_model(const size_t *dims, size_t n, double mu_scale, double lo, double hi)
{
    char err[BNN_ERR_LEN];
    struct bnn_model *m = bnn_model_new(dims, n, err);
    assert_non_null(m);
    for (size_t l = 0; l < n; l++) {
        struct bnn_layer *L = &m->layers[l];
        size_t nw = L->n_in * L->n_out;
        float s = 1.0f / sqrtf((float)L->n_in);
        rng_normals(L->w_mu, nw, 5, 1000 + (uint32_t)l, 0, 0);
        rng_uniforms(L->w_sigma, nw, 5, 1100 + (uint32_t)l, 0, 0);
        for (size_t i = 0; i < nw; i++) {
            L->w_mu[i] *= (float)mu_scale * s;
            L->w_sigma[i] = ((float)lo + (float)(hi - lo) * L->w_sigma[i]) * s;
        }
        rng_normals(L->b_mu, L->n_out, 5, 1200 + (uint32_t)l, 0, 0);
        for (size_t j = 0; j < L->n_out; j++)
            L->b_mu[j] *= 0.1f, L->b_sigma[j] = 0.1f;
    }
    bnn_model_update_var(m);
    return m;
}

/* MNIST t10k, loaded once; NULL with the loader's message in err when it
 * is not there. */
static struct idx_images *mnist_test_images(char err[BNN_ERR_LEN])
{
    static struct idx_images im;
    static struct idx_labels lb;
    static int loaded;
    if (!loaded) {
        if (idx_load_mnist(&im, &lb, data_dir(), "t10k", err) != BNN_OK)
            return NULL;
        loaded = 1;
    }
    return &im;
}

/* The MNIST test set, or a counted skip of the running test naming why. */
static struct idx_images *mnist_or_skip(void)
{
    char err[BNN_ERR_LEN];
    struct idx_images *im = mnist_test_images(err);
    if (!im) {
        printf("skipped: MNIST test set missing (run `make data`): %s\n", err);
        skip();
    }
    return im;
}

/* The shipped weights (owned by the caller), or a counted skip of the
 * running test when the file is not there. */
static struct bnn_model *shipped_or_skip(void)
{
    char err[BNN_ERR_LEN];
    struct bnn_model *m;
    if (access(weights_path(), R_OK) != 0) {
        printf("skipped: shipped weights %s not readable: %s\n", weights_path(), strerror(errno));
        skip();
    }
    if (bnn_weights_load(&m, weights_path(), err) != BNN_OK)
        fail_msg("%s", err);
    return m;
}

static void image_at(float *x, const struct idx_images *im, size_t i)
{
    for (size_t p = 0; p < 784; p++)
        x[p] = im->pixels[i * 784 + p] / 255.0f;
}

/* (T, k) class probabilities of x drawn in mode; owned by the caller. */
static float *sample_probs(const struct bnn_model *m, const float *x, size_t T, uint64_t seed,
                           enum bnn_mode mode)
{
    char err[BNN_ERR_LEN];
    float *p = malloc(T * bnn_model_n_classes(m) * sizeof(float));
    struct bnn_workspace *ws = bnn_workspace_new(m);
    assert_non_null(p);
    assert_non_null(ws);
    if (bnn_sample_probs(p, ws, m, x, T, seed, mode, err) != BNN_OK)
        fail_msg("bnn_sample_probs: %s", err);
    bnn_workspace_free(ws);
    return p;
}

/* Two-sample KS per class between two (T, k) probability samples; returns
 * the smallest p-value over the classes, the largest distance in worst_d. */
static double min_ks_p_of(const float *pa, const float *pb, size_t T, size_t k, double *worst_d)
{
    double *a = malloc(T * sizeof(double)), *b = malloc(T * sizeof(double));
    double pmin = 1.0;
    *worst_d = 0.0;
    for (size_t c = 0; c < k; c++) {
        for (size_t t = 0; t < T; t++)
            a[t] = pa[t * k + c], b[t] = pb[t * k + c];
        double p, d = stats_ks_2samp(a, T, b, T, &p);
        if (p < pmin)
            pmin = p;
        if (d > *worst_d)
            *worst_d = d;
    }
    free(a), free(b);
    return pmin;
}

/* KS between LRT on m_lrt (seed) and weight sampling on m_w (seed + 1). */
static double min_ks_p(const struct bnn_model *m_lrt, const struct bnn_model *m_w, const float *x, size_t T,
                       uint64_t seed, double *worst_d)
{
    float *pl = sample_probs(m_lrt, x, T, seed, BNN_MODE_LRT),
          *pw = sample_probs(m_w, x, T, seed + 1, BNN_MODE_WEIGHTS);
    double p = min_ks_p_of(pl, pw, T, bnn_model_n_classes(m_lrt), worst_d);
    free(pl), free(pw);
    return p;
}

/* The negative controls' wrong sampler: every sigma scaled by 1.3. */
static void widen_sigmas(struct bnn_model *m)
{
    for (size_t l = 0; l < m->n_layers; l++) {
        struct bnn_layer *L = &m->layers[l];
        for (size_t i = 0; i < L->n_in * L->n_out; i++)
            L->w_sigma[i] *= 1.3f;
        for (size_t j = 0; j < L->n_out; j++)
            L->b_sigma[j] *= 1.3f;
    }
    bnn_model_update_var(m);
}

/* 1 %, Bonferroni-corrected over the classes of one image so the family of
 * ten tests per image rejects a true null at most 1 % of the time. */
#define KS_ALPHA 0.01

static void test_lrt_matches_weights_random_model(void **state)
{
    (void)state;
    struct idx_images *im = mnist_or_skip();
    const size_t dims[] = {784, 32, 16, 10};
    struct bnn_model *m = random_model(dims, 3, 2.0, 0.5, 1.5);
    const size_t T = 2000;
    float x[784];
    for (size_t i = 0; i < 3; i++) {
        image_at(x, im, i);
        double d, p = min_ks_p(m, m, x, T, 100 + i, &d);
        printf("image %zu: LRT vs weights, min KS p over 10 classes %.4f (max D %.4f)\n", i, p, d);
        if (p < KS_ALPHA / 10)
            fail_msg("image %zu: KS rejects LRT == weights (p = %g, D = %g)", i, p, d);
    }
    /* Negative control: the same test against a model whose sigmas are 1.3x
     * must reject, or the test above could not fail. */
    struct bnn_model *wide = random_model(dims, 3, 2.0, 0.5, 1.5);
    widen_sigmas(wide);
    image_at(x, im, 0);
    double d, p = min_ks_p(wide, m, x, T, 7, &d);
    printf("negative control (sigma x1.3): min KS p %.3g (max D %.4f)\n", p, d);
    assert_true(p < 1e-4);
    bnn_model_free(wide);
    bnn_model_free(m);
}

/* The shipped model: LRT against weight sampling must agree, and LRT on
 * the same model with every sigma x1.3 (a wrong sampler) must be rejected
 * by the same criterion, or this test could not fail. Image 8 (a 5 that
 * models find ambiguous, so every class varies) and image 0 (a clear 7);
 * two images keep 2 x 2000 weight-sampling passes affordable under
 * ASan/TSan (~25 s each there). The weight samples serve both KS tests. */
static void test_lrt_matches_weights_shipped_model(void **state)
{
    (void)state;
    struct idx_images *im = mnist_or_skip();
    struct bnn_model *m = shipped_or_skip(), *wide = shipped_or_skip();
    widen_sigmas(wide);
    const size_t T = 2000, k = bnn_model_n_classes(m);
    float x[784];
    static const size_t which[] = {8, 0};
    for (size_t i = 0; i < 2; i++) {
        image_at(x, im, which[i]);
        float *pw = sample_probs(m, x, T, 301 + i, BNN_MODE_WEIGHTS);
        float *pl = sample_probs(m, x, T, 300 + i, BNN_MODE_LRT);
        float *pwide = sample_probs(wide, x, T, 300 + i, BNN_MODE_LRT);
        double d, p = min_ks_p_of(pl, pw, T, k, &d), dw, pw_wide = min_ks_p_of(pwide, pw, T, k, &dw);
        printf("shipped model, image %zu: min KS p over 10 classes %.4f (max D %.4f); "
               "negative control (sigma x1.3): %.3g (max D %.4f)\n",
               which[i], p, d, pw_wide, dw);
        if (p < KS_ALPHA / 10)
            fail_msg("image %zu: KS rejects LRT == weights (p = %g, D = %g)", which[i], p, d);
        if (!(pw_wide < KS_ALPHA / 10))
            fail_msg("image %zu: KS does not reject sigmas x1.3 (p = %g, D = %g): the test has no power",
                     which[i], pw_wide, dw);
        free(pw), free(pl), free(pwide);
    }
    bnn_model_free(wide);
    bnn_model_free(m);
}

/* 3 -> 2, one layer: logit j ~ N(x.mu_j + mb_j, (x*x).s2_j + sb2_j) exactly. */
static void test_closed_form_one_layer(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    const size_t dims[] = {3, 2};
    struct bnn_model *m = bnn_model_new(dims, 1, err);
    const float mu[6] = {0.5f, -1.0f, 2.0f, 0.3f, -0.7f, 1.1f}; /* (3, 2) */
    const float sg[6] = {0.2f, 0.9f, 0.4f, 0.1f, 1.5f, 0.6f};
    memcpy(m->layers[0].w_mu, mu, sizeof mu);
    memcpy(m->layers[0].w_sigma, sg, sizeof sg);
    m->layers[0].b_mu[0] = 0.25f, m->layers[0].b_mu[1] = -0.5f;
    m->layers[0].b_sigma[0] = 0.3f, m->layers[0].b_sigma[1] = 0.05f;
    bnn_model_update_var(m);
    const float x[3] = {0.8f, -1.5f, 0.6f};
    double mean[2], var[2];
    for (int j = 0; j < 2; j++) {
        mean[j] = m->layers[0].b_mu[j];
        var[j] = (double)m->layers[0].b_sigma[j] * m->layers[0].b_sigma[j];
        for (int i = 0; i < 3; i++) {
            mean[j] += (double)x[i] * mu[i * 2 + j];
            var[j] += (double)x[i] * x[i] * sg[i * 2 + j] * sg[i * 2 + j];
        }
    }
    const size_t T = 20000;
    float *z = malloc(T * 2 * sizeof(float));
    struct bnn_workspace *ws = bnn_workspace_new(m);
    for (int mode = 0; mode < 2; mode++) {
        assert_int_equal(bnn_sample_logits(z, ws, m, x, T, 11, (enum bnn_mode)mode, err), BNN_OK);
        double s[2] = {0}, ss[2] = {0}, cross = 0;
        for (size_t t = 0; t < T; t++)
            for (int j = 0; j < 2; j++)
                s[j] += z[t * 2 + j];
        for (size_t t = 0; t < T; t++) {
            for (int j = 0; j < 2; j++)
                ss[j] += (z[t * 2 + j] - s[j] / T) * (z[t * 2 + j] - s[j] / T);
            cross += (z[t * 2] - s[0] / T) * (z[t * 2 + 1] - s[1] / T);
        }
        for (int j = 0; j < 2; j++) {
            double m_hat = s[j] / T, v_hat = ss[j] / T;
            /* 5 standard errors: SE(mean) = sqrt(v/T), SE(var) = v sqrt(2/T) */
            if (fabs(m_hat - mean[j]) > 5 * sqrt(var[j] / T) ||
                fabs(v_hat - var[j]) > 5 * var[j] * sqrt(2.0 / T))
                fail_msg("%s logit %d: mean %.4f var %.4f, closed form %.4f %.4f",
                         bnn_mode_name((enum bnn_mode)mode), j, m_hat, v_hat, mean[j], var[j]);
            /* and Gaussian: one-sample KS against N(mean, var), 1 % critical 1.63/sqrt(T) */
            double *u = malloc(T * sizeof(double)), d = 0;
            for (size_t t = 0; t < T; t++)
                u[t] = 0.5 * erfc(-(z[t * 2 + j] - mean[j]) / sqrt(2.0 * var[j]));
            double dummy[1] = {0};
            (void)dummy;
            stats_quantile(u, T, 0.5); /* sorts u */
            for (size_t t = 0; t < T; t++)
                d = fmax(d, fmax(fabs(u[t] - (double)t / T), fabs(u[t] - (double)(t + 1) / T)));
            free(u);
            if (d > 1.63 / sqrt((double)T))
                fail_msg("%s logit %d: KS distance to the closed form %.4f",
                         bnn_mode_name((enum bnn_mode)mode), j, d);
        }
        /* units are independent: correlation ~ 0 (5 SE = 5/sqrt(T)) */
        assert_true(fabs(cross / sqrt(ss[0] * ss[1])) < 5.0 / sqrt((double)T));
    }
    free(z);
    bnn_workspace_free(ws);
    bnn_model_free(m);
}

/* 3 -> 4 -> 2 with layer-0 means >= 10 and std <= 1: with draws bounded by
 * 5.89 the ReLU never clips, so h_j ~ N(m_j, v_j) independent, and
 * E z_k = sum_j m_j mu_jk + mb_k,
 * Var z_k = sum_j [(m_j^2 + v_j) s2_jk + v_j mu_jk^2] + sb2_k. */
static void test_closed_form_two_layers(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    const size_t dims[] = {3, 4, 2};
    struct bnn_model *m = random_model(dims, 2, 1.0, 0.3, 0.6);
    for (int j = 0; j < 4; j++)
        m->layers[0].b_mu[j] = 10.0f + (float)j;
    bnn_model_update_var(m);
    const float x[3] = {0.9f, 0.2f, 0.5f};
    const struct bnn_layer *A = &m->layers[0], *B = &m->layers[1];
    double hm[4], hv[4];
    for (int j = 0; j < 4; j++) {
        hm[j] = A->b_mu[j];
        hv[j] = A->b_var[j];
        for (int i = 0; i < 3; i++)
            hm[j] += (double)x[i] * A->w_mu[i * 4 + j], hv[j] += (double)x[i] * x[i] * A->w_var[i * 4 + j];
        assert_true(hm[j] - 6 * sqrt(hv[j]) > 0); /* the premise: ReLU never clips */
    }
    double mean[2], var[2];
    for (int k = 0; k < 2; k++) {
        mean[k] = B->b_mu[k];
        var[k] = B->b_var[k];
        for (int j = 0; j < 4; j++) {
            mean[k] += hm[j] * B->w_mu[j * 2 + k];
            var[k] += (hm[j] * hm[j] + hv[j]) * B->w_var[j * 2 + k] +
                      hv[j] * B->w_mu[j * 2 + k] * B->w_mu[j * 2 + k];
        }
    }
    const size_t T = 40000;
    float *z = malloc(T * 2 * sizeof(float));
    struct bnn_workspace *ws = bnn_workspace_new(m);
    for (int mode = 0; mode < 2; mode++) {
        assert_int_equal(bnn_sample_logits(z, ws, m, x, T, 21, (enum bnn_mode)mode, err), BNN_OK);
        for (int k = 0; k < 2; k++) {
            double s = 0, ss = 0, s4 = 0;
            for (size_t t = 0; t < T; t++)
                s += z[t * 2 + k];
            double mh = s / T;
            for (size_t t = 0; t < T; t++) {
                double d = z[t * 2 + k] - mh;
                ss += d * d, s4 += d * d * d * d;
            }
            double vh = ss / T;
            /* not Gaussian (products of normals): SE(var) from the 4th moment */
            double se_v = sqrt((s4 / T - vh * vh) / T);
            if (fabs(mh - mean[k]) > 5 * sqrt(var[k] / T) || fabs(vh - var[k]) > 5 * se_v)
                fail_msg("%s output %d: mean %.4f var %.4f, closed form %.4f %.4f (SE var %.4f)",
                         bnn_mode_name((enum bnn_mode)mode), k, mh, vh, mean[k], var[k], se_v);
        }
    }
    free(z);
    bnn_workspace_free(ws);
    bnn_model_free(m);
}

/* ---- naive reference ------------------------------------------------------ */

/* Triple loops in double, the same random addresses as infer.c. (T, k) logits. */
static void naive_forward(double *logits, const struct bnn_model *m, const float *x, size_t T, uint64_t seed,
                          enum bnn_mode mode)
{
    size_t width = 0;
    for (size_t l = 0; l < m->n_layers; l++)
        width = m->layers[l].n_in > width ? m->layers[l].n_in : width;
    width = bnn_model_n_classes(m) > width ? bnn_model_n_classes(m) : width;
    for (size_t l = 0; l < m->n_layers; l++)
        width = m->layers[l].n_out > width ? m->layers[l].n_out : width;
    double *h = malloc(width * sizeof(double)), *z = malloc(width * sizeof(double));
    float *eps = malloc(width * sizeof(float));
    for (size_t t = 0; t < T; t++) {
        for (size_t i = 0; i < m->layers[0].n_in; i++)
            h[i] = x[i];
        for (size_t l = 0; l < m->n_layers; l++) {
            const struct bnn_layer *L = &m->layers[l];
            if (mode == BNN_MODE_LRT) {
                rng_normals(eps, L->n_out, seed, (uint32_t)l, (uint32_t)t, 0);
                for (size_t j = 0; j < L->n_out; j++) {
                    double mean = L->b_mu[j], var = L->b_var[j];
                    for (size_t i = 0; i < L->n_in; i++) {
                        mean += h[i] * L->w_mu[i * L->n_out + j];
                        var += h[i] * h[i] * L->w_var[i * L->n_out + j];
                    }
                    z[j] = mean + sqrt(var) * eps[j];
                }
            } else {
                rng_normals(eps, L->n_out, seed, BNN_STREAM_B | (uint32_t)l, (uint32_t)t, 0);
                for (size_t j = 0; j < L->n_out; j++)
                    z[j] = L->b_mu[j] + (double)L->b_sigma[j] * eps[j];
                for (size_t i = 0; i < L->n_in; i++) {
                    rng_normals(eps, L->n_out, seed, BNN_STREAM_W | (uint32_t)l, (uint32_t)t, i * L->n_out);
                    for (size_t j = 0; j < L->n_out; j++)
                        z[j] += h[i] *
                                (L->w_mu[i * L->n_out + j] + (double)L->w_sigma[i * L->n_out + j] * eps[j]);
                }
            }
            for (size_t j = 0; j < L->n_out; j++)
                h[j] = l + 1 < m->n_layers && z[j] < 0 ? 0.0 : z[j];
        }
        for (size_t c = 0; c < bnn_model_n_classes(m); c++)
            logits[t * bnn_model_n_classes(m) + c] = h[c];
    }
    free(h), free(z), free(eps);
}

/* Makes layer-0 unit j dead for any input in [0,1] when dead[j]: bias mean
 * -50, far below -6 x its std. */
static void kill_units(struct bnn_model *m, size_t every, size_t offset)
{
    for (size_t j = offset; j < m->layers[0].n_out; j += every)
        m->layers[0].b_mu[j] = -50.0f;
}

static void test_fast_vs_naive(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    struct idx_images *im = mnist_test_images(err);
    float x[784];
    if (im)
        image_at(x, im, 3);
    else
        for (int i = 0; i < 784; i++)
            x[i] = (float)(i % 29) / 29.0f;
    const size_t dims[] = {784, 100, 50, 10};
    struct bnn_model *m = random_model(dims, 3, 2.0, 0.5, 1.5);
    /* T = BNN_BLOCK + 22: a full block and a partial one */
    const size_t T = BNN_BLOCK + 22, k = 10;
    float *fast = malloc(T * k * sizeof(float));
    double *ref = malloc(T * k * sizeof(double));
    struct bnn_workspace *ws = bnn_workspace_new(m);
    for (int mode = 0; mode < 2; mode++) {
        size_t TT = mode == BNN_MODE_LRT ? T : 20;
        assert_int_equal(bnn_sample_logits(fast, ws, m, x, TT, 77, (enum bnn_mode)mode, err), BNN_OK);
        naive_forward(ref, m, x, TT, 77, (enum bnn_mode)mode);
        double worst = 0;
        for (size_t i = 0; i < TT * k; i++)
            worst = fmax(worst, fabs(fast[i] - ref[i]) / (1.0 + fabs(ref[i])));
        printf("%s: max relative difference fast vs naive %.2g over %zu logits\n",
               bnn_mode_name((enum bnn_mode)mode), worst, TT * k);
        assert_true(worst < 1e-4);
        /* and the probabilities are the softmax of those logits */
        float *p = malloc(TT * k * sizeof(float));
        assert_int_equal(bnn_sample_probs(p, ws, m, x, TT, 77, (enum bnn_mode)mode, err), BNN_OK);
        for (size_t t = 0; t < TT; t++) {
            double mx = -INFINITY, sum = 0;
            for (size_t c = 0; c < k; c++)
                mx = fmax(mx, ref[t * k + c]);
            for (size_t c = 0; c < k; c++)
                sum += exp(ref[t * k + c] - mx);
            for (size_t c = 0; c < k; c++)
                assert_float_equal(p[t * k + c], exp(ref[t * k + c] - mx) / sum, 1e-4);
        }
        free(p);
    }
    /* Dead units: none, a fifth (below the quarter: no compaction), half,
     * and all (one unit kept so the GEMM has K = 1) - each path against the
     * naive reference, and the live count as the rule says. */
    static const struct {
        size_t every, offset, live;
    } dead[] = {{0, 0, 100}, {5, 0, 100}, {2, 1, 50}, {1, 0, 1}};
    for (size_t c = 0; c < 4; c++) {
        struct bnn_model *d = random_model(dims, 3, 2.0, 0.5, 1.5);
        if (dead[c].every)
            kill_units(d, dead[c].every, dead[c].offset);
        struct bnn_workspace *wd = bnn_workspace_new(d);
        assert_int_equal(bnn_sample_logits(fast, wd, d, x, T, 78, BNN_MODE_LRT, err), BNN_OK);
        assert_int_equal(bnn_workspace_live_units(wd), dead[c].live);
        naive_forward(ref, d, x, T, 78, BNN_MODE_LRT);
        double worst = 0;
        for (size_t i = 0; i < T * k; i++)
            worst = fmax(worst, fabs(fast[i] - ref[i]) / (1.0 + fabs(ref[i])));
        printf("dead units case %zu (%zu of 100 live): max relative difference %.2g\n", c, dead[c].live,
               worst);
        assert_true(worst < 1e-4);
        bnn_workspace_free(wd);
        bnn_model_free(d);
    }
    free(fast), free(ref);
    bnn_workspace_free(ws);
    bnn_model_free(m);
}

/* ---- determinism ----------------------------------------------------------- */

struct job {
    const struct bnn_model *m;
    const float *x;
    size_t T;
    uint64_t seed;
    enum bnn_mode mode;
    float *out;
    int rc;
};

static void *run_job(void *arg)
{
    struct job *j = arg;
    char err[BNN_ERR_LEN];
    struct bnn_workspace *ws = bnn_workspace_new(j->m);
    for (int rep = 0; rep < 3 && ws; rep++)
        j->rc = bnn_sample_probs(j->out, ws, j->m, j->x, j->T, j->seed, j->mode, err);
    bnn_workspace_free(ws);
    return NULL;
}

static void determinism_for(struct bnn_model *m)
{
    char err[BNN_ERR_LEN];
    float x[784];
    for (int i = 0; i < 784; i++)
        x[i] = (float)((i * 37) % 101) / 100.0f;
    const size_t k = 10, T = 200, TMAX = 2 * BNN_BLOCK + 60;
    float *a = malloc(TMAX * k * sizeof(float)), *b = malloc(TMAX * k * sizeof(float));
    struct bnn_workspace *ws = bnn_workspace_new(m);
    for (int mode = 0; mode < 2; mode++) {
        enum bnn_mode md = (enum bnn_mode)mode;
        size_t TT = md == BNN_MODE_LRT ? T : 10;
        assert_int_equal(bnn_sample_probs(a, ws, m, x, TT, 5, md, err), BNN_OK);
        assert_int_equal(bnn_sample_probs(b, ws, m, x, TT, 5, md, err), BNN_OK);
        assert_memory_equal(a, b, TT * k * sizeof(float));
        assert_int_equal(bnn_sample_probs(b, ws, m, x, TT, 6, md, err), BNN_OK);
        size_t same = 0;
        for (size_t i = 0; i < TT * k; i++)
            same += a[i] == b[i];
        assert_true(same < TT * k / 100 + 1);
        /* a fresh workspace gives the same bits (no state carried over) */
        struct bnn_workspace *ws2 = bnn_workspace_new(m);
        assert_int_equal(bnn_sample_probs(b, ws2, m, x, TT, 5, md, err), BNN_OK);
        assert_memory_equal(a, b, TT * k * sizeof(float));
        bnn_workspace_free(ws2);
    }
    /* T split differently across blocks: T = B and B + 1 share their first B
     * rows; a partial last block (B - 28 rows) equals the same rows computed
     * in a full block; T = 1 against a second partial block. */
    static const size_t pairs[][2] = {{BNN_BLOCK, BNN_BLOCK + 1},
                                      {BNN_BLOCK - 28, BNN_BLOCK},
                                      {1, 2 * BNN_BLOCK},
                                      {BNN_BLOCK + 2, 2 * BNN_BLOCK + 60}};
    for (size_t p = 0; p < 4; p++) {
        assert_int_equal(bnn_sample_probs(a, ws, m, x, pairs[p][0], 9, BNN_MODE_LRT, err), BNN_OK);
        assert_int_equal(bnn_sample_probs(b, ws, m, x, pairs[p][1], 9, BNN_MODE_LRT, err), BNN_OK);
        if (memcmp(a, b, pairs[p][0] * k * sizeof(float)) != 0)
            fail_msg("T = %zu and T = %zu differ in their first %zu rows", pairs[p][0], pairs[p][1],
                     pairs[p][0]);
    }
    assert_int_equal(bnn_sample_probs(a, ws, m, x, 3, 9, BNN_MODE_WEIGHTS, err), BNN_OK);
    assert_int_equal(bnn_sample_probs(b, ws, m, x, 5, 9, BNN_MODE_WEIGHTS, err), BNN_OK);
    assert_memory_equal(a, b, 3 * k * sizeof(float));

    /* 1 thread vs 4 concurrent threads, each with its own workspace */
    assert_int_equal(bnn_sample_probs(a, ws, m, x, T, 42, BNN_MODE_LRT, err), BNN_OK);
    pthread_t th[4];
    struct job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct job){m, x, T, 42, BNN_MODE_LRT, malloc(T * k * sizeof(float)), -1};
        if (i == 3) /* one thread on the other mode at the same time */
            jobs[i].mode = BNN_MODE_WEIGHTS, jobs[i].T = 4;
        assert_int_equal(pthread_create(&th[i], NULL, run_job, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].rc, BNN_OK);
        if (i < 3)
            assert_memory_equal(jobs[i].out, a, T * k * sizeof(float));
    }
    assert_int_equal(bnn_sample_probs(b, ws, m, x, 4, 42, BNN_MODE_WEIGHTS, err), BNN_OK);
    assert_memory_equal(jobs[3].out, b, 4 * k * sizeof(float));
    for (int i = 0; i < 4; i++)
        free(jobs[i].out);
    free(a), free(b);
    bnn_workspace_free(ws);
}

static void test_determinism(void **state)
{
    (void)state;
    const size_t dims[] = {784, 64, 32, 10};
    struct bnn_model *m = random_model(dims, 3, 2.0, 0.5, 1.5);
    determinism_for(m);
    kill_units(m, 2, 0); /* and with layer 1 on the live half of layer 0 */
    determinism_for(m);
    bnn_model_free(m);
}

/* ---- the block entry point ------------------------------------------------- */

/* Passes [0, T) as blocks of random sizes (1 .. 2 BNN_BLOCK + 5), computed
 * in a shuffled order, alternating between two workspaces as two workers
 * would: the same bits as bnn_sample_probs (or _logits) in one call. */
static void split_matches_whole(const struct bnn_model *m, const float *x, size_t T, enum bnn_mode mode,
                                int logits, uint32_t rng)
{
    char err[BNN_ERR_LEN];
    size_t k = bnn_model_n_classes(m);
    float *whole = malloc(T * k * sizeof(float)), *split = malloc(T * k * sizeof(float));
    size_t *first = malloc(T * sizeof(size_t)), *len = malloc(T * sizeof(size_t)), n = 0;
    struct bnn_workspace *ws[2] = {bnn_workspace_new(m), bnn_workspace_new(m)};
    int (*all)(float *, struct bnn_workspace *, const struct bnn_model *, const float *, size_t, uint64_t,
               enum bnn_mode, char *) = logits ? bnn_sample_logits : bnn_sample_probs;
    int (*block)(float *, struct bnn_workspace *, const struct bnn_input *, size_t, size_t, uint64_t,
                 char *) = logits ? bnn_sample_block_logits : bnn_sample_block;
    assert_int_equal(all(whole, ws[0], m, x, T, 1234, mode, err), BNN_OK);
    for (size_t p = 0; p < T; n++) {
        rng = rng * 1664525u + 1013904223u;
        size_t want = 1 + (rng >> 8) % (2 * BNN_BLOCK + 5);
        first[n] = p;
        len[n] = want < T - p ? want : T - p;
        p += len[n];
    }
    for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
        rng = rng * 1664525u + 1013904223u;
        size_t j = (rng >> 8) % i, f = first[i - 1], l = len[i - 1];
        first[i - 1] = first[j], len[i - 1] = len[j];
        first[j] = f, len[j] = l;
    }
    struct bnn_input *in;
    assert_int_equal(bnn_input_new(&in, m, x, mode, err), BNN_OK);
    memset(split, 0xff, T * k * sizeof(float)); /* NaN: a row left out shows */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(block(split, ws[i % 2], in, first[i], len[i], 1234, err), BNN_OK);
    if (memcmp(whole, split, T * k * sizeof(float)) != 0)
        fail_msg("mode %s, T = %zu, %zu blocks: the split differs from the whole", bnn_mode_name(mode), T, n);
    bnn_input_free(in);
    bnn_workspace_free(ws[0]);
    bnn_workspace_free(ws[1]);
    free(whole), free(split), free(first), free(len);
}

static void test_block_splits(void **state)
{
    (void)state;
    const size_t dims[] = {784, 64, 32, 10};
    struct bnn_model *m = random_model(dims, 3, 2.0, 0.5, 1.5);
    float x[784];
    for (int i = 0; i < 784; i++)
        x[i] = (float)((i * 37) % 101) / 100.0f;
    for (uint32_t r = 1; r <= 4; r++) {
        split_matches_whole(m, x, 3 * BNN_BLOCK + 17, BNN_MODE_LRT, r % 2, r);
        split_matches_whole(m, x, 40, BNN_MODE_WEIGHTS, r % 2, r);
    }
    kill_units(m, 2, 0); /* layer 1 on the live half of layer 0 */
    split_matches_whole(m, x, 2 * BNN_BLOCK + 1, BNN_MODE_LRT, 0, 9);
    split_matches_whole(m, x, 2 * BNN_BLOCK + 1, BNN_MODE_LRT, 1, 10);
    bnn_model_free(m);
    struct bnn_model *shipped = NULL;
    char err[BNN_ERR_LEN];
    if (access(weights_path(), R_OK) == 0 && bnn_weights_load(&shipped, weights_path(), err) == BNN_OK) {
        float digit[784] = {0};
        for (int i = 0; i < 784; i++) /* a filled ring: real inputs are mostly zero */
            digit[i] = abs(i % 28 - 14) + abs(i / 28 - 14) < 9 ? 0.9f : 0.0f;
        split_matches_whole(shipped, digit, 2 * BNN_BLOCK + 30, BNN_MODE_LRT, 0, 11);
        split_matches_whole(shipped, digit, 5, BNN_MODE_WEIGHTS, 0, 12);
        bnn_model_free(shipped);
    }
}

/* Two threads take the blocks of one input from a shared counter, each with
 * its own workspace, into one buffer: the same bits as one call. */
struct block_worker {
    const struct bnn_input *in;
    float *out;
    size_t T, blk;
    _Atomic size_t *next;
    int rc;
};

static void *block_worker_run(void *arg)
{
    struct block_worker *w = arg;
    char err[BNN_ERR_LEN];
    struct bnn_workspace *ws = bnn_workspace_new(bnn_input_model(w->in));
    w->rc = ws ? BNN_OK : BNN_E_NOMEM;
    for (size_t b; w->rc == BNN_OK && (b = atomic_fetch_add(w->next, 1)) * w->blk < w->T;) {
        size_t first = b * w->blk, n = w->T - first < w->blk ? w->T - first : w->blk;
        w->rc = bnn_sample_block(w->out, ws, w->in, first, n, 77, err);
    }
    bnn_workspace_free(ws);
    return NULL;
}

static void test_block_threads_and_errors(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    const size_t dims[] = {784, 64, 32, 10}, other[] = {784, 65, 32, 10};
    struct bnn_model *m = random_model(dims, 3, 2.0, 0.5, 1.5), *o = random_model(other, 3, 2.0, 0.5, 1.5);
    float x[784];
    for (int i = 0; i < 784; i++)
        x[i] = (float)((i * 13) % 29) / 28.0f;
    for (int mode = 0; mode < 2; mode++) {
        size_t T = mode == BNN_MODE_LRT ? 1000 : 24, blk = mode == BNN_MODE_LRT ? 37 : 1, k = 10;
        float *whole = malloc(T * k * sizeof(float)), *out = malloc(T * k * sizeof(float));
        struct bnn_workspace *ws = bnn_workspace_new(m);
        assert_int_equal(bnn_sample_probs(whole, ws, m, x, T, 77, (enum bnn_mode)mode, err), BNN_OK);
        struct bnn_input *in;
        assert_int_equal(bnn_input_new(&in, m, x, (enum bnn_mode)mode, err), BNN_OK);
        assert_ptr_equal(bnn_input_model(in), m);
        _Atomic size_t next = 0;
        struct block_worker w[2] = {{in, out, T, blk, &next, -1}, {in, out, T, blk, &next, -1}};
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&th[i], NULL, block_worker_run, &w[i]), 0);
        for (int i = 0; i < 2; i++) {
            pthread_join(th[i], NULL);
            assert_int_equal(w[i].rc, BNN_OK);
        }
        assert_memory_equal(whole, out, T * k * sizeof(float));
        /* errors: no passes, a pass index past 2^32 - 1, another shape's workspace */
        assert_int_equal(bnn_sample_block(out, ws, in, 0, 0, 1, err), BNN_E_INVALID);
        assert_non_null(strstr(err, "expected 1 or more passes"));
        assert_int_equal(bnn_sample_block(out, ws, in, UINT32_MAX, 2, 1, err), BNN_E_INVALID);
        struct bnn_workspace *wo = bnn_workspace_new(o);
        assert_int_equal(bnn_sample_block(out, wo, in, 0, 1, 1, err), BNN_E_INVALID);
        assert_non_null(strstr(err, "another model shape"));
        bnn_workspace_free(wo);
        bnn_input_free(in);
        bnn_workspace_free(ws);
        free(whole), free(out);
    }
    struct bnn_input *in = (struct bnn_input *)1;
    assert_int_equal(bnn_input_new(&in, m, x, (enum bnn_mode)5, err), BNN_E_INVALID);
    assert_null(in);
    assert_non_null(strstr(err, "got 5"));
    bnn_input_free(NULL);
    assert_int_equal(bnn_pass_cost(BNN_MODE_LRT), 1);
    assert_true(bnn_pass_cost(BNN_MODE_WEIGHTS) > 1);
    bnn_model_free(m);
    bnn_model_free(o);
}

/* Golden fixed-seed logits for a 3 -> 2 -> 2 model, T = 3, seed 42, both
 * modes. The expected numbers do not come from this code: they are a replay
 * in pure Python (float64) of the layout documented in rng.h and infer.h -
 *   philox(ctr, key): 10 rounds of
 *     p0 = 0xD2511F53 c0, p1 = 0xCD9E8D57 c2,
 *     (c0,c1,c2,c3) = (hi(p1)^c1^k0, lo(p1), hi(p0)^c3^k1, lo(p0)),
 *     k0 += 0x9E3779B9, k1 += 0xBB67AE85   (checked against Random123's KAT)
 *   normal(seed, stream, pass, unit): b = unit/4,
 *     w = philox((b lo, b hi, pass, stream), (seed lo, seed hi)),
 *     p = 2 ((unit%4)/2), u(w) = ((w>>8) + 0.5)/2^24,
 *     r = sqrt(-2 ln u(w[p])), angle 2 pi u(w[p+1]), cos for even unit, sin odd
 *   LRT: z_j = m_j + sqrt(v_j) normal(42, layer, pass, j), ReLU between layers
 *   WEIGHTS: w_ij = mu + sigma normal(42, 0x40000000|layer, pass, i*n_out+j),
 *            b_j = mu + sigma normal(42, 0xC0000000|layer, pass, j)
 * - so a change of the random layout or of the forward pass breaks seed
 * replay, and this test, at once. Tolerance: float32 vs float64 rounding. */
static void test_golden_replay(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    const size_t dims[] = {3, 2, 2};
    struct bnn_model *m = bnn_model_new(dims, 2, err);
    const float w0[6] = {0.5f, -0.25f, 1.0f, 0.75f, -0.5f, 0.125f},
                s0[6] = {0.1f, 0.2f, 0.3f, 0.05f, 0.15f, 0.25f};
    const float w1[4] = {1.5f, -1.0f, 0.5f, 2.0f}, s1[4] = {0.2f, 0.1f, 0.3f, 0.4f};
    memcpy(m->layers[0].w_mu, w0, sizeof w0);
    memcpy(m->layers[0].w_sigma, s0, sizeof s0);
    memcpy(m->layers[1].w_mu, w1, sizeof w1);
    memcpy(m->layers[1].w_sigma, s1, sizeof s1);
    m->layers[0].b_mu[0] = 0.1f, m->layers[0].b_mu[1] = 0.2f;
    m->layers[1].b_mu[0] = -0.3f, m->layers[1].b_mu[1] = 0.4f;
    for (int j = 0; j < 2; j++)
        m->layers[0].b_sigma[j] = 0.05f, m->layers[1].b_sigma[j] = 0.1f;
    bnn_model_update_var(m);
    const float x[3] = {0.9f, 0.4f, 0.7f};
    static const double golden[2][6] = {
        {0.2263400, 0.5854191, 1.7082482, 0.6241062, 0.4848431, 0.7308662},  /* lrt */
        {0.5933605, 0.6868761, 0.7177436, 0.7784691, 0.2144398, 0.8757909}}; /* weights */
    float z[6];
    struct bnn_workspace *ws = bnn_workspace_new(m);
    for (int mode = 0; mode < 2; mode++) {
        assert_int_equal(bnn_sample_logits(z, ws, m, x, 3, 42, (enum bnn_mode)mode, err), BNN_OK);
        for (int i = 0; i < 6; i++)
            if (fabs(z[i] - golden[mode][i]) > 2e-6)
                fail_msg("%s logit %d: %.7f, replay %.7f", bnn_mode_name((enum bnn_mode)mode), i, z[i],
                         golden[mode][i]);
    }
    bnn_workspace_free(ws);
    bnn_model_free(m);
}

/* ---- summaries and errors ---------------------------------------------------- */

static void test_summarize(void **state)
{
    (void)state;
    /* T = 4 passes, k = 3 classes */
    const float probs[12] = {0.7f,      0.2f, 0.1f, /**/ 0.5f, 0.4f, 0.1f,
                             /**/ 0.1f, 0.8f, 0.1f, /**/ 0.3f, 0.6f, 0.1f};
    double scratch[4];
    struct bnn_prediction p;
    bnn_summarize(&p, probs, 4, 3, 0.5, scratch);
    assert_int_equal(p.n_classes, 3);
    /* class 0: 0.7 0.5 0.1 0.3 -> mean 0.4, std sqrt(0.05) (ddof 0);
     * sorted 0.1 0.3 0.5 0.7, q = 0.25: h = 0.75 -> 0.25; q = 0.75: h = 2.25 -> 0.55 */
    assert_float_equal(p.classes[0].mean, 0.4, 1e-7);
    assert_float_equal(p.classes[0].std, sqrt(0.05), 1e-7);
    assert_float_equal(p.classes[0].lower, 0.25, 1e-7);
    assert_float_equal(p.classes[0].upper, 0.55, 1e-7);
    assert_float_equal(p.classes[1].mean, 0.5, 1e-7);
    assert_float_equal(p.classes[2].std, 0.0, 1e-7);
    assert_int_equal(p.predicted, 1);
    /* H[mean p] for (0.4, 0.5, 0.1); E H[p] the mean of the 4 row entropies */
    double H = -(0.4 * log(0.4) + 0.5 * log(0.5) + 0.1 * log(0.1));
    double rows[4][3] = {{.7, .2, .1}, {.5, .4, .1}, {.1, .8, .1}, {.3, .6, .1}}, A = 0;
    for (int t = 0; t < 4; t++)
        A +=
            -(rows[t][0] * log(rows[t][0]) + rows[t][1] * log(rows[t][1]) + rows[t][2] * log(rows[t][2])) / 4;
    assert_float_equal(p.entropy, H, 1e-6);
    assert_float_equal(p.aleatoric, A, 1e-6);
    assert_float_equal(p.epistemic, H - A, 1e-6);
    assert_true(p.epistemic > 0);

    /* one pass: std 0, interval collapses, epistemic exactly 0 (clamped) */
    bnn_summarize(&p, probs, 1, 3, 0.95, scratch);
    assert_float_equal(p.classes[0].lower, 0.7, 1e-7);
    assert_float_equal(p.classes[0].upper, 0.7, 1e-7);
    assert_float_equal(p.epistemic, 0.0, 0.0);
    assert_int_equal(p.predicted, 0);
    /* ties: lowest index wins */
    const float tie[3] = {0.4f, 0.4f, 0.2f};
    bnn_summarize(&p, tie, 1, 3, 0.95, scratch);
    assert_int_equal(p.predicted, 0);
}

static void test_errors_and_names(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    const size_t dims[] = {4, 3, 2}, other[] = {4, 5, 2};
    struct bnn_model *m = random_model(dims, 2, 1.0, 0.5, 1.0), *o = random_model(other, 2, 1.0, 0.5, 1.0);
    struct bnn_workspace *ws = bnn_workspace_new(m);
    float x[4] = {1, 0, 0.5f, 0.2f}, p[20];
    struct bnn_prediction pr;
    assert_int_equal(bnn_sample_probs(p, ws, m, x, 0, 1, BNN_MODE_LRT, err), BNN_E_INVALID);
    assert_non_null(strstr(err, "got 0"));
    assert_int_equal(bnn_sample_probs(p, ws, m, x, 1, 1, (enum bnn_mode)7, err), BNN_E_INVALID);
    assert_non_null(strstr(err, "got 7"));
    assert_int_equal(bnn_sample_probs(p, ws, o, x, 1, 1, BNN_MODE_LRT, err), BNN_E_INVALID);
    assert_non_null(strstr(err, "4-5-2"));
    assert_int_equal(bnn_predict(&pr, ws, m, x, 10, 1, 1.0, BNN_MODE_LRT, err), BNN_E_INVALID);
    assert_non_null(strstr(err, "coverage"));
    assert_int_equal(bnn_predict(&pr, ws, m, x, 10, 1, 0.0, BNN_MODE_LRT, err), BNN_E_INVALID);
    assert_int_equal(bnn_predict(&pr, ws, m, x, 10, 1, NAN, BNN_MODE_LRT, err), BNN_E_INVALID);
    /* T = 1 and growth of the probability buffer from 1 to 1000 */
    assert_int_equal(bnn_predict(&pr, ws, m, x, 1, 1, 0.95, BNN_MODE_LRT, err), BNN_OK);
    assert_int_equal(bnn_predict(&pr, ws, m, x, 1000, 1, 0.95, BNN_MODE_LRT, err), BNN_OK);
    double sum = 0;
    for (size_t c = 0; c < pr.n_classes; c++) {
        sum += pr.classes[c].mean;
        assert_true(pr.classes[c].lower <= pr.classes[c].mean && pr.classes[c].mean <= pr.classes[c].upper);
    }
    assert_float_equal(sum, 1.0, 1e-5);
    enum bnn_mode md;
    assert_int_equal(bnn_mode_parse("lrt", &md), 0);
    assert_int_equal(md, BNN_MODE_LRT);
    assert_int_equal(bnn_mode_parse("weights", &md), 0);
    assert_int_equal(md, BNN_MODE_WEIGHTS);
    assert_int_equal(bnn_mode_parse("LRT", &md), -1);
    assert_string_equal(bnn_mode_name(BNN_MODE_WEIGHTS), "weights");
    bnn_workspace_free(ws);
    bnn_workspace_free(NULL);
    bnn_model_free(m);
    bnn_model_free(o);
}

/* The shipped model classifies real test digits (if it is there). */
static void test_shipped_predicts_digits(void **state)
{
    (void)state;
    struct idx_images *im = mnist_or_skip();
    char err[BNN_ERR_LEN];
    struct bnn_model *m = shipped_or_skip();
    struct idx_labels lb;
    struct idx_images im2;
    assert_int_equal(idx_load_mnist(&im2, &lb, data_dir(), "t10k", err), BNN_OK);
    struct bnn_workspace *ws = bnn_workspace_new(m);
    float x[784];
    int right = 0;
    for (size_t i = 0; i < 200; i++) {
        struct bnn_prediction p;
        image_at(x, im, i);
        assert_int_equal(bnn_predict(&p, ws, m, x, 30, i, 0.95, BNN_MODE_LRT, err), BNN_OK);
        right += p.predicted == lb.labels[i];
    }
    printf("shipped model: %d / 200 of the first test digits right at T = 30\n", right);
    assert_true(right >= 190);
    idx_images_free(&im2);
    idx_labels_free(&lb);
    bnn_workspace_free(ws);
    bnn_model_free(m);
}

int main(void)
{
    openblas_set_num_threads(1); /* as the daemon's workers do */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_closed_form_one_layer),
        cmocka_unit_test(test_closed_form_two_layers),
        cmocka_unit_test(test_fast_vs_naive),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_block_splits),
        cmocka_unit_test(test_block_threads_and_errors),
        cmocka_unit_test(test_golden_replay),
        cmocka_unit_test(test_summarize),
        cmocka_unit_test(test_errors_and_names),
        cmocka_unit_test(test_lrt_matches_weights_random_model),
        cmocka_unit_test(test_lrt_matches_weights_shipped_model),
        cmocka_unit_test(test_shipped_predicts_digits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

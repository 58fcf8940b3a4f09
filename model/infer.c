/* infer.c - Monte-Carlo prediction: workspaces, inputs, the sampling entry
 * points and the weight-sampling reference (WEIGHTS); the LRT forward is
 * infer_lrt.c. See infer.h and DESIGN.md.
 *
 * Invariant: row r of a block is pass (block start + r); all its normals are
 * addressed by (seed, stream, pass, unit), so a pass's result is independent
 * of which block, thread or call computed it (for LRT that takes GEMMs that
 * give a row the same bits whatever the number of rows: infer_lrt.c).
 * test_infer and test_dispatch check it on every path.
 */
#include "infer.h"
#include "cpu.h"
#include "infer_impl.h"
#include "kernels.h"
#include "pack.h"
#include "rng.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *bnn_mode_name(enum bnn_mode mode)
{
    return mode == BNN_MODE_LRT ? "lrt" : mode == BNN_MODE_WEIGHTS ? "weights" : "unknown";
}

int bnn_mode_parse(const char *name, enum bnn_mode *out)
{
    if (strcmp(name, "lrt") == 0)
        *out = BNN_MODE_LRT;
    else if (strcmp(name, "weights") == 0)
        *out = BNN_MODE_WEIGHTS;
    else
        return -1;
    return 0;
}

struct bnn_workspace *bnn_workspace_new(const struct bnn_model *m)
{
    struct bnn_workspace *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->n_layers = m->n_layers;
    ws->width = 0;
    for (size_t i = 0; i < m->n_layers; i++) {
        ws->dims[i] = m->layers[i].n_in;
        ws->dims[i + 1] = m->layers[i].n_out;
    }
    for (size_t i = 0; i <= m->n_layers; i++)
        if (ws->dims[i] > ws->width)
            ws->width = ws->dims[i];
    size_t blk = (size_t)BNN_BLOCK * ws->width, zblk = (size_t)BNN_BLOCK * z_stride(ws->width);
    ws->h = malloc(blk * sizeof(float));
    ws->h2 = malloc(blk * sizeof(float));
    ws->zm = malloc(zblk * sizeof(float));
    ws->zv = malloc(zblk * sizeof(float));
    ws->eps = malloc(blk * sizeof(float));
    if (!ws->h || !ws->h2 || !ws->zm || !ws->zv || !ws->eps) {
        bnn_workspace_free(ws);
        return NULL;
    }
    return ws;
}

size_t bnn_workspace_live_units(const struct bnn_workspace *ws)
{
    return ws->live;
}

void bnn_workspace_free(struct bnn_workspace *ws)
{
    if (!ws)
        return;
    free(ws->h);
    free(ws->h2);
    free(ws->zm);
    free(ws->zv);
    free(ws->eps);
    bnn_input_free(ws->input);
    free(ws->probs);
    free(ws->scratch);
    free(ws);
}

int bnn_model_prepare(const struct bnn_model *m, char err[BNN_ERR_LEN])
{
    const struct bnn_packed *packed;
    return bnn_packed_get(&packed, m, bnn_kernels(), err);
}

const char *bnn_lrt_gemm_name(void)
{
    return bnn_kernels()->gemm_packed ? "packed" : "openblas";
}

unsigned bnn_pass_cost(enum bnn_mode mode)
{
    /* per cpu.h path: baseline, avx2, avx512 (measured: see infer.h) */
    static const unsigned weights[BNN_CPU_N_PATHS] = {171, 89, 87};
    enum bnn_cpu_path path = bnn_cpu_path();
    return mode != BNN_MODE_WEIGHTS ? 1 : weights[(unsigned)path < BNN_CPU_N_PATHS ? path : 0];
}

/* Softmax of each of rows rows of k logits, max subtracted so exp never
 * overflows. (rows, k) -> (rows, k), in place allowed. */
static void softmax_rows(float *out, const float *z, size_t rows, size_t k)
{
    for (size_t r = 0; r < rows; r++) {
        const float *zr = z + r * k;
        float *o = out + r * k;
        float mx = zr[0];
        for (size_t j = 1; j < k; j++)
            mx = zr[j] > mx ? zr[j] : mx;
        float sum = 0.0f;
        for (size_t j = 0; j < k; j++) {
            o[j] = expf(zr[j] - mx);
            sum += o[j];
        }
        float inv = 1.0f / sum;
        for (size_t j = 0; j < k; j++)
            o[j] *= inv;
    }
}

/* One pass of weight sampling: every weight and bias drawn, then a plain
 * GEMV, BNN_BLOCK input rows of W at a time (bounded scratch). Writes k logits. */
static void weights_pass(float *logits, struct bnn_workspace *ws, const struct bnn_input *x, uint32_t pass,
                         uint64_t seed)
{
    const struct bnn_model *m = x->m;
    const struct bnn_kernels *k = x->kern;
    const float *in = x->x;
    for (size_t l = 0; l < m->n_layers; l++) {
        const struct bnn_layer *ly = &m->layers[l];
        size_t n_in = ly->n_in, n_out = ly->n_out;
        /* Output alternates between zm's first row and logits so in never aliases it. */
        float *z = l == m->n_layers - 1 ? logits : (l % 2 ? ws->zv : ws->zm);
        k->normals_affine(z, ly->b_mu, ly->b_sigma, n_out, seed, BNN_STREAM_B | (uint32_t)l, pass, 0);
        for (size_t i0 = 0; i0 < n_in; i0 += BNN_BLOCK) {
            size_t rows = n_in - i0 < BNN_BLOCK ? n_in - i0 : BNN_BLOCK;
            float *w = ws->eps; /* (rows, n_out) sampled W[i0 .. i0+rows, :] */
            k->normals_affine(w, ly->w_mu + i0 * n_out, ly->w_sigma + i0 * n_out, rows * n_out, seed,
                              BNN_STREAM_W | (uint32_t)l, pass, (uint64_t)i0 * n_out);
            cblas_sgemv(CblasRowMajor, CblasTrans, (int)rows, (int)n_out, 1.0f, w, (int)n_out, in + i0, 1,
                        1.0f, z, 1);
        }
        if (l < m->n_layers - 1)
            k->relu_inplace(z, n_out);
        in = z;
    }
}

static int check_mode(enum bnn_mode mode, char err[BNN_ERR_LEN])
{
    if (mode != BNN_MODE_LRT && mode != BNN_MODE_WEIGHTS) {
        snprintf(err, BNN_ERR_LEN, "mode must be lrt (%d) or weights (%d), got %d", BNN_MODE_LRT,
                 BNN_MODE_WEIGHTS, (int)mode);
        return BNN_E_INVALID;
    }
    return BNN_OK;
}

static int check_workspace(const struct bnn_workspace *ws, const struct bnn_model *m, char err[BNN_ERR_LEN])
{
    int same = ws->n_layers == m->n_layers;
    for (size_t i = 0; same && i < m->n_layers; i++)
        same = ws->dims[i] == m->layers[i].n_in && ws->dims[i + 1] == m->layers[i].n_out;
    if (!same) {
        char a[128];
        snprintf(err, BNN_ERR_LEN, "workspace was made for another model shape (model is %s)",
                 bnn_model_arch(m, a, sizeof a));
        return BNN_E_INVALID;
    }
    return BNN_OK;
}

static int check_args(struct bnn_workspace *ws, const struct bnn_model *m, size_t samples, enum bnn_mode mode,
                      char err[BNN_ERR_LEN])
{
    if (samples == 0 || samples > UINT32_MAX) {
        snprintf(err, BNN_ERR_LEN, "samples must be 1..%u, got %zu", UINT32_MAX, samples);
        return BNN_E_INVALID;
    }
    int rc = check_mode(mode, err);
    return rc != BNN_OK ? rc : check_workspace(ws, m, err);
}

void bnn_input_free(struct bnn_input *x)
{
    if (!x)
        return;
    free(x->x);
    free(x->m0);
    free(x->sd0);
    free(x->act);
    free(x->lit);
    free(x->lit_x);
    free(x->w1_mu);
    free(x->w1_var);
    free(x);
}

const struct bnn_model *bnn_input_model(const struct bnn_input *x)
{
    return x->m;
}

/* An input with room for m's shape (the live rows of layer 1 come later,
 * as find_live_units needs them); NULL on out of memory. */
static struct bnn_input *input_alloc(const struct bnn_model *m)
{
    struct bnn_input *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    size_t n_in = m->layers[0].n_in, n0 = m->layers[0].n_out;
    x->x = malloc(n_in * sizeof(float));
    x->m0 = malloc(n0 * sizeof(float));
    x->sd0 = malloc(n0 * sizeof(float));
    x->act = malloc(n0 * sizeof(size_t));
    x->lit = malloc(n_in * sizeof(size_t));
    x->lit_x = malloc(n_in * sizeof(float));
    if (!x->x || !x->m0 || !x->sd0 || !x->act || !x->lit || !x->lit_x) {
        bnn_input_free(x);
        return NULL;
    }
    return x;
}

/* Makes x (allocated for m's shape) the input of image for m in mode: the
 * image, the code path, and for LRT layer 0's mean and std and the live
 * units. */
static int input_prepare(struct bnn_input *x, const struct bnn_model *m, const float *image,
                         enum bnn_mode mode, char err[BNN_ERR_LEN])
{
    const struct bnn_layer *l0 = &m->layers[0];
    x->m = m;
    x->mode = mode;
    /* one code path for the whole prediction, even if it is switched meanwhile */
    x->kern = bnn_kernels();
    x->packed = NULL;
    x->compact = 0;
    lrt_gemm_rows(x->kern, &x->gemm_quantum, &x->gemm_min);
    memcpy(x->x, image, l0->n_in * sizeof(float));
    if (mode != BNN_MODE_LRT)
        return BNN_OK;
    return lrt_prepare(x, image, err);
}

int bnn_input_new(struct bnn_input **out, const struct bnn_model *m, const float *image, enum bnn_mode mode,
                  char err[BNN_ERR_LEN])
{
    *out = NULL;
    int rc = check_mode(mode, err);
    if (rc != BNN_OK)
        return rc;
    struct bnn_input *x = input_alloc(m);
    if (!x) {
        snprintf(err, BNN_ERR_LEN, "out of memory for an input of %zu pixels", m->layers[0].n_in);
        return BNN_E_NOMEM;
    }
    rc = input_prepare(x, m, image, mode, err);
    if (rc != BNN_OK) {
        bnn_input_free(x);
        return rc;
    }
    *out = x;
    return BNN_OK;
}

static int sample_block(float *out, int want_probs, struct bnn_workspace *ws, const struct bnn_input *x,
                        size_t first, size_t n, uint64_t seed, char err[BNN_ERR_LEN])
{
    if (n == 0 || first > UINT32_MAX || n - 1 > UINT32_MAX - first) {
        snprintf(err, BNN_ERR_LEN, "passes [%zu, %zu + %zu): expected 1 or more passes, indices up to %u",
                 first, first, n, UINT32_MAX);
        return BNN_E_INVALID;
    }
    int rc = check_workspace(ws, x->m, err);
    if (rc != BNN_OK)
        return rc;
    size_t k = bnn_model_n_classes(x->m), end = first + n;
    for (size_t p0 = first, rows; p0 < end; p0 += rows) {
        float *o = out + p0 * k;
        if (x->mode == BNN_MODE_LRT) {
            /* a block starting off its tile takes fewer rows; the next one starts on one */
            size_t room = BNN_BLOCK - lrt_lead_rows(x, p0);
            rows = end - p0 < room ? end - p0 : room;
            lrt_block(o, ws, x, p0, rows, seed);
        } else {
            rows = end - p0 < BNN_BLOCK ? end - p0 : BNN_BLOCK;
            for (size_t r = 0; r < rows; r++)
                weights_pass(o + r * k, ws, x, (uint32_t)(p0 + r), seed);
        }
        if (want_probs)
            softmax_rows(o, o, rows, k);
    }
    return BNN_OK;
}

int bnn_sample_block(float *probs, struct bnn_workspace *ws, const struct bnn_input *x, size_t first,
                     size_t n, uint64_t seed, char err[BNN_ERR_LEN])
{
    return sample_block(probs, 1, ws, x, first, n, seed, err);
}

int bnn_sample_block_logits(float *logits, struct bnn_workspace *ws, const struct bnn_input *x, size_t first,
                            size_t n, uint64_t seed, char err[BNN_ERR_LEN])
{
    return sample_block(logits, 0, ws, x, first, n, seed, err);
}

/* The whole prediction as blocks of one input the workspace keeps (its
 * buffers reused from call to call). */
static int sample(float *out, int want_probs, struct bnn_workspace *ws, const struct bnn_model *m,
                  const float *image, size_t samples, uint64_t seed, enum bnn_mode mode,
                  char err[BNN_ERR_LEN])
{
    int rc = check_args(ws, m, samples, mode, err);
    if (rc != BNN_OK)
        return rc;
    /* sized by the shape, which check_args found the workspace's */
    if (!ws->input && !(ws->input = input_alloc(m))) {
        snprintf(err, BNN_ERR_LEN, "out of memory for an input of %zu pixels", m->layers[0].n_in);
        return BNN_E_NOMEM;
    }
    rc = input_prepare(ws->input, m, image, mode, err);
    for (size_t p0 = 0; rc == BNN_OK && p0 < samples; p0 += BNN_BLOCK) {
        size_t rows = samples - p0 < BNN_BLOCK ? samples - p0 : BNN_BLOCK;
        rc = sample_block(out, want_probs, ws, ws->input, p0, rows, seed, err);
    }
    return rc;
}

int bnn_sample_probs(float *probs, struct bnn_workspace *ws, const struct bnn_model *m, const float *image,
                     size_t samples, uint64_t seed, enum bnn_mode mode, char err[BNN_ERR_LEN])
{
    return sample(probs, 1, ws, m, image, samples, seed, mode, err);
}

int bnn_sample_logits(float *logits, struct bnn_workspace *ws, const struct bnn_model *m, const float *image,
                      size_t samples, uint64_t seed, enum bnn_mode mode, char err[BNN_ERR_LEN])
{
    return sample(logits, 0, ws, m, image, samples, seed, mode, err);
}

int bnn_predict(struct bnn_prediction *out, struct bnn_workspace *ws, const struct bnn_model *m,
                const float *image, size_t samples, uint64_t seed, double coverage, enum bnn_mode mode,
                char err[BNN_ERR_LEN])
{
    int rc = check_args(ws, m, samples, mode, err);
    if (rc != BNN_OK)
        return rc;
    if (!(coverage > 0.0 && coverage < 1.0)) {
        snprintf(err, BNN_ERR_LEN, "coverage must be in (0, 1), got %g", coverage);
        return BNN_E_INVALID;
    }
    size_t k = bnn_model_n_classes(m);
    if (samples > SIZE_MAX / sizeof(double) / k) {
        snprintf(err, BNN_ERR_LEN, "samples %zu too large", samples);
        return BNN_E_INVALID;
    }
    if (ws->probs_cap < samples * k) {
        float *p = realloc(ws->probs, samples * k * sizeof(float));
        if (!p) {
            snprintf(err, BNN_ERR_LEN, "out of memory for %zu x %zu probabilities", samples, k);
            return BNN_E_NOMEM;
        }
        ws->probs = p;
        ws->probs_cap = samples * k;
    }
    if (ws->scratch_cap < samples) {
        double *s = realloc(ws->scratch, samples * sizeof(double));
        if (!s) {
            snprintf(err, BNN_ERR_LEN, "out of memory for %zu doubles of scratch", samples);
            return BNN_E_NOMEM;
        }
        ws->scratch = s;
        ws->scratch_cap = samples;
    }
    rc = bnn_sample_probs(ws->probs, ws, m, image, samples, seed, mode, err);
    if (rc != BNN_OK)
        return rc;
    bnn_summarize(out, ws->probs, samples, k, coverage, ws->scratch);
    return BNN_OK;
}

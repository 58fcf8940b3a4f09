/* infer.c - Monte-Carlo prediction: local reparameterization (LRT) and the
 * weight-sampling reference (WEIGHTS). See infer.h and DESIGN.md.
 *
 * LRT (Kingma, Salimans & Welling 2015, eq. 6): for a fixed layer input h,
 *   z_j = sum_i h_i W_ij + b_j  with W_ij ~ N(mu_ij, s_ij^2), b_j ~ N(mb_j, sb_j^2)
 * is exactly N(h.mu_:j + mb_j, (h*h).s^2_:j + sb^2_j), independent across j.
 * Passes are rows of a (BNN_BLOCK, width) matrix; per layer the means and
 * variances are two SGEMMs. Layer 0's input is the image in every pass, so
 * its mean and std are computed once (a GEMV pair over the non-zero pixels)
 * and each pass only draws.
 *
 * Invariant: row r of a block is pass (block start + r); all its normals are
 * addressed by (seed, stream, pass, unit), so a pass's result is independent
 * of which block, thread or call computed it. That needs the GEMMs to give a
 * row the same bits whatever the number of rows. On the AVX2 and AVX-512
 * paths the GEMMs are ours (kernels.h gemm_packed: every element an in-order
 * sum from zero, on weights packed once per model and path, pack.h), which
 * holds by construction and beats OpenBLAS's repacking the weights on every
 * call. On the baseline path (old x86, other architectures) they are
 * OpenBLAS's, which holds only within limits that depend on its kernel
 * (measured, 0.3.21): the Haswell / Zen / Sandybridge SGEMM tiles rows by
 * 12, then 8, 4, 2, 1 with different summation orders, so a row's bits hold
 * only in full 12-row tiles; the SkylakeX / Cooperlake one (AVX-512) treats
 * every row alike from 5 rows on and takes a small-matrix path below. So
 * there the GEMMs run on zero-padded rows: a multiple of 12 (BNN_BLOCK is
 * one) for the former and any other kernel, at least 16 for the latter
 * (gemm_rows). test_infer checks the invariance on every path.
 */
#include "infer.h"
#include "cpu.h"
#include "kernels.h"
#include "pack.h"
#include "rng.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BNN_GEMM_ROWS 12
_Static_assert(BNN_BLOCK % BNN_GEMM_ROWS == 0, "BNN_BLOCK must be a multiple of BNN_GEMM_ROWS");

char *openblas_get_corename(void); /* OpenBLAS's own API (not in cblas.h) */

/* Row stride of the GEMM outputs: widths rounded up to whole vectors of
 * any path (gemm_packed writes whole vectors). */
#define Z_ALIGN 16

static size_t z_stride(size_t n)
{
    return (n + Z_ALIGN - 1) / Z_ALIGN * Z_ALIGN;
}

struct bnn_workspace {
    size_t n_layers;
    size_t dims[BNN_MAX_LAYERS + 1];
    size_t width;            /* max over dims */
    size_t live;             /* layer 0 units layer 1 ran on in the last LRT block */
    float *h, *h2;           /* (BNN_BLOCK, width) layer input and its square */
    float *zm, *zv;          /* (BNN_BLOCK, z_stride(width)) pre-activation mean, variance */
    float *eps;              /* (BNN_BLOCK, width) normals */
    struct bnn_input *input; /* the image of bnn_sample_probs, re-prepared per call */
    float *probs;            /* (probs_cap) T x k probabilities for bnn_predict */
    size_t probs_cap;
    double *scratch; /* (scratch_cap) for bnn_summarize */
    size_t scratch_cap;
};

/* Invariant: made for one model (m) and one mode, never written after
 * input_prepare returns. */
struct bnn_input {
    const struct bnn_model *m;
    const struct bnn_kernels *kern;  /* the code path of all its blocks */
    const struct bnn_packed *packed; /* m's layers 1.. packed for kern (LRT, when it has gemm_packed) */
    size_t gemm_quantum, gemm_min;   /* GEMM rows: a multiple of the one, at least the other */
    enum bnn_mode mode;
    float *x;        /* (dims[0]) the image */
    float *m0, *sd0; /* (dims[1]) layer 0 pre-activation mean and std (LRT),
                        compacted to the n_act live units when compact */
    /* Units of layer 0 that no draw can switch on for this image (see
     * find_live_units): when enough are dead, layer 1 runs on the live ones. */
    int compact;
    size_t n_act;
    size_t *act;           /* (dims[1]) live unit indices, ascending */
    size_t *lit;           /* (dims[0]) indices of the image's non-zero pixels */
    float *lit_x;          /* (dims[0]) their values */
    float *w1_mu, *w1_var; /* live rows of layer 1's w_mu, w_var, packed if kern packs (w1_cap floats each) */
    size_t w1_cap;
};

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

/* The GEMM row padding the path's GEMM needs (see the top): none for ours,
 * OpenBLAS's by the kernel it runs. */
static void gemm_rows(const struct bnn_kernels *k, size_t *quantum, size_t *min_rows)
{
    static const char *const row_uniform[] = {"SkylakeX", "Cooperlake"};
    *quantum = *min_rows = k->gemm_packed ? 1 : BNN_GEMM_ROWS;
    const char *core = k->gemm_packed ? NULL : openblas_get_corename();
    for (size_t i = 0; core && i < sizeof row_uniform / sizeof row_uniform[0]; i++)
        if (strcmp(core, row_uniform[i]) == 0)
            *quantum = 1, *min_rows = 16;
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

/* Zeroes rows [0, lead) and [lead + rows, g_rows) of h and h2 (width n):
 * the GEMMs' padding, whose results are never read, kept finite and
 * defined. */
static void pad_rows(struct bnn_workspace *ws, size_t lead, size_t rows, size_t g_rows, size_t n)
{
    memset(ws->h, 0, lead * n * sizeof(float));
    memset(ws->h2, 0, lead * n * sizeof(float));
    memset(ws->h + (lead + rows) * n, 0, (g_rows - lead - rows) * n * sizeof(float));
    memset(ws->h2 + (lead + rows) * n, 0, (g_rows - lead - rows) * n * sizeof(float));
}

/* The GEMM row where pass0 goes: its place in its quantum-row tile when the
 * passes are counted from 0, so that a block starting anywhere puts every
 * pass where a block starting at 0 does (0 without padding). */
static size_t lead_rows(const struct bnn_input *x, size_t pass0)
{
    return pass0 % x->gemm_quantum;
}

/* zm (g_rows, n_out) = h (g_rows, n_in) . w_mu (n_in, n_out); zv likewise
 * with h2 and w_var; row stride ldz. Layer l's weights: packed or not as
 * the path's GEMM wants, the live rows' copy for layer 1 when compact. */
static void layer_gemms(struct bnn_workspace *ws, const struct bnn_input *x, size_t l, size_t g_rows,
                        size_t n_in, size_t ldz)
{
    const struct bnn_layer *ly = &x->m->layers[l];
    const struct bnn_kernels *k = x->kern;
    size_t n_out = ly->n_out;
    int live_copy = l == 1 && x->compact;
    if (k->gemm_packed) {
        k->gemm_packed(ws->zm, ldz, ws->h, n_in, live_copy ? x->w1_mu : x->packed->w_mu[l], g_rows, n_in,
                       n_out);
        k->gemm_packed(ws->zv, ldz, ws->h2, n_in, live_copy ? x->w1_var : x->packed->w_var[l], g_rows, n_in,
                       n_out);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g_rows, (int)n_out, (int)n_in, 1.0f, ws->h,
                (int)n_in, live_copy ? x->w1_mu : ly->w_mu, (int)n_out, 0.0f, ws->zm, (int)ldz);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g_rows, (int)n_out, (int)n_in, 1.0f, ws->h2,
                (int)n_in, live_copy ? x->w1_var : ly->w_var, (int)n_out, 0.0f, ws->zv, (int)ldz);
}

/* Rows [pass0, pass0 + rows) of the LRT forward; writes (rows, k) logits;
 * lead_rows(pass0) + rows <= BNN_BLOCK. In the GEMMs pass p is row
 * lead + p - pass0 of a (g_rows, width) matrix, zero-padded when the GEMM
 * needs it (gemm_rows). Each layer's draw also writes the square of its
 * output (h2), the next layer's variance GEMM input, and adds the biases, so
 * the GEMMs start from zero. */
static void lrt_block(float *logits, struct bnn_workspace *ws, const struct bnn_input *x, size_t pass0,
                      size_t rows, uint64_t seed)
{
    const struct bnn_model *m = x->m;
    const struct bnn_kernels *k = x->kern;
    size_t L = m->n_layers;
    /* Layer 0: mean and std fixed for the image, only the draws differ. All
     * n units are drawn (a draw's address is its unit index); when compact,
     * only the live ones are kept, as the n_act columns of h. */
    size_t n0 = m->layers[0].n_out, n_live = x->compact ? x->n_act : n0;
    size_t q = x->gemm_quantum, lead = lead_rows(x, pass0);
    size_t g_rows = (lead + rows + q - 1) / q * q; /* <= BNN_BLOCK */
    g_rows = g_rows < x->gemm_min ? x->gemm_min : g_rows;
    float *z = L == 1 ? logits : ws->h + lead * n_live, *z2 = L == 1 ? NULL : ws->h2 + lead * n_live;
    for (size_t r = 0; r < rows; r++) {
        float *e = ws->eps;
        k->normals(e, n0, seed, 0, (uint32_t)(pass0 + r), 0);
        if (x->compact)
            for (size_t a = 0; a < n_live; a++) /* act[a] >= a: in place, ascending */
                e[a] = e[x->act[a]];
        k->draw_sd(z + r * n_live, z2 ? z2 + r * n_live : NULL, x->m0, x->sd0, e, n_live, L > 1);
    }
    if (z2) /* the GEMMs' padding rows */
        pad_rows(ws, lead, rows, g_rows, n_live);
    for (size_t l = 1; l < L; l++) {
        const struct bnn_layer *ly = &m->layers[l];
        size_t n_in = l == 1 ? n_live : ly->n_in, n_out = ly->n_out, ldz = z_stride(n_out);
        layer_gemms(ws, x, l, g_rows, n_in, ldz);
        /* h and h2 are consumed: the samples overwrite them (or go to logits) */
        int last = l == L - 1;
        z = last ? logits : ws->h + lead * n_out;
        z2 = last ? NULL : ws->h2 + lead * n_out;
        for (size_t r = 0; r < rows; r++) {
            const float *zm = ws->zm + (lead + r) * ldz, *zv = ws->zv + (lead + r) * ldz;
            k->normals(ws->eps, n_out, seed, (uint32_t)l, (uint32_t)(pass0 + r), 0);
            k->draw_var(z + r * n_out, z2 ? z2 + r * n_out : NULL, zm, ly->b_mu, zv, ly->b_var, ws->eps,
                        n_out, !last);
        }
        if (z2)
            pad_rows(ws, lead, rows, g_rows, n_out);
    }
    ws->live = n_live;
}

/* Once per image: m0 = x.w_mu + b_mu, sd0 = sqrt((x*x).w_var + b_var).
 * Only the rows of W whose pixel is non-zero contribute (about a fifth of an
 * MNIST digit), so this reads ~1 MB instead of the whole 4.9 MB of w_mu and
 * w_var; rows are added in ascending order, so the result is deterministic. */
static void lrt_first_layer(struct bnn_input *x, const float *image)
{
    const struct bnn_layer *ly = &x->m->layers[0];
    size_t n_out = ly->n_out;
    memcpy(x->m0, ly->b_mu, n_out * sizeof(float));
    memcpy(x->sd0, ly->b_var, n_out * sizeof(float));
    size_t n_lit = 0;
    for (size_t i = 0; i < ly->n_in; i++)
        if (image[i] != 0.0f) {
            x->lit[n_lit] = i;
            x->lit_x[n_lit++] = image[i];
        }
    x->kern->gemv_rows(x->m0, x->sd0, x->lit_x, x->lit, n_lit, ly->w_mu, ly->w_var, n_out);
    x->kern->sqrt_inplace(x->sd0, n_out);
}

/* Bound on |N(0,1)| draws: rng.h's largest is sqrt(2 ln 2^25) = 5.887 (times
 * 1 + 1e-6 for the float polynomials); 6 leaves a margin for rounding. */
#define RNG_ABS_MAX 6.0f

/* A layer-0 unit with m0 + 6 sd0 < 0 is below zero for every draw, so after
 * the ReLU it is 0 in every pass: its row of layer 1's weights contributes
 * exactly nothing. When at least a quarter of the units are dead (a rule that
 * depends on the image only, never on T, so a pass's bits do not depend on
 * how many passes were asked for), copy the live rows of layer 1's w_mu and
 * w_var (once per image, into the input) and run layer 1's GEMMs on those
 * alone. Keeps one unit even if all are dead (its h is 0: the GEMMs still
 * see K >= 1). BNN_E_NOMEM when the copy cannot be allocated. */
static int find_live_units(struct bnn_input *x)
{
    const struct bnn_model *m = x->m;
    size_t n = m->layers[0].n_out, live = 0;
    x->compact = 0;
    if (m->n_layers < 2)
        return BNN_OK;
    for (size_t j = 0; j < n; j++)
        if (x->m0[j] + RNG_ABS_MAX * x->sd0[j] >= 0.0f)
            x->act[live++] = j;
    if (live == 0)
        x->act[live++] = 0;
    if (4 * (n - live) < n)
        return BNN_OK;
    const struct bnn_layer *l1 = &m->layers[1];
    size_t need = x->kern->pack ? x->kern->packed_floats(live, l1->n_out) : live * l1->n_out;
    if (x->w1_cap < need) {
        float *mu = realloc(x->w1_mu, need * sizeof(float));
        if (mu)
            x->w1_mu = mu;
        float *var = mu ? realloc(x->w1_var, need * sizeof(float)) : NULL;
        if (!var)
            return BNN_E_NOMEM;
        x->w1_var = var;
        x->w1_cap = need;
    }
    for (size_t a = 0; a < live; a++) {
        size_t j = x->act[a];
        x->m0[a] = x->m0[j]; /* j >= a: in place, ascending */
        x->sd0[a] = x->sd0[j];
    }
    if (x->kern->pack) {
        x->kern->pack(x->w1_mu, l1->w_mu, x->act, live, l1->n_out);
        x->kern->pack(x->w1_var, l1->w_var, x->act, live, l1->n_out);
    } else {
        for (size_t a = 0; a < live; a++) {
            memcpy(x->w1_mu + a * l1->n_out, l1->w_mu + x->act[a] * l1->n_out, l1->n_out * sizeof(float));
            memcpy(x->w1_var + a * l1->n_out, l1->w_var + x->act[a] * l1->n_out, l1->n_out * sizeof(float));
        }
    }
    x->n_act = live;
    x->compact = 1;
    return BNN_OK;
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
    gemm_rows(x->kern, &x->gemm_quantum, &x->gemm_min);
    memcpy(x->x, image, l0->n_in * sizeof(float));
    if (mode != BNN_MODE_LRT)
        return BNN_OK;
    if (m->n_layers > 1 && x->kern->gemm_packed && !(x->packed = bnn_packed_get(m, x->kern, err)))
        return BNN_E_NOMEM;
    lrt_first_layer(x, image);
    if (find_live_units(x) != BNN_OK) {
        snprintf(err, BNN_ERR_LEN, "out of memory for the live rows of layer 1 (%zu x %zu floats, twice)",
                 l0->n_out, x->m->layers[1].n_out);
        return BNN_E_NOMEM;
    }
    return BNN_OK;
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
            size_t room = BNN_BLOCK - lead_rows(x, p0);
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

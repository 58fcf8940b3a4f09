/* infer_lrt.c - the LRT forward (infer.h): local reparameterization
 * (Kingma, Salimans & Welling 2015, eq. 6). For a fixed layer input h,
 *   z_j = sum_i h_i W_ij + b_j  with W_ij ~ N(mu_ij, s_ij^2), b_j ~ N(mb_j, sb_j^2)
 * is exactly N(h.mu_:j + mb_j, (h*h).s^2_:j + sb^2_j), independent across j.
 * Passes are rows of a (BNN_BLOCK, width) matrix; per layer the means and
 * variances are two GEMMs. Layer 0's input is the image in every pass, so
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
#include "infer_impl.h"
#include "cpu.h"
#include "rng.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BNN_GEMM_ROWS 12
_Static_assert(BNN_BLOCK % BNN_GEMM_ROWS == 0, "BNN_BLOCK must be a multiple of BNN_GEMM_ROWS");

char *openblas_get_corename(void); /* OpenBLAS's own API (not in cblas.h) */

/* None for ours, OpenBLAS's by the kernel it runs (see the top). */
void lrt_gemm_rows(const struct bnn_kernels *k, size_t *quantum, size_t *min_rows)
{
    static const char *const row_uniform[] = {"SkylakeX", "Cooperlake"};
    *quantum = *min_rows = k->gemm_packed ? 1 : BNN_GEMM_ROWS;
    const char *core = k->gemm_packed ? NULL : openblas_get_corename();
    for (size_t i = 0; core && i < sizeof row_uniform / sizeof row_uniform[0]; i++)
        if (strcmp(core, row_uniform[i]) == 0)
            *quantum = 1, *min_rows = 16;
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

size_t lrt_lead_rows(const struct bnn_input *x, size_t pass0)
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
 * lrt_lead_rows(pass0) + rows <= BNN_BLOCK. In the GEMMs pass p is row
 * lead + p - pass0 of a (g_rows, width) matrix, zero-padded when the GEMM
 * needs it (gemm_rows). Each layer's draw also writes the square of its
 * output (h2), the next layer's variance GEMM input, and adds the biases, so
 * the GEMMs start from zero. */
void lrt_block(float *logits, struct bnn_workspace *ws, const struct bnn_input *x, size_t pass0, size_t rows,
               uint64_t seed)
{
    const struct bnn_model *m = x->m;
    const struct bnn_kernels *k = x->kern;
    size_t L = m->n_layers;
    /* Layer 0: mean and std fixed for the image, only the draws differ. All
     * n units are drawn (a draw's address is its unit index); when compact,
     * only the live ones are kept, as the n_act columns of h. */
    size_t n0 = m->layers[0].n_out, n_live = x->compact ? x->n_act : n0;
    size_t q = x->gemm_quantum, lead = lrt_lead_rows(x, pass0);
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
 * w_var (once per image, into the input; packed when the path's GEMM is
 * ours) and run layer 1's GEMMs on those alone. Keeps one unit even if all are dead (its h is 0: the GEMMs
 * still see K >= 1). BNN_E_NOMEM when the copy cannot be allocated. */
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

int lrt_prepare(struct bnn_input *x, const float *image, char err[BNN_ERR_LEN])
{
    const struct bnn_model *m = x->m;
    if (bnn_packed_get(&x->packed, m, x->kern, err) != BNN_OK)
        return BNN_E_NOMEM;
    lrt_first_layer(x, image);
    if (find_live_units(x) != BNN_OK) {
        snprintf(err, BNN_ERR_LEN, "out of memory for the live rows of layer 1 (%zu x %zu floats, twice)",
                 m->layers[0].n_out, m->layers[1].n_out);
        return BNN_E_NOMEM;
    }
    return BNN_OK;
}

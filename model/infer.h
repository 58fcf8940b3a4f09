/* infer.h - Monte-Carlo prediction with a bnn_model.
 *
 * Mode LRT (default): local reparameterization (Kingma, Salimans & Welling
 * 2015). Given a layer's input h, each pre-activation is exactly
 * N(h.mu_W + mu_b, (h*h).sigma_W^2 + sigma_b^2), so T passes are stacked as
 * GEMM rows in blocks of BNN_BLOCK and only the pre-activations are drawn.
 * Mode WEIGHTS: the reference that samples every weight and bias per pass.
 * Both have the same output distribution for one image.
 *
 * Randomness: rng.h keyed by seed, addressed by (layer, pass, unit), so a
 * result depends only on (model, image, T, seed, mode) - never on threads or
 * on how the passes fall into blocks. Bit-exact replay holds for one build on
 * one code path (cpu.h: one prediction runs on one). LRT on the AVX2 and
 * AVX-512 paths runs only libbnn's kernels, which give those two the same
 * bits whatever OpenBLAS picks; on the baseline path (no fused multiply-add)
 * and in WEIGHTS mode OpenBLAS's kernels, chosen by CPU, also move last bits
 * (not the distribution).
 * A workspace is per thread (scratch bounded by BNN_BLOCK whatever T is:
 * 1.9 MB for the shipped 784-784-256-256-10 model, plus bnn_predict's T x k
 * buffer and the input it prepares); a bnn_input is per image (layer 0's
 * state and the live rows of layer 1's weights, up to 1.6 MB) and, like the
 * model, shared read-only by the threads computing its blocks. The model
 * keeps its LRT weights packed for each code path it has run on (pack.h:
 * 2.2 MB per path for the shipped model).
 */
#ifndef BNN_INFER_H
#define BNN_INFER_H

#include "bnn.h"

/* Passes per GEMM block: the unit of scheduling (service/pool.c) and the
 * rows one panel of packed weights serves while it is in cache. On the
 * baseline path OpenBLAS repacks the weights on every call, so taller blocks
 * amortise that (128 was 3-8 % faster than 64 at T = 100 and 1000 on a Zen
 * 4, 256 no better). Scratch is 5 x 120 x width floats (1.9 MB for the
 * shipped model). A multiple of BNN_GEMM_ROWS (infer.c). */
#define BNN_BLOCK 120

enum bnn_mode { BNN_MODE_LRT = 0, BNN_MODE_WEIGHTS = 1 };

/* Random streams (rng.h) so the two modes never share draws:
 *   LRT      pre-activations of layer l, pass p, unit j: stream l, unit j
 *   WEIGHTS  weight (i, j) of layer l:  stream BNN_STREAM_W | l, unit i*n_out+j
 *            bias j of layer l:         stream BNN_STREAM_B | l, unit j */
#define BNN_STREAM_W 0x40000000u
#define BNN_STREAM_B 0xC0000000u

/* "lrt" / "weights"; parse returns -1 for an unknown name. */
const char *bnn_mode_name(enum bnn_mode mode);
int bnn_mode_parse(const char *name, enum bnn_mode *out);

struct bnn_class_stats {
    double mean, std;    /* over the T passes; std with ddof = 0 */
    double lower, upper; /* numpy linear quantiles at (1-c)/2 and (1+c)/2 */
};

struct bnn_prediction {
    size_t n_classes;
    int predicted; /* argmax of the means */
    struct bnn_class_stats classes[BNN_MAX_CLASSES];
    double entropy;   /* H[mean p], nats */
    double aleatoric; /* E[H[p]] */
    double epistemic; /* mutual information = entropy - aleatoric, >= 0 */
};

struct bnn_workspace;

/* Scratch for one thread and one model shape. NULL on out of memory.
 * Owned by caller: free with bnn_workspace_free (NULL-safe). */
struct bnn_workspace *bnn_workspace_new(const struct bnn_model *m);
void bnn_workspace_free(struct bnn_workspace *ws);

/* An image made ready for its passes, once, before any of them: for LRT
 * layer 0's pre-activation mean and std (the same in every pass) and the
 * units some draw can switch on, with their rows of layer 1; for WEIGHTS a
 * copy of the image. It also fixes the kernels' code path (cpu.h) for every
 * block computed from it. Read-only once made: any number of threads may
 * compute its blocks at once, each with its own workspace. */
struct bnn_input;

/* Prepares image (n_in floats, MNIST scaled to [0,1]) for model m in mode.
 * BNN_OK with *out set (owned by caller: bnn_input_free, NULL-safe; m must
 * outlive it), or BNN_E_INVALID (bad mode) / BNN_E_NOMEM with err filled. */
int bnn_input_new(struct bnn_input **out, const struct bnn_model *m, const float *image, enum bnn_mode mode,
                  char err[BNN_ERR_LEN]);
void bnn_input_free(struct bnn_input *x);

/* The model x was prepared for. */
const struct bnn_model *bnn_input_model(const struct bnn_input *x);

/* The block entry point: passes [first, first + n) of the prepared image
 * with this seed, written to rows first .. first + n - 1 of probs, the
 * caller's T x n_classes buffer (row p is pass p, as in bnn_sample_probs).
 * A pass's bits depend only on (model, image, seed, mode, pass index, code
 * path): any split of the passes into blocks, computed in any order by any
 * threads, gives the same T x k rows. n may exceed BNN_BLOCK (done in
 * blocks of BNN_BLOCK). Returns BNN_OK, or BNN_E_INVALID (n == 0, a pass
 * index past UINT32_MAX, a workspace for another model shape) with err. */
int bnn_sample_block(float *probs, struct bnn_workspace *ws, const struct bnn_input *x, size_t first,
                     size_t n, uint64_t seed, char err[BNN_ERR_LEN]);
/* As bnn_sample_block but writes the pre-softmax logits. */
int bnn_sample_block_logits(float *logits, struct bnn_workspace *ws, const struct bnn_input *x, size_t first,
                            size_t n, uint64_t seed, char err[BNN_ERR_LEN]);

/* Runs T = samples passes on image (n_in floats, MNIST scaled to [0,1]) and
 * writes the T x n_classes softmax probabilities to probs (row per pass;
 * caller-allocated, samples * n_classes floats): bnn_input for the image
 * (held by the workspace) and bnn_sample_block over [0, T) in blocks of
 * BNN_BLOCK. Returns BNN_OK, or BNN_E_INVALID (samples == 0, bad mode) /
 * BNN_E_NOMEM with err filled. */
int bnn_sample_probs(float *probs, struct bnn_workspace *ws, const struct bnn_model *m, const float *image,
                     size_t samples, uint64_t seed, enum bnn_mode mode, char err[BNN_ERR_LEN]);

/* As bnn_sample_probs but writes the pre-softmax logits (T x n_classes), for
 * checking the sampled distribution against its closed form. */
int bnn_sample_logits(float *logits, struct bnn_workspace *ws, const struct bnn_model *m, const float *image,
                      size_t samples, uint64_t seed, enum bnn_mode mode, char err[BNN_ERR_LEN]);

/* After an LRT block: how many of layer 0's units layer 1 ran on. Units that
 * no draw can switch on for the image (mean + 6 std < 0; draws are bounded
 * by 5.89) are dropped when they are at least a quarter of the layer, which
 * changes rounding only, never the distribution. (For tests and the bench.) */
size_t bnn_workspace_live_units(const struct bnn_workspace *ws);

/* Makes ahead of the first prediction what predictions on the code path in
 * use take from the model (its LRT weights packed for our GEMM, pack.h),
 * so that one is not slower. BNN_OK, or BNN_E_NOMEM with err. Optional:
 * a prediction makes it when missing. */
int bnn_model_prepare(const struct bnn_model *m, char err[BNN_ERR_LEN]);

/* What runs the LRT layers' GEMMs on the code path in use (cpu.h): "packed"
 * (libbnn's own kernel, AVX2 and AVX-512 paths) or "openblas" (baseline). */
const char *bnn_lrt_gemm_name(void);

/* What one pass of mode costs, in LRT passes, on the kernels' code path in
 * use (cpu.h): 1 for LRT; for WEIGHTS the ratio of the per-pass CPU times
 * bnn-bench measured at T = 1000 on the shipped 784-784-256-256-10 model
 * (AMD EPYC Zen 5): 87 on avx512, 89 on avx2, 171 on baseline (0.473 /
 * 0.897 / 2.11 ms against 5.42 / 10.1 / 12.4 us).
 * For schedulers and admission; another shape or machine moves it. */
unsigned bnn_pass_cost(enum bnn_mode mode);

/* Summarises T x k probabilities at the given coverage in (0,1). scratch must
 * hold samples doubles. */
void bnn_summarize(struct bnn_prediction *out, const float *probs, size_t samples, size_t k, double coverage,
                   double *scratch);

/* bnn_sample_probs + bnn_summarize with memory owned by the workspace
 * (grown as needed). coverage in (0,1). */
int bnn_predict(struct bnn_prediction *out, struct bnn_workspace *ws, const struct bnn_model *m,
                const float *image, size_t samples, uint64_t seed, double coverage, enum bnn_mode mode,
                char err[BNN_ERR_LEN]);

#endif

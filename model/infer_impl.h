/* infer_impl.h - what infer.c (workspaces, inputs, the entry points, weight
 * sampling) and infer_lrt.c (the LRT forward) share: the workspace and
 * input structs and the LRT steps. Internal to libbnn.
 */
#ifndef BNN_INFER_IMPL_H
#define BNN_INFER_IMPL_H

#include "infer.h"
#include "kernels.h"
#include "pack.h"

/* Row stride of the GEMM outputs: widths rounded up to whole vectors of
 * any path (gemm_packed writes whole vectors). */
#define Z_ALIGN 16

static inline size_t z_stride(size_t n)
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

/* The GEMM row padding the path's GEMM needs (infer_lrt.c): rows are a
 * multiple of quantum and at least min_rows. */
void lrt_gemm_rows(const struct bnn_kernels *k, size_t *quantum, size_t *min_rows);

/* The GEMM row where pass0 goes: its place in its quantum-row tile when the
 * passes are counted from 0, so that a block starting anywhere puts every
 * pass where a block starting at 0 does (0 without padding). */
size_t lrt_lead_rows(const struct bnn_input *x, size_t pass0);

/* The image's part of LRT, once per input (x->m, kern, gemm rows and x set):
 * the packed weights, layer 0's mean and std, the live units. BNN_E_NOMEM
 * with err on out of memory. */
int lrt_prepare(struct bnn_input *x, const float *image, char err[BNN_ERR_LEN]);

/* Passes [pass0, pass0 + rows) of the LRT forward into (rows, k) logits;
 * lrt_lead_rows(x, pass0) + rows <= BNN_BLOCK. */
void lrt_block(float *logits, struct bnn_workspace *ws, const struct bnn_input *x, size_t pass0, size_t rows,
               uint64_t seed);

#endif

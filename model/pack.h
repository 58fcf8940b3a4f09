/* pack.h - a model's LRT weights packed for the GEMM of one code path
 * (kernels.h gemm_packed): layers 1 .. n-1's w_mu and w_var, made on a
 * path's first prediction and kept with the model. Internal to libbnn.
 *
 * Invariant: a packed copy is never written after it is published, so any
 * number of threads read it without locks; the cache's lock is taken only
 * to make one. bnn_model_update_var drops the copies (the weights changed),
 * which, like writing the weights, must not race with a prediction.
 */
#ifndef BNN_PACK_H
#define BNN_PACK_H

#include "bnn.h"
#include "kernels.h"

struct bnn_packed {
    const struct bnn_kernels *kern;                      /* the path it is packed for */
    float *w_mu[BNN_MAX_LAYERS], *w_var[BNN_MAX_LAYERS]; /* layers 1..; NULL for layer 0 */
    float *storage;                                      /* the one allocation they point into */
};

struct bnn_pack_cache;

/* NULL on out of memory. */
struct bnn_pack_cache *bnn_pack_cache_new(void);
/* NULL-safe. */
void bnn_pack_cache_free(struct bnn_pack_cache *c);
/* Frees every packed copy (the weights were rewritten). */
void bnn_pack_cache_clear(struct bnn_pack_cache *c);

/* *out = m's weights packed for kern's path, made on first use (borrowed
 * until the model is freed or updated), or NULL when that path's GEMM is
 * not ours or m has one layer (nothing to pack). BNN_OK, or BNN_E_NOMEM
 * with err. */
int bnn_packed_get(const struct bnn_packed **out, const struct bnn_model *m, const struct bnn_kernels *kern,
                   char err[BNN_ERR_LEN]);

#endif

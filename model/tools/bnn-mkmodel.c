/* bnn-mkmodel - writes a random (untrained) model as safetensors, for tests
 * of the serving path before, or without, the trained weights:
 *   bnn-mkmodel OUT [SEED [DIMS [SIGMA]]]
 * DIMS is "784-784-256-256-10" (default), SIGMA the posterior scale of every
 * weight (default 0.05). Means are N(0, 1/n_in) (He-like scale, so logits
 * stay O(1)) drawn from the project's Philox stream: same seed, same file.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnn.h"
#include "rng.h"
#include "weights.h"

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 5 || strcmp(argv[1], "--help") == 0) {
        fprintf(argc < 2 ? stderr : stdout, "usage: bnn-mkmodel OUT [SEED [DIMS [SIGMA]]]\n");
        return argc < 2 ? 2 : 0;
    }
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    const char *dims_s = argc > 3 ? argv[3] : "784-784-256-256-10";
    double sigma = argc > 4 ? strtod(argv[4], NULL) : 0.05;
    size_t dims[BNN_MAX_LAYERS + 1], n = 0;
    for (const char *p = dims_s; *p && n <= BNN_MAX_LAYERS;) {
        char *end;
        dims[n++] = strtoul(p, &end, 10);
        if (end == p || (*end && *end != '-')) {
            fprintf(stderr, "bnn-mkmodel: error: DIMS: expected e.g. 784-256-10, got '%s'\n", dims_s);
            return 2;
        }
        p = *end ? end + 1 : end;
    }
    if (!(sigma > 0) || n < 2) {
        fprintf(stderr, "bnn-mkmodel: error: expected SIGMA > 0 and at least two DIMS\n");
        return 2;
    }
    char err[BNN_ERR_LEN];
    struct bnn_model *m = bnn_model_new(dims, n - 1, err);
    if (!m) {
        fprintf(stderr, "bnn-mkmodel: error: %s\n", err);
        return 1;
    }
    for (size_t l = 0; l < m->n_layers; l++) {
        struct bnn_layer *L = &m->layers[l];
        size_t nw = L->n_in * L->n_out;
        rng_normals(L->w_mu, nw, seed, (uint32_t)l, 0, 0);
        float scale = (float)(1.0 / sqrt((double)L->n_in));
        for (size_t i = 0; i < nw; i++) {
            L->w_mu[i] *= scale;
            L->w_sigma[i] = (float)sigma;
        }
        for (size_t i = 0; i < L->n_out; i++) {
            L->b_mu[i] = 0.0f;
            L->b_sigma[i] = (float)sigma;
        }
    }
    bnn_model_update_var(m);
    bnn_meta_set(m, "activation", "relu");
    bnn_meta_set(m, "input", "mnist-28x28-gray");
    bnn_meta_set(m, "trained", "no: random weights from bnn-mkmodel, for tests");
    int rc = bnn_weights_save(argv[1], m, err);
    bnn_model_free(m);
    if (rc != BNN_OK) {
        fprintf(stderr, "bnn-mkmodel: error: %s\n", err);
        return 1;
    }
    return 0;
}

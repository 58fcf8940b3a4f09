/* fuzz_safetensors.c - libFuzzer harness for the weights loader: any bytes
 * are refused with a message, or give a model whose invariant holds (layer
 * widths chain, every variance finite and > 0) and that serialises and
 * parses back.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "bnn.h"
#include "weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bnn_model *m = NULL;
    char err[BNN_ERR_LEN];
    err[0] = '\0';
    if (bnn_weights_parse(&m, data, size, err) != BNN_OK) {
        if (m || !err[0])
            abort();
        return 0;
    }
    if (!m || m->n_layers < 1 || m->n_layers > BNN_MAX_LAYERS)
        abort();
    for (size_t l = 0; l < m->n_layers; l++) {
        const struct bnn_layer *L = &m->layers[l];
        if (l + 1 < m->n_layers && L->n_out != m->layers[l + 1].n_in)
            abort();
        for (size_t i = 0; i < L->n_in * L->n_out; i++)
            if (!isfinite(L->w_mu[i]) || !(L->w_var[i] > 0) || !isfinite(L->w_var[i]))
                abort();
        for (size_t i = 0; i < L->n_out; i++)
            if (!isfinite(L->b_mu[i]) || !(L->b_var[i] > 0) || !isfinite(L->b_var[i]))
                abort();
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (bnn_weights_serialize(&buf, &len, m, err) == BNN_OK) {
        struct bnn_model *again = NULL;
        if (bnn_weights_parse(&again, buf, len, err) != BNN_OK)
            abort(); /* what we write, we must read */
        bnn_model_free(again);
        free(buf);
    }
    bnn_model_free(m);
    return 0;
}

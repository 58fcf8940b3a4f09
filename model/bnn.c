/* bnn.c - the model container: one allocation for every tensor, named views
 * into it, metadata, and the fault-injection hook used by the loaders.
 *
 * Storage layout per layer (floats, consecutive):
 *   w_mu, w_sigma, w_var (n_in*n_out each), b_mu, b_sigma, b_var (n_out each).
 */
#include "bnn.h"
#include "fault.h"
#include "pack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fault injection (see fault.h) -------------------------------------- */

/* Thread-local on purpose: tests arm it in one thread without disturbing any
 * other; in production it stays 0 and costs one compare per operation. */
static _Thread_local long fault_nth;
static _Thread_local long fault_ops;
static _Thread_local int fault_hit;

void bnn_fault_set(long nth)
{
    fault_nth = nth > 0 ? nth : 0;
    fault_ops = 0;
    fault_hit = 0;
}

long bnn_fault_ops(void)
{
    return fault_ops;
}

int bnn_fault_fired(void)
{
    return fault_hit;
}

static int fault_now(void)
{
    fault_ops++;
    if (fault_nth != 0 && fault_ops == fault_nth) {
        fault_hit = 1;
        return 1;
    }
    return 0;
}

void *bnn_fault_malloc(size_t n)
{
    return fault_now() ? NULL : malloc(n ? n : 1);
}

void *bnn_fault_calloc(size_t n, size_t size)
{
    return fault_now() ? NULL : calloc(n ? n : 1, size ? size : 1);
}

void *bnn_fault_realloc(void *p, size_t n)
{
    return fault_now() ? NULL : realloc(p, n ? n : 1);
}

int bnn_fault_io(void)
{
    return fault_now();
}

/* ---- model --------------------------------------------------------------- */

struct bnn_model *bnn_model_new(const size_t *dims, size_t n_layers, char err[BNN_ERR_LEN])
{
    if (n_layers < 1 || n_layers > BNN_MAX_LAYERS) {
        snprintf(err, BNN_ERR_LEN, "bnn_model_new: layer count must be 1..%d, got %zu", BNN_MAX_LAYERS,
                 n_layers);
        return NULL;
    }
    size_t total = 0;
    for (size_t i = 0; i < n_layers; i++) {
        size_t n_in = dims[i], n_out = dims[i + 1];
        if (n_in < 1 || n_out < 1 || n_in > (1u << 24) || n_out > (1u << 24)) {
            snprintf(err, BNN_ERR_LEN, "bnn_model_new: layer %zu: widths must be 1..%u, got %zu -> %zu", i,
                     1u << 24, n_in, n_out);
            return NULL;
        }
        if (n_in > ((size_t)1 << 40) / n_out) {
            snprintf(err, BNN_ERR_LEN, "bnn_model_new: layer %zu: %zu x %zu weights is too many", i, n_in,
                     n_out);
            return NULL;
        }
        total += 3 * (n_in * n_out + n_out);
    }
    if (dims[n_layers] > BNN_MAX_CLASSES) {
        snprintf(err, BNN_ERR_LEN, "bnn_model_new: output width must be <= %d classes, got %zu",
                 BNN_MAX_CLASSES, dims[n_layers]);
        return NULL;
    }
    struct bnn_model *m = bnn_fault_calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, BNN_ERR_LEN, "bnn_model_new: out of memory (model struct)");
        return NULL;
    }
    if (total > SIZE_MAX / sizeof(float) || !(m->storage = bnn_fault_malloc(total * sizeof(float))) ||
        !(m->pack = bnn_pack_cache_new())) {
        snprintf(err, BNN_ERR_LEN, "bnn_model_new: out of memory (%zu floats)", total);
        free(m->storage);
        free(m);
        return NULL;
    }
    m->n_layers = n_layers;
    float *p = m->storage;
    for (size_t i = 0; i < n_layers; i++) {
        struct bnn_layer *L = &m->layers[i];
        size_t nw = dims[i] * dims[i + 1], nb = dims[i + 1];
        L->n_in = dims[i];
        L->n_out = dims[i + 1];
        L->w_mu = p, p += nw;
        L->w_sigma = p, p += nw;
        L->w_var = p, p += nw;
        L->b_mu = p, p += nb;
        L->b_sigma = p, p += nb;
        L->b_var = p, p += nb;
        memset(L->w_mu, 0, nw * sizeof(float));
        memset(L->b_mu, 0, nb * sizeof(float));
        for (size_t j = 0; j < nw; j++)
            L->w_sigma[j] = L->w_var[j] = 1.0f;
        for (size_t j = 0; j < nb; j++)
            L->b_sigma[j] = L->b_var[j] = 1.0f;
    }
    return m;
}

void bnn_model_free(struct bnn_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_meta; i++) {
        free(m->meta[i].key);
        free(m->meta[i].value);
    }
    free(m->meta);
    free(m->storage);
    bnn_pack_cache_free(m->pack);
    free(m);
}

void bnn_model_update_var(struct bnn_model *m)
{
    bnn_pack_cache_clear(m->pack);
    for (size_t i = 0; i < m->n_layers; i++) {
        struct bnn_layer *L = &m->layers[i];
        size_t nw = L->n_in * L->n_out;
        for (size_t j = 0; j < nw; j++)
            L->w_var[j] = L->w_sigma[j] * L->w_sigma[j];
        for (size_t j = 0; j < L->n_out; j++)
            L->b_var[j] = L->b_sigma[j] * L->b_sigma[j];
    }
}

size_t bnn_model_param_count(const struct bnn_model *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_layers; i++)
        n += m->layers[i].n_in * m->layers[i].n_out + m->layers[i].n_out;
    return 2 * n;
}

size_t bnn_model_n_in(const struct bnn_model *m)
{
    return m->n_layers ? m->layers[0].n_in : 0;
}

size_t bnn_model_n_classes(const struct bnn_model *m)
{
    return m->n_layers ? m->layers[m->n_layers - 1].n_out : 0;
}

const char *bnn_meta_get(const struct bnn_model *m, const char *key)
{
    for (size_t i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta[i].key, key) == 0)
            return m->meta[i].value;
    return NULL;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = bnn_fault_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int bnn_meta_set(struct bnn_model *m, const char *key, const char *value)
{
    char *v = dup_str(value);
    if (!v)
        return BNN_E_NOMEM;
    for (size_t i = 0; i < m->n_meta; i++) {
        if (strcmp(m->meta[i].key, key) == 0) {
            free(m->meta[i].value);
            m->meta[i].value = v;
            return BNN_OK;
        }
    }
    char *k = dup_str(key);
    struct bnn_meta *grown = k ? bnn_fault_realloc(m->meta, (m->n_meta + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(k);
        free(v);
        return BNN_E_NOMEM;
    }
    m->meta = grown;
    m->meta[m->n_meta].key = k;
    m->meta[m->n_meta].value = v;
    m->n_meta++;
    return BNN_OK;
}

char *bnn_model_arch(const struct bnn_model *m, char *buf, size_t len)
{
    if (!len)
        return buf;
    buf[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i <= m->n_layers && m->n_layers; i++) {
        size_t w = i < m->n_layers ? m->layers[i].n_in : m->layers[i - 1].n_out;
        int n = snprintf(buf + used, len - used, i ? "-%zu" : "%zu", w);
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
    return buf;
}

const char *bnn_status_name(int status)
{
    switch (status) {
    case BNN_OK:
        return "ok";
    case BNN_E_IO:
        return "io";
    case BNN_E_FORMAT:
        return "format";
    case BNN_E_INVALID:
        return "invalid";
    case BNN_E_NOMEM:
        return "nomem";
    case BNN_E_INTERNAL:
        return "internal";
    default:
        return "unknown";
    }
}

void bnn_err_prefix(char err[BNN_ERR_LEN], const char *prefix)
{
    /* Built by hand: snprintf into err from a copy of err trips
     * -Wformat-truncation, and truncating the tail is what we want. */
    char tmp[BNN_ERR_LEN];
    size_t pl = strlen(prefix), el = strnlen(err, BNN_ERR_LEN - 1), used = 0;
    memcpy(tmp, err, el);
    tmp[el] = '\0';
    for (size_t i = 0; i < pl && used < BNN_ERR_LEN - 1; i++)
        err[used++] = prefix[i];
    for (const char *s = ": "; *s && used < BNN_ERR_LEN - 1; s++)
        err[used++] = *s;
    for (size_t i = 0; i < el && used < BNN_ERR_LEN - 1; i++)
        err[used++] = tmp[i];
    err[used] = '\0';
}

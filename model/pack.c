/* pack.c - the packed copies of pack.h: one per code path a model has run
 * on, published with release stores and read with acquire loads, so the
 * lock is taken only by the first prediction on a path. */
#include "pack.h"
#include "cpu.h"
#include "fault.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

struct bnn_pack_cache {
    pthread_mutex_t lock;
    _Atomic(struct bnn_packed *) slot[BNN_CPU_N_PATHS];
};

struct bnn_pack_cache *bnn_pack_cache_new(void)
{
    struct bnn_pack_cache *c = bnn_fault_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    for (size_t i = 0; i < BNN_CPU_N_PATHS; i++)
        atomic_init(&c->slot[i], NULL);
    return c;
}

static void packed_free(struct bnn_packed *p)
{
    if (p)
        free(p->storage);
    free(p);
}

void bnn_pack_cache_clear(struct bnn_pack_cache *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < BNN_CPU_N_PATHS; i++)
        packed_free(atomic_exchange(&c->slot[i], NULL));
    pthread_mutex_unlock(&c->lock);
}

void bnn_pack_cache_free(struct bnn_pack_cache *c)
{
    if (!c)
        return;
    bnn_pack_cache_clear(c);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* A new packed copy of m's layers 1.. for kern; NULL on out of memory. */
static struct bnn_packed *packed_new(const struct bnn_model *m, const struct bnn_kernels *kern)
{
    struct bnn_packed *p = bnn_fault_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->kern = kern;
    size_t total = 0;
    for (size_t l = 1; l < m->n_layers; l++)
        total += 2 * kern->packed_floats(m->layers[l].n_in, m->layers[l].n_out);
    if (total > 0 && !(p->storage = bnn_fault_malloc(total * sizeof(float)))) {
        free(p);
        return NULL;
    }
    float *at = p->storage;
    for (size_t l = 1; l < m->n_layers; l++) {
        const struct bnn_layer *ly = &m->layers[l];
        size_t n = kern->packed_floats(ly->n_in, ly->n_out);
        p->w_mu[l] = at, at += n;
        p->w_var[l] = at, at += n;
        kern->pack(p->w_mu[l], ly->w_mu, NULL, ly->n_in, ly->n_out);
        kern->pack(p->w_var[l], ly->w_var, NULL, ly->n_in, ly->n_out);
    }
    return p;
}

/* The published copy for kern, or NULL. */
static struct bnn_packed *lookup(struct bnn_pack_cache *c, const struct bnn_kernels *kern)
{
    for (size_t i = 0; i < BNN_CPU_N_PATHS; i++) {
        struct bnn_packed *p = atomic_load_explicit(&c->slot[i], memory_order_acquire);
        if (p && p->kern == kern)
            return p;
    }
    return NULL;
}

int bnn_packed_get(const struct bnn_packed **out, const struct bnn_model *m, const struct bnn_kernels *kern,
                   char err[BNN_ERR_LEN])
{
    *out = NULL;
    if (!kern->gemm_packed || m->n_layers < 2)
        return BNN_OK;
    struct bnn_pack_cache *c = m->pack;
    struct bnn_packed *p = lookup(c, kern);
    if (!p) {
        pthread_mutex_lock(&c->lock);
        p = lookup(c, kern);
        for (size_t i = 0; !p && i < BNN_CPU_N_PATHS; i++) {
            if (atomic_load_explicit(&c->slot[i], memory_order_relaxed))
                continue;
            p = packed_new(m, kern);
            if (p)
                atomic_store_explicit(&c->slot[i], p, memory_order_release);
            break;
        }
        pthread_mutex_unlock(&c->lock);
    }
    if (!p) {
        snprintf(err, BNN_ERR_LEN, "out of memory packing the weights for the %s path", kern->name);
        return BNN_E_NOMEM;
    }
    *out = p;
    return BNN_OK;
}

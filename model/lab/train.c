/* train.c - Bayes by backprop with the local reparameterization trick: the
 * net (a stack of bayes_dense.h layers with ReLU and dropout between them),
 * Adam, and the training run.
 *
 * (The recipes and the training run are in train_run.c.)
 *
 * Layout of every parameter-shaped array (params, grads, Adam m and v, and
 * `derived`), layer after layer:
 *     w_mu (n_in, n_out) | w_rho (n_in, n_out) | b_mu (n_out) | b_rho (n_out)
 * `derived` holds sigma = softplus(rho) in the mu slots and sigma^2 in the
 * rho slots (w_sigma | w_var | b_sigma | b_var), recomputed after every
 * update. The rho slots of `grads` hold dL/dvar between the layer backward
 * passes and bayes_dense_kl_backward, which turns them into dL/drho.
 */
#include "train.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bayes_dense.h"
#include "rng.h"
#include "weights.h"

/* rng.h stream tags: each use of randomness has its own, so changing one
 * (say the batch size) never shifts the draws of another. */
enum {
    STREAM_INIT = 0x100, /* + layer: initial means */
    /* 0x200: train_run.c's shuffle; 0x600, 0x601: augment.c */
    STREAM_EPS = 0x300,  /* + layer, pass = step: LRT noise */
    STREAM_DROP = 0x400, /* + layer, pass = step: dropout uniforms */
    STREAM_VAL = 0x500   /* + layer, pass = sample: validation noise */
};

#define ADAM_B1 0.9
#define ADAM_B2 0.999
#define ADAM_EPS 1e-8f

struct train_net {
    size_t n_layers, max_batch, n_params, max_width;
    size_t n_in[BNN_MAX_LAYERS], n_out[BNN_MAX_LAYERS];
    size_t off[BNN_MAX_LAYERS]; /* layer start in every parameter-shaped array */
    int threads;

    float *mem;     /* the one allocation for the five arrays below */
    float *params;  /* (n_params) mu and rho */
    float *grads;   /* (n_params) */
    float *adam_m;  /* (n_params) */
    float *adam_v;  /* (n_params) */
    float *derived; /* (n_params) sigma and var */

    float *act;                   /* the one allocation for the activations below */
    float *in[BNN_MAX_LAYERS];    /* (B, n_in) layer input (after dropout) */
    float *in_sq[BNN_MAX_LAYERS]; /* (B, n_in) its square */
    float *sd[BNN_MAX_LAYERS];    /* (B, n_out) sqrt(v) */
    float *eps[BNN_MAX_LAYERS];   /* (B, n_out) N(0,1) */
    float *z[BNN_MAX_LAYERS];     /* (B, n_out) pre-activations */
    float *mask[BNN_MAX_LAYERS];  /* (B, n_out) 0 or 1/(1-p), hidden layers */
    float *probs;                 /* (B, classes) */
    float *m0;                    /* (B, n_out[0]) first-layer means (evaluation) */
    double *pacc;                 /* (B, classes) summed probabilities (evaluation) */
    float *dz, *dv, *din, *tmp;   /* (B, max_width) backward scratch */
};

/* ------------------------------------------------------------ allocation */

struct train_net *train_net_new(const size_t *dims, size_t n_layers, size_t max_batch, char err[BNN_ERR_LEN])
{
    if (n_layers < 1 || n_layers > BNN_MAX_LAYERS) {
        snprintf(err, BNN_ERR_LEN, "layers: expected 1..%d, got %zu", BNN_MAX_LAYERS, n_layers);
        return NULL;
    }
    if (max_batch < 1) {
        snprintf(err, BNN_ERR_LEN, "batch: expected >= 1, got %zu", max_batch);
        return NULL;
    }
    for (size_t i = 0; i <= n_layers; i++) {
        if (dims[i] < 1 || dims[i] > 65536) {
            snprintf(err, BNN_ERR_LEN, "width %zu: expected 1..65536, got %zu", i, dims[i]);
            return NULL;
        }
    }
    if (dims[n_layers] > BNN_MAX_CLASSES) {
        snprintf(err, BNN_ERR_LEN, "classes: expected <= %d, got %zu", BNN_MAX_CLASSES, dims[n_layers]);
        return NULL;
    }
    struct train_net *net = calloc(1, sizeof *net);
    if (!net)
        goto nomem;
    net->n_layers = n_layers;
    net->max_batch = max_batch;
    net->threads = 1;
    size_t off = 0, act = 0, width = 0;
    for (size_t l = 0; l < n_layers; l++) {
        size_t n_in = dims[l], n_out = dims[l + 1];
        net->n_in[l] = n_in;
        net->n_out[l] = n_out;
        net->off[l] = off;
        off += 2 * (n_in * n_out + n_out);
        act += max_batch * (2 * n_in + 4 * n_out);
        if (n_in > width)
            width = n_in;
        if (n_out > width)
            width = n_out;
    }
    net->n_params = off;
    net->max_width = width;
    size_t k = dims[n_layers];
    net->mem = calloc(5 * off, sizeof(float));
    /* activations + probs + m0 + 4 scratch; pacc separately (double) */
    net->act = calloc(act + max_batch * (k + dims[1] + 4 * width), sizeof(float));
    net->pacc = calloc(max_batch * k, sizeof(double));
    if (!net->mem || !net->act || !net->pacc)
        goto nomem;
    net->params = net->mem;
    net->grads = net->mem + off;
    net->adam_m = net->mem + 2 * off;
    net->adam_v = net->mem + 3 * off;
    net->derived = net->mem + 4 * off;
    float *p = net->act;
    for (size_t l = 0; l < n_layers; l++) {
        size_t bi = max_batch * net->n_in[l], bo = max_batch * net->n_out[l];
        net->in[l] = p, p += bi;
        net->in_sq[l] = p, p += bi;
        net->sd[l] = p, p += bo;
        net->eps[l] = p, p += bo;
        net->z[l] = p, p += bo;
        net->mask[l] = p, p += bo;
    }
    net->probs = p, p += max_batch * k;
    net->m0 = p, p += max_batch * dims[1];
    net->dz = p, p += max_batch * width;
    net->dv = p, p += max_batch * width;
    net->din = p, p += max_batch * width;
    net->tmp = p;
    return net;
nomem:
    snprintf(err, BNN_ERR_LEN, "out of memory for a %zu-layer net, batch %zu", n_layers, max_batch);
    train_net_free(net);
    return NULL;
}

void train_net_free(struct train_net *net)
{
    if (!net)
        return;
    free(net->mem);
    free(net->act);
    free(net->pacc);
    free(net);
}

size_t train_net_param_count(const struct train_net *net)
{
    return net->n_params;
}
size_t train_net_n_layers(const struct train_net *net)
{
    return net->n_layers;
}
float *train_net_param_data(struct train_net *net)
{
    return net->params;
}

static struct train_view view_of(float *base, const struct train_net *net, size_t l)
{
    size_t nw = net->n_in[l] * net->n_out[l];
    float *p = base + net->off[l];
    return (struct train_view){
        .w_mu = p, .w_rho = p + nw, .b_mu = p + 2 * nw, .b_rho = p + 2 * nw + net->n_out[l]};
}

struct train_view train_net_params(struct train_net *net, size_t layer)
{
    return view_of(net->params, net, layer);
}
struct train_view train_net_grads(struct train_net *net, size_t layer)
{
    return view_of(net->grads, net, layer);
}

/* --------------------------------------------------------------- threads */

/* Parameter-wide loops are memory-bound and otherwise leave a core idle
 * between GEMMs: split those of 65,536 or more. */
#define PARALLEL_MIN 65536

struct range_job {
    void (*fn)(void *arg, size_t lo, size_t hi);
    void *arg;
    size_t lo, hi;
};

static void *range_thread(void *p)
{
    struct range_job *j = p;
    j->fn(j->arg, j->lo, j->hi);
    return NULL;
}

void train_parallel(int threads, size_t n, size_t min_n, void (*fn)(void *, size_t, size_t), void *arg)
{
    enum { MAX_T = 8 };
    if (threads > MAX_T)
        threads = MAX_T;
    if (threads <= 1 || n < min_n) {
        fn(arg, 0, n);
        return;
    }
    pthread_t tid[MAX_T];
    struct range_job job[MAX_T];
    int started[MAX_T] = {0};
    size_t chunk = (n + (size_t)threads - 1) / (size_t)threads;
    for (int t = 1; t < threads; t++) {
        size_t lo = (size_t)t * chunk, hi = lo + chunk < n ? lo + chunk : n;
        job[t] = (struct range_job){fn, arg, lo < n ? lo : n, hi};
        started[t] = pthread_create(&tid[t], NULL, range_thread, &job[t]) == 0;
        if (!started[t])
            fn(arg, job[t].lo, job[t].hi); /* no thread: do it here */
    }
    fn(arg, 0, chunk < n ? chunk : n);
    for (int t = 1; t < threads; t++)
        if (started[t])
            pthread_join(tid[t], NULL);
}

/* sigma and var from rho over [lo, hi) of one part of a layer (its weights
 * or its biases); `derived` holds sigma in the mu slots, var in the rho slots. */
struct sigma_arg {
    float *sigma, *var;
    const float *rho;
};

static void sigma_range(void *p, size_t lo, size_t hi)
{
    struct sigma_arg *a = p;
    bayes_dense_sigma(a->sigma + lo, a->var + lo, a->rho + lo, hi - lo);
}

void train_net_refresh(struct train_net *net)
{
    for (size_t l = 0; l < net->n_layers; l++) {
        struct train_view p = view_of(net->params, net, l), d = view_of(net->derived, net, l);
        struct sigma_arg w = {d.w_mu, d.w_rho, p.w_rho}, b = {d.b_mu, d.b_rho, p.b_rho};
        train_parallel(net->threads, net->n_in[l] * net->n_out[l], PARALLEL_MIN, sigma_range, &w);
        train_parallel(net->threads, net->n_out[l], PARALLEL_MIN, sigma_range, &b);
    }
}

void train_net_init(struct train_net *net, const struct train_config *c)
{
    net->threads = c->threads;
    for (size_t l = 0; l < net->n_layers; l++) {
        size_t nw = net->n_in[l] * net->n_out[l], no = net->n_out[l];
        struct train_view v = train_net_params(net, l);
        /* He et al. 2015: std sqrt(2 / fan_in) keeps ReLU activations' scale. */
        double std = c->init_mu_std > 0 ? c->init_mu_std : sqrt(2.0 / (double)net->n_in[l]);
        rng_normals(v.w_mu, nw, c->seed, STREAM_INIT + (uint32_t)l, 0, 0);
        for (size_t i = 0; i < nw; i++) {
            v.w_mu[i] *= (float)std;
            v.w_rho[i] = (float)c->init_rho;
        }
        for (size_t i = 0; i < no; i++) {
            v.b_mu[i] = 0.0f;
            v.b_rho[i] = (float)c->init_rho;
        }
    }
    memset(net->adam_m, 0, net->n_params * sizeof(float));
    memset(net->adam_v, 0, net->n_params * sizeof(float));
    memset(net->grads, 0, net->n_params * sizeof(float));
    train_net_refresh(net);
}

/* ------------------------------------------------------------- the loss */

/* probs (B, k) = softmax(logits); returns the summed NLL of the labels and
 * counts argmax hits into *correct. */
static double softmax_nll(float *probs, const float *logits, const uint8_t *y, size_t B, size_t k,
                          size_t *correct)
{
    double nll = 0;
    size_t hits = 0;
    for (size_t b = 0; b < B; b++) {
        const float *lg = logits + b * k;
        float *p = probs + b * k;
        size_t arg = 0;
        for (size_t j = 1; j < k; j++)
            if (lg[j] > lg[arg])
                arg = j;
        double sum = 0;
        for (size_t j = 0; j < k; j++) {
            p[j] = expf(lg[j] - lg[arg]);
            sum += p[j];
        }
        for (size_t j = 0; j < k; j++)
            p[j] = (float)(p[j] / sum);
        /* -log softmax_y = logsumexp - logit_y, computed stably */
        nll += log(sum) + (double)lg[arg] - (double)lg[y[b]];
        hits += arg == y[b];
    }
    if (correct)
        *correct = hits;
    return nll;
}

/* ------------------------------------------------------------- the net */

void train_draw_noise(struct train_net *net, size_t batch, uint64_t seed, uint32_t step, double dropout)
{
    float keep = (float)(1.0 / (1.0 - dropout));
    for (size_t l = 0; l < net->n_layers; l++) {
        size_t n = batch * net->n_out[l];
        rng_normals(net->eps[l], n, seed, STREAM_EPS + (uint32_t)l, step, 0);
        if (l + 1 == net->n_layers)
            continue;
        float *mask = net->mask[l];
        if (dropout <= 0) {
            for (size_t i = 0; i < n; i++)
                mask[i] = 1.0f;
            continue;
        }
        rng_uniforms(mask, n, seed, STREAM_DROP + (uint32_t)l, step, 0);
        for (size_t i = 0; i < n; i++)
            mask[i] = mask[i] < (float)dropout ? 0.0f : keep;
    }
}

double train_forward(struct train_net *net, const float *x, const uint8_t *y, size_t batch, size_t *correct)
{
    size_t L = net->n_layers;
    memcpy(net->in[0], x, batch * net->n_in[0] * sizeof(float));
    for (size_t l = 0; l < L; l++) {
        struct train_view p = view_of(net->params, net, l), d = view_of(net->derived, net, l);
        size_t n_in = net->n_in[l], n_out = net->n_out[l];
        bayes_dense_forward(net->z[l], net->sd[l], net->in_sq[l], net->in[l], net->eps[l], p.w_mu, d.w_rho,
                            p.b_mu, d.b_rho, batch, n_in, n_out);
        if (l + 1 < L) {
            /* ReLU, then inverted dropout: (B, n_out) -> next layer's input */
            const float *z = net->z[l], *mask = net->mask[l];
            float *next = net->in[l + 1];
            for (size_t i = 0; i < batch * n_out; i++)
                next[i] = z[i] > 0 ? z[i] * mask[i] : 0.0f;
        }
    }
    size_t k = net->n_out[L - 1];
    return softmax_nll(net->probs, net->z[L - 1], y, batch, k, correct) / (double)batch;
}

double train_kl(const struct train_net *net, double prior_scale)
{
    double kl = 0;
    for (size_t l = 0; l < net->n_layers; l++) {
        /* the mu slots and the matching sigma: weights then biases */
        struct train_view p = view_of(net->params, net, l), d = view_of(net->derived, net, l);
        kl += bayes_dense_kl(p.w_mu, d.w_mu, net->n_in[l] * net->n_out[l], prior_scale);
        kl += bayes_dense_kl(p.b_mu, d.b_mu, net->n_out[l], prior_scale);
    }
    return kl;
}

/* Turns the rho slots' dL/dvar into dL/drho and adds kl_weight * dKL, over
 * [lo, hi) of one part of a layer (its weights or its biases). */
struct kl_grad_arg {
    float *d_mu, *d_rho;
    const float *mu, *rho, *sigma;
    float klw, inv_ps2;
};

static void kl_grad_range(void *p, size_t lo, size_t hi)
{
    struct kl_grad_arg *a = p;
    bayes_dense_kl_backward(a->d_mu + lo, a->d_rho + lo, a->mu + lo, a->rho + lo, a->sigma + lo, hi - lo,
                            a->klw, a->inv_ps2);
}

void train_backward(struct train_net *net, const uint8_t *y, size_t batch, double kl_weight,
                    double prior_scale)
{
    size_t L = net->n_layers, k = net->n_out[L - 1];
    /* d mean NLL / d logits = (softmax - onehot) / B */
    float *dz = net->dz;
    for (size_t b = 0; b < batch; b++) {
        for (size_t j = 0; j < k; j++)
            dz[b * k + j] = (net->probs[b * k + j] - (j == y[b] ? 1.0f : 0.0f)) / (float)batch;
    }
    for (size_t l = L; l-- > 0;) {
        struct train_view p = view_of(net->params, net, l), d = view_of(net->derived, net, l);
        struct train_view g = view_of(net->grads, net, l);
        size_t n_in = net->n_in[l], n_out = net->n_out[l];
        bayes_dense_backward(l > 0 ? net->din : NULL, g.w_mu, g.w_rho, g.b_mu, g.b_rho, net->dv, net->tmp, dz,
                             net->in[l], net->in_sq[l], net->eps[l], net->sd[l], p.w_mu, d.w_rho, batch, n_in,
                             n_out);
        if (l == 0)
            break;
        /* back through the previous layer's dropout and ReLU */
        const float *zp = net->z[l - 1], *mask = net->mask[l - 1];
        for (size_t i = 0; i < batch * n_in; i++)
            dz[i] = zp[i] > 0 ? net->din[i] * mask[i] : 0.0f;
    }
    float klw = (float)kl_weight, inv_ps2 = (float)(1.0 / (prior_scale * prior_scale));
    for (size_t l = 0; l < L; l++) {
        struct train_view p = view_of(net->params, net, l), d = view_of(net->derived, net, l);
        struct train_view g = view_of(net->grads, net, l);
        struct kl_grad_arg w = {g.w_mu, g.w_rho, p.w_mu, p.w_rho, d.w_mu, klw, inv_ps2};
        struct kl_grad_arg b = {g.b_mu, g.b_rho, p.b_mu, p.b_rho, d.b_mu, klw, inv_ps2};
        train_parallel(net->threads, net->n_in[l] * net->n_out[l], PARALLEL_MIN, kl_grad_range, &w);
        train_parallel(net->threads, net->n_out[l], PARALLEL_MIN, kl_grad_range, &b);
    }
}

struct adam_arg {
    struct train_net *net;
    float lr, c1, c2;
};

static void adam_range(void *p, size_t lo, size_t hi)
{
    struct adam_arg *a = p;
    float *w = a->net->params, *g = a->net->grads, *m = a->net->adam_m, *v = a->net->adam_v;
    const float b1 = (float)ADAM_B1, b2 = (float)ADAM_B2, lr = a->lr, c1 = a->c1, c2 = a->c2;
    for (size_t i = lo; i < hi; i++) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        w[i] -= lr * (m[i] * c1) / (sqrtf(v[i] * c2) + ADAM_EPS);
    }
}

void train_adam(struct train_net *net, double lr, uint64_t t)
{
    /* bias corrections 1 / (1 - beta^t) */
    struct adam_arg a = {net, (float)lr, (float)(1.0 / (1.0 - pow(ADAM_B1, (double)t))),
                         (float)(1.0 / (1.0 - pow(ADAM_B2, (double)t)))};
    train_parallel(net->threads, net->n_params, PARALLEL_MIN, adam_range, &a);
    train_net_refresh(net);
}

void train_evaluate(struct train_net *net, const float *x, const uint8_t *labels, size_t n, size_t samples,
                    uint64_t seed, double *accuracy, double *nll)
{
    size_t L = net->n_layers, k = net->n_out[L - 1], n_in = net->n_in[0], n0 = net->n_out[0];
    size_t hits = 0;
    double nll_sum = 0;
    for (size_t start = 0; start < n; start += net->max_batch) {
        size_t B = n - start < net->max_batch ? n - start : net->max_batch;
        memcpy(net->in[0], x + start * n_in, B * n_in * sizeof(float));
        /* the first layer's input is the same in every pass: moments once */
        struct train_view p0 = view_of(net->params, net, 0), d0 = view_of(net->derived, net, 0);
        bayes_dense_moments(net->m0, net->sd[0], net->in_sq[0], net->in[0], p0.w_mu, d0.w_rho, p0.b_mu,
                            d0.b_rho, B, n_in, n0);
        for (size_t i = 0; i < B * k; i++)
            net->pacc[i] = 0;
        for (size_t t = 0; t < samples; t++) {
            /* noise addressed by (image, unit), so independent of chunking */
            rng_normals(net->eps[0], B * n0, seed, STREAM_VAL, (uint32_t)t, (uint64_t)start * n0);
            float *h = L > 1 ? net->in[1] : net->z[0];
            for (size_t i = 0; i < B * n0; i++) {
                float z = net->m0[i] + net->sd[0][i] * net->eps[0][i];
                h[i] = L > 1 ? (z > 0 ? z : 0.0f) : z;
            }
            for (size_t l = 1; l < L; l++) {
                struct train_view p = view_of(net->params, net, l), d = view_of(net->derived, net, l);
                size_t no = net->n_out[l];
                rng_normals(net->eps[l], B * no, seed, STREAM_VAL + (uint32_t)l, (uint32_t)t,
                            (uint64_t)start * no);
                bayes_dense_forward(net->z[l], net->sd[l], net->in_sq[l], net->in[l], net->eps[l], p.w_mu,
                                    d.w_rho, p.b_mu, d.b_rho, B, net->n_in[l], no);
                if (l + 1 < L) {
                    for (size_t i = 0; i < B * no; i++)
                        net->in[l + 1][i] = net->z[l][i] > 0 ? net->z[l][i] : 0.0f;
                }
            }
            softmax_nll(net->probs, net->z[L - 1], labels + start, B, k, NULL);
            for (size_t i = 0; i < B * k; i++)
                net->pacc[i] += net->probs[i];
        }
        for (size_t b = 0; b < B; b++) {
            const double *pa = net->pacc + b * k;
            size_t arg = 0;
            for (size_t j = 1; j < k; j++)
                if (pa[j] > pa[arg])
                    arg = j;
            hits += arg == labels[start + b];
            double py = pa[labels[start + b]] / (double)samples;
            nll_sum += -log(py > 1e-15 ? py : 1e-15);
        }
    }
    *accuracy = n ? (double)hits / (double)n : 0;
    *nll = n ? nll_sum / (double)n : 0;
}

struct bnn_model *train_net_to_model(const struct train_net *net, const float *params, char err[BNN_ERR_LEN])
{
    size_t dims[BNN_MAX_LAYERS + 1];
    dims[0] = net->n_in[0];
    for (size_t l = 0; l < net->n_layers; l++)
        dims[l + 1] = net->n_out[l];
    struct bnn_model *m = bnn_model_new(dims, net->n_layers, err);
    if (!m)
        return NULL;
    if (!params)
        params = net->params;
    for (size_t l = 0; l < net->n_layers; l++) {
        size_t nw = net->n_in[l] * net->n_out[l], no = net->n_out[l];
        const float *p = params + net->off[l];
        struct bnn_layer *ly = &m->layers[l];
        memcpy(ly->w_mu, p, nw * sizeof(float));
        memcpy(ly->b_mu, p + 2 * nw, no * sizeof(float));
        for (size_t i = 0; i < nw; i++)
            ly->w_sigma[i] = bayes_dense_softplus(p[nw + i]);
        for (size_t i = 0; i < no; i++)
            ly->b_sigma[i] = bayes_dense_softplus(p[2 * nw + no + i]);
    }
    bnn_model_update_var(m);
    return m;
}

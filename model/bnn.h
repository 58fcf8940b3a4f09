/* bnn.h - the Bayesian neural network as served: a stack of mean-field
 * Gaussian dense layers (ReLU between them, logits out).
 *
 * Invariant: layer i's n_out equals layer i+1's n_in; every variance is > 0
 * and finite. A loaded model is immutable and may be shared by any number of
 * threads without locks (its packed copies for the LRT GEMM, pack.h, are made
 * once per code path behind their own lock). All tensors live in one
 * allocation (model->storage) with named views into it; bnn_model_free
 * releases everything.
 */
#ifndef BNN_H
#define BNN_H

#include <stddef.h>
#include <stdint.h>

#define BNN_MAX_LAYERS 8
#define BNN_ERR_LEN 256 /* size of every caller-supplied err buffer */
#define BNN_MNIST_SIDE 28
#define BNN_MNIST_PIXELS 784
#define BNN_MAX_CLASSES 16

/* Library-wide status codes. 0 is success; every failing call also writes a
 * message with the values involved into the caller's err[BNN_ERR_LEN]. */
enum bnn_status {
    BNN_OK = 0,
    BNN_E_IO,      /* open/read/write failed (errno text in err) */
    BNN_E_FORMAT,  /* malformed file or data */
    BNN_E_INVALID, /* an argument out of range */
    BNN_E_NOMEM,   /* allocation failed */
    BNN_E_INTERNAL /* a bug or an injected fault */
};

/* One dense layer, Keras/TFP kernel layout: w_* are (n_in, n_out) row-major,
 * b_* are (n_out). Posterior N(mu, sigma^2) per weight and bias; sigma and
 * sigma^2 are both kept (var for the LRT variance GEMM, sigma for the weight-
 * sampling reference path). */
struct bnn_layer {
    size_t n_in, n_out;
    float *w_mu;    /* (n_in, n_out) */
    float *w_sigma; /* (n_in, n_out), > 0 */
    float *w_var;   /* (n_in, n_out), w_sigma^2 */
    float *b_mu;    /* (n_out) */
    float *b_sigma; /* (n_out), > 0 */
    float *b_var;   /* (n_out), b_sigma^2 */
};

/* A metadata entry: safetensors __metadata__ is a flat string -> string map. */
struct bnn_meta {
    char *key;
    char *value;
};

struct bnn_model {
    size_t n_layers;
    struct bnn_layer layers[BNN_MAX_LAYERS];
    float *storage; /* the one allocation all layer views point into */
    size_t n_meta;
    struct bnn_meta *meta;       /* owned; keys unique */
    struct bnn_pack_cache *pack; /* owned; pack.h */
};

/* Allocates a model with the given widths (dims[0] = input size, dims[n] =
 * classes), all tensors zero and sigmas 1. Returns NULL and fills err on a bad
 * shape or out of memory. Owned by caller: free with bnn_model_free. */
struct bnn_model *bnn_model_new(const size_t *dims, size_t n_layers, char err[BNN_ERR_LEN]);

/* NULL-safe. */
void bnn_model_free(struct bnn_model *m);

/* Recomputes every *_var from *_sigma and drops the packed copies of the
 * weights: call after writing any weights, never while a prediction runs. */
void bnn_model_update_var(struct bnn_model *m);

/* Number of scalar parameters: 2 x (weights + biases). 1,769,524 for the
 * shipped 784-784-256-256-10 network. */
size_t bnn_model_param_count(const struct bnn_model *m);

size_t bnn_model_n_in(const struct bnn_model *m);
size_t bnn_model_n_classes(const struct bnn_model *m);

/* Metadata: value for key or NULL (borrowed until the model is freed or the
 * key is set again). Set copies both strings; returns BNN_OK or BNN_E_NOMEM. */
const char *bnn_meta_get(const struct bnn_model *m, const char *key);
int bnn_meta_set(struct bnn_model *m, const char *key, const char *value);

/* "784-784-256-256-10" into buf; returns buf. */
char *bnn_model_arch(const struct bnn_model *m, char *buf, size_t len);

/* Rewrites err as "prefix: err", truncating the tail to fit BNN_ERR_LEN
 * (parsers' messages do not know the file they came from). */
void bnn_err_prefix(char err[BNN_ERR_LEN], const char *prefix);

/* Human-readable name of a status code. */
const char *bnn_status_name(int status);

#endif

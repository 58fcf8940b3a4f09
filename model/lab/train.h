/* train.h - Bayes by backprop (Blundell et al. 2015) for a stack of
 * mean-field Gaussian dense layers: N(mu, sigma^2) on every weight and bias,
 * sigma = softplus(rho), prior N(0, prior_scale^2), closed-form KL, ReLU and
 * inverted dropout between layers, softmax cross-entropy on the logits.
 * The forward pass uses the local reparameterization trick (Kingma, Salimans
 * & Welling 2015), z = m + sqrt(v) eps with m = h W_mu + b_mu and
 * v = h^2 W_var + b_var, so one batch costs GEMMs, not per-weight draws.
 *
 * Invariant: every parameter, gradient and Adam moment lives in one
 * allocation each, with identical layouts (per layer: w_mu, w_rho, b_mu,
 * b_rho), so the optimizer is one loop. All randomness comes from rng.h keyed
 * by the config's seed, so a run is reproducible for a given seed and thread
 * count. Library code: nothing prints; progress goes through a callback.
 *
 * Part of the lab (model/lab/): linked by the tools and tests, never by
 * the daemon, which links only the runtime in model/.
 */
#ifndef BNN_TRAIN_H
#define BNN_TRAIN_H

#include "augment.h"
#include "bnn.h"
#include "idx.h"

/* What a run optimises and how. train_config_recipe fills one. */
struct train_config {
    char recipe[16]; /* "default" or "seed" (for the metadata) */
    uint64_t seed;
    size_t batch;                  /* examples per step */
    size_t epochs;                 /* maximum epochs (also the cosine period) */
    double lr;                     /* Adam step size at the start */
    int lr_cosine;                 /* 1: cosine decay to 0 over `epochs`; 0: constant */
    double beta;                   /* KL weight: 1 is the per-example ELBO, < 1 tempered */
    double prior_scale;            /* prior N(0, prior_scale^2) on weights and biases */
    size_t warmup_epochs;          /* linear KL warm-up from 0 to 1 over this many epochs */
    size_t patience;               /* stop after this many epochs without a better
                                      validation accuracy; 0 = never stop early */
    double init_rho;               /* initial sigma = softplus(init_rho) */
    double init_mu_std;            /* > 0: means ~ N(0, init_mu_std^2);
                                      0: He, N(0, 2 / n_in) */
    double dropout;                /* drop probability after each hidden ReLU */
    int threads;                   /* OpenBLAS threads (and elementwise workers) */
    size_t limit;                  /* train on the first `limit` images; 0 = all */
    size_t val_count;              /* the last val_count images validate (5,000) */
    size_t val_samples;            /* LRT passes per validation image */
    double max_seconds;            /* stop after the epoch that passes this wall
                                      time; 0 = no limit */
    struct augment_config augment; /* applied to every training image, then
                                      the serving canonicalisation */
};

/* Fills c with a named recipe ("default" or "seed"); seed 1, threads 2.
 * Returns BNN_OK or BNN_E_INVALID (unknown name, err filled). */
int train_config_recipe(struct train_config *c, const char *recipe, char err[BNN_ERR_LEN]);

/* Checks ranges (batch >= 1, lr > 0, 0 <= dropout < 1, ...). */
int train_config_check(const struct train_config *c, char err[BNN_ERR_LEN]);

/* "tempered ELBO: NLL + 0.1 * KL/N, N(0,1) prior, 10-epoch linear KL
 * warm-up, on augmented canonical images" - a plain sentence for the
 * weights' metadata. */
char *train_objective(const struct train_config *c, char *buf, size_t len);

/* Named views into one of the net's parameter-shaped arrays. */
struct train_view {
    float *w_mu;  /* (n_in, n_out) */
    float *w_rho; /* (n_in, n_out) */
    float *b_mu;  /* (n_out) */
    float *b_rho; /* (n_out) */
};

struct train_net;

/* A net for the widths dims[0..n_layers] that can take batches of up to
 * max_batch rows. Parameters are zero until train_net_init. NULL with err
 * filled on a bad shape or out of memory. Owned by caller: train_net_free. */
struct train_net *train_net_new(const size_t *dims, size_t n_layers, size_t max_batch, char err[BNN_ERR_LEN]);
void train_net_free(struct train_net *net); /* NULL-safe */

/* Scalar parameters: 2 x (weights + biases); 1,769,524 for 784-784-256-256-10. */
size_t train_net_param_count(const struct train_net *net);
size_t train_net_n_layers(const struct train_net *net);

/* Views of layer i's parameters / gradients (borrowed from the net). After
 * writing parameters directly, call train_net_refresh. */
struct train_view train_net_params(struct train_net *net, size_t layer);
struct train_view train_net_grads(struct train_net *net, size_t layer);
/* All parameters as one array of train_net_param_count floats (borrowed). */
float *train_net_param_data(struct train_net *net);

/* Initial means (config's init_mu_std or He) and rho = init_rho for weights
 * and biases (bias means 0), drawn from rng.h with the config's seed. */
void train_net_init(struct train_net *net, const struct train_config *c);

/* Recomputes sigma = softplus(rho) and var = sigma^2 from the parameters. */
void train_net_refresh(struct train_net *net);

/* Draws the noise of one training step into the net: eps ~ N(0,1) for every
 * pre-activation and inverted-dropout masks (0 or 1/(1-dropout)) after each
 * hidden layer, addressed by (seed, step). batch <= max_batch. */
void train_draw_noise(struct train_net *net, size_t batch, uint64_t seed, uint32_t step, double dropout);

/* Training forward pass on x (batch, n_in) with labels y, using the noise
 * drawn last. Returns the mean NLL (nats); *correct (may be NULL) gets the
 * number of rows whose logits' argmax equals the label. */
double train_forward(struct train_net *net, const float *x, const uint8_t *y, size_t batch, size_t *correct);

/* KL(q || prior) summed over every weight and bias, closed form. */
double train_kl(const struct train_net *net, double prior_scale);

/* Gradients of  mean NLL + kl_weight * KL  with respect to every mu and rho,
 * into the net's gradient array (overwritten), after train_forward on the
 * same batch. */
void train_backward(struct train_net *net, const uint8_t *y, size_t batch, double kl_weight,
                    double prior_scale);

/* One Adam step (Kingma & Ba 2015; beta1 0.9, beta2 0.999, eps 1e-8) with
 * step size lr; t is the 1-based step count for the bias correction. Then
 * refreshes sigma and var. */
void train_adam(struct train_net *net, double lr, uint64_t t);

/* Accuracy and mean NLL of the mean of `samples` LRT predictive passes (no
 * dropout) on x (n, n_in), model inputs in [0,1]. Noise is addressed by
 * seed, so repeated calls see the same draws. */
void train_evaluate(struct train_net *net, const float *x, const uint8_t *labels, size_t n, size_t samples,
                    uint64_t seed, double *accuracy, double *nll);

/* Runs fn(arg, lo, hi) over [0, n) split across `threads` pthreads (the
 * caller's thread takes the first part), or on the caller's thread alone
 * when n < min_n or threads <= 1. */
void train_parallel(int threads, size_t n, size_t min_n, void (*fn)(void *arg, size_t lo, size_t hi),
                    void *arg);

/* Copies the net's parameters (or `params`, an array laid out like
 * train_net_param_data, when non-NULL) into a new bnn_model with
 * sigma = softplus(rho). Owned by caller; NULL with err filled on failure. */
struct bnn_model *train_net_to_model(const struct train_net *net, const float *params, char err[BNN_ERR_LEN]);

/* One line of the training log. */
struct train_epoch {
    size_t epoch;     /* 1-based */
    double loss;      /* nll + the epoch's last kl_weight * kl (the KL is
                         computed once per epoch, not per step) */
    double nll;       /* mean training NLL (with dropout and noise) */
    double kl;        /* KL at the end of the epoch, nats, whole network */
    double kl_factor; /* warm-up factor at the end of the epoch */
    double lr;        /* step size at the end of the epoch */
    double train_acc; /* of the noisy training passes */
    double val_acc;   /* of the mean of val_samples LRT passes */
    double val_nll;
    double seconds; /* wall time of the epoch including validation */
    int best;       /* 1 when this epoch is the best so far */
};

/* Called after every epoch; a non-zero return stops training. */
typedef int (*train_epoch_fn)(const struct train_epoch *e, void *ctx);

struct train_result {
    size_t epochs_run;
    size_t best_epoch; /* 1-based epoch of the kept checkpoint */
    double best_val_acc;
    double best_val_nll;
    double train_seconds; /* wall time of the whole run */
    size_t n_train, n_val;
};

/* Trains on images/labels (all of MNIST's training split: the last
 * c->val_count images validate, the first min(limit, n - val_count) train).
 * Every image the net sees - each training image after c->augment, and the
 * validation images - goes through prep_canonical (preprocess.h), the
 * daemon's own canonicalisation, so the net learns and is selected on what
 * callers' pictures become. Images must be 28x28.
 * and returns the best-validation checkpoint as a new model in *out (owned by
 * caller), with metadata for the recipe filled in (format, architecture,
 * recipe, seed, objective, ... and the figures in *res). dims[0] must equal
 * the image size. Returns BNN_OK or an error with err filled. */
int train_run(struct bnn_model **out, struct train_result *res, const struct train_config *c,
              const size_t *dims, size_t n_layers, const struct idx_images *images,
              const struct idx_labels *labels, train_epoch_fn cb, void *ctx, char err[BNN_ERR_LEN]);

#endif

/* bnn-train - trains the MNIST Bayesian network (train.h) and saves the
 * best-validation checkpoint as safetensors; calibrates its answer policy
 * on the validation digits (calibrate.h) and stores it in the metadata;
 * then evaluates it on the test set through the daemon's path (eval.h,
 * T = 100) and records those figures in the metadata too.
 * One progress line per epoch on stderr; --log writes the same as CSV.
 * A thin main: options, train, calibrate and evaluate.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "bnn.h"
#include "calibrate.h"
#include "eval.h"
#include "idx.h"
#include "train.h"
#include "weights.h"

#include "cli.h"

#define PROG "bnn-train"
#define CALIB_SAMPLES 100 /* T of the calibration: the daemon's default */
#define SET_COVERAGE 0.95 /* the daemon's default prediction-set level */

static void usage(FILE *f)
{
    fprintf(f, "usage: " PROG " --data DIR --out FILE [options]\n"
               "Trains the 784-784-256-256-10 Bayesian network on MNIST (Bayes by backprop,\n"
               "local reparameterization) and saves the best-validation checkpoint.\n"
               "\n"
               "  --data DIR          MNIST raw IDX files (train-*, t10k-*)\n"
               "  --out FILE          weights to write (safetensors)\n"
               "  --recipe NAME       default | seed (the blog post's recipe)  [default]\n"
               "  --epochs N          maximum epochs (recipe: 60 / 100)\n"
               "  --seed S            random seed [1]\n"
               "  --batch N           batch size (recipe: 128 / 512)\n"
               "  --lr X              Adam step size (recipe: 1e-3 cosine / 1e-4 constant)\n"
               "  --lr-schedule S     cosine | constant\n"
               "  --beta X            KL weight; 1 = ELBO (recipe: 0.1 / 1)\n"
               "  --prior-scale X     prior N(0, X^2) [1]\n"
               "  --warmup N          linear KL warm-up epochs (recipe: 10 / 0)\n"
               "  --patience N        early-stopping patience in epochs, 0 = off (recipe: 0 / 10)\n"
               "  --augment P         probability that a training image is augmented, 0 = off\n"
               "                      (recipe: 0.75 / 0); every image is then canonicalised\n"
               "                      as the daemon canonicalises a caller's picture\n"
               "  --dropout P         drop probability after each hidden layer [0.25]\n"
               "  --threads N         BLAS and worker threads [2]\n"
               "  --limit N           train on the first N images only (tests)\n"
               "  --val-samples N     LRT passes per validation image [10]\n"
               "  --test-samples N    passes per test image for the final figures, 0 = skip [100]\n"
               "  --log FILE          CSV log, one row per epoch\n"
               "  --max-minutes M     stop after the epoch that passes M minutes of training\n"
               "  --help              this text\n");
}

struct options {
    struct train_config cfg;
    const char *data, *out, *log;
    size_t test_samples;
};

enum {
    O_DATA = 256,
    O_OUT,
    O_RECIPE,
    O_EPOCHS,
    O_SEED,
    O_BATCH,
    O_LR,
    O_SCHED,
    O_BETA,
    O_PRIOR,
    O_WARMUP,
    O_PATIENCE,
    O_THREADS,
    O_LIMIT,
    O_VALS,
    O_TESTS,
    O_LOG,
    O_MAXMIN,
    O_AUGMENT,
    O_DROPOUT,
    O_HELP
};

static const struct option long_options[] = {{"data", required_argument, 0, O_DATA},
                                             {"out", required_argument, 0, O_OUT},
                                             {"recipe", required_argument, 0, O_RECIPE},
                                             {"epochs", required_argument, 0, O_EPOCHS},
                                             {"seed", required_argument, 0, O_SEED},
                                             {"batch", required_argument, 0, O_BATCH},
                                             {"lr", required_argument, 0, O_LR},
                                             {"lr-schedule", required_argument, 0, O_SCHED},
                                             {"beta", required_argument, 0, O_BETA},
                                             {"prior-scale", required_argument, 0, O_PRIOR},
                                             {"warmup", required_argument, 0, O_WARMUP},
                                             {"patience", required_argument, 0, O_PATIENCE},
                                             {"threads", required_argument, 0, O_THREADS},
                                             {"limit", required_argument, 0, O_LIMIT},
                                             {"val-samples", required_argument, 0, O_VALS},
                                             {"test-samples", required_argument, 0, O_TESTS},
                                             {"log", required_argument, 0, O_LOG},
                                             {"max-minutes", required_argument, 0, O_MAXMIN},
                                             {"augment", required_argument, 0, O_AUGMENT},
                                             {"dropout", required_argument, 0, O_DROPOUT},
                                             {"help", no_argument, 0, O_HELP},
                                             {0, 0, 0, 0}};

/* A numeric option of the training config; the expectation its value
 * failed, or NULL. */
static const char *parse_number(struct train_config *cfg, size_t *test_samples, int c, const char *arg)
{
    size_t v;
    double d;
    switch (c) {
    case O_EPOCHS:
        return cli_parse_size(arg, &cfg->epochs) ? "a non-negative integer" : NULL;
    case O_BATCH:
        return cli_parse_size(arg, &cfg->batch) ? "a non-negative integer" : NULL;
    case O_WARMUP:
        return cli_parse_size(arg, &cfg->warmup_epochs) ? "a non-negative integer" : NULL;
    case O_PATIENCE:
        return cli_parse_size(arg, &cfg->patience) ? "a non-negative integer" : NULL;
    case O_LIMIT:
        return cli_parse_size(arg, &cfg->limit) ? "a non-negative integer" : NULL;
    case O_VALS:
        return cli_parse_size(arg, &cfg->val_samples) ? "a non-negative integer" : NULL;
    case O_TESTS:
        return cli_parse_size(arg, test_samples) ? "a non-negative integer" : NULL;
    case O_LR:
        return cli_parse_double(arg, &cfg->lr) ? "a number" : NULL;
    case O_BETA:
        return cli_parse_double(arg, &cfg->beta) ? "a number" : NULL;
    case O_DROPOUT:
        return cli_parse_double(arg, &cfg->dropout) ? "a number" : NULL;
    case O_SEED:
        if (cli_parse_size(arg, &v))
            return "a non-negative integer";
        cfg->seed = v;
        return NULL;
    case O_THREADS:
        if (cli_parse_size(arg, &v) || v < 1 || v > 256)
            return "an integer in [1, 256]";
        cfg->threads = (int)v;
        return NULL;
    case O_PRIOR:
        if (cli_parse_double(arg, &d))
            return "a number";
        cfg->prior_scale = d;
        return NULL;
    case O_MAXMIN:
        if (cli_parse_double(arg, &d) || !(d >= 0))
            return "minutes >= 0";
        cfg->max_seconds = 60 * d;
        return NULL;
    }
    return "a known option";
}

/* One option into o; the expectation its value failed, or NULL. */
static const char *parse_one(void *opts, int c, const char *arg)
{
    struct options *o = opts;
    double d;
    switch (c) {
    case O_DATA:
        o->data = arg;
        return NULL;
    case O_OUT:
        o->out = arg;
        return NULL;
    case O_RECIPE:
        return NULL; /* taken before the others */
    case O_LOG:
        o->log = arg;
        return NULL;
    case O_AUGMENT:
        if (cli_parse_double(arg, &d) || !(d >= 0 && d <= 1))
            return "a probability in [0, 1]";
        if (o->cfg.augment.p <= 0 && d > 0)
            augment_config_default(&o->cfg.augment);
        o->cfg.augment.p = d;
        return NULL;
    case O_SCHED:
        if (strcmp(arg, "cosine") != 0 && strcmp(arg, "constant") != 0)
            return "cosine or constant";
        o->cfg.lr_cosine = strcmp(arg, "cosine") == 0;
        return NULL;
    }
    return parse_number(&o->cfg, &o->test_samples, c, arg);
}

/* The recipe first, so that the other flags override its values. */
static const char *find_recipe(int argc, char **argv)
{
    const char *recipe = "default";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--recipe") == 0 && i + 1 < argc)
            recipe = argv[i + 1];
        else if (strncmp(argv[i], "--recipe=", 9) == 0)
            recipe = argv[i] + 9;
    }
    return recipe;
}

static int parse_options(struct options *o, int argc, char **argv)
{
    char err[BNN_ERR_LEN];
    memset(o, 0, sizeof *o);
    o->test_samples = 100;
    if (train_config_recipe(&o->cfg, find_recipe(argc, argv), err))
        return cli_usage_error(PROG, err, NULL);
    int rc = cli_getopt(PROG, argc, argv, "", long_options, O_HELP, usage, parse_one, o);
    if (rc != CLI_RUN)
        return rc;
    rc = cli_finish(PROG, argc, argv, o->data && o->out, "--data and --out are required");
    if (rc == CLI_RUN && train_config_check(&o->cfg, err))
        return cli_usage_error(PROG, err, NULL);
    return rc;
}

/* ---- run -------------------------------------------------------------------- */

struct log_ctx {
    FILE *csv;
};

static int on_epoch(const struct train_epoch *e, void *p)
{
    struct log_ctx *ctx = p;
    fprintf(
        stderr,
        "epoch %3zu  loss %.4f  nll %.4f  kl %.4g  kl_factor %.2f  lr %.2e  train_acc %.4f  val_acc %.4f  "
        "val_nll %.4f  %.1fs%s\n",
        e->epoch, e->loss, e->nll, e->kl, e->kl_factor, e->lr, e->train_acc, e->val_acc, e->val_nll,
        e->seconds, e->best ? "  *" : "");
    if (ctx->csv) {
        fprintf(ctx->csv, "%zu,%.6f,%.6f,%.6g,%.4f,%.6g,%.6f,%.6f,%.6f,%.2f,%d\n", e->epoch, e->loss, e->nll,
                e->kl, e->kl_factor, e->lr, e->train_acc, e->val_acc, e->val_nll, e->seconds, e->best);
        fflush(ctx->csv);
    }
    return 0;
}

struct data {
    struct idx_images train_im, test_im;
    struct idx_labels train_lb, test_lb;
};

static void data_free(struct data *d)
{
    idx_images_free(&d->train_im);
    idx_labels_free(&d->train_lb);
    idx_images_free(&d->test_im);
    idx_labels_free(&d->test_lb);
}

/* Trains and saves the best checkpoint into *model. */
static int train(struct bnn_model **model, const struct options *o, const struct data *d, struct log_ctx *ctx,
                 char err[BNN_ERR_LEN])
{
    const struct train_config *cfg = &o->cfg;
    char objective[256];
    fprintf(stderr, PROG ": recipe %s, seed %llu, batch %zu, up to %zu epochs, lr %g (%s), %s, threads %d\n",
            cfg->recipe, (unsigned long long)cfg->seed, cfg->batch, cfg->epochs, cfg->lr,
            cfg->lr_cosine ? "cosine" : "constant", train_objective(cfg, objective, sizeof objective),
            cfg->threads);
    const size_t dims[] = {784, 784, 256, 256, 10};
    struct train_result res;
    if (train_run(model, &res, cfg, dims, 4, &d->train_im, &d->train_lb, on_epoch, ctx, err)) {
        bnn_err_prefix(err, "training");
        return -1;
    }
    fprintf(stderr, PROG ": best epoch %zu of %zu, val accuracy %.4f, %.0f s\n", res.best_epoch,
            res.epochs_run, res.best_val_acc, res.train_seconds);
    return bnn_weights_save(o->out, *model, err) ? -1 : 0;
}

/* The answer policy, on the same validation digits, the daemon's path. */
static int calibrate(struct bnn_policy *policy, struct bnn_model *model, const struct options *o,
                     const struct data *d, char err[BNN_ERR_LEN])
{
    size_t n_avail = d->train_im.n - o->cfg.val_count;
    if (calib_policy(policy, model, d->train_im.pixels + n_avail * 784, d->train_lb.labels + n_avail,
                     o->cfg.val_count, CALIB_SAMPLES, (size_t)o->cfg.threads, CALIB_FLAG_RATE, err) ||
        bnn_policy_to_meta(policy, model) || bnn_weights_save(o->out, model, err)) {
        bnn_err_prefix(err, "calibrating");
        return -1;
    }
    fprintf(stderr, PROG ": abstain above entropy %.4g or epistemic %.4g (%.1f %% of validation flagged)\n",
            policy->entropy_max, policy->epistemic_max, 100 * policy->clean_flag_rate);
    return 0;
}

/* The test figures through the daemon's path, into the metadata. */
static int evaluate(struct bnn_model *model, const struct bnn_policy *policy, const struct options *o,
                    const struct data *d, char err[BNN_ERR_LEN])
{
    struct eval_options eo;
    eval_options_default(&eo);
    eo.samples = o->test_samples;
    eo.threads = (size_t)o->cfg.threads;
    eo.policy = policy;
    eo.set_level = bnn_policy_level(policy, SET_COVERAGE);
    struct eval_metrics em;
    if (eval_model(&em, NULL, NULL, model, d->test_im.pixels, d->test_lb.labels, d->test_im.n, &eo, err)) {
        bnn_err_prefix(err, "evaluating");
        return -1;
    }
    if (eval_metrics_to_meta(model, &em, SET_COVERAGE)) {
        snprintf(err, BNN_ERR_LEN, "saving with test figures: out of memory");
        return -1;
    }
    if (bnn_weights_save(o->out, model, err)) {
        bnn_err_prefix(err, "saving with test figures");
        return -1;
    }
    fprintf(stderr,
            PROG
            ": test (T=%zu, the daemon's path): accuracy %.4f  nll %.4f  ece %.4f  brier %.4f  flagged %.4f  "
            "0.95-set coverage %.4f size %.3f\n",
            em.samples, em.accuracy, em.nll, em.ece, em.brier, em.flagged, em.set_coverage, em.set_size);
    return 0;
}

static int load(struct data *d, struct log_ctx *ctx, const struct options *o, char err[BNN_ERR_LEN])
{
    if (idx_load_mnist(&d->train_im, &d->train_lb, o->data, "train", err)) {
        bnn_err_prefix(err, "loading training data");
        return -1;
    }
    if (o->test_samples && idx_load_mnist(&d->test_im, &d->test_lb, o->data, "t10k", err)) {
        bnn_err_prefix(err, "loading test data");
        return -1;
    }
    if (o->log) {
        ctx->csv = fopen(o->log, "w");
        if (!ctx->csv) {
            snprintf(err, BNN_ERR_LEN, "%.200s: %s", o->log, strerror(errno));
            return -1;
        }
        fprintf(ctx->csv, "epoch,loss,nll,kl,kl_factor,lr,train_acc,val_acc,val_nll,seconds,best\n");
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    int status = parse_options(&o, argc, argv);
    if (status != CLI_RUN)
        return status;
    char err[BNN_ERR_LEN];
    struct data d;
    struct log_ctx ctx = {NULL};
    struct bnn_model *model = NULL;
    struct bnn_policy policy;
    memset(&d, 0, sizeof d);
    status = load(&d, &ctx, &o, err) || train(&model, &o, &d, &ctx, err) ||
                     calibrate(&policy, model, &o, &d, err) ||
                     (o.test_samples && evaluate(model, &policy, &o, &d, err))
                 ? 1
                 : 0;
    if (status)
        fprintf(stderr, PROG ": error: %s\n", err);
    else
        fprintf(stderr, PROG ": wrote %s\n", o.out);
    if (ctx.csv && fclose(ctx.csv) != 0 && status == 0) {
        fprintf(stderr, PROG ": error: %s: %s\n", o.log, strerror(errno));
        status = 1;
    }
    bnn_model_free(model);
    data_free(&d);
    return status;
}

/* bnn-train - trains the MNIST Bayesian network (train.h) and saves the
 * best-validation checkpoint as safetensors, then evaluates it on the test
 * set (eval.h, T = 100) and records those figures in the metadata.
 * One progress line per epoch on stderr; --log writes the same as CSV.
 */
#include <errno.h>
#include <getopt.h>
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
#define CALIB_SAMPLES 100   /* T of the calibration: the daemon's default */
#define CALIB_FLAG_RATE 0.05 /* clean validation digits flagged */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " --data DIR --out FILE [options]\n"
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

static int usage_error(const char *what)
{
    fprintf(stderr, PROG ": error: %s\ntry '" PROG " --help'\n", what);
    return 2;
}

struct log_ctx {
    FILE *csv;
};

static int on_epoch(const struct train_epoch *e, void *p)
{
    struct log_ctx *ctx = p;
    fprintf(stderr,
            "epoch %3zu  loss %.4f  nll %.4f  kl %.4g  kl_factor %.2f  lr %.2e  train_acc %.4f  val_acc %.4f  "
            "val_nll %.4f  %.1fs%s\n",
            e->epoch, e->loss, e->nll, e->kl, e->kl_factor, e->lr, e->train_acc, e->val_acc, e->val_nll, e->seconds,
            e->best ? "  *" : "");
    if (ctx->csv) {
        fprintf(ctx->csv, "%zu,%.6f,%.6f,%.6g,%.4f,%.6g,%.6f,%.6f,%.6f,%.2f,%d\n", e->epoch, e->loss, e->nll, e->kl,
                e->kl_factor, e->lr, e->train_acc, e->val_acc, e->val_nll, e->seconds, e->best);
        fflush(ctx->csv);
    }
    return 0;
}

int main(int argc, char **argv)
{
    enum {
        O_DATA = 256, O_OUT, O_RECIPE, O_EPOCHS, O_SEED, O_BATCH, O_LR, O_SCHED, O_BETA, O_PRIOR, O_WARMUP,
        O_PATIENCE, O_THREADS, O_LIMIT, O_VALS, O_TESTS, O_LOG, O_MAXMIN, O_AUGMENT, O_DROPOUT, O_HELP
    };
    static const struct option opts[] = {
        {"data", required_argument, 0, O_DATA},       {"out", required_argument, 0, O_OUT},
        {"recipe", required_argument, 0, O_RECIPE},   {"epochs", required_argument, 0, O_EPOCHS},
        {"seed", required_argument, 0, O_SEED},       {"batch", required_argument, 0, O_BATCH},
        {"lr", required_argument, 0, O_LR},           {"lr-schedule", required_argument, 0, O_SCHED},
        {"beta", required_argument, 0, O_BETA},       {"prior-scale", required_argument, 0, O_PRIOR},
        {"warmup", required_argument, 0, O_WARMUP},   {"patience", required_argument, 0, O_PATIENCE},
        {"threads", required_argument, 0, O_THREADS}, {"limit", required_argument, 0, O_LIMIT},
        {"val-samples", required_argument, 0, O_VALS}, {"test-samples", required_argument, 0, O_TESTS},
        {"log", required_argument, 0, O_LOG},         {"max-minutes", required_argument, 0, O_MAXMIN},
        {"augment", required_argument, 0, O_AUGMENT}, {"dropout", required_argument, 0, O_DROPOUT},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    char err[BNN_ERR_LEN];
    const char *data = NULL, *out = NULL, *recipe = "default", *log_path = NULL;
    /* first pass: the recipe, so later flags override its values */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--recipe") == 0 && i + 1 < argc)
            recipe = argv[i + 1];
        else if (strncmp(argv[i], "--recipe=", 9) == 0)
            recipe = argv[i] + 9;
    }
    struct train_config cfg;
    if (train_config_recipe(&cfg, recipe, err))
        return usage_error(err);
    size_t test_samples = 100, v;
    double d;
    int c;
    char what[300];
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const char *name = c >= O_DATA && c <= O_HELP ? opts[c - O_DATA].name : "?";
        int bad = 0;
        switch (c) {
        case O_DATA: data = optarg; break;
        case O_OUT: out = optarg; break;
        case O_RECIPE: break;
        case O_LOG: log_path = optarg; break;
        case O_EPOCHS: bad = cli_parse_size(optarg, &cfg.epochs); break;
        case O_SEED: bad = cli_parse_size(optarg, &v); cfg.seed = v; break;
        case O_BATCH: bad = cli_parse_size(optarg, &cfg.batch); break;
        case O_WARMUP: bad = cli_parse_size(optarg, &cfg.warmup_epochs); break;
        case O_PATIENCE: bad = cli_parse_size(optarg, &cfg.patience); break;
        case O_LIMIT: bad = cli_parse_size(optarg, &cfg.limit); break;
        case O_VALS: bad = cli_parse_size(optarg, &cfg.val_samples); break;
        case O_TESTS: bad = cli_parse_size(optarg, &test_samples); break;
        case O_THREADS: bad = cli_parse_size(optarg, &v) || v < 1 || v > 256; cfg.threads = (int)v; break;
        case O_LR: bad = cli_parse_double(optarg, &cfg.lr); break;
        case O_BETA: bad = cli_parse_double(optarg, &cfg.beta); break;
        case O_PRIOR: bad = cli_parse_double(optarg, &d); cfg.prior_scale = d; break;
        case O_MAXMIN: bad = cli_parse_double(optarg, &d) || !(d >= 0); cfg.max_seconds = 60 * d; break;
        case O_DROPOUT: bad = cli_parse_double(optarg, &cfg.dropout); break;
        case O_AUGMENT:
            bad = cli_parse_double(optarg, &d) || !(d >= 0 && d <= 1);
            if (!bad && cfg.augment.p <= 0 && d > 0)
                augment_config_default(&cfg.augment);
            cfg.augment.p = d;
            break;
        case O_SCHED:
            if (strcmp(optarg, "cosine") == 0)
                cfg.lr_cosine = 1;
            else if (strcmp(optarg, "constant") == 0)
                cfg.lr_cosine = 0;
            else
                bad = 1;
            break;
        case O_HELP: usage(stdout); return 0;
        default: return usage_error("unknown option");
        }
        if (bad) {
            snprintf(what, sizeof what, "--%s: invalid value '%s'", name, optarg);
            return usage_error(what);
        }
    }
    if (optind < argc) {
        snprintf(what, sizeof what, "unexpected argument '%s'", argv[optind]);
        return usage_error(what);
    }
    if (!data || !out)
        return usage_error("--data and --out are required");
    if (train_config_check(&cfg, err))
        return usage_error(err);

    struct idx_images train_im = {0}, test_im = {0};
    struct idx_labels train_lb = {0}, test_lb = {0};
    struct bnn_model *model = NULL;
    struct log_ctx ctx = {NULL};
    int status = 1;
    if (idx_load_mnist(&train_im, &train_lb, data, "train", err)) {
        fprintf(stderr, PROG ": error: loading training data: %s\n", err);
        goto done;
    }
    if (test_samples && idx_load_mnist(&test_im, &test_lb, data, "t10k", err)) {
        fprintf(stderr, PROG ": error: loading test data: %s\n", err);
        goto done;
    }
    if (log_path) {
        ctx.csv = fopen(log_path, "w");
        if (!ctx.csv) {
            fprintf(stderr, PROG ": error: %s: %s\n", log_path, strerror(errno));
            goto done;
        }
        fprintf(ctx.csv, "epoch,loss,nll,kl,kl_factor,lr,train_acc,val_acc,val_nll,seconds,best\n");
    }
    char objective[256];
    fprintf(stderr, PROG ": recipe %s, seed %llu, batch %zu, up to %zu epochs, lr %g (%s), %s, threads %d\n",
            cfg.recipe, (unsigned long long)cfg.seed, cfg.batch, cfg.epochs, cfg.lr,
            cfg.lr_cosine ? "cosine" : "constant", train_objective(&cfg, objective, sizeof objective), cfg.threads);
    const size_t dims[] = {784, 784, 256, 256, 10};
    struct train_result res;
    if (train_run(&model, &res, &cfg, dims, 4, &train_im, &train_lb, on_epoch, &ctx, err)) {
        fprintf(stderr, PROG ": error: training: %s\n", err);
        goto done;
    }
    fprintf(stderr, PROG ": best epoch %zu of %zu, val accuracy %.4f, %.0f s\n", res.best_epoch, res.epochs_run,
            res.best_val_acc, res.train_seconds);
    if (bnn_weights_save(out, model, err)) {
        fprintf(stderr, PROG ": error: saving: %s\n", err);
        goto done;
    }
    /* the answer policy, on the same validation digits, the daemon's path */
    struct bnn_policy policy;
    size_t n_avail = train_im.n - cfg.val_count;
    if (calib_policy(&policy, model, train_im.pixels + n_avail * 784, train_lb.labels + n_avail, cfg.val_count,
                     CALIB_SAMPLES, (size_t)cfg.threads, CALIB_FLAG_RATE, err) ||
        bnn_policy_to_meta(&policy, model) || bnn_weights_save(out, model, err)) {
        fprintf(stderr, PROG ": error: calibrating: %s\n", err);
        goto done;
    }
    fprintf(stderr, PROG ": abstain above entropy %.4g or epistemic %.4g (%.1f %% of validation flagged)\n",
            policy.entropy_max, policy.epistemic_max, 100 * policy.clean_flag_rate);
    if (test_samples) {
        struct eval_options eo;
        eval_options_default(&eo);
        eo.samples = test_samples;
        eo.threads = (size_t)cfg.threads;
        eo.policy = &policy;
        eo.set_level = bnn_policy_level(&policy, 0.95);
        struct eval_metrics em;
        if (eval_model(&em, NULL, NULL, model, test_im.pixels, test_lb.labels, test_im.n, &eo, err)) {
            fprintf(stderr, PROG ": error: evaluating: %s\n", err);
            goto done;
        }
        char buf[64];
        int rc = 0;
        snprintf(buf, sizeof buf, "%.4f", em.accuracy);
        rc |= bnn_meta_set(model, "test_accuracy", buf);
        snprintf(buf, sizeof buf, "%.4f", em.nll);
        rc |= bnn_meta_set(model, "test_nll", buf);
        snprintf(buf, sizeof buf, "%.4f", em.ece);
        rc |= bnn_meta_set(model, "test_ece", buf);
        snprintf(buf, sizeof buf, "%.5f", em.brier);
        rc |= bnn_meta_set(model, "test_brier", buf);
        snprintf(buf, sizeof buf, "%zu", em.samples);
        rc |= bnn_meta_set(model, "test_samples", buf);
        snprintf(buf, sizeof buf, "%.4f", em.flagged);
        rc |= bnn_meta_set(model, "test_flagged", buf);
        snprintf(buf, sizeof buf, "%.4f", em.set_coverage);
        rc |= bnn_meta_set(model, "test_set_coverage_0.95", buf);
        snprintf(buf, sizeof buf, "%.3f", em.set_size);
        rc |= bnn_meta_set(model, "test_set_size_0.95", buf);
        if (rc || bnn_weights_save(out, model, err)) {
            fprintf(stderr, PROG ": error: saving with test figures: %s\n", rc ? "out of memory" : err);
            goto done;
        }
        fprintf(stderr,
                PROG ": test (T=%zu, the daemon's path): accuracy %.4f  nll %.4f  ece %.4f  brier %.4f  "
                     "flagged %.4f  0.95-set coverage %.4f size %.3f\n",
                em.samples, em.accuracy, em.nll, em.ece, em.brier, em.flagged, em.set_coverage, em.set_size);
    }
    fprintf(stderr, PROG ": wrote %s\n", out);
    status = 0;
done:
    if (ctx.csv && fclose(ctx.csv) != 0 && status == 0) {
        fprintf(stderr, PROG ": error: %s: %s\n", log_path, strerror(errno));
        status = 1;
    }
    bnn_model_free(model);
    idx_images_free(&train_im);
    idx_labels_free(&train_lb);
    idx_images_free(&test_im);
    idx_labels_free(&test_lb);
    return status;
}

/* bnn-eval - evaluates weights on the MNIST test set as callers get them:
 * by default every picture goes the daemon's path (answer.h through
 * eval.h: canonicalisation, T passes, the abstain rule and the 0.95
 * prediction sets of the policy in the weights' metadata); --model-only
 * measures the network alone on pixel/255. Prints accuracy, NLL, Brier
 * score (the paper's mean-over-classes form; the sum form too), 15-bin ECE,
 * the mean interval width of the predicted class, the uncertainty means and
 * the answer figures (flagged, wrong answers flagged, no digit, set
 * coverage and size). --json adds one JSON object as the last line;
 * --write-meta records the figures in the weights' metadata (test_*).
 * A thin main: options, run, report.
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnn.h"
#include "decide.h"
#include "eval.h"
#include "idx.h"
#include "weights.h"

#include "cli.h"

#define PROG "bnn-eval"
#define SET_COVERAGE 0.95 /* the daemon's default prediction-set level */

static void usage(FILE *f)
{
    fprintf(f, "usage: " PROG " --model FILE --data DIR [options]\n"
               "Evaluates a Bayesian network on the 10,000 MNIST test images through the\n"
               "daemon's path: canonicalisation, passes, the abstain rule and prediction sets\n"
               "of the policy in the weights' metadata.\n"
               "\n"
               "  --model FILE      weights (safetensors)\n"
               "  --data DIR        MNIST raw IDX files (t10k-images-idx3-ubyte, ...)\n"
               "  --model-only      the network alone on pixel/255 (no canonicalisation)\n"
               "  --samples T       Monte-Carlo passes per image [100]\n"
               "  --mode M          lrt | weights [lrt]\n"
               "  --seed S          random seed [1]\n"
               "  --limit N         first N test images only\n"
               "  --threads N       worker threads [2]\n"
               "  --interval C      interval coverage in (0,1) [0.95]\n"
               "  --json            print one JSON object as the last line\n"
               "  --write-meta      store test_accuracy, test_nll, test_ece, test_brier,\n"
               "                    test_interval_width, test_samples, test_flagged and the 0.95\n"
               "                    set figures in the model file's metadata (the daemon's path,\n"
               "                    full test set only)\n"
               "  --help            this text\n");
}

struct options {
    const char *model, *data;
    struct eval_options eval;
    size_t limit;
    int json, write_meta;
};

enum {
    O_MODEL = 256,
    O_DATA,
    O_MODEL_ONLY,
    O_SAMPLES,
    O_MODE,
    O_SEED,
    O_LIMIT,
    O_THREADS,
    O_INTERVAL,
    O_JSON,
    O_META,
    O_HELP
};

static const struct option long_options[] = {{"model", required_argument, 0, O_MODEL},
                                             {"data", required_argument, 0, O_DATA},
                                             {"model-only", no_argument, 0, O_MODEL_ONLY},
                                             {"samples", required_argument, 0, O_SAMPLES},
                                             {"mode", required_argument, 0, O_MODE},
                                             {"seed", required_argument, 0, O_SEED},
                                             {"limit", required_argument, 0, O_LIMIT},
                                             {"threads", required_argument, 0, O_THREADS},
                                             {"interval", required_argument, 0, O_INTERVAL},
                                             {"json", no_argument, 0, O_JSON},
                                             {"write-meta", no_argument, 0, O_META},
                                             {"help", no_argument, 0, O_HELP},
                                             {0, 0, 0, 0}};

/* One option into o; the expectation its value failed, or NULL. */
static const char *parse_one(void *opts, int c, const char *arg)
{
    struct options *o = opts;
    struct eval_options *e = &o->eval;
    size_t v;
    switch (c) {
    case O_MODEL:
        o->model = arg;
        return NULL;
    case O_DATA:
        o->data = arg;
        return NULL;
    case O_MODEL_ONLY:
        e->pipeline = 0;
        return NULL;
    case O_JSON:
        o->json = 1;
        return NULL;
    case O_META:
        o->write_meta = 1;
        return NULL;
    case O_SAMPLES:
        return cli_parse_size(arg, &e->samples) || e->samples < 1 || e->samples > 100000
                   ? "an integer in [1, 100000]"
                   : NULL;
    case O_MODE:
        return bnn_mode_parse(arg, &e->mode) ? "lrt or weights" : NULL;
    case O_SEED:
        if (cli_parse_size(arg, &v))
            return "a non-negative integer";
        e->seed = v;
        return NULL;
    case O_LIMIT:
        return cli_parse_size(arg, &o->limit) ? "a non-negative integer" : NULL;
    case O_THREADS:
        return cli_threads(arg, &e->threads);
    case O_INTERVAL:
        return cli_coverage(arg, &e->coverage);
    }
    return "a known option";
}

static int parse_options(struct options *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    eval_options_default(&o->eval);
    int rc = cli_getopt(PROG, argc, argv, "", long_options, O_HELP, usage, parse_one, o);
    if (rc != CLI_RUN)
        return rc;
    rc = cli_finish(PROG, argc, argv, o->model && o->data, "--model and --data are required");
    if (rc == CLI_RUN && o->write_meta && o->limit)
        return cli_usage_error(PROG, "--write-meta needs the full test set (no --limit)", NULL);
    if (rc == CLI_RUN && o->write_meta && !o->eval.pipeline)
        return cli_usage_error(PROG, "--write-meta records the daemon's figures, not --model-only ones",
                               NULL);
    return rc;
}

/* ---- run -------------------------------------------------------------------- */

struct run {
    struct bnn_model *m;
    struct bnn_policy policy;
    struct idx_images im;
    struct idx_labels lb;
    struct eval_metrics e;
    size_t n;
    double seconds;
};

static int run(struct run *r, struct options *o, char err[BNN_ERR_LEN])
{
    if (bnn_weights_load(&r->m, o->model, err))
        return -1;
    if (bnn_policy_from_meta(&r->policy, r->m, err)) {
        bnn_err_prefix(err, o->model);
        return -1;
    }
    if (idx_load_mnist(&r->im, &r->lb, o->data, "t10k", err))
        return -1;
    if (bnn_model_n_in(r->m) != r->im.rows * r->im.cols) {
        snprintf(err, BNN_ERR_LEN, "model input %zu does not match %zux%zu images", bnn_model_n_in(r->m),
                 r->im.rows, r->im.cols);
        return -1;
    }
    r->n = o->limit && o->limit < r->im.n ? o->limit : r->im.n;
    o->eval.policy = &r->policy;
    o->eval.set_level = bnn_policy_level(&r->policy, SET_COVERAGE);
    double t0 = cli_now_seconds();
    if (eval_model(&r->e, NULL, NULL, r->m, r->im.pixels, r->lb.labels, r->n, &o->eval, err))
        return -1;
    r->seconds = cli_now_seconds() - t0;
    return 0;
}

/* ---- report ------------------------------------------------------------------ */

static void print_text(const struct run *r, const struct options *o)
{
    const struct eval_metrics *e = &r->e;
    const struct bnn_policy *p = &r->policy;
    char arch[64];
    const char *recipe = bnn_meta_get(r->m, "recipe");
    printf("model           %s (%s, recipe %s)\n", o->model, bnn_model_arch(r->m, arch, sizeof arch),
           recipe ? recipe : "?");
    printf("path            %s\n", o->eval.pipeline ? "the daemon's: canonicalise, predict, decide"
                                                    : "the model alone on pixel/255 (--model-only)");
    printf("images          %zu MNIST test images, T = %zu passes, mode %s, seed %llu\n", r->n,
           o->eval.samples, bnn_mode_name(o->eval.mode), (unsigned long long)o->eval.seed);
    printf("accuracy        %.4f  (%.2f %%)\n", e->accuracy, 100 * e->accuracy);
    printf("nll             %.4f  nats, mean -log p(label) of the mean prediction\n", e->nll);
    printf("brier           %.5f  paper form: (1/10) sum_k (p_k - y_k)^2, mean over images\n", e->brier);
    printf("brier_sum       %.5f  sum form: sum_k (p_k - y_k)^2\n", e->brier_sum);
    printf("ece             %.4f  (%.2f %%), 15 equal-width bins of max p\n", e->ece, 100 * e->ece);
    printf("interval_width  %.4f  mean %.0f %% interval width of the predicted class\n", e->interval_width,
           100 * o->eval.coverage);
    printf("entropy         %.4f  nats (aleatoric %.4f, epistemic %.4f)\n", e->entropy, e->aleatoric,
           e->epistemic);
    printf("policy          entropy > %g or epistemic > %g nats%s\n", p->entropy_max, p->epistemic_max,
           isinf(p->entropy_max) && isinf(p->epistemic_max) ? " (none in the metadata: bnn-calibrate)" : "");
    printf("flagged         %.4f  share of answers flagged uncertain\n", e->flagged);
    printf("errors_flagged  %.4f  share of the wrong answers flagged\n", e->errors_flagged);
    printf("no_digit        %.4f  share the canonicalisation found no digit in\n", e->no_digit);
    printf("set_coverage    %.4f  %.2f prediction sets holding the label (mean size %.3f)\n", e->set_coverage,
           SET_COVERAGE, e->set_size);
    printf("seconds         %.1f\n", r->seconds);
}

/* JSON has no NaN: an unknown figure is null. */
static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static int print_json(const struct run *r, const struct options *o)
{
    const struct eval_metrics *e = &r->e;
    json_t *j = json_object();
    json_object_set_new(j, "model", json_string(o->model));
    json_object_set_new(j, "pipeline", json_boolean(o->eval.pipeline));
    json_object_set_new(j, "images", json_integer((json_int_t)r->n));
    json_object_set_new(j, "samples", json_integer((json_int_t)o->eval.samples));
    json_object_set_new(j, "mode", json_string(bnn_mode_name(o->eval.mode)));
    json_object_set_new(j, "seed", json_integer((json_int_t)o->eval.seed));
    json_object_set_new(j, "brier_form", json_string("mean over classes"));
    json_object_set_new(j, "ece_bins", json_integer(15));
    json_object_set_new(j, "interval", json_real(o->eval.coverage));
    json_object_set_new(j, "set_level", json_real(SET_COVERAGE));
    const char *keys[] = {"accuracy",       "nll",      "brier",        "brier_sum", "ece",
                          "interval_width", "entropy",  "aleatoric",    "epistemic", "flagged",
                          "errors_flagged", "no_digit", "set_coverage", "set_size",  "seconds"};
    const double values[] = {e->accuracy,       e->nll,      e->brier,        e->brier_sum, e->ece,
                             e->interval_width, e->entropy,  e->aleatoric,    e->epistemic, e->flagged,
                             e->errors_flagged, e->no_digit, e->set_coverage, e->set_size,  r->seconds};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        json_object_set_new(j, keys[i], num(values[i]));
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(j);
    if (!s)
        return -1;
    printf("%s\n", s);
    free(s);
    return 0;
}

static int report(struct run *r, const struct options *o, char err[BNN_ERR_LEN])
{
    print_text(r, o);
    if (o->json && print_json(r, o)) {
        snprintf(err, BNN_ERR_LEN, "out of memory for the JSON line");
        return -1;
    }
    if (o->write_meta) {
        if (eval_metrics_to_meta(r->m, &r->e, SET_COVERAGE) != BNN_OK) {
            snprintf(err, BNN_ERR_LEN, "out of memory for metadata");
            return -1;
        }
        if (bnn_weights_save(o->model, r->m, err))
            return -1;
        fprintf(stderr, PROG ": wrote test figures into %s\n", o->model);
    }
    if (fflush(stdout) != 0) {
        snprintf(err, BNN_ERR_LEN, "write stdout failed");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    int status = parse_options(&o, argc, argv);
    if (status != CLI_RUN)
        return status;
    struct run r;
    memset(&r, 0, sizeof r);
    char err[BNN_ERR_LEN];
    status = run(&r, &o, err) == 0 && report(&r, &o, err) == 0 ? 0 : 1;
    if (status)
        fprintf(stderr, PROG ": error: %s\n", err);
    bnn_model_free(r.m);
    idx_images_free(&r.im);
    idx_labels_free(&r.lb);
    return status;
}

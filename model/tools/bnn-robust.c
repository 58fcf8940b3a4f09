/* bnn-robust - is the uncertainty worth having, for what callers get?
 * Measures weights through the daemon's own path (canonicalisation, T
 * passes, the abstain rule and conformal sets of the weights' policy) on the
 * MNIST test set, its 15 MNIST-C-style corruptions, rotations 0..180
 * degrees, Fashion-MNIST and pictures without a digit, with the model alone
 * on pixel/255 beside it; writes one JSON document, and optionally the data
 * files the gnuplot scripts in docs/ plot and the markdown of the report.
 * A thin main over study.h and study_report.h: options, run, report.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bnn.h"
#include "decide.h"
#include "idx.h"
#include "study.h"
#include "study_report.h"
#include "weights.h"

#include "cli.h"

#define PROG "bnn-robust"
#define DEFAULT_FASHION "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
#define VAL_COUNT 5000 /* the trainer's validation digits: the last of the training split */

static void usage(FILE *f)
{
    fprintf(f, "usage: " PROG " --model FILE --data DIR [options]\n"
               "Robustness of what callers get from a Bayesian network: the MNIST test set clean,\n"
               "under 15 MNIST-C-style corruptions and rotation, Fashion-MNIST and pictures without\n"
               "a digit, each through the daemon's path (canonicalisation, passes, abstain rule,\n"
               "prediction sets) and with the model alone on pixel/255.\n"
               "\n"
               "  --model FILE          weights (safetensors); their metadata's policy is used\n"
               "  --data DIR            MNIST raw IDX files (t10k-*, and train-* for --validation)\n"
               "  --fashion FILE        Fashion-MNIST test images, gzip IDX\n"
               "                        [" DEFAULT_FASHION "]\n"
               "  --policy-from FILE    take the policy from this weights file's metadata instead\n"
               "  --entropy-max X       override the policy's entropy threshold (nats, or inf)\n"
               "  --epistemic-max X     override the policy's epistemic threshold (nats, or inf)\n"
               "  --samples T           passes per image, the daemon's path [the policy's T, else 100]\n"
               "  --model-only-samples T  passes per image of the model alone, 0 = skip [--samples]\n"
               "  --seed S              seed of the corruptions and of the passes [1]\n"
               "  --limit N             first N test and Fashion-MNIST images [all]\n"
               "  --rotation-limit N    first N test images per rotation angle [--limit]\n"
               "  --no-digit N          pictures without a digit, half blank, half noise [200]\n"
               "  --validation N        last N training digits for the flag-rate table, 0 = skip\n"
               "                        [5000, the trainer's validation digits]\n"
               "  --threads N           worker threads [2]\n"
               "  --interval C          interval coverage in (0,1) [0.95]\n"
               "  --example I           test image for the clean/corrupted example [the most\n"
               "                        uncertain corrupted copy of a digit right clean, wrong corrupted]\n"
               "  --json FILE           write the JSON there instead of stdout\n"
               "  --plots DIR           write gnuplot data files (*.tsv, *.mat, *.txt) into DIR\n"
               "  --markdown FILE       write the numbers and findings as markdown\n"
               "  --help                this text\n");
}

struct options {
    const char *model, *data, *fashion, *policy_from, *json, *plots, *markdown;
    double entropy_max, epistemic_max; /* NAN: the policy's */
    size_t samples, model_samples;     /* SIZE_MAX: the default */
    size_t seed, limit, rotation_limit, no_digit, validation, threads, example;
    double interval;
};

enum {
    O_MODEL = 256,
    O_DATA,
    O_FASHION,
    O_POLICY,
    O_ENTROPY,
    O_EPISTEMIC,
    O_SAMPLES,
    O_MODEL_SAMPLES,
    O_SEED,
    O_LIMIT,
    O_ROT,
    O_NO_DIGIT,
    O_VAL,
    O_THREADS,
    O_INTERVAL,
    O_EXAMPLE,
    O_JSON,
    O_PLOTS,
    O_MD,
    O_HELP
};

static const struct option long_options[] = {
    {"model", required_argument, 0, O_MODEL},
    {"data", required_argument, 0, O_DATA},
    {"fashion", required_argument, 0, O_FASHION},
    {"policy-from", required_argument, 0, O_POLICY},
    {"entropy-max", required_argument, 0, O_ENTROPY},
    {"epistemic-max", required_argument, 0, O_EPISTEMIC},
    {"samples", required_argument, 0, O_SAMPLES},
    {"model-only-samples", required_argument, 0, O_MODEL_SAMPLES},
    {"seed", required_argument, 0, O_SEED},
    {"limit", required_argument, 0, O_LIMIT},
    {"rotation-limit", required_argument, 0, O_ROT},
    {"no-digit", required_argument, 0, O_NO_DIGIT},
    {"validation", required_argument, 0, O_VAL},
    {"threads", required_argument, 0, O_THREADS},
    {"interval", required_argument, 0, O_INTERVAL},
    {"example", required_argument, 0, O_EXAMPLE},
    {"json", required_argument, 0, O_JSON},
    {"plots", required_argument, 0, O_PLOTS},
    {"markdown", required_argument, 0, O_MD},
    {"help", no_argument, 0, O_HELP},
    {0, 0, 0, 0},
};

/* One option's value into o; the expectation it failed, or NULL. */
static const char *parse_one(void *opts, int c, const char *arg)
{
    struct options *o = opts;
    switch (c) {
    case O_MODEL:
        o->model = arg;
        return NULL;
    case O_DATA:
        o->data = arg;
        return NULL;
    case O_FASHION:
        o->fashion = arg;
        return NULL;
    case O_POLICY:
        o->policy_from = arg;
        return NULL;
    case O_JSON:
        o->json = arg;
        return NULL;
    case O_PLOTS:
        o->plots = arg;
        return NULL;
    case O_MD:
        o->markdown = arg;
        return NULL;
    case O_ENTROPY:
        return cli_parse_limit(arg, &o->entropy_max) ? "a number >= 0 or inf" : NULL;
    case O_EPISTEMIC:
        return cli_parse_limit(arg, &o->epistemic_max) ? "a number >= 0 or inf" : NULL;
    case O_SAMPLES:
        return cli_parse_size(arg, &o->samples) || o->samples < 2 || o->samples > 100000
                   ? "an integer in [2, 100000]"
                   : NULL;
    case O_MODEL_SAMPLES:
        return cli_parse_size(arg, &o->model_samples) || o->model_samples == 1 || o->model_samples > 100000
                   ? "0 or an integer in [2, 100000]"
                   : NULL;
    case O_SEED:
        return cli_parse_size(arg, &o->seed) ? "a non-negative integer" : NULL;
    case O_LIMIT:
        return cli_parse_size(arg, &o->limit) || o->limit == 0 ? "a positive integer" : NULL;
    case O_ROT:
        return cli_parse_size(arg, &o->rotation_limit) || o->rotation_limit == 0 ? "a positive integer"
                                                                                 : NULL;
    case O_NO_DIGIT:
        return cli_parse_size(arg, &o->no_digit) || o->no_digit > 100000 ? "an integer in [0, 100000]" : NULL;
    case O_VAL:
        return cli_parse_size(arg, &o->validation) ? "a non-negative integer" : NULL;
    case O_THREADS:
        return cli_threads(arg, &o->threads);
    case O_INTERVAL:
        return cli_coverage(arg, &o->interval);
    case O_EXAMPLE:
        return cli_parse_size(arg, &o->example) ? "an image index" : NULL;
    }
    return "a known option";
}

static int parse_options(struct options *o, int argc, char **argv)
{
    *o = (struct options){.fashion = DEFAULT_FASHION,
                          .entropy_max = NAN,
                          .epistemic_max = NAN,
                          .samples = SIZE_MAX,
                          .model_samples = SIZE_MAX,
                          .seed = 1,
                          .no_digit = 200,
                          .validation = VAL_COUNT,
                          .threads = 2,
                          .example = SIZE_MAX,
                          .interval = 0.95};
    int rc = cli_getopt(PROG, argc, argv, "", long_options, O_HELP, usage, parse_one, o);
    if (rc != CLI_RUN)
        return rc;
    return cli_finish(PROG, argc, argv, o->model && o->data, "--model and --data are required");
}

/* ---- run -------------------------------------------------------------------- */

struct inputs {
    struct bnn_model *model;
    struct bnn_policy policy;
    char policy_source[512];
    struct idx_images test, fashion, train;
    struct idx_labels test_labels, train_labels;
};

static void inputs_free(struct inputs *in)
{
    bnn_model_free(in->model);
    idx_images_free(&in->test);
    idx_images_free(&in->fashion);
    idx_images_free(&in->train);
    idx_labels_free(&in->test_labels);
    idx_labels_free(&in->train_labels);
}

/* The policy: the model's metadata, or --policy-from's, then overrides. */
static int load_policy(struct inputs *in, const struct options *o, char err[BNN_ERR_LEN])
{
    struct bnn_model *from = in->model;
    if (o->policy_from && bnn_weights_load(&from, o->policy_from, err) != BNN_OK)
        return -1;
    int rc = bnn_policy_from_meta(&in->policy, from, err);
    if (from != in->model)
        bnn_model_free(from);
    if (rc != BNN_OK) {
        bnn_err_prefix(err, o->policy_from ? o->policy_from : o->model);
        return -1;
    }
    snprintf(in->policy_source, sizeof in->policy_source, "from the metadata of %.400s%s%s",
             o->policy_from ? o->policy_from : o->model, isnan(o->entropy_max) ? "" : ", --entropy-max",
             isnan(o->epistemic_max) ? "" : ", --epistemic-max");
    if (!isnan(o->entropy_max))
        in->policy.entropy_max = o->entropy_max;
    if (!isnan(o->epistemic_max))
        in->policy.epistemic_max = o->epistemic_max;
    int overridden = !isnan(o->entropy_max) || !isnan(o->epistemic_max);
    if (!overridden && isinf(in->policy.entropy_max) && isinf(in->policy.epistemic_max) &&
        !in->policy.n_levels) {
        snprintf(err, BNN_ERR_LEN,
                 "%.100s carries no calibrated policy: run bnn-calibrate --write-meta on it, or give "
                 "--policy-from, --entropy-max or --epistemic-max",
                 o->policy_from ? o->policy_from : o->model);
        return -1;
    }
    return 0;
}

/* The outputs' places must be writable before a long run, not after it:
 * the --plots directory, and the directories of --json and --markdown. */
static int check_outputs(const struct options *o, char err[BNN_ERR_LEN])
{
    const char *files[] = {o->json, o->markdown};
    if (o->plots && access(o->plots, W_OK | X_OK) != 0) {
        snprintf(err, BNN_ERR_LEN, "--plots %.200s: %s", o->plots, strerror(errno));
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        char dir[4096];
        if (!files[i])
            continue;
        snprintf(dir, sizeof dir, "%s", files[i]);
        if (access(dirname(dir), W_OK | X_OK) != 0) {
            snprintf(err, BNN_ERR_LEN, "--%s %.200s: %s", i ? "markdown" : "json", files[i], strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int load_inputs(struct inputs *in, const struct options *o, char err[BNN_ERR_LEN])
{
    memset(in, 0, sizeof *in);
    if (check_outputs(o, err))
        return -1;
    if (bnn_weights_load(&in->model, o->model, err) != BNN_OK || load_policy(in, o, err))
        return -1;
    if (idx_load_mnist(&in->test, &in->test_labels, o->data, "t10k", err) != BNN_OK ||
        idx_images_load_gz(&in->fashion, o->fashion, err) != BNN_OK)
        return -1;
    if (in->fashion.rows * in->fashion.cols != CORRUPT_PIXELS) {
        snprintf(err, BNN_ERR_LEN, "%s: expected 28x28 images, got %zux%zu", o->fashion, in->fashion.rows,
                 in->fashion.cols);
        return -1;
    }
    if (o->validation && idx_load_mnist(&in->train, &in->train_labels, o->data, "train", err) != BNN_OK)
        return -1;
    if (o->validation > in->train.n) {
        snprintf(err, BNN_ERR_LEN, "--validation %zu: the training split has %zu images", o->validation,
                 in->train.n);
        return -1;
    }
    if (o->example != SIZE_MAX && o->example >= in->test.n) {
        snprintf(err, BNN_ERR_LEN, "--example %zu: the test set has %zu images", o->example, in->test.n);
        return -1;
    }
    return 0;
}

static void progress(const struct study_set *s, double seconds, void *ctx)
{
    (void)ctx;
    fprintf(stderr,
            PROG ": %-14s n %5zu  acc %.4f (model alone %.4f)  flagged %.3f  epistemic %.4f  (%.1f s)\n",
            s->name, s->n, s->pipe.m.accuracy, s->model.m.n ? s->model.m.accuracy : NAN, s->pipe.m.flagged,
            s->pipe.m.epistemic, seconds);
}

static void study_inputs(struct study_data *d, struct study_config *c, const struct inputs *in,
                         const struct options *o)
{
    size_t n = o->limit && o->limit < in->test.n ? o->limit : in->test.n;
    size_t n_val = o->validation;
    *d = (struct study_data){in->test.pixels,
                             in->test_labels.labels,
                             n,
                             in->fashion.pixels,
                             o->limit && o->limit < in->fashion.n ? o->limit : in->fashion.n,
                             NULL,
                             NULL,
                             n_val};
    if (n_val) {
        d->val = in->train.pixels + (in->train.n - n_val) * CORRUPT_PIXELS;
        d->val_labels = in->train_labels.labels + (in->train_labels.n - n_val);
    }
    eval_options_default(&c->eval);
    c->eval.samples = o->samples != SIZE_MAX ? o->samples : in->policy.samples ? in->policy.samples : 100;
    c->eval.seed = o->seed;
    c->eval.threads = o->threads;
    c->eval.coverage = o->interval;
    c->eval.policy = &in->policy;
    c->eval.set_level = bnn_policy_level(&in->policy, STUDY_SET_COVERAGE);
    c->model_samples = o->model_samples != SIZE_MAX ? o->model_samples : c->eval.samples;
    c->n_rotation = o->rotation_limit ? (o->rotation_limit < in->test.n ? o->rotation_limit : in->test.n) : n;
    c->n_no_digit = o->no_digit;
    c->example = o->example != SIZE_MAX && o->example < n ? o->example : SIZE_MAX;
    c->model_name = o->model;
    c->policy_source = in->policy_source;
    c->progress = progress;
    c->ctx = NULL;
}

/* ---- report ------------------------------------------------------------------ */

static int report(const struct study *st, const struct options *o, char err[BNN_ERR_LEN])
{
    if (study_write_json(st, o->json, err) != BNN_OK)
        return -1;
    if (o->plots && study_write_plots(st, o->plots, err) != BNN_OK)
        return -1;
    if (o->markdown && study_write_markdown(st, o->markdown, err) != BNN_OK)
        return -1;
    fprintf(stderr, PROG ": done in %.0f s\n", st->seconds);
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    int status = parse_options(&o, argc, argv);
    if (status != CLI_RUN)
        return status;
    char err[BNN_ERR_LEN];
    struct inputs in;
    struct study st;
    memset(&st, 0, sizeof st);
    status = 1;
    if (load_inputs(&in, &o, err) == 0) {
        if (o.example != SIZE_MAX && o.limit && o.example >= o.limit)
            snprintf(err, BNN_ERR_LEN, "--example %zu: beyond --limit %zu", o.example, o.limit);
        else {
            struct study_data d;
            struct study_config c;
            study_inputs(&d, &c, &in, &o);
            if (study_run(&st, in.model, &d, &c, err) == BNN_OK && report(&st, &o, err) == 0)
                status = 0;
        }
    }
    if (status)
        fprintf(stderr, PROG ": error: %s\n", err);
    study_free(&st);
    inputs_free(&in);
    return status;
}

/* bnn-calibrate - fits the answer policy (decide.h) of a weights file on
 * the 5,000 validation digits (the last of MNIST's training split, which
 * the trainer held out; never the test set), through the daemon's own path:
 * the abstain thresholds for a stated share of clean digits flagged, and
 * the conformal prediction-set levels 0.90, 0.95 and 0.99. Prints them;
 * --write-meta stores them in the weights' metadata, where the daemon reads
 * them. A thin main over calibrate.h: options, calibrate, report.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bnn.h"
#include "calibrate.h"
#include "idx.h"
#include "weights.h"

#include "cli.h"

#define PROG "bnn-calibrate"
#define VAL_COUNT 5000

static void usage(FILE *f)
{
    fprintf(f, "usage: " PROG " --model FILE --data DIR [options]\n"
               "Calibrates the abstain rule and the conformal prediction sets of a Bayesian\n"
               "network on the 5,000 validation digits (the last of MNIST's training split).\n"
               "\n"
               "  --model FILE      weights (safetensors)\n"
               "  --data DIR        MNIST raw IDX files (train-images-idx3-ubyte, ...)\n"
               "  --samples T       Monte-Carlo passes per image [100]\n"
               "  --flag-rate F     share of clean validation digits to flag, in (0, 0.5] [0.045]\n"
               "  --threads N       worker threads [2]\n"
               "  --write-meta      store the policy in the model file's metadata\n"
               "  --help            this text\n");
}

struct options {
    const char *model, *data;
    size_t samples, threads;
    double flag_rate;
    int write_meta;
};

enum { O_MODEL = 256, O_DATA, O_SAMPLES, O_RATE, O_THREADS, O_META, O_HELP };

static const struct option long_options[] = {{"model", required_argument, 0, O_MODEL},
                                             {"data", required_argument, 0, O_DATA},
                                             {"samples", required_argument, 0, O_SAMPLES},
                                             {"flag-rate", required_argument, 0, O_RATE},
                                             {"threads", required_argument, 0, O_THREADS},
                                             {"write-meta", no_argument, 0, O_META},
                                             {"help", no_argument, 0, O_HELP},
                                             {0, 0, 0, 0}};

/* One option into o; the expectation its value failed, or NULL. */
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
    case O_META:
        o->write_meta = 1;
        return NULL;
    case O_SAMPLES:
        return cli_parse_size(arg, &o->samples) || o->samples < 1 || o->samples > 100000
                   ? "an integer in [1, 100000]"
                   : NULL;
    case O_THREADS:
        return cli_threads(arg, &o->threads);
    case O_RATE:
        return cli_parse_double(arg, &o->flag_rate) || !(o->flag_rate > 0 && o->flag_rate <= 0.5)
                   ? "a share in (0, 0.5]"
                   : NULL;
    }
    return "a known option";
}

static int parse_options(struct options *o, int argc, char **argv)
{
    *o = (struct options){NULL, NULL, 100, 2, CALIB_FLAG_RATE, 0};
    int rc = cli_getopt(PROG, argc, argv, "", long_options, O_HELP, usage, parse_one, o);
    if (rc != CLI_RUN)
        return rc;
    return cli_finish(PROG, argc, argv, o->model && o->data, "--model and --data are required");
}

static void report(const struct bnn_policy *p)
{
    printf(
        "abstain: entropy > %.6g or epistemic > %.6g nats (T = %zu): %.2f %% of validation digits flagged\n",
        p->entropy_max, p->epistemic_max, p->samples, 100 * p->clean_flag_rate);
    for (size_t l = 0; l < p->n_levels; l++)
        printf("conformal %.2f: classes with mean probability >= %.6g\n", p->coverage[l], p->min_prob[l]);
}

int main(int argc, char **argv)
{
    struct options o;
    int status = parse_options(&o, argc, argv);
    if (status != CLI_RUN)
        return status;
    char err[BNN_ERR_LEN];
    struct bnn_model *m = NULL;
    struct idx_images im = {0};
    struct idx_labels lb = {0};
    struct bnn_policy p;
    status = 1;
    if (bnn_weights_load(&m, o.model, err)) {
        fprintf(stderr, PROG ": error: %s\n", err);
    } else if (idx_load_mnist(&im, &lb, o.data, "train", err)) {
        fprintf(stderr, PROG ": error: loading the validation digits: %s\n", err);
    } else if (im.n <= VAL_COUNT) {
        fprintf(stderr, PROG ": error: expected more than %d training images, got %zu\n", VAL_COUNT, im.n);
    } else if (calib_policy(&p, m, im.pixels + (im.n - VAL_COUNT) * 784, lb.labels + (lb.n - VAL_COUNT),
                            VAL_COUNT, o.samples, o.threads, o.flag_rate, err)) {
        fprintf(stderr, PROG ": error: calibrating: %s\n", err);
    } else {
        report(&p);
        status = 0;
        if (o.write_meta && (bnn_policy_to_meta(&p, m) || bnn_weights_save(o.model, m, err))) {
            fprintf(stderr, PROG ": error: saving %s: %s\n", o.model, err);
            status = 1;
        } else if (o.write_meta) {
            printf("wrote the policy into %s\n", o.model);
        }
    }
    bnn_model_free(m);
    idx_images_free(&im);
    idx_labels_free(&lb);
    return status;
}

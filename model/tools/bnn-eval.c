/* bnn-eval - evaluates weights on the MNIST test set (eval.h): accuracy,
 * NLL, Brier score (the paper's mean-over-classes form; the sum form too),
 * 15-bin ECE of the mean prediction, and the mean 95 % interval width of the
 * predicted class. --json adds one JSON object as the last line.
 * --write-meta records the figures in the weights' metadata (test_*).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bnn.h"
#include "eval.h"
#include "idx.h"
#include "weights.h"

#include "cli.h"

#define PROG "bnn-eval"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " --model FILE --data DIR [options]\n"
            "Evaluates a Bayesian network on the 10,000 MNIST test images.\n"
            "\n"
            "  --model FILE      weights (safetensors)\n"
            "  --data DIR        MNIST raw IDX files (t10k-images-idx3-ubyte, ...)\n"
            "  --samples T       Monte-Carlo passes per image [100]\n"
            "  --mode M          lrt | weights [lrt]\n"
            "  --seed S          random seed [1]\n"
            "  --limit N         first N test images only\n"
            "  --threads N       worker threads [2]\n"
            "  --interval C      interval coverage in (0,1) [0.95]\n"
            "  --json            print one JSON object as the last line\n"
            "  --write-meta      store test_accuracy, test_nll, test_ece, test_brier and\n"
            "                    test_samples in the model file's metadata (full test set only)\n"
            "  --help            this text\n");
}

static int usage_error(const char *what)
{
    fprintf(stderr, PROG ": error: %s\ntry '" PROG " --help'\n", what);
    return 2;
}

static int write_meta(const char *path, struct bnn_model *m, const struct eval_metrics *e, char err[BNN_ERR_LEN])
{
    char buf[64];
    int rc = 0;
    snprintf(buf, sizeof buf, "%.4f", e->accuracy);
    rc |= bnn_meta_set(m, "test_accuracy", buf);
    snprintf(buf, sizeof buf, "%.4f", e->nll);
    rc |= bnn_meta_set(m, "test_nll", buf);
    snprintf(buf, sizeof buf, "%.4f", e->ece);
    rc |= bnn_meta_set(m, "test_ece", buf);
    snprintf(buf, sizeof buf, "%.5f", e->brier);
    rc |= bnn_meta_set(m, "test_brier", buf);
    snprintf(buf, sizeof buf, "%.4f", e->interval_width);
    rc |= bnn_meta_set(m, "test_interval_width", buf);
    snprintf(buf, sizeof buf, "%zu", e->samples);
    rc |= bnn_meta_set(m, "test_samples", buf);
    if (rc) {
        snprintf(err, BNN_ERR_LEN, "out of memory for metadata");
        return BNN_E_NOMEM;
    }
    return bnn_weights_save(path, m, err);
}

int main(int argc, char **argv)
{
    enum { O_MODEL = 256, O_DATA, O_SAMPLES, O_MODE, O_SEED, O_LIMIT, O_THREADS, O_INTERVAL, O_JSON, O_META, O_HELP };
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL},     {"data", required_argument, 0, O_DATA},
        {"samples", required_argument, 0, O_SAMPLES}, {"mode", required_argument, 0, O_MODE},
        {"seed", required_argument, 0, O_SEED},       {"limit", required_argument, 0, O_LIMIT},
        {"threads", required_argument, 0, O_THREADS}, {"interval", required_argument, 0, O_INTERVAL},
        {"json", no_argument, 0, O_JSON},             {"write-meta", no_argument, 0, O_META},
        {"help", no_argument, 0, O_HELP},             {0, 0, 0, 0}};
    const char *model_path = NULL, *data = NULL;
    struct eval_options o;
    eval_options_default(&o);
    size_t limit = 0, v;
    int json = 0, meta = 0, c;
    char what[300], err[BNN_ERR_LEN];
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const char *name = c >= O_MODEL && c <= O_HELP ? opts[c - O_MODEL].name : "?";
        int bad = 0;
        switch (c) {
        case O_MODEL: model_path = optarg; break;
        case O_DATA: data = optarg; break;
        case O_SAMPLES: bad = cli_parse_size(optarg, &o.samples) || o.samples < 1 || o.samples > 100000; break;
        case O_MODE: bad = bnn_mode_parse(optarg, &o.mode) != 0; break;
        case O_SEED: bad = cli_parse_size(optarg, &v); o.seed = v; break;
        case O_LIMIT: bad = cli_parse_size(optarg, &limit); break;
        case O_THREADS: bad = cli_parse_size(optarg, &o.threads) || o.threads < 1 || o.threads > 64; break;
        case O_INTERVAL: {
            char *end;
            o.coverage = strtod(optarg, &end);
            bad = end == optarg || *end || !(o.coverage > 0 && o.coverage < 1);
            break;
        }
        case O_JSON: json = 1; break;
        case O_META: meta = 1; break;
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
    if (!model_path || !data)
        return usage_error("--model and --data are required");
    if (meta && limit)
        return usage_error("--write-meta needs the full test set (no --limit)");

    struct bnn_model *m = NULL;
    struct idx_images im = {0};
    struct idx_labels lb = {0};
    int status = 1;
    if (bnn_weights_load(&m, model_path, err)) {
        fprintf(stderr, PROG ": error: %s\n", err);
        goto done;
    }
    if (idx_load_mnist(&im, &lb, data, "t10k", err)) {
        fprintf(stderr, PROG ": error: %s\n", err);
        goto done;
    }
    if (bnn_model_n_in(m) != im.rows * im.cols) {
        fprintf(stderr, PROG ": error: model input %zu does not match %zux%zu images\n", bnn_model_n_in(m), im.rows,
                im.cols);
        goto done;
    }
    size_t n = limit && limit < im.n ? limit : im.n;
    double t0 = cli_now_seconds();
    struct eval_metrics e;
    if (eval_model(&e, NULL, NULL, m, im.pixels, lb.labels, n, &o, err)) {
        fprintf(stderr, PROG ": error: %s\n", err);
        goto done;
    }
    double secs = cli_now_seconds() - t0;
    char arch[64];
    const char *recipe = bnn_meta_get(m, "recipe");
    printf("model           %s (%s, recipe %s)\n", model_path, bnn_model_arch(m, arch, sizeof arch),
           recipe ? recipe : "?");
    printf("images          %zu MNIST test images, T = %zu passes, mode %s, seed %llu\n", n, o.samples,
           bnn_mode_name(o.mode), (unsigned long long)o.seed);
    printf("accuracy        %.4f  (%.2f %%)\n", e.accuracy, 100 * e.accuracy);
    printf("nll             %.4f  nats, mean -log p(label) of the mean prediction\n", e.nll);
    printf("brier           %.5f  paper form: (1/10) sum_k (p_k - y_k)^2, mean over images\n", e.brier);
    printf("brier_sum       %.5f  sum form: sum_k (p_k - y_k)^2\n", e.brier_sum);
    printf("ece             %.4f  (%.2f %%), 15 equal-width bins of max p\n", e.ece, 100 * e.ece);
    printf("interval_width  %.4f  mean %.0f %% interval width of the predicted class\n", e.interval_width,
           100 * o.coverage);
    printf("entropy         %.4f  nats (aleatoric %.4f, epistemic %.4f)\n", e.entropy, e.aleatoric, e.epistemic);
    printf("seconds         %.1f\n", secs);
    if (json) {
        json_t *j = json_object();
        json_object_set_new(j, "model", json_string(model_path));
        json_object_set_new(j, "images", json_integer((json_int_t)n));
        json_object_set_new(j, "samples", json_integer((json_int_t)o.samples));
        json_object_set_new(j, "mode", json_string(bnn_mode_name(o.mode)));
        json_object_set_new(j, "seed", json_integer((json_int_t)o.seed));
        json_object_set_new(j, "accuracy", json_real(e.accuracy));
        json_object_set_new(j, "nll", json_real(e.nll));
        json_object_set_new(j, "brier", json_real(e.brier));
        json_object_set_new(j, "brier_form", json_string("mean over classes"));
        json_object_set_new(j, "brier_sum", json_real(e.brier_sum));
        json_object_set_new(j, "ece", json_real(e.ece));
        json_object_set_new(j, "ece_bins", json_integer(15));
        json_object_set_new(j, "interval_width", json_real(e.interval_width));
        json_object_set_new(j, "interval", json_real(o.coverage));
        json_object_set_new(j, "entropy", json_real(e.entropy));
        json_object_set_new(j, "aleatoric", json_real(e.aleatoric));
        json_object_set_new(j, "epistemic", json_real(e.epistemic));
        json_object_set_new(j, "seconds", json_real(secs));
        char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
        json_decref(j);
        if (!s) {
            fprintf(stderr, PROG ": error: out of memory\n");
            goto done;
        }
        printf("%s\n", s);
        free(s);
    }
    if (meta) {
        if (write_meta(model_path, m, &e, err)) {
            fprintf(stderr, PROG ": error: %s\n", err);
            goto done;
        }
        fprintf(stderr, PROG ": wrote test figures into %s\n", model_path);
    }
    status = fflush(stdout) == 0 ? 0 : 1;
done:
    bnn_model_free(m);
    idx_images_free(&im);
    idx_labels_free(&lb);
    return status;
}

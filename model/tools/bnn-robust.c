/* bnn-robust - is the uncertainty worth having? Evaluates weights on the
 * MNIST test set, its 15 MNIST-C-style corruptions (corrupt.h), rotations
 * 0..180 degrees, and Fashion-MNIST as out-of-distribution data; reports
 * accuracy, NLL, ECE, interval width, entropy / aleatoric / epistemic per
 * set, OOD AUROC, selective prediction and a recommended epistemic
 * threshold. Writes one JSON document, and optionally the data files the
 * gnuplot scripts in docs/ plot plus a markdown fragment of the numbers.
 * A thin main over eval.h, robust.h and corrupt.h.
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
#include "corrupt.h"
#include "eval.h"
#include "idx.h"
#include "infer.h"
#include "robust.h"
#include "weights.h"

#include "cli.h"

#define PROG "bnn-robust"
#define N_ANGLES 13       /* 0, 15, ..., 180 degrees */
#define N_FRACTIONS 51    /* abstain on 0, 1, ..., 50 % */
#define HIST_BINS 40
#define N_CANDIDATES 5
static const double candidate_abstain[N_CANDIDATES] = {0.01, 0.02, 0.05, 0.10, 0.20};
#define LN10 2.302585092994046
#define DEFAULT_FASHION "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " --model FILE --data DIR [options]\n"
            "Robustness of a Bayesian network's uncertainty: MNIST test set clean, under\n"
            "15 MNIST-C-style corruptions and rotation, and against Fashion-MNIST.\n"
            "\n"
            "  --model FILE        weights (safetensors)\n"
            "  --data DIR          MNIST raw IDX files (t10k-images-idx3-ubyte, ...)\n"
            "  --fashion FILE      Fashion-MNIST test images, gzip IDX\n"
            "                      [" DEFAULT_FASHION "]\n"
            "  --samples T         Monte-Carlo passes per image [100]\n"
            "  --seed S            seed of the corruptions and of the passes [1]\n"
            "  --limit N           first N test images of each set [all]\n"
            "  --rotation-limit N  first N images per rotation angle [--limit]\n"
            "  --threads N         worker threads [2]\n"
            "  --interval C        interval coverage in (0,1) [0.95]\n"
            "  --abstain F         clean fraction above the recommended epistemic\n"
            "                      threshold, in (0, 0.5] [0.05]\n"
            "  --example I         test image for the clean/corrupted example, with its\n"
            "                      most uncertain corruption [the most uncertain\n"
            "                      corrupted copy among digits right clean, wrong corrupted]\n"
            "  --json FILE         write the JSON there instead of stdout\n"
            "  --plots DIR         write gnuplot data files (*.tsv, *.mat) into DIR\n"
            "  --markdown FILE     write the numbers as markdown tables\n"
            "  --help              this text\n");
}

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, PROG ": error: %s%s%s\ntry '" PROG " --help'\n", what, arg ? ": " : "", arg ? arg : "");
    return 2;
}

/* JSON has no NaN: unknown numbers are null. */
static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* One evaluated set, with the per-image arrays the figures need. */
struct set_result {
    char name[64];
    struct eval_metrics m;
    size_t n;
    double *epistemic, *entropy, *confidence;
    unsigned char *correct; /* NULL without labels */
};

static void set_result_free(struct set_result *r)
{
    free(r->epistemic);
    free(r->entropy);
    free(r->confidence);
    free(r->correct);
    memset(r, 0, sizeof *r);
}

static int run_set(struct set_result *r, const char *name, const struct bnn_model *model, const uint8_t *pixels,
                   const uint8_t *labels, size_t n, const struct eval_options *o, char err[BNN_ERR_LEN])
{
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->n = n;
    struct eval_image *img = malloc(n * sizeof *img);
    r->epistemic = malloc(n * sizeof *r->epistemic);
    r->entropy = malloc(n * sizeof *r->entropy);
    r->confidence = malloc(n * sizeof *r->confidence);
    r->correct = labels ? malloc(n) : NULL;
    if (!img || !r->epistemic || !r->entropy || !r->confidence || (labels && !r->correct)) {
        free(img);
        set_result_free(r);
        snprintf(err, BNN_ERR_LEN, "%s: out of memory for %zu images", name, n);
        return BNN_E_NOMEM;
    }
    double t0 = cli_now_seconds();
    int rc = eval_model(&r->m, img, NULL, model, pixels, labels, n, o, err);
    if (rc != BNN_OK) {
        free(img);
        set_result_free(r);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        r->epistemic[i] = img[i].epistemic;
        r->entropy[i] = img[i].entropy;
        r->confidence[i] = img[i].confidence;
        if (labels) r->correct[i] = img[i].predicted == labels[i];
    }
    free(img);
    fprintf(stderr, PROG ": %-14s n %5zu  acc %.4f  ece %.4f  epistemic %.4f  (%.1f s)\n", name, n, r->m.accuracy,
            r->m.ece, r->m.epistemic, cli_now_seconds() - t0);
    return BNN_OK;
}

static json_t *metrics_json(const struct set_result *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "n", json_integer((json_int_t)r->m.n));
    json_object_set_new(o, "accuracy", num(r->m.accuracy));
    json_object_set_new(o, "nll", num(r->m.nll));
    json_object_set_new(o, "brier", num(r->m.brier));
    json_object_set_new(o, "ece", num(r->m.ece));
    json_object_set_new(o, "interval_width", num(r->m.interval_width));
    json_object_set_new(o, "entropy", num(r->m.entropy));
    json_object_set_new(o, "aleatoric", num(r->m.aleatoric));
    json_object_set_new(o, "epistemic", num(r->m.epistemic));
    return o;
}

/* A clean digit beside a corrupted copy, for the blog's figure. kind < 0
 * picks the image's most uncertain corruption. */
struct example {
    size_t index;
    int label;
    enum corrupt_kind kind;
    uint8_t clean[CORRUPT_PIXELS], corrupted[CORRUPT_PIXELS];
    struct bnn_prediction p_clean, p_corrupted;
};

static int run_example(struct example *ex, const struct bnn_model *model, const struct idx_images *im,
                       const struct idx_labels *lb, size_t index, int kind, const struct eval_options *o,
                       char err[BNN_ERR_LEN])
{
    struct bnn_workspace *ws = bnn_workspace_new(model);
    if (!ws) {
        snprintf(err, BNN_ERR_LEN, "out of memory for a workspace");
        return BNN_E_NOMEM;
    }
    float x[CORRUPT_PIXELS];
    ex->index = index;
    ex->label = lb->labels[index];
    memcpy(ex->clean, im->pixels + index * CORRUPT_PIXELS, CORRUPT_PIXELS);
    for (int i = 0; i < CORRUPT_PIXELS; i++) x[i] = ex->clean[i] / 255.0f;
    int rc = bnn_predict(&ex->p_clean, ws, model, x, o->samples, o->seed, o->coverage, o->mode, err);
    double best = -1.0;
    for (int k = 0; rc == BNN_OK && k < CORRUPT_COUNT; k++) {
        if (kind >= 0 && k != kind) continue;
        uint8_t c[CORRUPT_PIXELS];
        struct bnn_prediction p;
        corrupt_apply(c, ex->clean, (enum corrupt_kind)k, o->seed, index);
        for (int i = 0; i < CORRUPT_PIXELS; i++) x[i] = c[i] / 255.0f;
        rc = bnn_predict(&p, ws, model, x, o->samples, o->seed, o->coverage, o->mode, err);
        if (rc == BNN_OK && p.epistemic > best) {
            best = p.epistemic;
            ex->kind = (enum corrupt_kind)k;
            ex->p_corrupted = p;
            memcpy(ex->corrupted, c, CORRUPT_PIXELS);
        }
    }
    bnn_workspace_free(ws);
    return rc;
}

static FILE *open_plot(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) fprintf(stderr, PROG ": error: open %s: %s\n", path, strerror(errno));
    return f;
}

static int close_plot(FILE *f, const char *name)
{
    if (fclose(f) != 0) {
        fprintf(stderr, PROG ": error: write %s: %s\n", name, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},    {"data", required_argument, NULL, 'd'},
        {"fashion", required_argument, NULL, 'f'},  {"samples", required_argument, NULL, 'T'},
        {"seed", required_argument, NULL, 's'},     {"limit", required_argument, NULL, 'l'},
        {"rotation-limit", required_argument, NULL, 'R'}, {"threads", required_argument, NULL, 'j'},
        {"interval", required_argument, NULL, 'i'}, {"abstain", required_argument, NULL, 'a'},
        {"example", required_argument, NULL, 'e'},  {"json", required_argument, NULL, 'J'},
        {"plots", required_argument, NULL, 'p'},    {"markdown", required_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *model_path = NULL, *data = NULL, *fashion = DEFAULT_FASHION, *json_path = NULL, *plots = NULL,
               *md_path = NULL;
    size_t limit = 0, rot_limit = 0, example_index = SIZE_MAX, seed = 1;
    double abstain = 0.05;
    struct eval_options o;
    eval_options_default(&o);
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'm': model_path = optarg; break;
        case 'd': data = optarg; break;
        case 'f': fashion = optarg; break;
        case 'T':
            if (cli_parse_size(optarg, &o.samples) || o.samples < 2 || o.samples > 100000)
                return usage_error("--samples: expected an integer in [2, 100000]", optarg);
            break;
        case 's':
            if (cli_parse_size(optarg, &seed)) return usage_error("--seed: expected a non-negative integer", optarg);
            break;
        case 'l':
            if (cli_parse_size(optarg, &limit) || limit == 0) return usage_error("--limit: expected a positive integer", optarg);
            break;
        case 'R':
            if (cli_parse_size(optarg, &rot_limit) || rot_limit == 0)
                return usage_error("--rotation-limit: expected a positive integer", optarg);
            break;
        case 'j':
            if (cli_parse_size(optarg, &o.threads) || o.threads < 1 || o.threads > 64)
                return usage_error("--threads: expected an integer in [1, 64]", optarg);
            break;
        case 'i':
            if (cli_parse_double(optarg, &o.coverage) || !(o.coverage > 0 && o.coverage < 1))
                return usage_error("--interval: expected a coverage in (0, 1)", optarg);
            break;
        case 'a':
            if (cli_parse_double(optarg, &abstain) || !(abstain > 0 && abstain <= 0.5))
                return usage_error("--abstain: expected a fraction in (0, 0.5]", optarg);
            break;
        case 'e':
            if (cli_parse_size(optarg, &example_index)) return usage_error("--example: expected an image index", optarg);
            break;
        case 'J': json_path = optarg; break;
        case 'p': plots = optarg; break;
        case 'M': md_path = optarg; break;
        case 'h': usage(stdout); return 0;
        default: fprintf(stderr, "try '" PROG " --help'\n"); return 2;
        }
    }
    if (optind < argc) return usage_error("unexpected argument", argv[optind]);
    if (!model_path || !data) return usage_error("--model and --data are required", NULL);
    o.seed = seed;

    int status = 1;
    char err[BNN_ERR_LEN];
    struct bnn_model *model = NULL;
    struct idx_images im = {0}, fm = {0};
    struct idx_labels lb = {0};
    struct set_result clean, cor[CORRUPT_COUNT], ood, rot[N_ANGLES];
    uint8_t *buf = NULL;
    json_t *root = NULL;
    double t_start = cli_now_seconds();
    memset(&clean, 0, sizeof clean);
    memset(&ood, 0, sizeof ood);
    memset(cor, 0, sizeof cor);
    memset(rot, 0, sizeof rot);

    if (bnn_weights_load(&model, model_path, err) != BNN_OK) {
        fprintf(stderr, PROG ": error: %s\n", err);
        goto done;
    }
    if (idx_load_mnist(&im, &lb, data, "t10k", err) != BNN_OK || idx_images_load_gz(&fm, fashion, err) != BNN_OK) {
        fprintf(stderr, PROG ": error: %s\n", err);
        goto done;
    }
    if (bnn_model_n_in(model) != CORRUPT_PIXELS || fm.rows * fm.cols != CORRUPT_PIXELS) {
        fprintf(stderr, PROG ": error: expected 784 inputs and 28x28 Fashion-MNIST, got %zu and %zux%zu\n",
                bnn_model_n_in(model), fm.rows, fm.cols);
        goto done;
    }
    size_t n = limit && limit < im.n ? limit : im.n;
    size_t n_ood = limit && limit < fm.n ? limit : fm.n;
    size_t n_rot = rot_limit ? (rot_limit < im.n ? rot_limit : im.n) : n;
    if (example_index != SIZE_MAX && example_index >= im.n) {
        fprintf(stderr, PROG ": error: --example %zu: the test set has %zu images\n", example_index, im.n);
        goto done;
    }
    buf = malloc((n > n_rot ? n : n_rot) * CORRUPT_PIXELS);
    if (!buf) {
        fprintf(stderr, PROG ": error: out of memory\n");
        goto done;
    }

    /* --- clean, corrupted, out-of-distribution, rotated ------------------ */
    if (run_set(&clean, "clean", model, im.pixels, lb.labels, n, &o, err) != BNN_OK) goto eval_fail;
    for (int k = 0; k < CORRUPT_COUNT; k++) {
        if (robust_corrupt_set(buf, im.pixels, n, (enum corrupt_kind)k, seed, err) != BNN_OK ||
            run_set(&cor[k], corrupt_name((enum corrupt_kind)k), model, buf, lb.labels, n, &o, err) != BNN_OK)
            goto eval_fail;
    }
    if (run_set(&ood, "fashion_mnist", model, fm.pixels, NULL, n_ood, &o, err) != BNN_OK) goto eval_fail;
    for (int a = 0; a < N_ANGLES; a++) {
        char name[32];
        snprintf(name, sizeof name, "rotate_%d", 15 * a);
        robust_rotate_set(buf, im.pixels, n_rot, 15.0 * a);
        if (run_set(&rot[a], name, model, buf, lb.labels, n_rot, &o, err) != BNN_OK) goto eval_fail;
    }
    struct example ex;
    /* Default example: of the digits the model gets right clean and wrong
     * corrupted, the one whose corrupted copy is the most uncertain - the
     * case the uncertainty is for. */
    int example_kind = -1;
    if (example_index == SIZE_MAX) {
        double best = -1.0;
        example_index = 0;
        for (int k = 0; k < CORRUPT_COUNT; k++)
            for (size_t i = 0; i < n; i++)
                if (clean.correct[i] && !cor[k].correct[i] && cor[k].epistemic[i] > best) {
                    best = cor[k].epistemic[i];
                    example_index = i;
                    example_kind = k;
                }
    }
    if (run_example(&ex, model, &im, &lb, example_index, example_kind, &o, err) != BNN_OK) goto eval_fail;

    /* --- OOD AUROC (positives: Fashion-MNIST) --------------------------- */
    double auroc_entropy, auroc_epistemic, auroc_conf;
    double *neg_conf = malloc(n * sizeof *neg_conf), *pos_conf = malloc(n_ood * sizeof *pos_conf);
    if (!neg_conf || !pos_conf) {
        free(neg_conf);
        free(pos_conf);
        fprintf(stderr, PROG ": error: out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < n; i++) neg_conf[i] = 1.0 - clean.confidence[i];
    for (size_t i = 0; i < n_ood; i++) pos_conf[i] = 1.0 - ood.confidence[i];
    int rc = robust_auroc(&auroc_entropy, ood.entropy, n_ood, clean.entropy, n, err);
    if (rc == BNN_OK) rc = robust_auroc(&auroc_epistemic, ood.epistemic, n_ood, clean.epistemic, n, err);
    if (rc == BNN_OK) rc = robust_auroc(&auroc_conf, pos_conf, n_ood, neg_conf, n, err);
    free(neg_conf);
    free(pos_conf);
    if (rc != BNN_OK) goto eval_fail;

    /* --- selective prediction: clean, and clean + all corruptions pooled - */
    double fractions[N_FRACTIONS], sel_clean_epi[N_FRACTIONS], sel_clean_ent[N_FRACTIONS];
    double sel_pool_epi[N_FRACTIONS], sel_pool_ent[N_FRACTIONS];
    for (int j = 0; j < N_FRACTIONS; j++) fractions[j] = j / 100.0;
    size_t n_pool = n * (1 + CORRUPT_COUNT);
    double *pool_epi = malloc(n_pool * sizeof *pool_epi), *pool_ent = malloc(n_pool * sizeof *pool_ent);
    unsigned char *pool_ok = malloc(n_pool);
    if (!pool_epi || !pool_ent || !pool_ok) {
        free(pool_epi);
        free(pool_ent);
        free(pool_ok);
        fprintf(stderr, PROG ": error: out of memory\n");
        goto done;
    }
    for (int s = 0; s <= CORRUPT_COUNT; s++) {
        const struct set_result *r = s == 0 ? &clean : &cor[s - 1];
        memcpy(pool_epi + s * n, r->epistemic, n * sizeof *pool_epi);
        memcpy(pool_ent + s * n, r->entropy, n * sizeof *pool_ent);
        memcpy(pool_ok + s * n, r->correct, n);
    }
    rc = robust_selective(sel_clean_epi, fractions, N_FRACTIONS, clean.epistemic, clean.correct, n, err);
    if (rc == BNN_OK) rc = robust_selective(sel_clean_ent, fractions, N_FRACTIONS, clean.entropy, clean.correct, n, err);
    if (rc == BNN_OK) rc = robust_selective(sel_pool_epi, fractions, N_FRACTIONS, pool_epi, pool_ok, n_pool, err);
    if (rc == BNN_OK) rc = robust_selective(sel_pool_ent, fractions, N_FRACTIONS, pool_ent, pool_ok, n_pool, err);
    if (rc != BNN_OK) {
        free(pool_epi);
        free(pool_ent);
        free(pool_ok);
        goto eval_fail;
    }

    /* --- recommended threshold: abstain on the top `abstain` of clean ---- */
    double threshold = robust_threshold(clean.epistemic, n, abstain);
    double t10 = robust_threshold(clean.epistemic, n, 0.10), t01 = robust_threshold(clean.epistemic, n, 0.01);
    struct robust_flags rec;
    robust_flags(&rec, clean.epistemic, clean.correct, n, threshold);
    double ood_flagged = robust_fraction_above(ood.epistemic, n_ood, threshold);
    size_t n_wrong = 0;
    for (size_t i = 0; i < n; i++) n_wrong += !clean.correct[i];

    /* Candidate thresholds, to justify the choice: each abstains on a share
     * of clean inputs; what it catches on clean errors, on the 15 corrupted
     * sets pooled and on Fashion-MNIST. */
    struct candidate {
        double abstain, threshold;
        struct robust_flags clean, corrupted, fashion;
    } cand[N_CANDIDATES];
    for (int c = 0; c < N_CANDIDATES; c++) {
        struct candidate *cd = &cand[c];
        cd->abstain = candidate_abstain[c];
        cd->threshold = robust_threshold(clean.epistemic, n, cd->abstain);
        robust_flags(&cd->clean, clean.epistemic, clean.correct, n, cd->threshold);
        /* the pool holds clean first, then the 15 corrupted sets */
        robust_flags(&cd->corrupted, pool_epi + n, pool_ok + n, n * CORRUPT_COUNT, cd->threshold);
        robust_flags(&cd->fashion, ood.epistemic, NULL, n_ood, cd->threshold);
    }
    free(pool_epi);
    free(pool_ent);
    free(pool_ok);

    /* --- targets ---------------------------------------------------------- */
    int epi_up = 0, width_up = 0, both_up = 0;
    for (int k = 0; k < CORRUPT_COUNT; k++) {
        int e = cor[k].m.epistemic > clean.m.epistemic, w = cor[k].m.interval_width > clean.m.interval_width;
        epi_up += e, width_up += w, both_up += e && w;
    }
    double best_auroc = auroc_entropy > auroc_epistemic ? auroc_entropy : auroc_epistemic;

    /* --- JSON ----------------------------------------------------------- */
    root = json_object();
    json_t *cfg = json_object();
    json_object_set_new(cfg, "model", json_string(model_path));
    json_object_set_new(cfg, "architecture", json_string(bnn_model_arch(model, (char[64]){0}, 64)));
    json_object_set_new(cfg, "samples", json_integer((json_int_t)o.samples));
    json_object_set_new(cfg, "seed", json_integer((json_int_t)seed));
    json_object_set_new(cfg, "mode", json_string(bnn_mode_name(o.mode)));
    json_object_set_new(cfg, "interval", json_real(o.coverage));
    json_object_set_new(cfg, "threads", json_integer((json_int_t)o.threads));
    json_object_set_new(cfg, "images", json_integer((json_int_t)n));
    json_object_set_new(cfg, "ood_images", json_integer((json_int_t)n_ood));
    json_object_set_new(cfg, "rotation_images", json_integer((json_int_t)n_rot));
    json_object_set_new(root, "config", cfg);
    json_object_set_new(root, "clean", metrics_json(&clean));
    json_t *jc = json_array();
    for (int k = 0; k < CORRUPT_COUNT; k++) {
        json_t *c = metrics_json(&cor[k]);
        json_object_set_new(c, "flagged", num(robust_fraction_above(cor[k].epistemic, n, threshold)));
        json_array_append_new(jc, c);
    }
    json_object_set_new(root, "corruptions", jc);
    json_t *jo = metrics_json(&ood);
    json_object_set_new(jo, "auroc_entropy", num(auroc_entropy));
    json_object_set_new(jo, "auroc_epistemic", num(auroc_epistemic));
    json_object_set_new(jo, "auroc_max_prob", num(auroc_conf));
    json_object_set_new(jo, "flagged", num(ood_flagged));
    json_object_set_new(root, "ood", jo);
    json_t *jr = json_array();
    for (int a = 0; a < N_ANGLES; a++) {
        json_t *r = metrics_json(&rot[a]);
        json_object_set_new(r, "degrees", json_integer(15 * a));
        json_array_append_new(jr, r);
    }
    json_object_set_new(root, "rotation", jr);
    json_t *js = json_object(), *jf = json_array(), *a1 = json_array(), *a2 = json_array(), *a3 = json_array(),
           *a4 = json_array();
    for (int j = 0; j < N_FRACTIONS; j++) {
        json_array_append_new(jf, json_real(fractions[j]));
        json_array_append_new(a1, num(sel_clean_epi[j]));
        json_array_append_new(a2, num(sel_clean_ent[j]));
        json_array_append_new(a3, num(sel_pool_epi[j]));
        json_array_append_new(a4, num(sel_pool_ent[j]));
    }
    json_object_set_new(js, "abstain_fraction", jf);
    json_object_set_new(js, "clean_by_epistemic", a1);
    json_object_set_new(js, "clean_by_entropy", a2);
    json_object_set_new(js, "pooled_by_epistemic", a3);
    json_object_set_new(js, "pooled_by_entropy", a4);
    json_object_set_new(root, "selective", js);
    json_t *jt = json_object();
    json_object_set_new(jt, "abstain", json_real(abstain));
    json_object_set_new(jt, "epistemic", num(threshold));
    json_object_set_new(jt, "epistemic_at_1pct", num(t01));
    json_object_set_new(jt, "epistemic_at_10pct", num(t10));
    json_object_set_new(jt, "clean_flagged", num(rec.flagged));
    json_object_set_new(jt, "clean_accuracy_kept", num(rec.kept_accuracy));
    json_object_set_new(jt, "clean_errors_flagged", num(rec.errors_flagged));
    json_object_set_new(jt, "fashion_flagged", num(ood_flagged));
    json_t *jcand = json_array();
    for (int c = 0; c < N_CANDIDATES; c++) {
        json_t *e = json_object();
        json_object_set_new(e, "clean_abstain", json_real(cand[c].abstain));
        json_object_set_new(e, "epistemic", num(cand[c].threshold));
        json_object_set_new(e, "clean_accuracy_kept", num(cand[c].clean.kept_accuracy));
        json_object_set_new(e, "clean_errors_flagged", num(cand[c].clean.errors_flagged));
        json_object_set_new(e, "corrupted_flagged", num(cand[c].corrupted.flagged));
        json_object_set_new(e, "corrupted_accuracy_kept", num(cand[c].corrupted.kept_accuracy));
        json_object_set_new(e, "corrupted_errors_flagged", num(cand[c].corrupted.errors_flagged));
        json_object_set_new(e, "fashion_flagged", num(cand[c].fashion.flagged));
        json_array_append_new(jcand, e);
    }
    json_object_set_new(jt, "candidates", jcand);
    json_object_set_new(root, "threshold", jt);
    json_t *jx = json_object();
    json_object_set_new(jx, "index", json_integer((json_int_t)ex.index));
    json_object_set_new(jx, "label", json_integer(ex.label));
    json_object_set_new(jx, "corruption", json_string(corrupt_name(ex.kind)));
    json_object_set_new(jx, "clean_prediction", json_integer(ex.p_clean.predicted));
    json_object_set_new(jx, "clean_epistemic", num(ex.p_clean.epistemic));
    json_object_set_new(jx, "corrupted_prediction", json_integer(ex.p_corrupted.predicted));
    json_object_set_new(jx, "corrupted_epistemic", num(ex.p_corrupted.epistemic));
    json_object_set_new(root, "example", jx);
    json_t *jg = json_object();
    json_object_set_new(jg, "corruptions_epistemic_above_clean", json_integer(epi_up));
    json_object_set_new(jg, "corruptions_width_above_clean", json_integer(width_up));
    json_object_set_new(jg, "corruptions_both_above_clean", json_integer(both_up));
    json_object_set_new(jg, "both_target_13_of_15", json_boolean(both_up >= 13));
    json_object_set_new(jg, "ood_auroc_best", num(best_auroc));
    json_object_set_new(jg, "ood_auroc_target_0_90", json_boolean(best_auroc >= 0.90));
    json_object_set_new(jg, "clean_ece_target_0_015", json_boolean(clean.m.ece <= 0.015));
    json_object_set_new(root, "targets", jg);
    json_object_set_new(root, "seconds", json_real(cli_now_seconds() - t_start));
    if (json_path) {
        if (json_dump_file(root, json_path, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) != 0) {
            fprintf(stderr, PROG ": error: write %s failed\n", json_path);
            goto done;
        }
    } else {
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        fputc('\n', stdout);
    }

    /* --- gnuplot data ------------------------------------------------------ */
    if (plots) {
        FILE *f = open_plot(plots, "corruptions.tsv");
        if (!f) goto done;
        fprintf(f, "# name\taccuracy\tnll\tece\tinterval_width\tentropy\taleatoric\tepistemic\n");
        for (int s = 0; s <= CORRUPT_COUNT; s++) {
            const struct set_result *r = s == 0 ? &clean : &cor[s - 1];
            fprintf(f, "%s\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\n", r->name, r->m.accuracy, r->m.nll, r->m.ece,
                    r->m.interval_width, r->m.entropy, r->m.aleatoric, r->m.epistemic);
        }
        if (close_plot(f, "corruptions.tsv")) goto done;

        struct robust_reliability rel;
        robust_reliability(&rel, clean.confidence, clean.correct, n);
        if (!(f = open_plot(plots, "reliability.tsv"))) goto done;
        fprintf(f, "# bin_lo\tbin_hi\tcount\tconfidence\taccuracy\n");
        for (int b = 0; b < ROBUST_BINS; b++)
            fprintf(f, "%.6f\t%.6f\t%zu\t%.6f\t%.6f\n", b / 15.0, (b + 1) / 15.0, rel.count[b], rel.confidence[b],
                    rel.accuracy[b]);
        if (close_plot(f, "reliability.tsv")) goto done;

        if (!(f = open_plot(plots, "rotation.tsv"))) goto done;
        fprintf(f, "# degrees\taccuracy\tece\tepistemic\tentropy\taleatoric\tinterval_width\n");
        for (int a = 0; a < N_ANGLES; a++)
            fprintf(f, "%d\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\n", 15 * a, rot[a].m.accuracy, rot[a].m.ece,
                    rot[a].m.epistemic, rot[a].m.entropy, rot[a].m.aleatoric, rot[a].m.interval_width);
        if (close_plot(f, "rotation.tsv")) goto done;

        double h1[HIST_BINS], h2[HIST_BINS], h3[HIST_BINS], h4[HIST_BINS];
        robust_histogram(h1, HIST_BINS, 0.0, LN10, clean.entropy, n);
        robust_histogram(h2, HIST_BINS, 0.0, LN10, ood.entropy, n_ood);
        double epi_max = 0.0;
        for (size_t i = 0; i < n_ood; i++) epi_max = ood.epistemic[i] > epi_max ? ood.epistemic[i] : epi_max;
        for (size_t i = 0; i < n; i++) epi_max = clean.epistemic[i] > epi_max ? clean.epistemic[i] : epi_max;
        epi_max = epi_max > 0 ? epi_max : 1.0;
        robust_histogram(h3, HIST_BINS, 0.0, epi_max, clean.epistemic, n);
        robust_histogram(h4, HIST_BINS, 0.0, epi_max, ood.epistemic, n_ood);
        if (!(f = open_plot(plots, "ood_hist.tsv"))) goto done;
        fprintf(f, "# entropy_centre\tmnist\tfashion\tepistemic_centre\tmnist\tfashion\n");
        for (int b = 0; b < HIST_BINS; b++)
            fprintf(f, "%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\n", (b + 0.5) * LN10 / HIST_BINS, h1[b], h2[b],
                    (b + 0.5) * epi_max / HIST_BINS, h3[b], h4[b]);
        if (close_plot(f, "ood_hist.tsv")) goto done;

        if (!(f = open_plot(plots, "selective.tsv"))) goto done;
        fprintf(f, "# abstain\tclean_epistemic\tclean_entropy\tpooled_epistemic\tpooled_entropy\n");
        for (int j = 0; j < N_FRACTIONS; j++)
            fprintf(f, "%.2f\t%.6f\t%.6f\t%.6f\t%.6f\n", fractions[j], sel_clean_epi[j], sel_clean_ent[j],
                    sel_pool_epi[j], sel_pool_ent[j]);
        if (close_plot(f, "selective.tsv")) goto done;

        if (!(f = open_plot(plots, "example.tsv"))) goto done;
        fprintf(f, "# class\tclean_mean\tclean_lower\tclean_upper\tcorrupted_mean\tcorrupted_lower\tcorrupted_upper\n");
        for (size_t c = 0; c < ex.p_clean.n_classes; c++) {
            const struct bnn_class_stats *a = &ex.p_clean.classes[c], *b = &ex.p_corrupted.classes[c];
            fprintf(f, "%zu\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\n", c, a->mean, a->lower, a->upper, b->mean, b->lower,
                    b->upper);
        }
        if (close_plot(f, "example.tsv")) goto done;
        for (int which = 0; which < 2; which++) {
            const char *name = which ? "example_corrupted.mat" : "example_clean.mat";
            const uint8_t *px = which ? ex.corrupted : ex.clean;
            if (!(f = open_plot(plots, name))) goto done;
            for (int r = 27; r >= 0; r--) { /* gnuplot's matrix rows go upwards */
                for (int c = 0; c < 28; c++) fprintf(f, "%d%c", px[r * 28 + c], c == 27 ? '\n' : ' ');
            }
            if (close_plot(f, name)) goto done;
        }
        /* gallery: 16 rows (clean + 15) x 8 digits, 1 px gaps, rows upwards */
        if (!(f = open_plot(plots, "gallery.mat"))) goto done;
        for (int gr = 16 * 29 - 2; gr >= 0; gr--) {
            int set = gr / 29, r = gr % 29;
            for (int gc = 0; gc < 8 * 29 - 1; gc++) {
                int img = gc / 29, c = gc % 29, v = 96;
                if (r < 28 && c < 28 && (size_t)img < im.n) {
                    uint8_t px[CORRUPT_PIXELS];
                    const uint8_t *src = im.pixels + (size_t)img * CORRUPT_PIXELS;
                    if (set == 0) memcpy(px, src, CORRUPT_PIXELS);
                    else corrupt_apply(px, src, (enum corrupt_kind)(set - 1), seed, (uint64_t)img);
                    v = px[r * 28 + c];
                }
                fprintf(f, "%d%c", v, gc == 8 * 29 - 2 ? '\n' : ' ');
            }
        }
        if (close_plot(f, "gallery.mat")) goto done;
        if (!(f = open_plot(plots, "example.txt"))) goto done;
        fprintf(f, "%zu %d %s %d %.3g %d %.3g\n", ex.index, ex.label, corrupt_name(ex.kind), ex.p_clean.predicted,
                ex.p_clean.epistemic, ex.p_corrupted.predicted, ex.p_corrupted.epistemic);
        if (close_plot(f, "example.txt")) goto done;
    }

    /* --- markdown --------------------------------------------------------- */
    if (md_path) {
        FILE *f = fopen(md_path, "w");
        if (!f) {
            fprintf(stderr, PROG ": error: open %s: %s\n", md_path, strerror(errno));
            goto done;
        }
        fprintf(f, "Model `%s` (%s), T = %zu passes per image, %s mode, seed %zu, %.0f %% intervals; "
                   "%zu MNIST test images per set, %zu Fashion-MNIST, %zu per rotation angle. "
                   "Run time %.0f s on %zu threads.\n\n",
                model_path, bnn_model_arch(model, (char[64]){0}, 64), o.samples, bnn_mode_name(o.mode), seed,
                100.0 * o.coverage, n, n_ood, n_rot, cli_now_seconds() - t_start, o.threads);
        fprintf(f, "### Targets (issue #5)\n\n| target | measured | status |\n|---|---:|---|\n");
        fprintf(f, "| mean epistemic and mean interval width above clean for >= 13 of 15 corruptions | %d of 15 "
                   "(epistemic %d, width %d) | %s |\n",
                both_up, epi_up, width_up, both_up >= 13 ? "met" : "**missed**");
        fprintf(f, "| Fashion-MNIST AUROC >= 0.90 with the better score | %.4f (%s) | %s |\n", best_auroc,
                auroc_entropy >= auroc_epistemic ? "entropy" : "epistemic", best_auroc >= 0.90 ? "met" : "**missed**");
        fprintf(f, "| ECE on the clean test set <= 1.5 %% | %.2f %% | %s |\n\n", 100 * clean.m.ece,
                clean.m.ece <= 0.015 ? "met" : "**missed**");
        fprintf(f, "### Per corruption\n\n");
        fprintf(f, "| set | accuracy | NLL | ECE | interval width | entropy | aleatoric | epistemic | flagged |\n");
        fprintf(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (int s = 0; s <= CORRUPT_COUNT; s++) {
            const struct set_result *r = s == 0 ? &clean : &cor[s - 1];
            fprintf(f, "| %s%s%s | %.2f %% | %.3f | %.2f %% | %.3f | %.3f | %.3f | %.4f | %.1f %% |\n", s ? "" : "**",
                    r->name, s ? "" : "**", 100 * r->m.accuracy, r->m.nll, 100 * r->m.ece, r->m.interval_width,
                    r->m.entropy, r->m.aleatoric, r->m.epistemic,
                    100 * robust_fraction_above(r->epistemic, n, threshold));
        }
        fprintf(f, "\nMean epistemic above clean for %d of 15 corruptions, mean interval width above clean for %d "
                   "of 15, both for %d (target: 13). \"flagged\": share of inputs above the recommended "
                   "epistemic threshold.\n\n", epi_up, width_up, both_up);
        fprintf(f, "### Out of distribution: Fashion-MNIST test images vs MNIST test images\n\n");
        fprintf(f, "| score | AUROC |\n|---|---:|\n");
        fprintf(f, "| predictive entropy | %.4f |\n| epistemic (mutual information) | %.4f |\n"
                   "| 1 - max mean probability (baseline) | %.4f |\n\n",
                auroc_entropy, auroc_epistemic, auroc_conf);
        fprintf(f, "Fashion-MNIST means: entropy %.3f, aleatoric %.3f, epistemic %.4f (MNIST: %.3f, %.3f, %.4f); "
                   "%.1f %% of Fashion-MNIST images are above the recommended threshold. Target AUROC >= 0.90 with "
                   "the better score: %s (%.4f).\n\n",
                ood.m.entropy, ood.m.aleatoric, ood.m.epistemic, clean.m.entropy, clean.m.aleatoric,
                clean.m.epistemic, 100 * ood_flagged, best_auroc >= 0.90 ? "met" : "missed", best_auroc);
        fprintf(f, "### Rotation\n\n| degrees | accuracy | ECE | entropy | epistemic | interval width |\n");
        fprintf(f, "|---:|---:|---:|---:|---:|---:|\n");
        for (int a = 0; a < N_ANGLES; a++)
            fprintf(f, "| %d | %.2f %% | %.2f %% | %.3f | %.4f | %.3f |\n", 15 * a, 100 * rot[a].m.accuracy,
                    100 * rot[a].m.ece, rot[a].m.entropy, rot[a].m.epistemic, rot[a].m.interval_width);
        fprintf(f, "\n### Selective prediction (accuracy on the inputs kept)\n\n");
        fprintf(f, "| abstain on | clean, by epistemic | clean, by entropy | clean + 15 corruptions, by epistemic "
                   "| clean + 15 corruptions, by entropy |\n|---:|---:|---:|---:|---:|\n");
        for (int j = 0; j < N_FRACTIONS; j += 5)
            fprintf(f, "| %d %% | %.2f %% | %.2f %% | %.2f %% | %.2f %% |\n", j, 100 * sel_clean_epi[j],
                    100 * sel_clean_ent[j], 100 * sel_pool_epi[j], 100 * sel_pool_ent[j]);
        fprintf(f, "\n### Recommended epistemic threshold\n\n");
        fprintf(f, "| quantity | value |\n|---|---:|\n");
        fprintf(f, "| threshold = clean epistemic quantile at %.0f %% | **%.4f nats** |\n", 100 * (1 - abstain),
                threshold);
        fprintf(f, "| (quantile at 99 %% / 90 %%) | %.4f / %.4f |\n", t01, t10);
        fprintf(f, "| clean inputs flagged | %.1f %% |\n", 100 * rec.flagged);
        fprintf(f, "| clean accuracy on the rest | %.2f %% (all: %.2f %%) |\n", 100 * rec.kept_accuracy,
                100 * clean.m.accuracy);
        fprintf(f, "| clean errors flagged | %.1f %% of %zu |\n", 100 * rec.errors_flagged, n_wrong);
        fprintf(f, "| Fashion-MNIST flagged | %.1f %% |\n", 100 * ood_flagged);
        fprintf(f, "\nCandidates (threshold = the clean epistemic quantile that flags the given share of clean "
                   "inputs; \"corrupted\" = the 15 corrupted sets pooled):\n\n");
        fprintf(f, "| clean flagged | threshold (nats) | clean acc. kept | clean errors flagged | corrupted flagged "
                   "| corrupted acc. kept | corrupted errors flagged | Fashion-MNIST flagged |\n");
        fprintf(f, "|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (int c = 0; c < N_CANDIDATES; c++)
            fprintf(f, "| %.0f %% | %.4f | %.2f %% | %.1f %% | %.1f %% | %.2f %% | %.1f %% | %.1f %% |\n",
                    100 * cand[c].abstain, cand[c].threshold, 100 * cand[c].clean.kept_accuracy,
                    100 * cand[c].clean.errors_flagged, 100 * cand[c].corrupted.flagged,
                    100 * cand[c].corrupted.kept_accuracy, 100 * cand[c].corrupted.errors_flagged,
                    100 * cand[c].fashion.flagged);
        fprintf(f, "\n### Example (figure 1)\n\nTest image %zu (label %d): clean predicted %d with epistemic %.3g nats; "
                   "under %s predicted %d with epistemic %.3g nats.\n",
                ex.index, ex.label, ex.p_clean.predicted, ex.p_clean.epistemic, corrupt_name(ex.kind),
                ex.p_corrupted.predicted, ex.p_corrupted.epistemic);
        if (fclose(f) != 0) {
            fprintf(stderr, PROG ": error: write %s: %s\n", md_path, strerror(errno));
            goto done;
        }
    }
    fprintf(stderr, PROG ": done in %.0f s\n", cli_now_seconds() - t_start);
    status = 0;
    goto done;
eval_fail:
    fprintf(stderr, PROG ": error: %s\n", err);
done:
    json_decref(root);
    free(buf);
    set_result_free(&clean);
    set_result_free(&ood);
    for (int k = 0; k < CORRUPT_COUNT; k++) set_result_free(&cor[k]);
    for (int a = 0; a < N_ANGLES; a++) set_result_free(&rot[a]);
    idx_images_free(&im);
    idx_images_free(&fm);
    idx_labels_free(&lb);
    bnn_model_free(model);
    return status;
}

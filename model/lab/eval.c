/* eval.c - model evaluation over an image set; see eval.h for the metrics.
 * Workers take contiguous slices of the images and write per-image results
 * into arrays indexed by image, which one thread then reduces in order.
 */
#include "eval.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "rng.h"
#include "stats.h"

#define EVAL_STREAM 0x600 /* rng.h tag for the per-image seeds */
#define EVAL_MAX_THREADS 64
#define P_FLOOR 1e-15 /* as bayesian-torch clamps probabilities */

void eval_options_default(struct eval_options *o)
{
    o->samples = 100;
    o->seed = 1;
    o->mode = BNN_MODE_LRT;
    o->threads = 2;
    o->coverage = 0.95;
    o->pipeline = 1;
    o->policy = NULL;
    o->set_level = -1;
}

uint64_t eval_image_seed(const struct eval_options *o, size_t i)
{
    return rng_u64(o->seed, EVAL_STREAM, 0, i);
}

int eval_metrics_from_probs(struct eval_metrics *out, const double *probs, const uint8_t *labels, size_t n,
                            size_t k, char err[BNN_ERR_LEN])
{
    memset(out, 0, sizeof *out);
    if (n == 0 || k < 2 || k > BNN_MAX_CLASSES) {
        snprintf(err, BNN_ERR_LEN, "expected n >= 1 and 2 <= k <= %d, got n %zu, k %zu", BNN_MAX_CLASSES, n,
                 k);
        return BNN_E_INVALID;
    }
    double *conf = malloc(n * sizeof *conf);
    unsigned char *correct = malloc(n);
    if (!conf || !correct) {
        free(conf);
        free(correct);
        snprintf(err, BNN_ERR_LEN, "out of memory for %zu images", n);
        return BNN_E_NOMEM;
    }
    double hits = 0, nll = 0, brier = 0, entropy = 0;
    for (size_t i = 0; i < n; i++) {
        const double *p = probs + i * k;
        size_t arg = 0;
        for (size_t j = 1; j < k; j++)
            if (p[j] > p[arg])
                arg = j;
        conf[i] = p[arg];
        entropy += stats_entropy(p, k);
        if (!labels)
            continue;
        if (labels[i] >= k) {
            snprintf(err, BNN_ERR_LEN, "label %zu is %u, expected < %zu", i, labels[i], k);
            free(conf);
            free(correct);
            return BNN_E_INVALID;
        }
        correct[i] = arg == labels[i];
        hits += correct[i];
        double py = p[labels[i]];
        nll += -log(py > P_FLOOR ? py : P_FLOOR);
        for (size_t j = 0; j < k; j++) {
            double d = p[j] - (j == labels[i] ? 1.0 : 0.0);
            brier += d * d;
        }
    }
    out->n = n;
    out->entropy = entropy / (double)n;
    out->interval_width = out->aleatoric = out->epistemic = NAN;
    if (labels) {
        out->accuracy = hits / (double)n;
        out->nll = nll / (double)n;
        out->brier_sum = brier / (double)n;
        out->brier = out->brier_sum / (double)k;
        out->ece = stats_ece(conf, correct, n);
    } else {
        out->accuracy = out->nll = out->brier = out->brier_sum = out->ece = NAN;
    }
    free(conf);
    free(correct);
    return BNN_OK;
}

struct eval_job {
    const struct bnn_model *m;
    const struct eval_options *o;
    const uint8_t *pixels, *labels;
    size_t lo, hi;
    double *mean_probs;        /* (n, k) */
    struct eval_image *images; /* (n) */
    int status;
    char err[BNN_ERR_LEN];
};

/* One image's answer into its per-image record and its mean probabilities. */
static void record(struct eval_image *r, double *mp, const struct bnn_answer *a, const uint8_t *label,
                   size_t k)
{
    const struct bnn_prediction *pr = &a->pr;
    for (size_t c = 0; c < k; c++)
        mp[c] = pr->classes[c].mean;
    r->predicted = pr->predicted;
    r->confidence = (float)pr->classes[pr->predicted].mean;
    r->label_prob = label ? (float)pr->classes[*label < k ? *label : 0].mean : NAN;
    r->interval_width = (float)(pr->classes[pr->predicted].upper - pr->classes[pr->predicted].lower);
    r->entropy = (float)pr->entropy;
    r->aleatoric = (float)pr->aleatoric;
    r->epistemic = (float)pr->epistemic;
    r->reasons = a->reasons;
    r->set = a->set;
}

static void *eval_worker(void *p)
{
    struct eval_job *j = p;
    size_t n_in = bnn_model_n_in(j->m), k = bnn_model_n_classes(j->m);
    struct bnn_workspace *ws = bnn_workspace_new(j->m);
    float *x = malloc(n_in * sizeof *x);
    if (!ws || !x) {
        j->status = BNN_E_NOMEM;
        snprintf(j->err, BNN_ERR_LEN, "out of memory for an evaluation workspace");
        goto done;
    }
    struct bnn_policy none;
    bnn_policy_none(&none);
    const struct bnn_policy *pol = j->o->policy ? j->o->policy : &none;
    for (size_t i = j->lo; i < j->hi; i++) {
        const uint8_t *px = j->pixels + i * n_in;
        /* a seed per image, addressed by its index: thread-count independent */
        struct bnn_question q = {j->o->samples, eval_image_seed(j->o, i), j->o->coverage, j->o->mode,
                                 j->o->policy ? j->o->set_level : -1};
        struct bnn_answer a;
        char err[BNN_ERR_LEN];
        int rc;
        if (j->o->pipeline) {
            rc = bnn_answer_gray(&a, ws, j->m, pol, px, BNN_MNIST_SIDE, BNN_MNIST_SIDE, &q, err);
        } else {
            for (size_t u = 0; u < n_in; u++)
                x[u] = (float)px[u] / 255.0f; /* pixel/255, correctly rounded */
            rc = bnn_answer_canonical(&a, ws, j->m, pol, x, 1, &q, err);
        }
        if (rc) {
            j->status = rc;
            snprintf(j->err, BNN_ERR_LEN, "image %zu: %.200s", i, err);
            goto done;
        }
        record(&j->images[i], j->mean_probs + i * k, &a, j->labels ? j->labels + i : NULL, k);
        j->images[i].digit_found = !j->o->pipeline || a.prep.verdict == PREP_DIGIT;
    }
done:
    free(x);
    bnn_workspace_free(ws);
    return NULL;
}

/* The sample-based means and the decision figures over the per-image
 * records. */
static void summarise(struct eval_metrics *out, const struct eval_image *images, const uint8_t *labels,
                      size_t n, int sets)
{
    double width = 0, alea = 0, epi = 0, flagged = 0, no_digit = 0, wrong = 0, wrong_flagged = 0, covered = 0,
           size = 0;
    for (size_t i = 0; i < n; i++) {
        const struct eval_image *r = &images[i];
        width += r->interval_width;
        alea += r->aleatoric;
        epi += r->epistemic;
        flagged += r->reasons != 0;
        no_digit += !r->digit_found;
        size += __builtin_popcount(r->set);
        if (labels) {
            int bad = r->predicted != labels[i];
            wrong += bad;
            wrong_flagged += bad && r->reasons;
            covered += (r->set >> labels[i]) & 1u;
        }
    }
    out->interval_width = width / (double)n;
    out->aleatoric = alea / (double)n;
    out->epistemic = epi / (double)n;
    out->flagged = flagged / (double)n;
    out->no_digit = no_digit / (double)n;
    out->errors_flagged = labels && wrong > 0 ? wrong_flagged / wrong : NAN;
    out->set_coverage = labels && sets ? covered / (double)n : NAN;
    out->set_size = sets ? size / (double)n : NAN;
}

int eval_model(struct eval_metrics *out, struct eval_image *per_image, double *mean_probs,
               const struct bnn_model *m, const uint8_t *pixels, const uint8_t *labels, size_t n,
               const struct eval_options *o, char err[BNN_ERR_LEN])
{
    memset(out, 0, sizeof *out);
    size_t k = bnn_model_n_classes(m);
    if (n == 0 || o->samples < 1 || o->threads < 1 || !(o->coverage > 0 && o->coverage < 1)) {
        snprintf(err, BNN_ERR_LEN,
                 "expected images >= 1, samples >= 1, threads >= 1, coverage in (0,1); got %zu, %zu, "
                 "%zu, %g",
                 n, o->samples, o->threads, o->coverage);
        return BNN_E_INVALID;
    }
    if (labels) {
        for (size_t i = 0; i < n; i++) {
            if (labels[i] >= k) {
                snprintf(err, BNN_ERR_LEN, "label %zu is %u, expected < %zu", i, labels[i], k);
                return BNN_E_INVALID;
            }
        }
    }
    size_t threads = o->threads < EVAL_MAX_THREADS ? o->threads : EVAL_MAX_THREADS;
    if (threads > n)
        threads = n;
    double *probs = mean_probs ? mean_probs : malloc(n * k * sizeof *probs);
    struct eval_image *images = per_image ? per_image : malloc(n * sizeof *images);
    struct eval_job *jobs = calloc(threads, sizeof *jobs);
    pthread_t tid[EVAL_MAX_THREADS];
    int rc = BNN_OK;
    if (!probs || !images || !jobs) {
        snprintf(err, BNN_ERR_LEN, "out of memory for %zu images", n);
        rc = BNN_E_NOMEM;
        goto done;
    }
    /* one BLAS thread per worker: the workers already fill the cores */
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    size_t chunk = (n + threads - 1) / threads;
    size_t started = 0;
    for (size_t t = 0; t < threads; t++) {
        struct eval_job *j = &jobs[t];
        *j = (struct eval_job){
            .m = m, .o = o, .pixels = pixels, .labels = labels, .mean_probs = probs, .images = images};
        j->lo = t * chunk < n ? t * chunk : n;
        j->hi = j->lo + chunk < n ? j->lo + chunk : n;
        if (t == 0)
            continue; /* the calling thread does slice 0 below */
        if (pthread_create(&tid[t], NULL, eval_worker, j) != 0) {
            eval_worker(j); /* could not start a thread: do the slice here */
            continue;
        }
        started |= (size_t)1 << t;
    }
    eval_worker(&jobs[0]);
    for (size_t t = 1; t < threads; t++)
        if (started & ((size_t)1 << t))
            pthread_join(tid[t], NULL);
    openblas_set_num_threads(blas_threads);
    for (size_t t = 0; t < threads; t++) {
        if (jobs[t].status) {
            rc = jobs[t].status;
            snprintf(err, BNN_ERR_LEN, "%s", jobs[t].err);
            goto done;
        }
    }
    rc = eval_metrics_from_probs(out, probs, labels, n, k, err);
    if (rc)
        goto done;
    summarise(out, images, labels, n, o->policy && o->set_level >= 0);
    out->samples = o->samples;
done:
    if (probs != mean_probs)
        free(probs);
    if (images != per_image)
        free(images);
    free(jobs);
    return rc;
}

int eval_metrics_to_meta(struct bnn_model *m, const struct eval_metrics *e, double set_coverage)
{
    static const char *const keys[] = {"test_accuracy",       "test_nll",    "test_ece", "test_brier",
                                       "test_interval_width", "test_flagged"};
    const double values[] = {e->accuracy, e->nll, e->ece, e->brier, e->interval_width, e->flagged};
    char buf[64], key[64];
    int rc = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        snprintf(buf, sizeof buf, i == 3 ? "%.5f" : "%.4f", values[i]);
        rc |= bnn_meta_set(m, keys[i], buf);
    }
    snprintf(buf, sizeof buf, "%zu", e->samples);
    rc |= bnn_meta_set(m, "test_samples", buf);
    if (!isnan(e->set_coverage)) {
        snprintf(key, sizeof key, "test_set_coverage_%g", set_coverage);
        snprintf(buf, sizeof buf, "%.4f", e->set_coverage);
        rc |= bnn_meta_set(m, key, buf);
        snprintf(key, sizeof key, "test_set_size_%g", set_coverage);
        snprintf(buf, sizeof buf, "%.3f", e->set_size);
        rc |= bnn_meta_set(m, key, buf);
    }
    return rc ? BNN_E_NOMEM : BNN_OK;
}

/* study.c - the robustness study (study.h): the sets run through the
 * daemon's path and the model alone, then the derived figures.
 */
#include "study.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calibrate.h"
#include "rng.h"
#include "robust.h"

#define NO_DIGIT_STREAM 0x6e6f6469u /* rng.h tag of the noise pictures ("nodi") */

const double study_rates[STUDY_RATES] = {0.01, 0.02, 0.05, 0.10, 0.20};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- one run over one set ------------------------------------------------ */

static void run_free(struct study_run *r)
{
    free(r->entropy);
    free(r->epistemic);
    free(r->confidence);
    free(r->correct);
    free(r->flagged);
    free(r->digit);
    memset(r, 0, sizeof *r);
}

static int run_alloc(struct study_run *r, size_t n, int labelled)
{
    r->entropy = malloc(n * sizeof *r->entropy);
    r->epistemic = malloc(n * sizeof *r->epistemic);
    r->confidence = malloc(n * sizeof *r->confidence);
    r->flagged = malloc(n);
    r->digit = malloc(n);
    r->correct = labelled ? malloc(n) : NULL;
    return r->entropy && r->epistemic && r->confidence && r->flagged && r->digit && (!labelled || r->correct)
               ? 0
               : -1;
}

/* Coverage and mean size of the prediction sets at each level of p, from
 * the mean probabilities (n, k). */
static void run_sets(struct study_run *r, const struct bnn_policy *p, const double *probs,
                     const uint8_t *labels, size_t n, size_t k)
{
    for (size_t l = 0; l < BNN_MAX_LEVELS; l++)
        r->set_coverage[l] = r->set_size[l] = NAN;
    for (size_t l = 0; l < p->n_levels; l++) {
        double covered = 0, size = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned s = bnn_prediction_set(p, l, probs + i * k, k);
            size += __builtin_popcount(s);
            if (labels)
                covered += (s >> labels[i]) & 1u;
        }
        r->set_size[l] = size / (double)n;
        r->set_coverage[l] = labels ? covered / (double)n : NAN;
    }
}

static void run_record(struct study_run *r, const struct eval_image *img, const uint8_t *labels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        r->entropy[i] = img[i].entropy;
        r->epistemic[i] = img[i].epistemic;
        r->confidence[i] = img[i].confidence;
        r->flagged[i] = img[i].reasons != 0;
        r->digit[i] = img[i].digit_found;
        if (labels) {
            r->correct[i] = img[i].predicted == labels[i];
            r->wrong += !r->correct[i];
            r->wrong_flagged += !r->correct[i] && r->flagged[i];
        }
    }
}

static int run_one(struct study_run *r, const struct bnn_model *m, const uint8_t *pixels,
                   const uint8_t *labels, size_t n, const struct eval_options *o, char err[BNN_ERR_LEN])
{
    size_t k = bnn_model_n_classes(m);
    struct eval_image *img = malloc(n * sizeof *img);
    double *probs = malloc(n * k * sizeof *probs);
    int rc = BNN_E_NOMEM;
    if (!img || !probs || run_alloc(r, n, labels != NULL)) {
        snprintf(err, BNN_ERR_LEN, "out of memory for %zu images", n);
        goto done;
    }
    if ((rc = eval_model(&r->m, img, probs, m, pixels, labels, n, o, err)) != BNN_OK)
        goto done;
    run_record(r, img, labels, n);
    run_sets(r, o->policy, probs, labels, n, k);
done:
    free(img);
    free(probs);
    return rc;
}

/* Both runs of a set (the model alone when model_too and model_samples). */
static int run_set(struct study *st, struct study_set *s, const char *name, const struct bnn_model *m,
                   const uint8_t *pixels, const uint8_t *labels, size_t n, int model_too,
                   char err[BNN_ERR_LEN])
{
    double t0 = now_seconds();
    snprintf(s->name, sizeof s->name, "%s", name);
    s->n = n;
    s->labelled = labels != NULL;
    char why[BNN_ERR_LEN];
    int rc = run_one(&s->pipe, m, pixels, labels, n, &st->cfg.eval, why);
    if (rc == BNN_OK && model_too && st->cfg.model_samples) {
        struct eval_options o = st->cfg.eval;
        o.pipeline = 0;
        o.samples = st->cfg.model_samples;
        rc = run_one(&s->model, m, pixels, labels, n, &o, why);
    }
    if (rc != BNN_OK)
        snprintf(err, BNN_ERR_LEN, "%s: %.200s", name, why);
    else if (st->cfg.progress)
        st->cfg.progress(s, now_seconds() - t0, st->cfg.ctx);
    return rc;
}

static void set_free(struct study_set *s)
{
    run_free(&s->pipe);
    run_free(&s->model);
}

/* n pictures without a digit: the first half blank pages at grey levels
 * spread evenly over 0..255, the rest uniform noise. */
static void no_digit_pictures(uint8_t *out, size_t n, uint64_t seed)
{
    size_t blank = (n + 1) / 2;
    for (size_t i = 0; i < n; i++) {
        uint8_t *px = out + i * CORRUPT_PIXELS;
        if (i < blank) {
            memset(px, blank > 1 ? (int)lround(255.0 * (double)i / (double)(blank - 1)) : 255,
                   CORRUPT_PIXELS);
            continue;
        }
        for (size_t j = 0; j < CORRUPT_PIXELS; j += 8) {
            uint64_t w = rng_u64(seed, NO_DIGIT_STREAM, 0, i * (CORRUPT_PIXELS / 8) + j / 8);
            for (int b = 0; b < 8; b++)
                px[j + (size_t)b] = (uint8_t)(w >> (8 * b));
        }
    }
}

/* ---- the sets ------------------------------------------------------------ */

static int run_sets_all(struct study *st, const struct bnn_model *m, uint8_t *buf, char err[BNN_ERR_LEN])
{
    const struct study_data *d = &st->data;
    const struct study_config *c = &st->cfg;
    int rc = run_set(st, &st->clean, "clean", m, d->test, d->test_labels, d->n_test, 1, err);
    for (int k = 0; rc == BNN_OK && k < CORRUPT_COUNT; k++) {
        if ((rc = robust_corrupt_set(buf, d->test, d->n_test, (enum corrupt_kind)k, c->eval.seed, err)) ==
            BNN_OK)
            rc = run_set(st, &st->corrupt[k], corrupt_name((enum corrupt_kind)k), m, buf, d->test_labels,
                         d->n_test, 1, err);
    }
    if (rc == BNN_OK)
        rc = run_set(st, &st->fashion, "fashion_mnist", m, d->fashion, NULL, d->n_fashion, 1, err);
    for (int a = 0; rc == BNN_OK && a < STUDY_ANGLES; a++) {
        char name[32];
        snprintf(name, sizeof name, "rotate_%d", 15 * a);
        robust_rotate_set(buf, d->test, c->n_rotation, 15.0 * a);
        rc = run_set(st, &st->rotation[a], name, m, buf, d->test_labels, c->n_rotation, 1, err);
    }
    if (rc == BNN_OK && c->n_no_digit) {
        no_digit_pictures(buf, c->n_no_digit, c->eval.seed);
        rc = run_set(st, &st->no_digit, "no_digit", m, buf, NULL, c->n_no_digit, 1, err);
    }
    if (rc == BNN_OK && d->n_val)
        rc = run_set(st, &st->validation, "validation", m, d->val, d->val_labels, d->n_val, 0, err);
    return rc;
}

/* ---- derived figures ----------------------------------------------------- */

/* What policy p flags in a run's pictures (the daemon's rule, bnn_decide). */
static void apply_policy(const struct bnn_policy *p, const struct study_run *r, size_t n, size_t *flagged,
                         size_t *wrong, size_t *wrong_flagged)
{
    for (size_t i = 0; i < n; i++) {
        int f = bnn_decide(p, r->entropy[i], r->epistemic[i], r->digit[i]) != 0;
        *flagged += f;
        if (r->correct && !r->correct[i]) {
            (*wrong)++;
            *wrong_flagged += f;
        }
    }
}

static double share(size_t part, size_t whole)
{
    return whole ? (double)part / (double)whole : NAN;
}

static int candidates(struct study *st, char err[BNN_ERR_LEN])
{
    const struct study_run *v = &st->validation.pipe;
    size_t n = st->data.n_val;
    if (!n)
        return BNN_OK;
    for (size_t j = 0; j < STUDY_RATES; j++) {
        struct study_candidate *c = &st->cand[j];
        c->rate = study_rates[j];
        bnn_policy_none(&c->policy);
        int rc = calib_abstain(&c->policy, v->entropy, v->epistemic, v->correct, n, c->rate, NULL, err);
        if (rc != BNN_OK)
            return rc;
        c->policy.samples = st->cfg.eval.samples;
        size_t f = 0, w = 0, wf = 0;
        apply_policy(&c->policy, &st->clean.pipe, st->clean.n, &f, &w, &wf);
        c->clean_flagged = share(f, st->clean.n);
        c->clean_errors_flagged = share(wf, w);
        f = w = wf = 0;
        for (int k = 0; k < CORRUPT_COUNT; k++)
            apply_policy(&c->policy, &st->corrupt[k].pipe, st->corrupt[k].n, &f, &w, &wf);
        c->corrupted_flagged = share(f, CORRUPT_COUNT * st->clean.n);
        c->corrupted_errors_flagged = share(wf, w);
        f = w = wf = 0;
        apply_policy(&c->policy, &st->fashion.pipe, st->fashion.n, &f, &w, &wf);
        c->fashion_flagged = share(f, st->fashion.n);
    }
    st->n_cand = STUDY_RATES;
    return BNN_OK;
}

/* Selective prediction on clean, and on clean + the 15 corruptions pooled. */
static int selective(struct study *st, char err[BNN_ERR_LEN])
{
    size_t n = st->clean.n, n_pool = n * (1 + CORRUPT_COUNT);
    for (int j = 0; j < STUDY_FRACTIONS; j++)
        st->fractions[j] = j / 100.0;
    double *epi = malloc(n_pool * sizeof *epi), *ent = malloc(n_pool * sizeof *ent);
    unsigned char *ok = malloc(n_pool);
    int rc = BNN_E_NOMEM;
    snprintf(err, BNN_ERR_LEN, "out of memory for %zu pooled images", n_pool);
    if (epi && ent && ok) {
        for (int s = 0; s <= CORRUPT_COUNT; s++) {
            const struct study_run *r = s == 0 ? &st->clean.pipe : &st->corrupt[s - 1].pipe;
            memcpy(epi + (size_t)s * n, r->epistemic, n * sizeof *epi);
            memcpy(ent + (size_t)s * n, r->entropy, n * sizeof *ent);
            memcpy(ok + (size_t)s * n, r->correct, n);
        }
        const struct study_run *c = &st->clean.pipe;
        if ((rc = robust_selective(st->sel_clean_epi, st->fractions, STUDY_FRACTIONS, c->epistemic,
                                   c->correct, n, err)) == BNN_OK &&
            (rc = robust_selective(st->sel_clean_ent, st->fractions, STUDY_FRACTIONS, c->entropy, c->correct,
                                   n, err)) == BNN_OK &&
            (rc = robust_selective(st->sel_pool_epi, st->fractions, STUDY_FRACTIONS, epi, ok, n_pool, err)) ==
                BNN_OK)
            rc = robust_selective(st->sel_pool_ent, st->fractions, STUDY_FRACTIONS, ent, ok, n_pool, err);
    }
    free(epi);
    free(ent);
    free(ok);
    return rc;
}

/* AUROC of telling Fashion-MNIST (positives) from clean MNIST by the
 * entropy, the epistemic part and 1 - max mean probability of a run. */
static int aurocs(double *ent, double *epi, double *conf, const struct study_run *pos, size_t n_pos,
                  const struct study_run *neg, size_t n_neg, char err[BNN_ERR_LEN])
{
    *ent = *epi = NAN;
    if (conf)
        *conf = NAN;
    if (!pos->m.n || !neg->m.n)
        return BNN_OK;
    int rc = robust_auroc(ent, pos->entropy, n_pos, neg->entropy, n_neg, err);
    if (rc == BNN_OK)
        rc = robust_auroc(epi, pos->epistemic, n_pos, neg->epistemic, n_neg, err);
    if (rc != BNN_OK || !conf)
        return rc;
    double *p = malloc(n_pos * sizeof *p), *q = malloc(n_neg * sizeof *q);
    rc = BNN_E_NOMEM;
    snprintf(err, BNN_ERR_LEN, "out of memory for %zu scores", n_pos + n_neg);
    if (p && q) {
        for (size_t i = 0; i < n_pos; i++)
            p[i] = 1.0 - pos->confidence[i];
        for (size_t i = 0; i < n_neg; i++)
            q[i] = 1.0 - neg->confidence[i];
        rc = robust_auroc(conf, p, n_pos, q, n_neg, err);
    }
    free(p);
    free(q);
    return rc;
}

static void totals(struct study *st)
{
    struct study_totals *t = &st->t;
    int level = study_level(st, STUDY_SET_COVERAGE);
    double acc = 0, acc_model = 0, flagged = 0, cover = 0;
    for (int k = 0; k < CORRUPT_COUNT; k++) {
        const struct study_set *s = &st->corrupt[k];
        acc += s->pipe.m.accuracy;
        acc_model += s->model.m.n ? s->model.m.accuracy : NAN;
        flagged += s->pipe.m.flagged;
        cover += level >= 0 ? s->pipe.set_coverage[level] : NAN;
        t->wrong += s->pipe.wrong;
        t->wrong_flagged += s->pipe.wrong_flagged;
        int e = s->pipe.m.epistemic > st->clean.pipe.m.epistemic;
        int w = s->pipe.m.interval_width > st->clean.pipe.m.interval_width;
        t->epistemic_up += e;
        t->width_up += w;
        t->both_up += e && w;
    }
    t->mean_accuracy = acc / CORRUPT_COUNT;
    t->mean_accuracy_model = acc_model / CORRUPT_COUNT;
    t->flagged = flagged / CORRUPT_COUNT; /* every set has the same n */
    t->set_coverage = cover / CORRUPT_COUNT;
    t->errors_flagged = share(t->wrong_flagged, t->wrong);
}

static void target(struct study_target *g, const char *key, const char *what, double value, double lo,
                   double hi, double floor_, int percent)
{
    *g = (struct study_target){key, what, value, lo, hi, floor_, percent, 0};
    int met = !isnan(value) && (isnan(lo) || value >= lo) && (isnan(hi) || value <= hi);
    g->status = met ? 1 : !isnan(value) && !isnan(floor_) && value >= floor_ ? 2 : 0;
}

static void targets(struct study *st)
{
    const struct study_run *c = &st->clean.pipe;
    int level = study_level(st, STUDY_SET_COVERAGE);
    double auroc = fmax(st->t.auroc_entropy, st->t.auroc_epistemic);
    struct study_target *g = st->targets;
    target(g++, "corruption_errors_flagged",
           "`uncertain` on >= 90 % of the wrong answers over the 15 corruptions", st->t.errors_flagged, 0.90,
           NAN, NAN, 1);
    target(g++, "clean_flagged", "clean test digits flagged <= 5 %", c->m.flagged, NAN, 0.05, NAN, 1);
    target(g++, "corruption_mean_accuracy", "mean accuracy over the 15 corruptions >= 85 % (floor 80 %)",
           st->t.mean_accuracy, 0.85, NAN, 0.80, 1);
    target(g++, "clean_accuracy", "clean test accuracy >= 99.0 % (floor 98.5 %)", c->m.accuracy, 0.99, NAN,
           0.985, 1);
    target(g++, "clean_ece", "clean test ECE <= 1 %", c->m.ece, NAN, 0.01, NAN, 1);
    target(g++, "fashion_auroc", "Fashion-MNIST AUROC >= 0.98 (the better of entropy and epistemic)", auroc,
           0.98, NAN, NAN, 0);
    target(g++, "clean_set_coverage", "conformal 0.95 sets cover 94-97 % of clean test digits",
           level >= 0 ? c->set_coverage[level] : NAN, 0.94, 0.97, NAN, 1);
    target(g++, "no_digit_flagged", "every picture without a digit flagged",
           st->no_digit.n ? st->no_digit.pipe.m.flagged : NAN, 1.0, NAN, NAN, 1);
    target(g++, "rise_on_corruptions",
           "mean interval width and mean epistemic above clean on 15 of 15 corruptions", st->t.both_up,
           CORRUPT_COUNT, NAN, NAN, 0);
}

/* ---- the example ---------------------------------------------------------- */

/* The digit right when clean and wrong when corrupted (a digit still found)
 * whose corrupted copy is the most uncertain; or, for a given index, that
 * image's most uncertain corruption. */
static void pick_example(struct study *st, size_t *index, int *kind)
{
    double best = -1.0;
    size_t fixed = st->cfg.example;
    *index = fixed == SIZE_MAX ? 0 : fixed;
    *kind = 0;
    for (int k = 0; k < CORRUPT_COUNT; k++) {
        const struct study_run *r = &st->corrupt[k].pipe;
        for (size_t i = fixed == SIZE_MAX ? 0 : fixed; i < st->clean.n && (fixed == SIZE_MAX || i == fixed);
             i++) {
            int wanted = fixed != SIZE_MAX || (st->clean.pipe.correct[i] && !r->correct[i] && r->digit[i]);
            if (wanted && r->epistemic[i] > best) {
                best = r->epistemic[i];
                *index = i;
                *kind = k;
            }
        }
    }
}

static int run_example(struct study *st, const struct bnn_model *m, char err[BNN_ERR_LEN])
{
    struct study_example *ex = &st->example;
    int kind;
    pick_example(st, &ex->index, &kind);
    ex->kind = (enum corrupt_kind)kind;
    ex->label = st->data.test_labels[ex->index];
    memcpy(ex->clean, st->data.test + ex->index * CORRUPT_PIXELS, CORRUPT_PIXELS);
    if (corrupt_apply(ex->corrupted, ex->clean, ex->kind, st->cfg.eval.seed, ex->index) != 0) {
        snprintf(err, BNN_ERR_LEN, "example: out of memory");
        return BNN_E_NOMEM;
    }
    struct bnn_workspace *ws = bnn_workspace_new(m);
    if (!ws) {
        snprintf(err, BNN_ERR_LEN, "example: out of memory for a workspace");
        return BNN_E_NOMEM;
    }
    /* the same seed and one BLAS thread, as in its set: the same answer */
    const struct eval_options *o = &st->cfg.eval;
    struct bnn_question q = {o->samples, eval_image_seed(o, ex->index), o->coverage, o->mode, o->set_level};
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    int rc = bnn_answer_gray(&ex->a_clean, ws, m, o->policy, ex->clean, 28, 28, &q, err);
    if (rc == BNN_OK)
        rc = bnn_answer_gray(&ex->a_corrupted, ws, m, o->policy, ex->corrupted, 28, 28, &q, err);
    openblas_set_num_threads(blas_threads);
    bnn_workspace_free(ws);
    return rc;
}

/* ---- the whole study ------------------------------------------------------ */

static int check_config(const struct study_data *d, const struct study_config *c, const struct bnn_model *m,
                        char err[BNN_ERR_LEN])
{
    if (bnn_model_n_in(m) != CORRUPT_PIXELS || bnn_model_n_classes(m) != 10) {
        snprintf(err, BNN_ERR_LEN, "expected a model of 784 inputs and 10 classes, got %zu and %zu",
                 bnn_model_n_in(m), bnn_model_n_classes(m));
        return BNN_E_INVALID;
    }
    if (!d->n_test || !d->n_fashion || !c->n_rotation || c->n_rotation > d->n_test || !c->eval.policy ||
        (c->example != SIZE_MAX && c->example >= d->n_test)) {
        snprintf(
            err, BNN_ERR_LEN,
            "expected test images >= 1, Fashion-MNIST images >= 1, 1 <= rotation images <= test images, a "
            "policy and an example index below the test images; got %zu, %zu, %zu, %s, %zu",
            d->n_test, d->n_fashion, c->n_rotation, c->eval.policy ? "a policy" : "none",
            c->example == SIZE_MAX ? 0 : c->example);
        return BNN_E_INVALID;
    }
    return BNN_OK;
}

int study_run(struct study *st, const struct bnn_model *m, const struct study_data *d,
              const struct study_config *c, char err[BNN_ERR_LEN])
{
    double t0 = now_seconds();
    memset(st, 0, sizeof *st);
    st->cfg = *c;
    st->data = *d;
    bnn_model_arch(m, st->arch, sizeof st->arch);
    int rc = check_config(d, c, m, err);
    if (rc != BNN_OK)
        return rc;
    size_t most = d->n_test > c->n_no_digit ? d->n_test : c->n_no_digit;
    uint8_t *buf = malloc(most * CORRUPT_PIXELS);
    if (!buf) {
        snprintf(err, BNN_ERR_LEN, "out of memory for %zu images", most);
        return BNN_E_NOMEM;
    }
    rc = run_sets_all(st, m, buf, err);
    free(buf);
    if (rc == BNN_OK)
        rc = aurocs(&st->t.auroc_entropy, &st->t.auroc_epistemic, &st->t.auroc_max_prob, &st->fashion.pipe,
                    st->fashion.n, &st->clean.pipe, st->clean.n, err);
    if (rc == BNN_OK)
        rc = aurocs(&st->t.auroc_model_entropy, &st->t.auroc_model_epistemic, NULL, &st->fashion.model,
                    st->fashion.n, &st->clean.model, st->clean.n, err);
    if (rc == BNN_OK && (rc = selective(st, err)) == BNN_OK && (rc = candidates(st, err)) == BNN_OK) {
        totals(st);
        targets(st);
        rc = run_example(st, m, err);
    }
    st->seconds = now_seconds() - t0;
    return rc;
}

void study_free(struct study *st)
{
    set_free(&st->clean);
    for (int k = 0; k < CORRUPT_COUNT; k++)
        set_free(&st->corrupt[k]);
    for (int a = 0; a < STUDY_ANGLES; a++)
        set_free(&st->rotation[a]);
    set_free(&st->fashion);
    set_free(&st->no_digit);
    set_free(&st->validation);
}

const struct study_set *study_table_set(const struct study *st, size_t i)
{
    if (i == 0)
        return &st->clean;
    if (i <= CORRUPT_COUNT)
        return &st->corrupt[i - 1];
    return i == CORRUPT_COUNT + 1 ? &st->fashion : &st->no_digit;
}

int study_level(const struct study *st, double coverage)
{
    return bnn_policy_level(st->cfg.eval.policy, coverage);
}

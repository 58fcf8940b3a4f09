/* calibrate.c - the abstain thresholds and conformal levels (calibrate.h). */
#include "calibrate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "eval.h"

#define SPLITS 20

const double calib_default_coverage[CALIB_LEVELS] = {0.90, 0.95, 0.99};

struct ranked {
    double v;
    size_t i;
};

/* Descending by value, ties by ascending index. */
static int by_value_desc(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->v != y->v)
        return x->v < y->v ? 1 : -1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* The threshold that flags (value > t) exactly the first `count` of the
 * ranked values: the midpoint to the next one (their own value when tied,
 * which flags fewer). INFINITY for count 0. */
static double cut(const struct ranked *r, size_t n, size_t count)
{
    if (count == 0)
        return INFINITY;
    if (count >= n)
        return -INFINITY;
    return r[count].v < r[count - 1].v ? 0.5 * (r[count].v + r[count - 1].v) : r[count].v;
}

/* Wrong answers and all answers flagged by (h, e). */
static void count_flags(const double *entropy, const double *epistemic, const unsigned char *correct,
                        size_t n, double h, double e, size_t *flagged, size_t *caught)
{
    *flagged = *caught = 0;
    for (size_t i = 0; i < n; i++)
        if (entropy[i] > h || epistemic[i] > e) {
            (*flagged)++;
            *caught += !correct[i];
        }
}

int calib_abstain(struct bnn_policy *p, const double *entropy, const double *epistemic,
                  const unsigned char *correct, size_t n, double flag_rate, const struct calib_set *shifted,
                  char err[BNN_ERR_LEN])
{
    if (n == 0 || !(flag_rate > 0 && flag_rate <= 0.5)) {
        snprintf(err, BNN_ERR_LEN, "expected images >= 1 and a flag rate in (0, 0.5], got %zu, %g", n,
                 flag_rate);
        return BNN_E_INVALID;
    }
    struct ranked *ent = malloc(n * sizeof *ent), *epi = malloc(n * sizeof *epi);
    if (!ent || !epi) {
        free(ent);
        free(epi);
        snprintf(err, BNN_ERR_LEN, "out of memory for %zu images", n);
        return BNN_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        ent[i] = (struct ranked){entropy[i], i};
    qsort(ent, n, sizeof *ent, by_value_desc);
    size_t budget = (size_t)llround(flag_rate * (double)n), best_caught = 0, best_shifted = 0,
           best_flagged = 0;
    for (int g = 0; g <= SPLITS; g++) {
        size_t by_entropy = budget * (size_t)g / SPLITS;
        double h = cut(ent, n, by_entropy);
        /* the rest of the budget: highest epistemic among the unflagged */
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (!(entropy[i] > h))
                epi[m++] = (struct ranked){epistemic[i], i};
        qsort(epi, m, sizeof *epi, by_value_desc);
        double e = cut(epi, m, budget - by_entropy < m ? budget - by_entropy : m);
        size_t flagged, caught, s_flagged = 0, s_caught = 0;
        count_flags(entropy, epistemic, correct, n, h, e, &flagged, &caught);
        if (shifted)
            count_flags(shifted->entropy, shifted->epistemic, shifted->correct, shifted->n, h, e, &s_flagged,
                        &s_caught);
        if (g == 0 || s_caught > best_shifted || (s_caught == best_shifted && caught >= best_caught)) {
            best_shifted = s_caught;
            best_caught = caught;
            best_flagged = flagged;
            p->entropy_max = h;
            p->epistemic_max = e;
        }
    }
    p->clean_flag_rate = (double)best_flagged / (double)n;
    free(ent);
    free(epi);
    return BNN_OK;
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int calib_conformal(struct bnn_policy *p, const double *label_prob, size_t n, const double *coverage,
                    size_t n_levels, char err[BNN_ERR_LEN])
{
    if (n == 0 || n_levels == 0 || n_levels > BNN_MAX_LEVELS) {
        snprintf(err, BNN_ERR_LEN, "expected images >= 1 and 1..%d levels, got %zu, %zu", BNN_MAX_LEVELS, n,
                 n_levels);
        return BNN_E_INVALID;
    }
    for (size_t l = 0; l < n_levels; l++)
        if (!(coverage[l] > 0 && coverage[l] < 1) || (l && coverage[l] <= coverage[l - 1])) {
            snprintf(err, BNN_ERR_LEN, "coverage %zu: expected ascending in (0,1), got %g", l, coverage[l]);
            return BNN_E_INVALID;
        }
    double *s = malloc(n * sizeof *s);
    if (!s) {
        snprintf(err, BNN_ERR_LEN, "out of memory for %zu scores", n);
        return BNN_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        s[i] = 1.0 - label_prob[i];
    qsort(s, n, sizeof *s, by_double);
    for (size_t l = 0; l < n_levels; l++) {
        size_t rank = (size_t)ceil((double)(n + 1) * coverage[l] - 1e-9); /* 1-based */
        double q = rank > n ? 1.0 : s[rank - 1];
        p->coverage[l] = coverage[l];
        p->min_prob[l] = q >= 1.0 ? 0.0 : 1.0 - q;
    }
    p->n_levels = n_levels;
    free(s);
    return BNN_OK;
}

/* The answers to n labelled pictures through the daemon's path, as the
 * rule sees them (arrays owned by the caller: answers_free). */
struct answers {
    double *entropy, *epistemic, *label_prob;
    unsigned char *correct;
    struct calib_set set;
};

static void answers_free(struct answers *a)
{
    free(a->entropy);
    free(a->epistemic);
    free(a->label_prob);
    free(a->correct);
}

static int answer_all(struct answers *a, const struct bnn_model *m, const uint8_t *pixels,
                      const uint8_t *labels, size_t n, const struct eval_options *o, char err[BNN_ERR_LEN])
{
    struct eval_metrics em;
    struct eval_image *img = malloc(n * sizeof *img);
    a->entropy = malloc(n * sizeof *a->entropy);
    a->epistemic = malloc(n * sizeof *a->epistemic);
    a->label_prob = malloc(n * sizeof *a->label_prob);
    a->correct = malloc(n ? n : 1);
    int rc = BNN_E_NOMEM;
    snprintf(err, BNN_ERR_LEN, "out of memory for %zu calibration images", n);
    if (img && a->entropy && a->epistemic && a->label_prob && a->correct &&
        !(rc = eval_model(&em, img, NULL, m, pixels, labels, n, o, err)))
        for (size_t i = 0; i < n; i++) {
            a->entropy[i] = img[i].entropy;
            a->epistemic[i] = img[i].epistemic;
            a->label_prob[i] = img[i].label_prob;
            a->correct[i] = img[i].predicted == labels[i];
        }
    a->set = (struct calib_set){a->entropy, a->epistemic, a->correct, n};
    free(img);
    return rc;
}

/* Every picture redrawn by the trainer's default augmentation. */
static uint8_t *augmented(const uint8_t *pixels, size_t n)
{
    struct augment_config ac;
    augment_config_default(&ac);
    ac.p = 1;
    uint8_t *out = malloc(n * BNN_MNIST_PIXELS + 1);
    for (size_t i = 0; out && i < n; i++)
        augment_image(out + i * BNN_MNIST_PIXELS, pixels + i * BNN_MNIST_PIXELS, &ac, CALIB_SEED, 0, i);
    return out;
}

int calib_policy(struct bnn_policy *p, const struct bnn_model *m, const uint8_t *pixels,
                 const uint8_t *labels, size_t n, size_t samples, size_t threads, double flag_rate,
                 char err[BNN_ERR_LEN])
{
    struct eval_options o;
    eval_options_default(&o);
    o.samples = samples;
    o.threads = threads;
    o.seed = CALIB_SEED;
    struct answers clean = {0}, shifted = {0};
    uint8_t *redrawn = augmented(pixels, n);
    bnn_policy_none(p);
    int rc = BNN_E_NOMEM;
    if (!redrawn)
        snprintf(err, BNN_ERR_LEN, "out of memory for %zu augmented images", n);
    else if (!(rc = answer_all(&clean, m, pixels, labels, n, &o, err)) &&
             !(rc = answer_all(&shifted, m, redrawn, labels, n, &o, err)) &&
             !(rc = calib_abstain(p, clean.entropy, clean.epistemic, clean.correct, n, flag_rate,
                                  &shifted.set, err)))
        rc = calib_conformal(p, clean.label_prob, n, calib_default_coverage, CALIB_LEVELS, err);
    p->samples = samples;
    answers_free(&clean);
    answers_free(&shifted);
    free(redrawn);
    return rc;
}

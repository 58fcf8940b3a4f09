/* study.h - the robustness study behind `make report` (bnn-robust): what
 * callers get from a weights file when the pictures shift. Every picture
 * goes the daemon's whole way (answer.h, through eval.h's pipeline: the
 * canonicalisation, T passes, the abstain rule and the prediction sets of
 * the weights' policy), on
 *
 *   clean        the MNIST test set
 *   corruptions  its 15 MNIST-C-style corruptions (corrupt.h)
 *   rotation     test digits rotated by 0, 15, ..., 180 degrees
 *   fashion      Fashion-MNIST test images (out of distribution)
 *   no_digit     pictures without a digit: blank pages of every grey level
 *                and uniform noise
 *
 * and each set also with the model alone on pixel/255 (eval.h's pipeline =
 * 0) beside it. From the per-image results it derives out-of-distribution
 * AUROCs, selective-prediction curves, the totals the targets are
 * stated in, what other clean flag rates would have done (each calibrated
 * on the validation digits, never on the test set), and a clean/corrupted
 * example for the blog's figure. study_report.h writes it all out.
 *
 * Per-image noise is addressed by (seed, image index), so a corrupted
 * picture and its original see the same draws. No printing: progress goes
 * to a callback. A study owns its per-image arrays (study_free); the
 * config's and data's pointers are borrowed until then.
 *
 * Part of the lab (model/lab/): linked by the tools and tests, never by
 * the daemon, which links only the runtime in model/.
 */
#ifndef BNN_STUDY_H
#define BNN_STUDY_H

#include <stddef.h>
#include <stdint.h>

#include "answer.h"
#include "bnn.h"
#include "corrupt.h"
#include "decide.h"
#include "eval.h"

#define STUDY_ANGLES 13    /* 0, 15, ..., 180 degrees */
#define STUDY_FRACTIONS 51 /* abstain on 0 %, 1 %, ..., 50 % */
#define STUDY_RATES 5      /* candidate shares of validation digits flagged */
#define STUDY_TARGETS 9
#define STUDY_SET_COVERAGE 0.95               /* the prediction-set level reported per set */
extern const double study_rates[STUDY_RATES]; /* 0.01, 0.02, 0.05, 0.10, 0.20 */

/* One way of running a set: its metrics, the per-image figures the derived
 * ones need (n entries; NULL when not run), and the prediction sets at each
 * level of the policy (NAN without labels or levels). */
struct study_run {
    struct eval_metrics m; /* m.n == 0: not run */
    double *entropy, *epistemic, *confidence;
    unsigned char *correct; /* NULL without labels */
    unsigned char *flagged; /* the abstain rule's verdict (any reason) */
    unsigned char *digit;   /* the canonicalisation found a digit */
    size_t wrong, wrong_flagged;
    double set_coverage[BNN_MAX_LEVELS], set_size[BNN_MAX_LEVELS];
};

struct study_set {
    char name[32];
    size_t n;
    int labelled;
    struct study_run pipe;  /* the daemon's path */
    struct study_run model; /* the model alone on pixel/255 */
};

/* A test digit right when clean and wrong when corrupted, with both
 * answers (the daemon's path). */
struct study_example {
    size_t index;
    int label;
    enum corrupt_kind kind;
    uint8_t clean[CORRUPT_PIXELS], corrupted[CORRUPT_PIXELS];
    struct bnn_answer a_clean, a_corrupted;
};

/* What the abstain rule calibrated to flag `rate` of the validation digits
 * (calibrate.h) does on the test sets. */
struct study_candidate {
    double rate;
    struct bnn_policy policy;
    double clean_flagged, clean_errors_flagged;
    double corrupted_flagged, corrupted_errors_flagged; /* the 15 pooled */
    double fashion_flagged;
};

/* One of the targets: met when lo <= value <= hi (NAN: no bound);
 * status 1 met, 0 missed, 2 missed but at or above the floor. */
struct study_target {
    const char *key, *what;
    double value, lo, hi, floor;
    int percent; /* a share, written as a percentage */
    int status;
};

/* Over the 15 corruptions (pooled: every corrupted picture counted once). */
struct study_totals {
    double mean_accuracy, mean_accuracy_model; /* mean of the 15 accuracies */
    size_t wrong, wrong_flagged;
    double errors_flagged, flagged, set_coverage;          /* pooled */
    int epistemic_up, width_up, both_up;                   /* means above clean's */
    double auroc_entropy, auroc_epistemic, auroc_max_prob; /* Fashion vs clean */
    double auroc_model_entropy, auroc_model_epistemic;     /* the same, model alone */
};

struct study_config {
    struct eval_options eval;               /* the daemon's path: T, seed, mode, threads, interval,
                                               policy (required), set_level (may be -1) */
    size_t model_samples;                   /* T of the model-alone runs; 0 = none */
    size_t n_rotation;                      /* test digits per rotation angle (<= n_test) */
    size_t n_no_digit;                      /* pictures without a digit, half blank, half noise */
    size_t example;                         /* test index of the example; SIZE_MAX = pick one */
    const char *model_name, *policy_source; /* for the writers */
    void (*progress)(const struct study_set *s, double seconds, void *ctx);
    void *ctx;
};

struct study_data {
    const uint8_t *test, *test_labels; /* (n_test, 784), (n_test) */
    size_t n_test;
    const uint8_t *fashion; /* (n_fashion, 784), no labels */
    size_t n_fashion;
    const uint8_t *val, *val_labels; /* validation digits; n_val 0 = no candidates */
    size_t n_val;
};

struct study {
    struct study_config cfg;
    struct study_data data;
    char arch[64];
    struct study_set clean, corrupt[CORRUPT_COUNT], rotation[STUDY_ANGLES], fashion, no_digit, validation;
    struct study_totals t;
    double fractions[STUDY_FRACTIONS];
    double sel_clean_epi[STUDY_FRACTIONS], sel_clean_ent[STUDY_FRACTIONS];
    double sel_pool_epi[STUDY_FRACTIONS], sel_pool_ent[STUDY_FRACTIONS]; /* clean + the 15 */
    struct study_candidate cand[STUDY_RATES];
    size_t n_cand;
    struct study_example example;
    struct study_target targets[STUDY_TARGETS];
    double seconds;
};

/* Runs the whole study of m. BNN_OK, or an error with err filled (bad
 * configuration, out of memory, an evaluation error naming the set). On
 * error the study is still safe to study_free. */
int study_run(struct study *st, const struct bnn_model *m, const struct study_data *d,
              const struct study_config *c, char err[BNN_ERR_LEN]);

void study_free(struct study *st);

/* The sets of the per-set tables, in order: clean, the 15 corruptions,
 * fashion, no_digit; i < STUDY_TABLE_SETS. */
#define STUDY_TABLE_SETS (CORRUPT_COUNT + 3)
const struct study_set *study_table_set(const struct study *st, size_t i);

/* The index of the policy level at `coverage`, or -1. */
int study_level(const struct study *st, double coverage);

#endif

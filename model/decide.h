/* decide.h - what an answer says beyond its numbers: whether to trust it,
 * and which digits it could be.
 *
 * The abstain rule flags an answer when its predictive entropy or its
 * epistemic part (the mutual information) passes a threshold, or when the
 * picture holds no digit. The two thresholds are calibrated on the 5,000
 * validation images to a stated share of clean digits flagged (lab/
 * calibrate.h) and travel in the weights' metadata, so a retrained model
 * brings its own; configuration may override them.
 *
 * The prediction set is split conformal (Vovk et al. 2005; the "LAC" sets
 * of Sadinle, Lei & Wasserman 2019): with the validation scores
 * s = 1 - p_bar[label], the set at coverage 1 - alpha holds every class whose
 * mean probability is at least 1 - q, q the ceil((n+1)(1-alpha))-th smallest
 * score. It contains the true label with probability >= 1 - alpha for
 * pictures exchangeable with the calibration images - clean MNIST-like
 * digits - and promises nothing under shift. It may be empty when the model
 * is more accurate than the coverage asks.
 *
 * Pure functions of their inputs; a policy is plain data, shared read-only.
 */
#ifndef BNN_DECIDE_H
#define BNN_DECIDE_H

#include <stddef.h>

#include "bnn.h"

#define BNN_MAX_LEVELS 4

/* Why an answer is flagged, as bits (uncertain_reasons). */
enum bnn_reason {
    BNN_REASON_NO_DIGIT = 1u << 0, /* the picture holds no digit */
    BNN_REASON_ENTROPY = 1u << 1,  /* predictive entropy above its threshold */
    BNN_REASON_EPISTEMIC = 1u << 2 /* epistemic part above its threshold */
};

struct bnn_policy {
    double entropy_max;     /* flag above this entropy (nats); INFINITY = never */
    double epistemic_max;   /* flag above this mutual information (nats) */
    double clean_flag_rate; /* share of clean validation images flagged; NAN unknown */
    size_t samples;         /* T the thresholds were calibrated at (0 unknown) */
    size_t n_levels;        /* conformal levels, ascending coverage */
    double coverage[BNN_MAX_LEVELS];
    double min_prob[BNN_MAX_LEVELS]; /* in the set when mean probability >= this */
};

/* No thresholds (never flags but for no digit), no conformal levels. */
void bnn_policy_none(struct bnn_policy *p);

/* The policy stored in m's metadata (abstain_entropy, abstain_epistemic,
 * abstain_clean_flag_rate, abstain_samples, conformal = "0.9:0.0123,..."),
 * keys that are absent leaving bnn_policy_none's values. BNN_OK, or
 * BNN_E_FORMAT with err naming the key and the value. */
int bnn_policy_from_meta(struct bnn_policy *p, const struct bnn_model *m, char err[BNN_ERR_LEN]);

/* Writes p into m's metadata under those keys. BNN_OK or BNN_E_NOMEM. */
int bnn_policy_to_meta(const struct bnn_policy *p, struct bnn_model *m);

/* The reasons (enum bnn_reason bits) to flag an answer; 0 = trust it. */
unsigned bnn_decide(const struct bnn_policy *p, double entropy, double epistemic, int digit_found);

/* The index of the calibrated level equal to coverage (within 1e-9), or -1. */
int bnn_policy_level(const struct bnn_policy *p, double coverage);

/* The prediction set at level `level` as a bit mask of classes (bit k set
 * when mean_probs[k] >= min_prob[level]), k classes <= 32. */
unsigned bnn_prediction_set(const struct bnn_policy *p, size_t level, const double *mean_probs, size_t k);

/* "no_digit", "entropy", "epistemic" for one bit; NULL otherwise. */
const char *bnn_reason_name(unsigned bit);

#endif

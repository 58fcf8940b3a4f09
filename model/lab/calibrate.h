/* calibrate.h - fits the answer policy of decide.h on held-out clean
 * images (the trainer's 5,000 validation digits, never the test set): the
 * abstain thresholds to a stated share of clean digits flagged, and the
 * split-conformal prediction-set thresholds for the requested coverages.
 * Every figure comes from the daemon's own path (eval.h's pipeline).
 *
 * Pure functions of their inputs; ties are broken by image index, so the
 * result is reproducible. Buffers are the caller's.
 *
 * Part of the lab (model/lab/): linked by the tools and tests, never by
 * the daemon, which links only the runtime in model/.
 */
#ifndef BNN_CALIBRATE_H
#define BNN_CALIBRATE_H

#include <stddef.h>
#include <stdint.h>

#include "bnn.h"
#include "decide.h"

/* Answers to a set of labelled pictures, as the abstain rule sees them. */
struct calib_set {
    const double *entropy, *epistemic;
    const unsigned char *correct;
    size_t n;
};

/* The abstain rule: flag when entropy > h or epistemic > e. For each share
 * g = 0, 1/20, ..., 1 of the flag budget given to the entropy (the rest to
 * the epistemic part among what entropy leaves), the thresholds that flag
 * exactly round(flag_rate * n) of the clean images; keeps the split that
 * flags the most wrong answers of `shifted` (ties: of the clean images,
 * then the larger entropy share). shifted NULL: selects on the clean
 * images' wrong answers alone - a few dozen at MNIST's accuracy, too few
 * to tell the splits apart reliably. Fills entropy_max, epistemic_max and
 * clean_flag_rate (the rate reached) of p. BNN_OK, or BNN_E_INVALID (n ==
 * 0, rate outside (0, 0.5]) / BNN_E_NOMEM, err filled. */
int calib_abstain(struct bnn_policy *p, const double *entropy, const double *epistemic,
                  const unsigned char *correct, size_t n, double flag_rate, const struct calib_set *shifted,
                  char err[BNN_ERR_LEN]);

/* Split conformal: with scores s_i = 1 - label_prob[i], for each coverage
 * c the threshold min_prob = 1 - q, q the ceil((n + 1) c)-th smallest score
 * (q = 1, every class, when that exceeds n). Coverages ascending in (0,1),
 * at most BNN_MAX_LEVELS. Fills p's levels. BNN_OK or an error as above. */
int calib_conformal(struct bnn_policy *p, const double *label_prob, size_t n, const double *coverage,
                    size_t n_levels, char err[BNN_ERR_LEN]);

/* Both, from the answers to n labelled 28x28 pictures (n, 784) at T =
 * samples passes, the daemon's path (eval.h with seed CALIB_SEED, so
 * eval_model with that seed, T and the resulting policy replays the very
 * answers it was fitted on); p->samples records T. The abstain split is
 * chosen on the same digits redrawn by the trainer's augmentation
 * (augment.h, every one augmented): shifted pictures with hundreds of wrong
 * answers, none of them a test corruption. The default coverages are 0.90,
 * 0.95, 0.99.
 *
 * CALIB_FLAG_RATE is the default share of validation digits flagged: 4.5 %,
 * so that clean test digits - other writers than the training and
 * validation digits, a little less certain - stay under 5 %
 * (docs/report.md). */
#define CALIB_SEED 7 /* the passes' seed: any fixed value */
#define CALIB_FLAG_RATE 0.045
#define CALIB_LEVELS 3
extern const double calib_default_coverage[CALIB_LEVELS];
int calib_policy(struct bnn_policy *p, const struct bnn_model *m, const uint8_t *pixels,
                 const uint8_t *labels, size_t n, size_t samples, size_t threads, double flag_rate,
                 char err[BNN_ERR_LEN]);

#endif

/* robust.h - is the uncertainty worth having? Metrics over per-image results
 * of eval.h: out-of-distribution AUROC, selective prediction (accuracy when
 * abstaining on the most uncertain inputs), reliability bins, histograms,
 * and whole-set corruption/rotation helpers over corrupt.h.
 *
 * Pure functions of their inputs: no globals, no printing; results depend on
 * no thread or call order. Ties are broken by image index so every figure is
 * reproducible. Every buffer is owned by the caller.
 *
 * Part of the lab (model/lab/): linked by the tools and tests, never by
 * the daemon, which links only the runtime in model/.
 */
#ifndef BNN_ROBUST_H
#define BNN_ROBUST_H

#include <stddef.h>
#include <stdint.h>

#include "bnn.h"
#include "corrupt.h"

/* Area under the ROC curve for telling positives (e.g. Fashion-MNIST, the
 * out-of-distribution set) from negatives (MNIST) by a score that should be
 * higher for positives. Exact, via the Mann-Whitney U statistic with average
 * ranks for ties: AUROC = P(s_pos > s_neg) + P(s_pos = s_neg) / 2.
 * Returns BNN_OK with *auroc in [0, 1], or BNN_E_INVALID (an empty set, a NaN
 * score) / BNN_E_NOMEM with err filled. */
int robust_auroc(double *auroc, const double *pos, size_t n_pos, const double *neg, size_t n_neg,
                 char err[BNN_ERR_LEN]);

/* Selective prediction. For each fractions[j] in [0, 1), abstain on the
 * round(fractions[j] * n) inputs with the highest uncertainty (ties: the
 * higher index abstains first) and write the accuracy on the rest to
 * acc[j] (correct[i] is 0 or 1). Returns BNN_OK, or BNN_E_INVALID (n == 0, a
 * fraction outside [0, 1)) / BNN_E_NOMEM with err filled. */
int robust_selective(double *acc, const double *fractions, size_t n_fractions, const double *uncertainty,
                     const unsigned char *correct, size_t n, char err[BNN_ERR_LEN]);

/* Reliability diagram: ECE's 15 equal-width right-closed bins of confidence
 * (stats.h's STATS_ECE_BINS; conf == 0 goes to the first bin). Per bin:
 * count, mean confidence and accuracy (0 for an empty bin). */
#define ROBUST_BINS 15
struct robust_reliability {
    size_t count[ROBUST_BINS];
    double confidence[ROBUST_BINS];
    double accuracy[ROBUST_BINS];
};
void robust_reliability(struct robust_reliability *out, const double *confidence,
                        const unsigned char *correct, size_t n);

/* Histogram of values over n_bins equal bins of [lo, hi] (values outside are
 * clamped into the end bins), as fractions of n summing to 1. */
void robust_histogram(double *fraction, size_t n_bins, double lo, double hi, const double *values, size_t n);

/* Writes the corrupted copy of n images (n x 784, 8-bit) to out, image i
 * with corrupt_apply(..., seed, i). Returns BNN_OK, or BNN_E_INVALID / NOMEM
 * with err filled. */
int robust_corrupt_set(uint8_t *out, const uint8_t *in, size_t n, enum corrupt_kind kind, uint64_t seed,
                       char err[BNN_ERR_LEN]);

/* Every image rotated by degrees (corrupt_rotate). */
void robust_rotate_set(uint8_t *out, const uint8_t *in, size_t n, double degrees);

#endif

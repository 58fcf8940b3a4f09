/* robust.c - OOD AUROC, selective prediction, reliability bins, histograms,
 * and whole-set corruptions (definitions in robust.h).
 */
#include "robust.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "stats.h"

struct scored {
    double score;
    size_t index; /* tie-break, and the set an entry came from in AUROC */
};

static int cmp_scored_asc(const void *pa, const void *pb)
{
    const struct scored *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score < b->score ? -1 : 1;
    return a->index < b->index ? -1 : (a->index > b->index);
}

int robust_auroc(double *auroc, const double *pos, size_t n_pos, const double *neg, size_t n_neg,
                 char err[BNN_ERR_LEN])
{
    *auroc = NAN;
    if (n_pos == 0 || n_neg == 0) {
        snprintf(err, BNN_ERR_LEN, "AUROC needs both sets non-empty, got %zu positives and %zu negatives",
                 n_pos, n_neg);
        return BNN_E_INVALID;
    }
    size_t n = n_pos + n_neg;
    struct scored *all = malloc(n * sizeof *all);
    if (!all) {
        snprintf(err, BNN_ERR_LEN, "out of memory for %zu scores", n);
        return BNN_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        /* index < n_pos marks a positive */
        all[i].score = i < n_pos ? pos[i] : neg[i - n_pos];
        all[i].index = i;
        if (isnan(all[i].score)) {
            snprintf(err, BNN_ERR_LEN, "score %zu of the %s set is NaN", i < n_pos ? i : i - n_pos,
                     i < n_pos ? "positive" : "negative");
            free(all);
            return BNN_E_INVALID;
        }
    }
    qsort(all, n, sizeof *all, cmp_scored_asc);
    /* Mann-Whitney: sum of the positives' ranks (1-based), a tie group
     * sharing the average of the ranks it spans. */
    double rank_sum = 0.0;
    for (size_t lo = 0; lo < n;) {
        size_t hi = lo + 1;
        while (hi < n && all[hi].score == all[lo].score)
            hi++;
        double avg_rank = (double)(lo + 1 + hi) / 2.0; /* mean of lo+1 .. hi */
        for (size_t i = lo; i < hi; i++)
            if (all[i].index < n_pos)
                rank_sum += avg_rank;
        lo = hi;
    }
    free(all);
    double u = rank_sum - (double)n_pos * ((double)n_pos + 1.0) / 2.0;
    *auroc = u / ((double)n_pos * (double)n_neg);
    return BNN_OK;
}

int robust_selective(double *acc, const double *fractions, size_t n_fractions, const double *uncertainty,
                     const unsigned char *correct, size_t n, char err[BNN_ERR_LEN])
{
    if (n == 0) {
        snprintf(err, BNN_ERR_LEN, "selective prediction needs at least one input");
        return BNN_E_INVALID;
    }
    for (size_t j = 0; j < n_fractions; j++) {
        if (!(fractions[j] >= 0.0 && fractions[j] < 1.0)) {
            snprintf(err, BNN_ERR_LEN, "abstention fraction %zu is %g, expected in [0, 1)", j, fractions[j]);
            return BNN_E_INVALID;
        }
    }
    struct scored *order = malloc(n * sizeof *order);
    double *kept_correct = malloc((n + 1) * sizeof *kept_correct);
    if (!order || !kept_correct) {
        free(order);
        free(kept_correct);
        snprintf(err, BNN_ERR_LEN, "out of memory for %zu inputs", n);
        return BNN_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = (struct scored){uncertainty[i], i};
    /* ascending by (uncertainty, index): the last k are the ones to abstain on */
    qsort(order, n, sizeof *order, cmp_scored_asc);
    /* kept_correct[m] = number correct among the m most certain */
    kept_correct[0] = 0.0;
    for (size_t i = 0; i < n; i++)
        kept_correct[i + 1] = kept_correct[i] + (correct[order[i].index] ? 1.0 : 0.0);
    for (size_t j = 0; j < n_fractions; j++) {
        size_t abstain = (size_t)llround(fractions[j] * (double)n);
        size_t kept = n - (abstain > n ? n : abstain);
        acc[j] = kept ? kept_correct[kept] / (double)kept : NAN;
    }
    free(order);
    free(kept_correct);
    return BNN_OK;
}

void robust_reliability(struct robust_reliability *out, const double *confidence,
                        const unsigned char *correct, size_t n)
{
    double conf_sum[ROBUST_BINS] = {0}, hit_sum[ROBUST_BINS] = {0};
    for (size_t b = 0; b < ROBUST_BINS; b++)
        out->count[b] = 0;
    for (size_t i = 0; i < n; i++) {
        /* right-closed (b/15, (b+1)/15]: bin = ceil(15 c) - 1, c == 0 -> 0 */
        double c = confidence[i];
        long b = (long)ceil(c * ROBUST_BINS) - 1;
        if (b < 0)
            b = 0;
        if (b >= ROBUST_BINS)
            b = ROBUST_BINS - 1;
        out->count[b]++;
        conf_sum[b] += c;
        hit_sum[b] += correct[i] ? 1.0 : 0.0;
    }
    for (size_t b = 0; b < ROBUST_BINS; b++) {
        out->confidence[b] = out->count[b] ? conf_sum[b] / (double)out->count[b] : 0.0;
        out->accuracy[b] = out->count[b] ? hit_sum[b] / (double)out->count[b] : 0.0;
    }
}

void robust_histogram(double *fraction, size_t n_bins, double lo, double hi, const double *values, size_t n)
{
    for (size_t b = 0; b < n_bins; b++)
        fraction[b] = 0.0;
    if (n == 0 || n_bins == 0 || !(hi > lo))
        return;
    for (size_t i = 0; i < n; i++) {
        double pos = (values[i] - lo) / (hi - lo) * (double)n_bins;
        long b = (long)floor(pos);
        if (b < 0)
            b = 0;
        if (b >= (long)n_bins)
            b = (long)n_bins - 1;
        fraction[b] += 1.0 / (double)n;
    }
}

int robust_corrupt_set(uint8_t *out, const uint8_t *in, size_t n, enum corrupt_kind kind, uint64_t seed,
                       char err[BNN_ERR_LEN])
{
    for (size_t i = 0; i < n; i++) {
        if (corrupt_apply(out + i * CORRUPT_PIXELS, in + i * CORRUPT_PIXELS, kind, seed, i) != 0) {
            if (!corrupt_name(kind)) {
                snprintf(err, BNN_ERR_LEN, "unknown corruption %d", (int)kind);
                return BNN_E_INVALID;
            }
            snprintf(err, BNN_ERR_LEN, "%s on image %zu: out of memory", corrupt_name(kind), i);
            return BNN_E_NOMEM;
        }
    }
    return BNN_OK;
}

void robust_rotate_set(uint8_t *out, const uint8_t *in, size_t n, double degrees)
{
    for (size_t i = 0; i < n; i++)
        corrupt_rotate(out + i * CORRUPT_PIXELS, in + i * CORRUPT_PIXELS, degrees);
}

/* infer_summary.c - bnn_summarize (infer.h): the statistics of T passes'
 * class probabilities - per class mean, std and the interval's quantiles,
 * the predicted class, and the entropy split into its aleatoric and
 * epistemic parts. Pure functions of the (T, k) probabilities; the passes
 * themselves are infer.c's.
 */
#include "infer.h"
#include "stats.h"

#include <math.h>
#include <string.h>

/* Quantiles by selection: stats_quantile_sorted reads only the order
 * statistics at floor(h) and floor(h) + 1 (h = (n-1) q), or the first or
 * last one at q <= 0 or >= 1, so those positions need to hold their sorted
 * values, not the whole array: quickselect (Hoare, 1961) finds them in O(n)
 * where a sort costs O(n log n) calls of a comparison function (8 % of a
 * T = 100 prediction). After max_rounds partitions it sorts instead, so the
 * worst case stays O(n log n). */
static void swap_d(double *a, double *b)
{
    double t = *a;
    *a = *b;
    *b = t;
}

/* x[k] becomes the k-th smallest of x[0..n), with x[i] <= x[k] for i < k and
 * x[i] >= x[k] for i > k. */
static void select_kth(double *x, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    for (int round = 0; hi > lo; round++) {
        if (round > 64) {
            stats_quantile(x + lo, hi - lo + 1, 0.0); /* sorts x[lo..hi] */
            return;
        }
        /* median of three as the pivot, at x[lo] */
        size_t mid = lo + (hi - lo) / 2;
        if (x[mid] < x[lo])
            swap_d(&x[mid], &x[lo]);
        if (x[hi] < x[lo])
            swap_d(&x[hi], &x[lo]);
        if (x[hi] < x[mid])
            swap_d(&x[hi], &x[mid]);
        swap_d(&x[lo], &x[mid]);
        double pivot = x[lo];
        size_t i = lo, j = hi + 1;
        for (;;) { /* Hoare partition: x[lo+1..i] <= pivot <= x[j..hi] */
            do
                i++;
            while (i <= hi && x[i] < pivot);
            do
                j--;
            while (x[j] > pivot);
            if (i >= j)
                break;
            swap_d(&x[i], &x[j]);
        }
        swap_d(&x[lo], &x[j]); /* pivot in its final place j */
        if (j == k)
            return;
        if (k < j)
            hi = j - 1;
        else
            lo = j + 1;
    }
}

/* Moves the least of x[i..n) to x[i] (or, with most, the greatest of
 * x[0..i] to x[i]): one step of a selection sort. */
static void place_extreme(double *x, size_t n, size_t i, int most)
{
    size_t m = i;
    if (most) {
        for (size_t j = 0; j < i; j++)
            m = x[j] > x[m] ? j : m;
    } else {
        for (size_t j = i + 1; j < n; j++)
            m = x[j] < x[m] ? j : m;
    }
    swap_d(&x[i], &x[m]);
}

/* Order statistics this close to either end are found by that many
 * selection-sort steps (linear scans without unpredictable branches), which
 * beat quickselect's partitions: the usual interval of T = 100 passes needs
 * positions 2, 3 and 96, 97. */
#define EDGE_STEPS 8

/* stats_quantile(x, n, q) without sorting all of x (reordered in place). */
static double quantile_select(double *x, size_t n, double q)
{
    double h = (double)(n - 1) * q;
    size_t k = q <= 0.0 ? 0 : q >= 1.0 ? n - 1 : (size_t)floor(h);
    if (k > n - 1)
        k = n - 1;
    if (k + 2 <= EDGE_STEPS) { /* x[0..k+1] the least, in order */
        for (size_t i = 0; i < k + 2 && i < n; i++)
            place_extreme(x, n, i, 0);
    } else if (n - k <= EDGE_STEPS) { /* x[k..n) the greatest, in order */
        for (size_t i = n; i-- > k;)
            place_extreme(x, n, i, 1);
    } else {
        select_kth(x, n, k);
        if (k + 1 < n) /* the next order statistic: the least of what follows */
            place_extreme(x, n, k + 1, 0);
    }
    return stats_quantile_sorted(x, n, q);
}

void bnn_summarize(struct bnn_prediction *out, const float *probs, size_t samples, size_t k, double coverage,
                   double *scratch)
{
    memset(out, 0, sizeof *out);
    out->n_classes = k;
    if (samples == 0 || k == 0 || k > BNN_MAX_CLASSES)
        return;
    double mean_p[BNN_MAX_CLASSES];
    double lo_q = (1.0 - coverage) / 2.0, hi_q = (1.0 + coverage) / 2.0;
    for (size_t c = 0; c < k; c++) {
        double sum = 0.0;
        for (size_t t = 0; t < samples; t++) {
            scratch[t] = probs[t * k + c];
            sum += scratch[t];
        }
        double mean = sum / (double)samples, ss = 0.0;
        for (size_t t = 0; t < samples; t++)
            ss += (scratch[t] - mean) * (scratch[t] - mean);
        struct bnn_class_stats *cs = &out->classes[c];
        cs->mean = mean;
        cs->std = sqrt(ss / (double)samples); /* ddof = 0 */
        cs->lower = quantile_select(scratch, samples, lo_q);
        cs->upper = quantile_select(scratch, samples, hi_q);
        mean_p[c] = mean;
    }
    int best = 0;
    for (size_t c = 1; c < k; c++)
        if (mean_p[c] > mean_p[best])
            best = (int)c;
    out->predicted = best;
    /* Depeweg et al. 2018: H[E p] = E H[p] (aleatoric) + I[y; w] (epistemic). */
    double aleatoric = 0.0, row[BNN_MAX_CLASSES];
    for (size_t t = 0; t < samples; t++) {
        for (size_t c = 0; c < k; c++)
            row[c] = probs[t * k + c];
        aleatoric += stats_entropy(row, k);
    }
    out->entropy = stats_entropy(mean_p, k);
    out->aleatoric = aleatoric / (double)samples;
    double mi = out->entropy - out->aleatoric;
    out->epistemic = mi > 0.0 ? mi : 0.0;
}

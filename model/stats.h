/* stats.h - summary statistics of Monte-Carlo predictions and evaluation
 * metrics. Quantiles are numpy's default (linear, "type 7"); entropies in
 * nats with p clamped to >= 1e-15 (as bayesian-torch does); std is the
 * population std (numpy ddof=0).
 */
#ifndef BNN_STATS_H
#define BNN_STATS_H

#include <stddef.h>

/* q in [0,1] of sorted[0..n), n >= 1, linear interpolation between order
 * statistics at h = (n-1) q. */
double stats_quantile_sorted(const double *sorted, size_t n, double q);

/* Sorts x in place and returns the quantile. */
double stats_quantile(double *x, size_t n, double q);

/* -sum p log p over k classes, p clamped at 1e-15. */
double stats_entropy(const double *p, size_t k);

/* ECE with 15 equal-width right-closed bins over conf in [0,1], weighted by
 * bin size, |acc - mean conf| per non-empty bin (Ovadia et al. 2019). */
#define STATS_ECE_BINS 15
double stats_ece(const double *conf, const unsigned char *correct, size_t n);

/* Two-sample Kolmogorov-Smirnov statistic D (two-sided) and its asymptotic
 * p-value Q(sqrt(en) D), en = na nb / (na + nb), Q the survival function of
 * the Kolmogorov distribution (scipy's kstwobign.sf; what scipy < 1.5 used
 * for mode='asymp'). Current scipy's 'asymp' uses kstwo.sf(D, round(en)),
 * the exact one-sample law at n = en, which is slightly smaller (Stephens'
 * approximation of it is Q(x + 1/(6 sqrt en)) at x = sqrt(en) D).
 * a and b are sorted in place; an empty sample gives NaN. */
double stats_ks_2samp(double *a, size_t na, double *b, size_t nb, double *p_value);

#endif

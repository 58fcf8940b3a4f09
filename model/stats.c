/* stats.c - summary statistics and evaluation metrics (definitions in
 * stats.h; ECE as Ovadia et al. 2019's metrics_lib.py, entropy clamping as
 * bayesian-torch, quantiles as numpy's default "linear" method).
 */
#include "stats.h"

#include <math.h>
#include <stdlib.h>

double stats_quantile_sorted(const double *sorted, size_t n, double q)
{
    if (n == 0)
        return NAN;
    if (q <= 0.0)
        return sorted[0];
    if (q >= 1.0)
        return sorted[n - 1];
    /* Hyndman & Fan (1996) type 7: h = (n-1) q, interpolate x[floor h] and
     * x[floor h + 1]. The two-sided lerp is numpy's _lerp, which is exact at
     * both ends (t = 0 gives a, t = 1 gives b). */
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)floor(h);
    if (lo >= n - 1)
        return sorted[n - 1];
    double t = h - (double)lo, a = sorted[lo], b = sorted[lo + 1], d = b - a;
    return t >= 0.5 ? b - d * (1.0 - t) : a + d * t;
}

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return a < b ? -1 : a > b ? 1 : 0;
}

double stats_quantile(double *x, size_t n, double q)
{
    qsort(x, n, sizeof *x, cmp_double);
    return stats_quantile_sorted(x, n, q);
}

double stats_entropy(const double *p, size_t k)
{
    double h = 0.0;
    for (size_t i = 0; i < k; i++) {
        double v = p[i] < 1e-15 ? 1e-15 : p[i];
        h -= v * log(v);
    }
    return h;
}

double stats_ece(const double *conf, const unsigned char *correct, size_t n)
{
    double sum_conf[STATS_ECE_BINS] = {0}, sum_acc[STATS_ECE_BINS] = {0};
    size_t count[STATS_ECE_BINS] = {0};
    if (n == 0)
        return 0.0;
    for (size_t i = 0; i < n; i++) {
        /* Right-closed bins (s/15, (s+1)/15]; conf == 0 is moved to 1e-8 as
         * metrics_lib.py does, so it lands in the first bin. */
        double c = conf[i] <= 0.0 ? 1e-8 : conf[i] > 1.0 ? 1.0 : conf[i];
        long b = (long)ceil(c * STATS_ECE_BINS) - 1;
        if (b < 0)
            b = 0;
        if (b >= STATS_ECE_BINS)
            b = STATS_ECE_BINS - 1;
        sum_conf[b] += conf[i];
        sum_acc[b] += correct[i] ? 1.0 : 0.0;
        count[b]++;
    }
    double ece = 0.0;
    for (int b = 0; b < STATS_ECE_BINS; b++)
        if (count[b])
            ece += fabs(sum_acc[b] - sum_conf[b]) / (double)n; /* (|B|/N) |acc - conf| */
    return ece;
}

/* Survival function of the Kolmogorov distribution (the limit of
 * sqrt(n) D_n): Q(x) = 2 sum_{k>=1} (-1)^(k-1) exp(-2 k^2 x^2). For small x
 * that alternating series converges slowly, so use the Jacobi-theta form
 * P(x) = sqrt(2 pi)/x sum_{k>=1} exp(-(2k-1)^2 pi^2 / (8 x^2)) there. */
static double kolmogorov_sf(double x)
{
    if (x <= 0.0)
        return 1.0;
    if (x < 1.18) {
        double s = 0.0, w = M_PI * M_PI / (8.0 * x * x);
        for (int k = 1; k <= 20; k++)
            s += exp(-(double)((2 * k - 1) * (2 * k - 1)) * w);
        double p = sqrt(2.0 * M_PI) / x * s;
        return p >= 1.0 ? 0.0 : 1.0 - p;
    }
    double s = 0.0;
    for (int k = 1; k <= 100; k++) {
        double term = exp(-2.0 * k * k * x * x);
        s += (k % 2 ? term : -term);
        if (term < 1e-300)
            break;
    }
    s *= 2.0;
    return s < 0.0 ? 0.0 : s > 1.0 ? 1.0 : s;
}

double stats_ks_2samp(double *a, size_t na, double *b, size_t nb, double *p_value)
{
    if (na == 0 || nb == 0) {
        if (p_value)
            *p_value = NAN;
        return NAN;
    }
    qsort(a, na, sizeof *a, cmp_double);
    qsort(b, nb, sizeof *b, cmp_double);
    /* Walk both empirical CDFs; tied values advance together so D is
     * measured between distinct values only (as scipy's searchsorted). */
    size_t i = 0, j = 0;
    double d = 0.0;
    while (i < na && j < nb) {
        double v = a[i] <= b[j] ? a[i] : b[j];
        while (i < na && a[i] == v)
            i++;
        while (j < nb && b[j] == v)
            j++;
        double diff = fabs((double)i / (double)na - (double)j / (double)nb);
        if (diff > d)
            d = diff;
    }
    if (p_value) {
        double en = (double)na * (double)nb / (double)(na + nb);
        *p_value = kolmogorov_sf(sqrt(en) * d);
    }
    return d;
}

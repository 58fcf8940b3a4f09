/* decide.c - the abstain rule and conformal prediction sets (decide.h). */
#include "decide.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bnn_policy_none(struct bnn_policy *p)
{
    memset(p, 0, sizeof *p);
    p->entropy_max = INFINITY;
    p->epistemic_max = INFINITY;
    p->clean_flag_rate = NAN;
}

/* A finite or infinite number >= 0 ("inf" allowed), whole string. */
static int parse_nonneg(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || isnan(v) || v < 0)
        return -1;
    *out = v;
    return 0;
}

/* "0.9:0.0123,0.95:0.00045,0.99:1.2e-06": ascending coverages in (0,1),
 * probabilities in [0,1]. */
static int parse_levels(struct bnn_policy *p, const char *s)
{
    char buf[256];
    if (strlen(s) >= sizeof buf)
        return -1;
    snprintf(buf, sizeof buf, "%s", s);
    p->n_levels = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        double c, q;
        if (!colon || p->n_levels == BNN_MAX_LEVELS)
            return -1;
        *colon = '\0';
        if (parse_nonneg(tok, &c) || parse_nonneg(colon + 1, &q) || !(c > 0 && c < 1) || q > 1)
            return -1;
        if (p->n_levels && c <= p->coverage[p->n_levels - 1])
            return -1;
        p->coverage[p->n_levels] = c;
        p->min_prob[p->n_levels++] = q;
    }
    return p->n_levels ? 0 : -1;
}

int bnn_policy_from_meta(struct bnn_policy *p, const struct bnn_model *m, char err[BNN_ERR_LEN])
{
    static const char *const keys[] = {"abstain_entropy", "abstain_epistemic", "abstain_clean_flag_rate",
                                       "abstain_samples"};
    bnn_policy_none(p);
    double *dst[] = {&p->entropy_max, &p->epistemic_max, &p->clean_flag_rate, NULL};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = bnn_meta_get(m, keys[i]);
        double d;
        if (!v)
            continue;
        if (parse_nonneg(v, &d) || (i == 2 && d > 1) || (i == 3 && (!isfinite(d) || d != floor(d)))) {
            snprintf(err, BNN_ERR_LEN, "metadata %s: expected a number >= 0%s, got '%.64s'", keys[i],
                     i == 2 ? " and <= 1" : "", v);
            return BNN_E_FORMAT;
        }
        if (dst[i])
            *dst[i] = d;
        else
            p->samples = (size_t)d;
    }
    const char *levels = bnn_meta_get(m, "conformal");
    if (levels && parse_levels(p, levels)) {
        snprintf(err, BNN_ERR_LEN,
                 "metadata conformal: expected 'coverage:min_prob,...' with ascending coverages in (0,1), "
                 "got '%.64s'",
                 levels);
        return BNN_E_FORMAT;
    }
    return BNN_OK;
}

int bnn_policy_to_meta(const struct bnn_policy *p, struct bnn_model *m)
{
    char buf[256];
    int rc = 0;
    snprintf(buf, sizeof buf, "%.6g", p->entropy_max);
    rc |= bnn_meta_set(m, "abstain_entropy", buf);
    snprintf(buf, sizeof buf, "%.6g", p->epistemic_max);
    rc |= bnn_meta_set(m, "abstain_epistemic", buf);
    if (!isnan(p->clean_flag_rate)) {
        snprintf(buf, sizeof buf, "%.4f", p->clean_flag_rate);
        rc |= bnn_meta_set(m, "abstain_clean_flag_rate", buf);
    }
    snprintf(buf, sizeof buf, "%zu", p->samples);
    rc |= bnn_meta_set(m, "abstain_samples", buf);
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < p->n_levels; i++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%g:%.6g", i ? "," : "", p->coverage[i],
                                 p->min_prob[i]);
    if (p->n_levels)
        rc |= bnn_meta_set(m, "conformal", buf);
    return rc ? BNN_E_NOMEM : BNN_OK;
}

unsigned bnn_decide(const struct bnn_policy *p, double entropy, double epistemic, int digit_found)
{
    unsigned r = 0;
    if (!digit_found)
        r |= BNN_REASON_NO_DIGIT;
    if (entropy > p->entropy_max)
        r |= BNN_REASON_ENTROPY;
    if (epistemic > p->epistemic_max)
        r |= BNN_REASON_EPISTEMIC;
    return r;
}

int bnn_policy_level(const struct bnn_policy *p, double coverage)
{
    for (size_t i = 0; i < p->n_levels; i++)
        if (fabs(p->coverage[i] - coverage) < 1e-9)
            return (int)i;
    return -1;
}

unsigned bnn_prediction_set(const struct bnn_policy *p, size_t level, const double *mean_probs, size_t k)
{
    unsigned set = 0;
    for (size_t c = 0; c < k && c < 32 && level < p->n_levels; c++)
        if (mean_probs[c] >= p->min_prob[level])
            set |= 1u << c;
    return set;
}

const char *bnn_reason_name(unsigned bit)
{
    switch (bit) {
    case BNN_REASON_NO_DIGIT:
        return "no_digit";
    case BNN_REASON_ENTROPY:
        return "entropy";
    case BNN_REASON_EPISTEMIC:
        return "epistemic";
    }
    return NULL;
}

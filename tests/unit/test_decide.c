/* test_decide.c - the answer policy (decide.h): its metadata round trip,
 * the refusal of malformed metadata with the key and the value named, the
 * abstain rule's reasons at and around its thresholds, the reason names,
 * conformal levels and prediction sets, with their boundaries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bnn.h"
#include "decide.h"

/* A tiny model: only its metadata matters here. */
static struct bnn_model *tiny_model(void)
{
    const size_t dims[] = {2, 3};
    char err[BNN_ERR_LEN];
    struct bnn_model *m = bnn_model_new(dims, 1, err);
    if (!m)
        fail_msg("bnn_model_new: %s", err);
    return m;
}

static void test_policy_none(void **state)
{
    (void)state;
    struct bnn_policy p;
    bnn_policy_none(&p);
    assert_true(isinf(p.entropy_max) && isinf(p.epistemic_max));
    assert_true(isnan(p.clean_flag_rate));
    assert_int_equal(p.n_levels, 0);
    assert_int_equal(p.samples, 0);
    /* never flags but for a missing digit, however uncertain */
    assert_int_equal(bnn_decide(&p, log(10.0), 1e9, 1), 0);
    assert_int_equal(bnn_decide(&p, 0, 0, 0), BNN_REASON_NO_DIGIT);
    /* a model without policy keys reads as none */
    struct bnn_model *m = tiny_model();
    char err[BNN_ERR_LEN];
    struct bnn_policy q;
    assert_int_equal(bnn_policy_from_meta(&q, m, err), BNN_OK);
    assert_true(isinf(q.entropy_max) && isinf(q.epistemic_max) && q.n_levels == 0 &&
                isnan(q.clean_flag_rate));
    bnn_model_free(m);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct bnn_policy p = {.entropy_max = 0.410089,
                           .epistemic_max = 0.0123457,
                           .clean_flag_rate = 0.05,
                           .samples = 100,
                           .n_levels = 3,
                           .coverage = {0.9, 0.95, 0.99},
                           .min_prob = {0.980532, 0.883288, 0.350863}};
    struct bnn_model *m = tiny_model();
    char err[BNN_ERR_LEN];
    assert_int_equal(bnn_policy_to_meta(&p, m), BNN_OK);
    assert_string_equal(bnn_meta_get(m, "abstain_entropy"), "0.410089");
    assert_string_equal(bnn_meta_get(m, "abstain_clean_flag_rate"), "0.0500");
    assert_string_equal(bnn_meta_get(m, "abstain_samples"), "100");
    assert_string_equal(bnn_meta_get(m, "conformal"), "0.9:0.980532,0.95:0.883288,0.99:0.350863");
    struct bnn_policy q;
    assert_int_equal(bnn_policy_from_meta(&q, m, err), BNN_OK);
    assert_float_equal(q.entropy_max, p.entropy_max, 1e-12);
    assert_float_equal(q.epistemic_max, p.epistemic_max, 1e-12);
    assert_float_equal(q.clean_flag_rate, 0.05, 1e-12);
    assert_int_equal(q.samples, 100);
    assert_int_equal(q.n_levels, 3);
    for (size_t l = 0; l < 3; l++) {
        assert_float_equal(q.coverage[l], p.coverage[l], 1e-12);
        assert_float_equal(q.min_prob[l], p.min_prob[l], 1e-12);
    }
    /* a threshold that never flags survives as "inf"; no levels, no key */
    struct bnn_policy r;
    bnn_policy_none(&r);
    r.entropy_max = 1.5;
    struct bnn_model *m2 = tiny_model();
    assert_int_equal(bnn_policy_to_meta(&r, m2), BNN_OK);
    assert_string_equal(bnn_meta_get(m2, "abstain_epistemic"), "inf");
    assert_null(bnn_meta_get(m2, "conformal"));
    assert_null(bnn_meta_get(m2, "abstain_clean_flag_rate"));
    assert_int_equal(bnn_policy_from_meta(&q, m2, err), BNN_OK);
    assert_true(isinf(q.epistemic_max) && q.entropy_max == 1.5 && q.n_levels == 0);
    bnn_model_free(m);
    bnn_model_free(m2);
}

/* Each malformed value is refused with BNN_E_FORMAT and a message naming
 * the key and quoting the value. */
static void test_malformed_metadata(void **state)
{
    (void)state;
    static const struct {
        const char *key, *value;
    } cases[] = {
        {"abstain_entropy", "-1"},
        {"abstain_entropy", "abc"},
        {"abstain_entropy", "nan"},
        {"abstain_entropy", "0.5x"},
        {"abstain_entropy", ""},
        {"abstain_epistemic", "-0.01"},
        {"abstain_clean_flag_rate", "1.5"},
        {"abstain_samples", "2.5"},
        {"abstain_samples", "inf"},
        {"conformal", "0.95"},
        {"conformal", "0.95:2"},
        {"conformal", "0.99:0.1,0.9:0.2"},
        {"conformal", "0.9:0.1,0.9:0.2"},
        {"conformal", "1:0.5"},
        {"conformal", "0:0.5"},
        {"conformal", ""},
        {"conformal", "0.5:0.1,0.6:0.1,0.7:0.1,0.8:0.1,0.9:0.1"},
        {"conformal", "0.9:-0.1"},
    };
    char err[BNN_ERR_LEN], want[160];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bnn_model *m = tiny_model();
        assert_int_equal(bnn_meta_set(m, cases[i].key, cases[i].value), BNN_OK);
        struct bnn_policy p;
        err[0] = '\0';
        int rc = bnn_policy_from_meta(&p, m, err);
        if (rc != BNN_E_FORMAT)
            fail_msg("%s = '%s': expected BNN_E_FORMAT, got %d", cases[i].key, cases[i].value, rc);
        snprintf(want, sizeof want, "metadata %s:", cases[i].key);
        if (!strstr(err, want))
            fail_msg("%s = '%s': expected the key named, got \"%s\"", cases[i].key, cases[i].value, err);
        snprintf(want, sizeof want, "'%s'", cases[i].value);
        if (!strstr(err, want))
            fail_msg("%s = '%s': expected the value quoted, got \"%s\"", cases[i].key, cases[i].value, err);
        bnn_model_free(m);
    }
    /* a value too long to hold is refused, not truncated into a policy */
    char big[400];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "0.9:0.", 6);
    struct bnn_model *m = tiny_model();
    assert_int_equal(bnn_meta_set(m, "conformal", big), BNN_OK);
    struct bnn_policy p;
    assert_int_equal(bnn_policy_from_meta(&p, m, err), BNN_E_FORMAT);
    assert_non_null(strstr(err, "metadata conformal"));
    bnn_model_free(m);
}

/* The rule is strict (above the threshold flags, at it does not) and
 * gives every reason that applies. */
static void test_decide_reasons(void **state)
{
    (void)state;
    struct bnn_policy p;
    bnn_policy_none(&p);
    p.entropy_max = 0.5;
    p.epistemic_max = 0.1;
    assert_int_equal(bnn_decide(&p, 0.5, 0.1, 1), 0);
    assert_int_equal(bnn_decide(&p, 0.4999, 0.0999, 1), 0);
    assert_int_equal(bnn_decide(&p, nextafter(0.5, 1), 0.0, 1), BNN_REASON_ENTROPY);
    assert_int_equal(bnn_decide(&p, 0.0, nextafter(0.1, 1), 1), BNN_REASON_EPISTEMIC);
    assert_int_equal(bnn_decide(&p, 2.0, 0.3, 1), BNN_REASON_ENTROPY | BNN_REASON_EPISTEMIC);
    assert_int_equal(bnn_decide(&p, 0.0, 0.0, 0), BNN_REASON_NO_DIGIT);
    assert_int_equal(bnn_decide(&p, 2.0, 0.3, 0),
                     BNN_REASON_NO_DIGIT | BNN_REASON_ENTROPY | BNN_REASON_EPISTEMIC);
    /* a zero threshold flags any uncertainty at all, but not certainty */
    p.entropy_max = p.epistemic_max = 0.0;
    assert_int_equal(bnn_decide(&p, 0.0, 0.0, 1), 0);
    assert_int_equal(bnn_decide(&p, 1e-12, 0.0, 1), BNN_REASON_ENTROPY);
}

static void test_reason_names(void **state)
{
    (void)state;
    assert_string_equal(bnn_reason_name(BNN_REASON_NO_DIGIT), "no_digit");
    assert_string_equal(bnn_reason_name(BNN_REASON_ENTROPY), "entropy");
    assert_string_equal(bnn_reason_name(BNN_REASON_EPISTEMIC), "epistemic");
    assert_null(bnn_reason_name(0));
    assert_null(bnn_reason_name(BNN_REASON_ENTROPY | BNN_REASON_EPISTEMIC));
    assert_null(bnn_reason_name(1u << 3));
}

static void test_levels(void **state)
{
    (void)state;
    struct bnn_policy p;
    bnn_policy_none(&p);
    assert_int_equal(bnn_policy_level(&p, 0.95), -1);
    p.n_levels = 3;
    p.coverage[0] = 0.9, p.coverage[1] = 0.95, p.coverage[2] = 0.99;
    assert_int_equal(bnn_policy_level(&p, 0.9), 0);
    assert_int_equal(bnn_policy_level(&p, 0.95), 1);
    assert_int_equal(bnn_policy_level(&p, 0.95 + 1e-12), 1); /* as parsed from text */
    assert_int_equal(bnn_policy_level(&p, 0.99), 2);
    assert_int_equal(bnn_policy_level(&p, 0.951), -1);
    assert_int_equal(bnn_policy_level(&p, 0.5), -1);
}

/* A class is in the set when its mean probability is at least the level's
 * threshold; out-of-range levels give the empty set. */
static void test_prediction_sets(void **state)
{
    (void)state;
    struct bnn_policy p;
    bnn_policy_none(&p);
    p.n_levels = 3;
    p.coverage[0] = 0.9, p.min_prob[0] = 0.5;
    p.coverage[1] = 0.95, p.min_prob[1] = 0.2;
    p.coverage[2] = 0.99, p.min_prob[2] = 0.0;
    const double probs[10] = {0.05, 0.5, 0.2, 0.15, 0.1, 0, 0, 0, 0, 0};
    assert_int_equal(bnn_prediction_set(&p, 0, probs, 10), 1u << 1);
    assert_int_equal(bnn_prediction_set(&p, 1, probs, 10), (1u << 1) | (1u << 2)); /* 0.2 >= 0.2 */
    assert_int_equal(bnn_prediction_set(&p, 2, probs, 10), 0x3ffu);                /* every class */
    assert_int_equal(bnn_prediction_set(&p, 3, probs, 10), 0);                     /* no such level */
    /* empty when no class is probable enough: a confident model at a low level */
    const double flat[4] = {0.25, 0.25, 0.25, 0.25};
    assert_int_equal(bnn_prediction_set(&p, 0, flat, 4), 0);
    assert_int_equal(bnn_prediction_set(&p, 1, flat, 4), 0xfu);
    /* sets only grow with the level when thresholds fall */
    for (size_t l = 1; l < 3; l++)
        assert_int_equal(bnn_prediction_set(&p, l - 1, probs, 10) & ~bnn_prediction_set(&p, l, probs, 10), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_none),        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_malformed_metadata), cmocka_unit_test(test_decide_reasons),
        cmocka_unit_test(test_reason_names),       cmocka_unit_test(test_levels),
        cmocka_unit_test(test_prediction_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

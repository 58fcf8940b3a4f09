/* test_api_response.c - the answers' JSON without HTTP (api_response.h):
 * one image's object with every field and its numbers as numbers, the
 * batch's {"results": [...]} in order with the queue time on its first
 * image, and GET /v1/model (on the shipped weights when present, else a
 * model of the same shape). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "api.h"
#include "api_response.h"
#include "config.h"
#include "preprocess.h"
#include "weights.h"

#define SHIPPED "model/weights/mnist-bnn.safetensors"

static struct cfg cfg;

static int setup(void **state)
{
    (void)state;
    cfg_defaults(&cfg);
    return 0;
}

static struct predict_result sample_result(int predicted, double epistemic)
{
    struct predict_result r = {
        .a = {.prep = {.steps = PREP_INVERTED, .verdict = PREP_DIGIT},
              .pr = {.n_classes = 10,
                     .predicted = predicted,
                     .entropy = 0.5,
                     .aleatoric = 0.3,
                     .epistemic = epistemic},
              .reasons = epistemic > 0.1 ? BNN_REASON_EPISTEMIC : 0,
              .set = 1u << predicted},
        .seed = 77,
        .set_level = 1,
        .set_coverage = 0.95,
        .decode_ms = 0.25,
        .compute_ms = 2,
    };
    for (int k = 0; k < 10; k++)
        r.a.pr.classes[k] =
            (struct bnn_class_stats){k == predicted ? 0.91 : 0.01, 0.01, 0.0, k == predicted ? 1.0 : 0.02};
    return r;
}

static void test_result_json(void **state)
{
    (void)state;
    struct predict_params p;
    predict_params_init(&p, &cfg);
    struct predict_result r = sample_result(3, 0.2);
    json_t *j = api_result_json(&r, &p, "0123456789ab", 0.5);
    char *s = json_dumps(j, API_JSON_FLAGS | JSON_SORT_KEYS);
    assert_non_null(strstr(s, "\"prediction\":3"));
    assert_non_null(strstr(s, "\"seed\":77,"));
    assert_non_null(strstr(s, "\"model_version\":\"0123456789ab\","));
    assert_non_null(strstr(s, "\"samples\":100,"));
    assert_non_null(strstr(s, "\"mode\":\"lrt\""));
    assert_non_null(strstr(s, "\"preprocessing\":\"inverted\""));
    assert_non_null(strstr(s, "\"uncertain\":true"));
    assert_non_null(strstr(s, "\"uncertain_reasons\":[\"epistemic\"]"));
    assert_non_null(strstr(s, "\"prediction_set\":[3]"));
    assert_non_null(strstr(s, "\"set_coverage\":0.95,"));
    assert_non_null(strstr(s, "\"interval\":0.95,")); /* short, not 0.94999999999999996 */
    assert_non_null(strstr(s, "\"uncertainty\":{\"aleatoric\":0.3,\"entropy\":0.5,\"epistemic\":0.2}"));
    assert_non_null(strstr(s, "\"timing_ms\":{\"compute\":2.0,\"decode\":0.25,\"queue\":0.5}"));
    assert_non_null(strstr(s, "{\"label\":3,\"lower\":0.0,\"mean\":0.91,\"std\":0.01,\"upper\":1.0}"));
    assert_int_equal(json_array_size(json_object_get(j, "classes")), 10);
    free(s);
    json_decref(j);
    r.a.reasons = 0;
    r.a.pr.entropy = NAN; /* a statistic that is not finite is null, the document stays valid */
    r.set_level = -1;     /* no calibrated set: null */
    j = api_result_json(&r, &p, "0123456789ab", 0.5);
    assert_true(json_is_false(json_object_get(j, "uncertain")));
    assert_int_equal(json_array_size(json_object_get(j, "uncertain_reasons")), 0);
    assert_true(json_is_null(json_object_get(j, "prediction_set")));
    assert_true(json_is_null(json_object_get(j, "set_coverage")));
    assert_true(json_is_null(json_object_get(json_object_get(j, "uncertainty"), "entropy")));
    json_decref(j);
    /* no digit: the verdict is the preprocessing, and it is the first reason */
    r.a.prep.verdict = PREP_BLANK;
    r.a.reasons = BNN_REASON_NO_DIGIT | BNN_REASON_ENTROPY;
    j = api_result_json(&r, &p, "0123456789ab", 0.5);
    assert_string_equal(json_string_value(json_object_get(j, "preprocessing")), "blank");
    assert_true(json_is_true(json_object_get(j, "uncertain")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "uncertain_reasons"), 0)),
                        "no_digit");
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "uncertain_reasons"), 1)),
                        "entropy");
    json_decref(j);
}

static void test_predict_body(void **state)
{
    (void)state;
    struct predict_input in;
    predict_input_init(&in, &cfg, 0);
    in.n_images = 1; /* the encoder reads only the count and the parameters */
    struct predict_result r[3] = {sample_result(1, 0.0), sample_result(2, 0.0), sample_result(9, 0.5)};
    struct predict_outcome o = {.in = &in, .results = r, .queue_ms = 4.5, .model_version = "0123456789ab"};
    size_t len = 0;
    char *body = api_predict_body(&o, &len);
    assert_int_equal(len, strlen(body));
    assert_true(body[len - 1] == '\n');
    json_error_t jerr;
    json_t *j = json_loads(body, 0, &jerr);
    assert_int_equal(json_integer_value(json_object_get(j, "prediction")), 1);
    assert_true(json_real_value(json_object_get(json_object_get(j, "timing_ms"), "queue")) == 4.5);
    json_decref(j);
    free(body);

    in.batch = 1;
    in.n_images = 3;
    body = api_predict_body(&o, &len);
    j = json_loads(body, 0, &jerr);
    json_t *results = json_object_get(j, "results");
    assert_int_equal(json_object_size(j), 1);
    assert_int_equal(json_array_size(results), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *one = json_array_get(results, i);
        assert_int_equal(json_integer_value(json_object_get(one, "prediction")), r[i].a.pr.predicted);
        assert_string_equal(json_string_value(json_object_get(one, "model_version")), "0123456789ab");
        double queue = json_real_value(json_object_get(json_object_get(one, "timing_ms"), "queue"));
        assert_true(queue == (i == 0 ? 4.5 : 0.0));
    }
    assert_true(json_is_true(json_object_get(json_array_get(results, 2), "uncertain")));
    json_decref(j);
    free(body);
    in.n_images = 0;
}

static void test_model_json(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    struct bnn_model *m = NULL;
    if (access(SHIPPED, R_OK) == 0) {
        assert_int_equal(bnn_weights_load(&m, SHIPPED, err), BNN_OK);
    } else {
        const size_t dims[] = {784, 784, 256, 256, 10};
        m = bnn_model_new(dims, 4, err);
    }
    assert_non_null(m);
    struct bnn_policy pol;
    assert_int_equal(bnn_policy_from_meta(&pol, m, err), BNN_OK);
    json_t *j = api_model_json(m, &pol, &cfg);
    assert_non_null(j);
    json_t *policy = json_object_get(j, "policy");
    assert_non_null(json_object_get(policy, "uncertain"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(policy, "uncertain"), "source")),
                        "model");
    assert_true(json_real_value(json_object_get(policy, "default_set_coverage")) == 0.95);
    assert_int_equal(json_integer_value(json_object_get(j, "parameters")), 1769524);
    assert_string_equal(json_string_value(json_object_get(j, "architecture")), "784-784-256-256-10");
    assert_int_equal(json_array_size(json_object_get(j, "layers")), 4);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "layers"), 3), "activation")),
        "softmax");
    json_t *limits = json_object_get(j, "limits");
    assert_int_equal(json_integer_value(json_object_get(limits, "max_samples")), 10000);
    assert_int_equal(json_integer_value(json_object_get(limits, "max_body_bytes")), 1048576);
    assert_true(json_real_value(json_object_get(json_object_get(j, "defaults"), "interval")) == 0.95);
    json_decref(j);
    bnn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_result_json, setup),
        cmocka_unit_test_setup(test_predict_body, setup),
        cmocka_unit_test_setup(test_model_json, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

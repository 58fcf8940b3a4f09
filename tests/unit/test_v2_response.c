/* test_v2_response.c - the Open Inference Protocol answers without HTTP
 * (v2_response.h): an infer response in JSON (every output: names,
 * datatypes, shapes, values as float32, the reasons and the set mask, the
 * parameters used, the id echoed), the same response with outputs in
 * binary (read back byte by byte per the extension: the JSON part's
 * length, binary_data_size, little-endian FP32 / INT64, one-byte BOOL,
 * length-prefixed BYTES) carrying the same values, server and model
 * metadata, and the error body. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "decide.h"
#include "preprocess.h"
#include "served_model.h"
#include "v2_request.h"
#include "v2_response.h"

static struct cfg cfg;

static int setup(void **state)
{
    (void)state;
    cfg_defaults(&cfg);
    return 0;
}

/* Image i: digit 3 + i, mean 0.91 there; the second is flagged and has no
 * digit. */
static struct predict_result sample_result(int i)
{
    int predicted = 3 + i;
    struct predict_result r = {
        .a = {.prep = {.steps = i ? 0 : PREP_INVERTED | PREP_RESIZED, .verdict = i ? PREP_BLANK : PREP_DIGIT},
              .pr = {.n_classes = 10,
                     .predicted = predicted,
                     .entropy = 0.5 + i,
                     .aleatoric = 0.3,
                     .epistemic = 0.2 + i},
              .reasons = i ? BNN_REASON_NO_DIGIT | BNN_REASON_EPISTEMIC : 0,
              .set = (1u << predicted) | (1u << 1)},
        .seed = 77,
        .set_level = 1,
        .set_coverage = 0.95,
    };
    for (int k = 0; k < 10; k++)
        r.a.pr.classes[k] = (struct bnn_class_stats){k == predicted ? 0.91 : 0.01, 0.1 + 0.01 * k, 0.001 * k,
                                                     k == predicted ? 1.0 : 0.02};
    return r;
}

struct fixture {
    char id[8];
    struct predict_input in;
    struct predict_result r[2];
    struct v2_request rq;
    struct predict_outcome o;
};

static void fixture_init(struct fixture *f, int binary)
{
    memset(f, 0, sizeof *f);
    predict_input_init(&f->in, &cfg, 1);
    f->in.n_images = 2; /* the encoder reads only the count and the parameters */
    f->in.params.samples = 40;
    f->r[0] = sample_result(0);
    f->r[1] = sample_result(1);
    f->rq.model_name = "mnist-bnn";
    snprintf(f->id, sizeof f->id, "req-1");
    f->rq.id = f->id; /* borrowed here: never v2_request_free'd */
    for (int o = 0; o < V2_OUT_COUNT; o++) {
        f->rq.outputs[f->rq.n_outputs] = (enum v2_output)o;
        f->rq.binary[f->rq.n_outputs++] = (unsigned char)binary;
    }
    f->o = (struct predict_outcome){
        .in = &f->in, .results = f->r, .model_version = "0123456789ab", .cls = &f->rq};
}

static json_t *output(json_t *doc, const char *name)
{
    json_t *outputs = json_object_get(doc, "outputs");
    for (size_t i = 0; i < json_array_size(outputs); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(outputs, i), "name")), name) == 0)
            return json_array_get(outputs, i);
    fail_msg("no output %s", name);
    return NULL;
}

static void check_shape(json_t *out, size_t d0, size_t d1)
{
    json_t *shape = json_object_get(out, "shape");
    assert_int_equal(json_array_size(shape), d1 ? 2 : 1);
    assert_int_equal(json_integer_value(json_array_get(shape, 0)), d0);
    if (d1)
        assert_int_equal(json_integer_value(json_array_get(shape, 1)), d1);
}

static void test_json_outputs(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 0);
    size_t len = 0;
    char *body = v2_infer_body(&f.o, &len);
    assert_non_null(body);
    assert_int_equal(f.rq.json_len, 0); /* JSON only */
    assert_int_equal(len, strlen(body));
    json_error_t jerr;
    json_t *doc = json_loads(body, 0, &jerr);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "model_name")), "mnist-bnn");
    assert_string_equal(json_string_value(json_object_get(doc, "model_version")), "0123456789ab");
    assert_string_equal(json_string_value(json_object_get(doc, "id")), "req-1");
    json_t *params = json_object_get(doc, "parameters");
    assert_int_equal(json_integer_value(json_object_get(params, "seed")), 77);
    assert_int_equal(json_integer_value(json_object_get(params, "samples")), 40);
    assert_string_equal(json_string_value(json_object_get(params, "mode")), "lrt");
    assert_true(json_real_value(json_object_get(params, "set_coverage")) == 0.95);
    assert_int_equal(json_array_size(json_object_get(doc, "outputs")), V2_OUT_COUNT);

    json_t *mean = output(doc, "mean");
    assert_string_equal(json_string_value(json_object_get(mean, "datatype")), "FP32");
    check_shape(mean, 2, 10);
    json_t *data = json_object_get(mean, "data");
    assert_int_equal(json_array_size(data), 20);
    /* float32 values, row-major; 12 significant digits give the float back */
    assert_true((float)json_real_value(json_array_get(data, 3)) == 0.91f);
    assert_true((float)json_real_value(json_array_get(data, 14)) == 0.91f);
    assert_true((float)json_real_value(json_array_get(json_object_get(output(doc, "std"), "data"), 19)) ==
                (float)(0.1 + 0.09));
    json_t *pred = output(doc, "prediction");
    assert_string_equal(json_string_value(json_object_get(pred, "datatype")), "INT64");
    check_shape(pred, 2, 0);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(pred, "data"), 1)), 4);
    json_t *unc = json_object_get(output(doc, "uncertain"), "data");
    assert_true(json_is_false(json_array_get(unc, 0)) && json_is_true(json_array_get(unc, 1)));
    json_t *why = json_object_get(output(doc, "uncertain_reasons"), "data");
    assert_string_equal(json_string_value(json_array_get(why, 0)), "");
    assert_string_equal(json_string_value(json_array_get(why, 1)), "no_digit,epistemic");
    json_t *set = output(doc, "prediction_set");
    assert_string_equal(json_string_value(json_object_get(set, "datatype")), "BOOL");
    check_shape(set, 2, 10);
    for (int k = 0; k < 10; k++)
        assert_int_equal(json_is_true(json_array_get(json_object_get(set, "data"), (size_t)k)),
                         k == 1 || k == 3);
    json_t *prep = json_object_get(output(doc, "preprocessing"), "data");
    assert_string_equal(json_string_value(json_array_get(prep, 0)), "inverted+resized");
    assert_string_equal(json_string_value(json_array_get(prep, 1)), "blank");
    json_decref(doc);
    free(body);

    /* Without conformal calibration: the mask is all false and the
     * parameters carry no set_coverage. */
    f.r[0].set_level = f.r[1].set_level = -1;
    f.rq.n_outputs = 1;
    f.rq.outputs[0] = V2_OUT_SET;
    body = v2_infer_body(&f.o, &len);
    doc = json_loads(body, 0, &jerr);
    assert_null(json_object_get(json_object_get(doc, "parameters"), "set_coverage"));
    data = json_object_get(output(doc, "prediction_set"), "data");
    for (size_t k = 0; k < 20; k++)
        assert_true(json_is_false(json_array_get(data, k)));
    json_decref(doc);
    free(body);
}

static uint32_t le32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static float f32(const uint8_t *b)
{
    uint32_t bits = le32(b);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static void test_binary_outputs(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 1);
    f.rq.binary[1] = 0; /* std stays in JSON */
    size_t len = 0;
    uint8_t *body = (uint8_t *)v2_infer_body(&f.o, &len);
    assert_non_null(body);
    size_t hl = f.rq.json_len;
    assert_true(hl > 0 && hl < len);
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)body, hl, 0, &jerr);
    assert_non_null(doc);
    json_t *outputs = json_object_get(doc, "outputs");
    /* The binary outputs follow the JSON part in the response's order. */
    size_t off = hl;
    for (size_t i = 0; i < json_array_size(outputs); i++) {
        json_t *out = json_array_get(outputs, i);
        const char *name = json_string_value(json_object_get(out, "name"));
        json_t *size = json_object_get(json_object_get(out, "parameters"), "binary_data_size");
        if (strcmp(name, "std") == 0) {
            assert_null(size);
            assert_int_equal(json_array_size(json_object_get(out, "data")), 20);
            continue;
        }
        assert_null(json_object_get(out, "data"));
        size_t n = (size_t)json_integer_value(size);
        const uint8_t *b = body + off;
        if (strcmp(name, "mean") == 0) {
            assert_int_equal(n, 2 * 10 * 4);
            assert_true(f32(b + 3 * 4) == 0.91f && f32(b + 0) == 0.01f && f32(b + 14 * 4) == 0.91f);
        } else if (strcmp(name, "prediction") == 0) {
            assert_int_equal(n, 2 * 8);
            assert_int_equal(le32(b), 3);
            assert_int_equal(le32(b + 4), 0);
            assert_int_equal(le32(b + 8), 4);
        } else if (strcmp(name, "entropy") == 0) {
            assert_int_equal(n, 2 * 4);
            assert_true(f32(b + 4) == 1.5f);
        } else if (strcmp(name, "uncertain") == 0) {
            assert_int_equal(n, 2);
            assert_int_equal(b[0], 0);
            assert_int_equal(b[1], 1);
        } else if (strcmp(name, "uncertain_reasons") == 0) {
            assert_int_equal(n, 4 + 0 + 4 + strlen("no_digit,epistemic"));
            assert_int_equal(le32(b), 0);
            assert_int_equal(le32(b + 4), strlen("no_digit,epistemic"));
            assert_memory_equal(b + 8, "no_digit,epistemic", strlen("no_digit,epistemic"));
        } else if (strcmp(name, "prediction_set") == 0) {
            assert_int_equal(n, 20);
            assert_int_equal(b[1] + b[3] + b[11] + b[14], 4);
            int sum = 0;
            for (size_t k = 0; k < 20; k++)
                sum += b[k];
            assert_int_equal(sum, 4);
        }
        off += n;
    }
    assert_int_equal(off, len); /* nothing after the last output */
    json_decref(doc);
    free(body);
}

static void test_metadata_and_errors(void **state)
{
    (void)state;
    json_t *j = v2_server_json("0.1.0");
    assert_string_equal(json_string_value(json_object_get(j, "name")), "bnn-serve");
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "extensions"), 0)),
                        "binary_tensor_data");
    json_decref(j);

    const size_t dims[] = {784, 16, 10};
    char err[BNN_ERR_LEN];
    struct served_model *sm = served_model_wrap(bnn_model_new(dims, 2, err), NULL, "fedcba987654");
    assert_non_null(sm);
    j = v2_model_json("digits", sm);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "digits");
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "versions"), 0)), "fedcba987654");
    json_t *inputs = json_object_get(j, "inputs"), *outputs = json_object_get(j, "outputs");
    assert_int_equal(json_array_size(inputs), 2);
    json_t *pixels = json_array_get(inputs, 1);
    assert_string_equal(json_string_value(json_object_get(pixels, "name")), "pixels");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(pixels, "shape"), 0)), -1);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(pixels, "shape"), 2)), 28);
    assert_int_equal(json_array_size(outputs), V2_OUT_COUNT);
    for (size_t o = 0; o < V2_OUT_COUNT; o++) {
        json_t *out = json_array_get(outputs, o);
        assert_string_equal(json_string_value(json_object_get(out, "name")), v2_outputs[o].name);
        json_t *shape = json_object_get(out, "shape");
        assert_int_equal(json_integer_value(json_array_get(shape, 0)), -1);
        if (v2_outputs[o].per_class)
            assert_int_equal(json_integer_value(json_array_get(shape, 1)), 10);
    }
    json_decref(j);
    served_model_release(sm);

    size_t len;
    char *body = v2_error_body("samples: expected 1..10000, got \"0\"", &len);
    assert_string_equal(body, "{\"error\":\"samples: expected 1..10000, got \\\"0\\\"\"}\n");
    assert_int_equal(len, strlen(body));
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_outputs),
        cmocka_unit_test(test_binary_outputs),
        cmocka_unit_test(test_metadata_and_errors),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

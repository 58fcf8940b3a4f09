/* test_api_request.c - requests read without HTTP (api_request.h): query /
 * JSON / multipart parameters with their bad cases (table-driven: input ->
 * expected code and words of the message), media types, base64, the one
 * body cap, every body form into a predict_input, and allocation faults on
 * the JSON and multipart paths (nothing leaks, everything is internal). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api_request.h"
#include "config.h"
#include "fault.h"
#include "predict.h"

static struct cfg cfg;

static int setup(void **state)
{
    (void)state;
    cfg_defaults(&cfg);
    return 0;
}

/* --- parameters ------------------------------------------------------------- */

static void test_query_params(void **state)
{
    (void)state;
    static const struct {
        const char *key, *value;
        int ok;
        const char *in_message;
    } rows[] = {
        {"samples", "1", 1, NULL},
        {"samples", "10000", 1, NULL},
        {"samples", "0", 0, "1..10000"},
        {"samples", "10001", 0, "10001"},
        {"samples", "-5", 0, "samples"},
        {"samples", "+5", 0, "samples"},
        {"samples", " 5", 0, "samples"},
        {"samples", "5x", 0, "samples"},
        {"samples", "", 0, "samples"},
        {"samples", "99999999999999999999999", 0, "samples"},
        {"interval", "0.5", 1, NULL},
        {"interval", "1e-3", 1, NULL},
        {"interval", "0", 0, "interval"},
        {"interval", "1", 0, "interval"},
        {"interval", "-0.5", 0, "interval"},
        {"interval", "nan", 0, "interval"},
        {"interval", "inf", 0, "interval"},
        {"interval", "0.5abc", 0, "interval"},
        {"seed", "0", 1, NULL},
        {"seed", "9007199254740991", 1, NULL},
        {"seed", "9007199254740992", 0, "9007199254740991"},
        {"seed", "-1", 0, "seed"},
        {"seed", "0x10", 0, "seed"},
        {"mode", "lrt", 1, NULL},
        {"mode", "weights", 1, NULL},
        {"mode", "LRT", 0, "lrt or weights"},
        {"mode", "", 0, "mode"},
        {"colour", "red", 0, "unknown parameter 'colour'"},
        {"Samples", "5", 0, "unknown parameter"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct predict_params p;
        struct api_error e = {0};
        predict_params_init(&p, &cfg);
        int rc = api_param_set(&p, &cfg, rows[i].key, rows[i].value, &e);
        if (rows[i].ok) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, API_E_INVALID_PARAMETER);
            if (!strstr(e.message, rows[i].in_message))
                fail_msg("%s=%s: expected '%s' in '%s'", rows[i].key, rows[i].value, rows[i].in_message,
                         e.message);
        }
    }
    struct predict_params p;
    struct api_error e;
    predict_params_init(&p, &cfg);
    assert_int_equal(p.samples, 100);
    assert_true(p.interval == 0.95);
    assert_int_equal(p.mode, BNN_MODE_LRT);
    assert_int_equal(p.set, 0);
    api_param_set(&p, &cfg, "samples", "250", &e);
    api_param_set(&p, &cfg, "seed", "9007199254740991", &e);
    api_param_set(&p, &cfg, "mode", "weights", &e);
    api_param_set(&p, &cfg, "interval", "0.8", &e);
    assert_int_equal(p.samples, 250);
    assert_true(p.seed == 9007199254740991ull);
    assert_int_equal(p.mode, BNN_MODE_WEIGHTS);
    assert_true(p.interval == 0.8);
    assert_int_equal(p.set, PREDICT_SET_SAMPLES | PREDICT_SET_SEED | PREDICT_SET_MODE | PREDICT_SET_INTERVAL);
}

static void test_body_kind(void **state)
{
    (void)state;
    assert_int_equal(api_body_kind("image/png"), API_BODY_PNG);
    assert_int_equal(api_body_kind("IMAGE/PNG"), API_BODY_PNG);
    assert_int_equal(api_body_kind(" image/png ; x=y"), API_BODY_PNG);
    assert_int_equal(api_body_kind("application/json; charset=utf-8"), API_BODY_JSON);
    assert_int_equal(api_body_kind("multipart/form-data; boundary=abc"), API_BODY_MULTIPART);
    assert_int_equal(api_body_kind("image/pngx"), API_BODY_NONE);
    assert_int_equal(api_body_kind("image/jpeg"), API_BODY_NONE);
    assert_int_equal(api_body_kind("application/x-www-form-urlencoded"), API_BODY_NONE);
    assert_int_equal(api_body_kind(""), API_BODY_NONE);
    assert_int_equal(api_body_kind(NULL), API_BODY_NONE);
}

static void test_base64(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } ok[] = {
        /* RFC 4648 section 10 vectors, with and without padding */
        {"", ""},
        {"Zg==", "f"},
        {"Zm8=", "fo"},
        {"Zm9v", "foo"},
        {"Zm9vYg==", "foob"},
        {"Zm9vYmE=", "fooba"},
        {"Zm9vYmFy", "foobar"},
        {"Zm9vYg", "foob"},
        {"Zm9v\nYmFy\r\n", "foobar"},
        {"data:image/png;base64,Zm9v", "foo"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint8_t *out;
        size_t n;
        assert_int_equal(api_base64_decode(&out, &n, ok[i].in, strlen(ok[i].in)), 0);
        assert_int_equal(n, strlen(ok[i].out));
        assert_memory_equal(out, ok[i].out, n);
        free(out);
    }
    uint8_t *out;
    size_t n;
    assert_int_equal(api_base64_decode(&out, &n, "-_8=", 4), 0); /* URL-safe alphabet */
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);
    free(out);
    static const char *const bad[] = {"Zm9v!", "Z", "Zm9vY", "Zg==Zg==", "Zg===", "data:nocomma"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (api_base64_decode(&out, &n, bad[i], strlen(bad[i])) == 0)
            fail_msg("'%s' decoded but should not", bad[i]);
        assert_null(out);
    }
}

/* --- JSON bodies ---------------------------------------------------------------- */

static int parse_json(const char *body, int batch, struct predict_input *in, struct api_error *e)
{
    predict_input_init(in, &cfg, batch);
    memset(e, 0, sizeof *e);
    return api_parse_json(in, body, strlen(body), &cfg, e);
}

static void test_json_bodies(void **state)
{
    (void)state;
    struct predict_input in;
    struct api_error e;
    assert_int_equal(
        parse_json("{\"image\":\"Zm9v\",\"samples\":7,\"interval\":0.5,\"seed\":42,\"mode\":\"weights\"}", 0,
                   &in, &e),
        0);
    assert_int_equal(in.n_images, 1);
    assert_int_equal(in.images[0].len, 3);
    assert_memory_equal(in.images[0].png, "foo", 3);
    assert_int_equal(in.params.samples, 7);
    assert_true(in.params.interval == 0.5);
    assert_true(in.params.seed == 42);
    assert_int_equal(in.params.mode, BNN_MODE_WEIGHTS);
    predict_input_free(&in);

    assert_int_equal(parse_json("{\"images\":[\"Zm9v\",\"YmFy\",\"Zg==\"],\"samples\":3}", 1, &in, &e), 0);
    assert_int_equal(in.n_images, 3);
    assert_memory_equal(in.images[1].png, "bar", 3);
    assert_int_equal(in.images[2].len, 1);
    predict_input_free(&in);

    /* Numbers are taken as numbers: an interval of 0.1 is exactly 0.1. */
    assert_int_equal(
        parse_json("{\"image\":\"Zm9v\",\"interval\":0.1,\"seed\":9007199254740991}", 0, &in, &e), 0);
    assert_true(in.params.interval == 0.1);
    assert_true(in.params.seed == 9007199254740991ull);
    predict_input_free(&in);

    /* The query wins: a parameter already given keeps its value, but the
     * body's value must still be valid. */
    predict_input_init(&in, &cfg, 0);
    api_param_set(&in.params, &cfg, "samples", "12", &e);
    const char *body = "{\"image\":\"Zm9v\",\"samples\":40,\"seed\":3}";
    assert_int_equal(api_parse_json(&in, body, strlen(body), &cfg, &e), 0);
    assert_int_equal(in.params.samples, 12);
    assert_true(in.params.seed == 3);
    predict_input_free(&in);
    predict_input_init(&in, &cfg, 0);
    api_param_set(&in.params, &cfg, "samples", "12", &e);
    body = "{\"image\":\"Zm9v\",\"samples\":0}";
    assert_int_equal(api_parse_json(&in, body, strlen(body), &cfg, &e), API_E_INVALID_PARAMETER);

    static const struct {
        const char *body;
        int batch;
        enum api_code code;
        const char *in_message;
    } bad[] = {
        {"", 0, API_E_INVALID_REQUEST, "JSON"},
        {"{", 0, API_E_INVALID_REQUEST, "line 1"},
        {"[]", 0, API_E_INVALID_REQUEST, "object"},
        {"{}", 0, API_E_INVALID_REQUEST, "missing \"image\""},
        {"{\"images\":[\"Zm9v\"]}", 0, API_E_INVALID_PARAMETER, "images"},
        {"{\"image\":\"Zm9v\"}", 1, API_E_INVALID_PARAMETER, "image"},
        {"{\"image\":7}", 0, API_E_INVALID_REQUEST, "base64"},
        {"{\"image\":\"Zm9v!\"}", 0, API_E_INVALID_REQUEST, "base64"},
        {"{\"image\":\"\"}", 0, API_E_INVALID_PNG, "image: empty image"},
        {"{\"images\":[\"Zm9v\",\"\"]}", 1, API_E_INVALID_PNG, "images[1]: empty image"},
        {"{\"image\":\"Zm9v\",\"image\":\"Zm9v\"}", 0, API_E_INVALID_REQUEST, "duplicate"},
        {"{\"image\":\"Zm9v\",\"samples\":\"5\"}", 0, API_E_INVALID_PARAMETER, "samples"},
        {"{\"image\":\"Zm9v\",\"samples\":5.5}", 0, API_E_INVALID_PARAMETER, "samples"},
        {"{\"image\":\"Zm9v\",\"samples\":-1}", 0, API_E_INVALID_PARAMETER, "samples"},
        {"{\"image\":\"Zm9v\",\"samples\":1000000}", 0, API_E_INVALID_PARAMETER, "1..10000, got 1000000"},
        {"{\"image\":\"Zm9v\",\"seed\":9007199254740992}", 0, API_E_INVALID_PARAMETER,
         "got 9007199254740992"},
        {"{\"image\":\"Zm9v\",\"interval\":1}", 0, API_E_INVALID_PARAMETER, "interval"},
        {"{\"image\":\"Zm9v\",\"interval\":1.5}", 0, API_E_INVALID_PARAMETER, "got 1.5"},
        {"{\"image\":\"Zm9v\",\"interval\":\"0.5\"}", 0, API_E_INVALID_PARAMETER, "interval"},
        {"{\"image\":\"Zm9v\",\"mode\":1}", 0, API_E_INVALID_PARAMETER, "mode"},
        {"{\"image\":\"Zm9v\",\"mode\":\"fast\"}", 0, API_E_INVALID_PARAMETER, "fast"},
        {"{\"image\":\"Zm9v\",\"colour\":1}", 0, API_E_INVALID_PARAMETER, "colour"},
        {"{\"images\":[]}", 1, API_E_INVALID_REQUEST, "images"},
        {"{\"images\":\"Zm9v\"}", 1, API_E_INVALID_REQUEST, "images"},
        {"{\"images\":[\"Zm9v\",5]}", 1, API_E_INVALID_REQUEST, "images[1]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse_json(bad[i].body, bad[i].batch, &in, &e);
        if (rc != (int)bad[i].code || !strstr(e.message, bad[i].in_message))
            fail_msg("%s: expected %s with '%s', got %s '%s'", bad[i].body, api_code_name(bad[i].code),
                     bad[i].in_message, api_code_name((enum api_code)rc), e.message);
        assert_int_equal(in.n_images, 0); /* nothing left allocated on failure */
    }
    /* max_batch */
    char big[1024] = "{\"images\":[";
    for (unsigned i = 0; i < cfg.max_batch + 1; i++)
        strcat(big, i ? ",\"Zg==\"" : "\"Zg==\"");
    strcat(big, "]}");
    assert_int_equal(parse_json(big, 1, &in, &e), API_E_INVALID_REQUEST);
    assert_non_null(strstr(e.message, "max_batch"));
}

/* Every allocation of the JSON and multipart paths failed in turn
 * (fault.h): each failure is reported as internal, nothing is left
 * allocated (ASan checks leaks). */
static void test_allocation_faults(void **state)
{
    (void)state;
    const char *body = "{\"images\":[\"Zm9vYmFy\",\"YmFy\",\"Zg==\"],\"samples\":3}";
    struct predict_input in;
    struct api_error e;
    long n = 1;
    for (;; n++) {
        predict_input_init(&in, &cfg, 1);
        bnn_fault_set(n);
        int rc = api_parse_json(&in, body, strlen(body), &cfg, &e);
        int fired = bnn_fault_fired();
        bnn_fault_set(0);
        if (!fired) {
            assert_int_equal(rc, 0);
            assert_int_equal(in.n_images, 3);
            predict_input_free(&in);
            break;
        }
        if (rc != API_E_INTERNAL)
            fail_msg("allocation %ld failed: expected internal, got %s (%s)", n,
                     api_code_name((enum api_code)rc), e.message);
        assert_int_equal(in.n_images, 0);
        assert_null(in.images);
    }
    assert_true(n > 3); /* base64 buffers and the image list were all exercised */

    for (n = 1;; n++) {
        struct api_multipart mp;
        predict_input_init(&in, &cfg, 1);
        api_multipart_init(&mp, &in, &cfg);
        bnn_fault_set(n);
        int rc = api_multipart_field(&mp, "image", 0, "abc", 3, &e);
        rc = rc ? rc : api_multipart_field(&mp, "image", 3, "def", 3, &e);
        rc = rc ? rc : api_multipart_field(&mp, "image", 0, "xy", 2, &e);
        rc = rc ? rc : api_multipart_finish(&mp, &e);
        int fired = bnn_fault_fired();
        bnn_fault_set(0);
        api_multipart_free(&mp);
        predict_input_free(&in);
        if (!fired) {
            assert_int_equal(rc, 0);
            break;
        }
        assert_int_equal(rc, API_E_INTERNAL);
        assert_int_equal(e.code, API_E_INTERNAL);
    }
    assert_true(n > 3);
}

/* --- multipart fields ------------------------------------------------------------ */

static void test_multipart(void **state)
{
    (void)state;
    struct predict_input in;
    struct api_multipart mp;
    struct api_error e = {0};
    predict_input_init(&in, &cfg, 1);
    api_multipart_init(&mp, &in, &cfg);
    /* Pieces as the post processor delivers them: offsets within a field. */
    assert_int_equal(api_multipart_field(&mp, "samples", 0, "2", 1, &e), 0);
    assert_int_equal(api_multipart_field(&mp, "samples", 1, "5", 1, &e), 0);
    assert_int_equal(api_multipart_field(&mp, "image", 0, "abc", 3, &e), 0);
    assert_int_equal(api_multipart_field(&mp, "image", 3, "def", 3, &e), 0);
    assert_int_equal(api_multipart_field(&mp, "image", 0, "xy", 2, &e), 0);
    assert_int_equal(api_multipart_field(&mp, "mode", 0, "weights", 7, &e), 0);
    assert_int_equal(api_multipart_finish(&mp, &e), 0);
    assert_int_equal(in.params.samples, 25);
    assert_int_equal(in.params.mode, BNN_MODE_WEIGHTS);
    assert_int_equal(in.n_images, 2);
    assert_int_equal(in.images[0].len, 6);
    assert_memory_equal(in.images[0].png, "abcdef", 6);
    assert_memory_equal(in.images[1].png, "xy", 2);
    predict_input_free(&in);

    /* One image only on /predict. */
    predict_input_init(&in, &cfg, 0);
    api_multipart_init(&mp, &in, &cfg);
    assert_int_equal(api_multipart_field(&mp, "image", 0, "abc", 3, &e), 0);
    assert_int_equal(api_multipart_field(&mp, "image", 0, "abc", 3, &e), API_E_INVALID_REQUEST);
    assert_non_null(strstr(e.message, "/predict/batch"));
    api_multipart_free(&mp);
    predict_input_free(&in);

    /* Unknown field, bad parameter, no image, empty image, too long a value. */
    api_multipart_init(&mp, &in, &cfg);
    assert_int_equal(api_multipart_field(&mp, "picture", 0, "abc", 3, &e), API_E_INVALID_REQUEST);
    assert_non_null(strstr(e.message, "picture"));
    api_multipart_init(&mp, &in, &cfg);
    assert_int_equal(api_multipart_field(&mp, "samples", 0, "0", 1, &e), 0);
    assert_int_equal(api_multipart_finish(&mp, &e), API_E_INVALID_PARAMETER); /* applied at the field's end */
    api_multipart_init(&mp, &in, &cfg);
    assert_int_equal(api_multipart_finish(&mp, &e), API_E_INVALID_REQUEST);
    assert_non_null(strstr(e.message, "no \"image\""));
    api_multipart_init(&mp, &in, &cfg);
    assert_int_equal(api_multipart_field(&mp, "image", 0, "", 0, &e), 0);
    assert_int_equal(api_multipart_finish(&mp, &e), API_E_INVALID_PNG);
    assert_string_equal(e.message, "image: empty image");
    api_multipart_free(&mp);
    predict_input_free(&in);
    api_multipart_init(&mp, &in, &cfg);
    char long_value[100];
    memset(long_value, '1', sizeof long_value);
    assert_int_equal(api_multipart_field(&mp, "seed", 0, long_value, sizeof long_value, &e),
                     API_E_INVALID_PARAMETER);
    assert_int_equal(api_multipart_field(&mp, "image", 5, "x", 1, &e), API_E_INVALID_REQUEST); /* no start */

    /* max_batch images at most; an empty one in a batch is named. */
    struct cfg small = cfg;
    small.max_batch = 2;
    predict_input_init(&in, &small, 1);
    api_multipart_init(&mp, &in, &small);
    assert_int_equal(api_multipart_field(&mp, "image", 0, "a", 1, &e), 0);
    assert_int_equal(api_multipart_field(&mp, "image", 0, "b", 1, &e), 0);
    assert_int_equal(api_multipart_field(&mp, "image", 0, "c", 1, &e), API_E_INVALID_REQUEST);
    assert_non_null(strstr(e.message, "max_batch"));
    api_multipart_free(&mp);
    predict_input_free(&in);
    predict_input_init(&in, &small, 1);
    api_multipart_init(&mp, &in, &small);
    assert_int_equal(api_multipart_field(&mp, "image", 0, "a", 1, &e), 0);
    assert_int_equal(api_multipart_field(&mp, "image", 0, "", 0, &e), 0);
    assert_int_equal(api_multipart_finish(&mp, &e), API_E_INVALID_PNG);
    assert_string_equal(e.message, "images[1]: empty image");
    api_multipart_free(&mp);
    predict_input_free(&in);
}

/* --- one request's body: the cap and the three forms ------------------------------------ */

static void test_body_cap(void **state)
{
    (void)state;
    struct api_error e = {0};
    assert_int_equal(api_body_cap(&cfg, cfg.max_body_bytes, 1, &e), 0);
    assert_int_equal(api_body_cap(&cfg, cfg.max_body_bytes + 1, 1, &e), API_E_BODY_TOO_LARGE);
    assert_string_equal(e.message, "body of 1048577 bytes is over max_body_bytes = 1048576");
    assert_int_equal(api_body_cap(&cfg, cfg.max_body_bytes + 1, 0, &e), API_E_BODY_TOO_LARGE);
    assert_non_null(strstr(e.message, "at least 1048577"));

    struct cfg small = cfg;
    small.max_body_bytes = 10;
    struct predict_input in;
    struct api_request rq;
    /* Declared over the cap: refused from the headers. */
    predict_input_init(&in, &small, 0);
    assert_int_equal(api_request_begin(&rq, &in, &small, "image/png", "11", &e), API_E_BODY_TOO_LARGE);
    api_request_free(&rq);
    /* Streamed over the cap: the rest is dropped, 413 at the end; it
     * replaces a parse error, not the other way round. */
    assert_int_equal(api_request_begin(&rq, &in, &small, "multipart/form-data; boundary=x", NULL, &e), 0);
    assert_int_equal(api_request_admit(&rq, 6), 0);
    api_request_malformed(&rq);
    assert_int_equal(api_request_admit(&rq, 1), -1);
    assert_int_equal(api_request_admit(&rq, 6), -1);
    assert_int_equal(api_request_finish(&rq, &e), API_E_BODY_TOO_LARGE);
    assert_non_null(strstr(e.message, "at least 13"));
    api_request_free(&rq);
    predict_input_free(&in);
}

static void test_request_forms(void **state)
{
    (void)state;
    struct predict_input in;
    struct api_request rq;
    struct api_error e = {0};
    /* Raw PNG: the body's bytes become the one image. */
    predict_input_init(&in, &cfg, 0);
    assert_int_equal(api_request_begin(&rq, &in, &cfg, "image/png", "4", &e), 0);
    assert_int_equal(api_request_admit(&rq, 2), 0);
    api_request_append(&rq, "\x89P", 2);
    assert_int_equal(api_request_admit(&rq, 2), 0);
    api_request_append(&rq, "NG", 2);
    assert_int_equal(api_request_finish(&rq, &e), 0);
    assert_int_equal(in.n_images, 1);
    assert_memory_equal(in.images[0].png, "\x89PNG", 4);
    api_request_free(&rq);
    predict_input_free(&in);
    /* An empty raw body is an empty image, said once. */
    assert_int_equal(api_request_begin(&rq, &in, &cfg, "image/png", "0", &e), 0);
    assert_int_equal(api_request_finish(&rq, &e), API_E_INVALID_PNG);
    assert_string_equal(e.message, "image: empty image");
    api_request_free(&rq);
    /* JSON, in two pieces. */
    const char *json = "{\"image\":\"Zm9v\",\"seed\":5}";
    assert_int_equal(api_request_begin(&rq, &in, &cfg, "application/json", NULL, &e), 0);
    assert_int_equal(api_request_admit(&rq, 10), 0);
    api_request_append(&rq, json, 10);
    assert_int_equal(api_request_admit(&rq, strlen(json) - 10), 0);
    api_request_append(&rq, json + 10, strlen(json) - 10);
    assert_int_equal(api_request_finish(&rq, &e), 0);
    assert_int_equal(in.n_images, 1);
    assert_true(in.params.seed == 5);
    api_request_free(&rq);
    predict_input_free(&in);
    /* Multipart fields from a framing parser; a failed field fails the rest. */
    assert_int_equal(api_request_begin(&rq, &in, &cfg, "multipart/form-data; boundary=x", NULL, &e), 0);
    assert_int_equal(api_request_field(&rq, "image", 0, "ab", 2), 0);
    assert_int_equal(api_request_field(&rq, "colour", 0, "red", 3), -1);
    assert_int_equal(api_request_field(&rq, "samples", 0, "5", 1), -1);
    api_request_malformed(&rq); /* keeps the field's error */
    assert_int_equal(api_request_finish(&rq, &e), API_E_INVALID_REQUEST);
    assert_non_null(strstr(e.message, "colour"));
    api_request_free(&rq);
    predict_input_free(&in);
    /* Media types: none, unknown, or a raw PNG on the batch route. */
    static const struct {
        const char *type;
        int batch;
    } refused[] = {{NULL, 0}, {"text/plain", 0}, {"image/png", 1}, {"application/x-www-form-urlencoded", 1}};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        predict_input_init(&in, &cfg, refused[i].batch);
        assert_int_equal(api_request_begin(&rq, &in, &cfg, refused[i].type, NULL, &e),
                         API_E_UNSUPPORTED_MEDIA_TYPE);
        api_request_free(&rq);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_query_params, setup),
        cmocka_unit_test_setup(test_body_kind, setup),
        cmocka_unit_test_setup(test_base64, setup),
        cmocka_unit_test_setup(test_json_bodies, setup),
        cmocka_unit_test_setup(test_allocation_faults, setup),
        cmocka_unit_test_setup(test_multipart, setup),
        cmocka_unit_test_setup(test_body_cap, setup),
        cmocka_unit_test_setup(test_request_forms, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

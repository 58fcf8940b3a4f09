/* test_api.c - the HTTP API's data layer without HTTP: the one status map,
 * error bodies, query / JSON / multipart parameter parsing with their bad
 * cases (table-driven: input -> expected code), base64, media types, and
 * the prediction job on real PNG fixtures (a real MNIST digit) with the
 * shipped weights when present, else a random model of the same shape. */
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
#include "config.h"
#include "fault.h"
#include "rng.h"
#include "weights.h"

#define SHIPPED "model/weights/mnist-bnn.safetensors"
#define FIXTURES "tests/data/png/"

static struct cfg cfg;

static int setup(void **state)
{
    (void)state;
    cfg_defaults(&cfg);
    return 0;
}

/* --- status map and error bodies ------------------------------------------- */

static void test_status_map(void **state)
{
    (void)state;
    static const struct {
        enum api_code code;
        unsigned status;
        const char *name;
    } rows[] = {
        {API_OK, 200, "ok"},
        {API_E_INVALID_PNG, 400, "invalid_png"},
        {API_E_INVALID_PARAMETER, 400, "invalid_parameter"},
        {API_E_INVALID_REQUEST, 400, "invalid_request"},
        {API_E_NOT_FOUND, 404, "not_found"},
        {API_E_METHOD_NOT_ALLOWED, 405, "method_not_allowed"},
        {API_E_BODY_TOO_LARGE, 413, "body_too_large"},
        {API_E_IMAGE_TOO_LARGE, 413, "image_too_large"},
        {API_E_UNSUPPORTED_MEDIA_TYPE, 415, "unsupported_media_type"},
        {API_E_OVERLOADED, 503, "overloaded"},
        {API_E_DRAINING, 503, "overloaded"},
        {API_E_TIMEOUT, 503, "timeout"},
        {API_E_INTERNAL, 500, "internal"},
    };
    assert_int_equal(sizeof rows / sizeof rows[0], API_CODE_COUNT);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        assert_int_equal(api_http_status(rows[i].code, 503), rows[i].status);
        assert_string_equal(api_code_name(rows[i].code), rows[i].name);
    }
    /* Only a full queue follows overload_status; draining stays 503. */
    assert_int_equal(api_http_status(API_E_OVERLOADED, 429), 429);
    assert_int_equal(api_http_status(API_E_DRAINING, 429), 503);
    assert_int_equal(api_http_status(API_E_TIMEOUT, 429), 503);
    assert_int_equal(api_http_status(API_CODE_COUNT, 503), 500);
    assert_string_equal(api_code_name(API_CODE_COUNT), "internal");
}

static void test_error_body(void **state)
{
    (void)state;
    struct api_error e;
    assert_int_equal(api_fail(&e, API_E_INVALID_PARAMETER, "samples: expected 1..%u, got %d", 10000u, 20000),
                     API_E_INVALID_PARAMETER);
    unsigned status = 0;
    char *body = api_error_body(&e, 503, &status);
    assert_int_equal(status, 400);
    assert_string_equal(body, "{\"error\":{\"code\":\"invalid_parameter\",\"message\":\"samples: expected "
                              "1..10000, got 20000\"}}\n");
    free(body);
    /* Messages with quotes and control characters stay valid JSON. */
    api_fail(&e, API_E_INVALID_PNG, "bad \"chunk\"\n\\");
    body = api_error_body(&e, 503, &status);
    json_error_t jerr;
    json_t *j = json_loads(body, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
                        "bad \"chunk\"\n\\");
    json_decref(j);
    free(body);
    api_fail(&e, API_E_OVERLOADED, "full");
    body = api_error_body(&e, 429, &status);
    assert_int_equal(status, 429);
    free(body);
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
        struct api_params p;
        struct api_error e = {0};
        api_params_init(&p, &cfg);
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
    struct api_params p;
    struct api_error e;
    api_params_init(&p, &cfg);
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
    assert_int_equal(p.set, API_SET_SAMPLES | API_SET_SEED | API_SET_MODE | API_SET_INTERVAL);
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

static int parse_json(const char *body, int batch, struct api_params *p, struct api_images *im,
                      struct api_error *e)
{
    api_params_init(p, &cfg);
    memset(im, 0, sizeof *im);
    memset(e, 0, sizeof *e);
    return api_parse_json(p, im, body, strlen(body), batch, &cfg, e);
}

static void test_json_bodies(void **state)
{
    (void)state;
    struct api_params p;
    struct api_images im;
    struct api_error e;
    assert_int_equal(
        parse_json("{\"image\":\"Zm9v\",\"samples\":7,\"interval\":0.5,\"seed\":42,\"mode\":\"weights\"}", 0,
                   &p, &im, &e),
        0);
    assert_int_equal(im.n, 1);
    assert_int_equal(im.items[0].len, 3);
    assert_memory_equal(im.items[0].data, "foo", 3);
    assert_int_equal(p.samples, 7);
    assert_true(p.interval == 0.5);
    assert_true(p.seed == 42);
    assert_int_equal(p.mode, BNN_MODE_WEIGHTS);
    api_images_free(&im);

    assert_int_equal(parse_json("{\"images\":[\"Zm9v\",\"YmFy\",\"Zg==\"],\"samples\":3}", 1, &p, &im, &e),
                     0);
    assert_int_equal(im.n, 3);
    assert_memory_equal(im.items[1].data, "bar", 3);
    assert_int_equal(im.items[2].len, 1);
    api_images_free(&im);

    /* The query wins: a parameter already given keeps its value, but the
     * body's value must still be valid. */
    api_params_init(&p, &cfg);
    api_param_set(&p, &cfg, "samples", "12", &e);
    memset(&im, 0, sizeof im);
    const char *body = "{\"image\":\"Zm9v\",\"samples\":40,\"seed\":3}";
    assert_int_equal(api_parse_json(&p, &im, body, strlen(body), 0, &cfg, &e), 0);
    assert_int_equal(p.samples, 12);
    assert_true(p.seed == 3);
    api_images_free(&im);
    api_params_init(&p, &cfg);
    api_param_set(&p, &cfg, "samples", "12", &e);
    body = "{\"image\":\"Zm9v\",\"samples\":0}";
    assert_int_equal(api_parse_json(&p, &im, body, strlen(body), 0, &cfg, &e), API_E_INVALID_PARAMETER);

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
        {"{\"image\":\"\"}", 0, API_E_INVALID_PNG, "empty"},
        {"{\"image\":\"Zm9v\",\"image\":\"Zm9v\"}", 0, API_E_INVALID_REQUEST, "duplicate"},
        {"{\"image\":\"Zm9v\",\"samples\":\"5\"}", 0, API_E_INVALID_PARAMETER, "samples"},
        {"{\"image\":\"Zm9v\",\"samples\":5.5}", 0, API_E_INVALID_PARAMETER, "samples"},
        {"{\"image\":\"Zm9v\",\"samples\":-1}", 0, API_E_INVALID_PARAMETER, "samples"},
        {"{\"image\":\"Zm9v\",\"samples\":1000000}", 0, API_E_INVALID_PARAMETER, "1..10000"},
        {"{\"image\":\"Zm9v\",\"seed\":9007199254740992}", 0, API_E_INVALID_PARAMETER, "seed"},
        {"{\"image\":\"Zm9v\",\"interval\":1}", 0, API_E_INVALID_PARAMETER, "interval"},
        {"{\"image\":\"Zm9v\",\"interval\":\"0.5\"}", 0, API_E_INVALID_PARAMETER, "interval"},
        {"{\"image\":\"Zm9v\",\"mode\":1}", 0, API_E_INVALID_PARAMETER, "mode"},
        {"{\"image\":\"Zm9v\",\"mode\":\"fast\"}", 0, API_E_INVALID_PARAMETER, "fast"},
        {"{\"image\":\"Zm9v\",\"colour\":1}", 0, API_E_INVALID_PARAMETER, "colour"},
        {"{\"images\":[]}", 1, API_E_INVALID_REQUEST, "images"},
        {"{\"images\":\"Zm9v\"}", 1, API_E_INVALID_REQUEST, "images"},
        {"{\"images\":[\"Zm9v\",5]}", 1, API_E_INVALID_REQUEST, "images[1]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse_json(bad[i].body, bad[i].batch, &p, &im, &e);
        if (rc != (int)bad[i].code || !strstr(e.message, bad[i].in_message))
            fail_msg("%s: expected %s with '%s', got %s '%s'", bad[i].body, api_code_name(bad[i].code),
                     bad[i].in_message, api_code_name((enum api_code)rc), e.message);
        assert_int_equal(im.n, 0); /* nothing left allocated on failure */
    }
    /* max_batch */
    char big[1024] = "{\"images\":[";
    for (unsigned i = 0; i < cfg.max_batch + 1; i++)
        strcat(big, i ? ",\"Zg==\"" : "\"Zg==\"");
    strcat(big, "]}");
    assert_int_equal(parse_json(big, 1, &p, &im, &e), API_E_INVALID_REQUEST);
    assert_non_null(strstr(e.message, "max_batch"));
}

/* Every allocation of the JSON path failed in turn (fault.h): each failure
 * is reported as internal, nothing is left allocated (ASan checks leaks). */
static void test_json_allocation_faults(void **state)
{
    (void)state;
    const char *body = "{\"images\":[\"Zm9vYmFy\",\"YmFy\",\"Zg==\"],\"samples\":3}";
    struct api_params p;
    struct api_images im;
    struct api_error e;
    long n = 1;
    for (;; n++) {
        api_params_init(&p, &cfg);
        memset(&im, 0, sizeof im);
        bnn_fault_set(n);
        int rc = api_parse_json(&p, &im, body, strlen(body), 1, &cfg, &e);
        int fired = bnn_fault_fired();
        bnn_fault_set(0);
        if (!fired) {
            assert_int_equal(rc, 0);
            assert_int_equal(im.n, 3);
            api_images_free(&im);
            break;
        }
        if (rc != API_E_INTERNAL)
            fail_msg("allocation %ld failed: expected internal, got %s (%s)", n,
                     api_code_name((enum api_code)rc), e.message);
        assert_int_equal(im.n, 0);
        assert_null(im.items);
    }
    assert_true(n > 3); /* base64 buffers and the image list were all exercised */

    /* Multipart: a failed append is reported, the caller frees what exists. */
    for (n = 1;; n++) {
        struct api_multipart mp;
        api_params_init(&p, &cfg);
        memset(&im, 0, sizeof im);
        api_multipart_init(&mp, &im, &p, &cfg, 1);
        bnn_fault_set(n);
        int rc = api_multipart_field(&mp, "image", "a", 0, "abc", 3);
        rc = rc ? rc : api_multipart_field(&mp, "image", "a", 3, "def", 3);
        rc = rc ? rc : api_multipart_field(&mp, "image", "b", 0, "xy", 2);
        rc = rc ? rc : api_multipart_finish(&mp);
        int fired = bnn_fault_fired();
        bnn_fault_set(0);
        api_images_free(&im);
        if (!fired) {
            assert_int_equal(rc, 0);
            break;
        }
        assert_int_equal(rc, -1);
        assert_int_equal(mp.err.code, API_E_INTERNAL);
    }
    assert_true(n > 3);
}

/* --- multipart fields ------------------------------------------------------------ */

static void test_multipart(void **state)
{
    (void)state;
    struct api_params p;
    struct api_images im = {0};
    struct api_multipart mp;
    api_params_init(&p, &cfg);
    api_multipart_init(&mp, &im, &p, &cfg, 1);
    /* Pieces as the post processor delivers them: offsets within a field. */
    assert_int_equal(api_multipart_field(&mp, "samples", NULL, 0, "2", 1), 0);
    assert_int_equal(api_multipart_field(&mp, "samples", NULL, 1, "5", 1), 0);
    assert_int_equal(api_multipart_field(&mp, "image", "a.png", 0, "abc", 3), 0);
    assert_int_equal(api_multipart_field(&mp, "image", "a.png", 3, "def", 3), 0);
    assert_int_equal(api_multipart_field(&mp, "image", "b.png", 0, "xy", 2), 0);
    assert_int_equal(api_multipart_field(&mp, "mode", NULL, 0, "weights", 7), 0);
    assert_int_equal(api_multipart_finish(&mp), 0);
    assert_int_equal(p.samples, 25);
    assert_int_equal(p.mode, BNN_MODE_WEIGHTS);
    assert_int_equal(im.n, 2);
    assert_int_equal(im.items[0].len, 6);
    assert_memory_equal(im.items[0].data, "abcdef", 6);
    assert_memory_equal(im.items[1].data, "xy", 2);
    api_images_free(&im);

    /* One image only on /predict. */
    api_params_init(&p, &cfg);
    api_multipart_init(&mp, &im, &p, &cfg, 0);
    assert_int_equal(api_multipart_field(&mp, "image", "a.png", 0, "abc", 3), 0);
    assert_int_equal(api_multipart_field(&mp, "image", "b.png", 0, "abc", 3), -1);
    assert_int_equal(mp.err.code, API_E_INVALID_REQUEST);
    api_images_free(&im);

    /* Unknown field, bad parameter, no image, empty image, too long a value. */
    api_multipart_init(&mp, &im, &p, &cfg, 0);
    assert_int_equal(api_multipart_field(&mp, "picture", "a.png", 0, "abc", 3), -1);
    assert_non_null(strstr(mp.err.message, "picture"));
    api_multipart_init(&mp, &im, &p, &cfg, 0);
    assert_int_equal(api_multipart_field(&mp, "samples", NULL, 0, "0", 1), 0);
    assert_int_equal(api_multipart_finish(&mp), -1); /* applied at the field's end */
    assert_int_equal(mp.err.code, API_E_INVALID_PARAMETER);
    api_multipart_init(&mp, &im, &p, &cfg, 0);
    assert_int_equal(api_multipart_finish(&mp), -1);
    assert_non_null(strstr(mp.err.message, "no \"image\""));
    api_multipart_init(&mp, &im, &p, &cfg, 0);
    assert_int_equal(api_multipart_field(&mp, "image", "a.png", 0, "", 0), 0);
    assert_int_equal(api_multipart_finish(&mp), -1);
    assert_int_equal(mp.err.code, API_E_INVALID_PNG);
    api_images_free(&im);
    api_multipart_init(&mp, &im, &p, &cfg, 0);
    char long_value[100];
    memset(long_value, '1', sizeof long_value);
    assert_int_equal(api_multipart_field(&mp, "seed", NULL, 0, long_value, sizeof long_value), -1);

    /* Total image bytes bounded even if the caller did not cap the body. */
    struct cfg small = cfg;
    small.max_body_bytes = 4;
    api_multipart_init(&mp, &im, &p, &small, 0);
    assert_int_equal(api_multipart_field(&mp, "image", "a.png", 0, "abc", 3), 0);
    assert_int_equal(api_multipart_field(&mp, "image", "a.png", 3, "de", 2), -1);
    assert_int_equal(mp.err.code, API_E_BODY_TOO_LARGE);
    api_images_free(&im);

    /* max_batch images at most. */
    small = cfg;
    small.max_batch = 2;
    api_multipart_init(&mp, &im, &p, &small, 1);
    assert_int_equal(api_multipart_field(&mp, "image", "a", 0, "a", 1), 0);
    assert_int_equal(api_multipart_field(&mp, "image", "b", 0, "b", 1), 0);
    assert_int_equal(api_multipart_field(&mp, "image", "c", 0, "c", 1), -1);
    assert_non_null(strstr(mp.err.message, "max_batch"));
    api_images_free(&im);
}

/* --- the prediction job on real PNGs ------------------------------------------------ */

static struct bnn_model *model;
static int real_model;

static struct bnn_model *random_model(void)
{
    const size_t dims[] = {784, 784, 256, 256, 10};
    char err[BNN_ERR_LEN];
    struct bnn_model *m = bnn_model_new(dims, 4, err);
    assert_non_null(m);
    for (size_t l = 0; l < m->n_layers; l++) {
        struct bnn_layer *L = &m->layers[l];
        rng_normals(L->w_mu, L->n_in * L->n_out, 99, (uint32_t)l, 0, 0);
        for (size_t i = 0; i < L->n_in * L->n_out; i++) {
            L->w_mu[i] *= 0.05f;
            L->w_sigma[i] = 0.02f;
        }
        for (size_t i = 0; i < L->n_out; i++)
            L->b_sigma[i] = 0.02f;
    }
    bnn_model_update_var(m);
    return m;
}

static int setup_model(void **state)
{
    setup(state);
    char err[BNN_ERR_LEN];
    if (access(SHIPPED, R_OK) == 0) {
        if (bnn_weights_load(&model, SHIPPED, err) != BNN_OK) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
        real_model = 1;
    } else {
        model = random_model();
    }
    return 0;
}

static int teardown_model(void **state)
{
    (void)state;
    bnn_model_free(model);
    return 0;
}

static uint8_t *read_fixture(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, FIXTURES "%s", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("fixture %s: cannot open (run from the repository root)", path);
    uint8_t *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static json_t *predict_fixture(const char *name, const struct api_params *p, uint64_t seed,
                               struct bnn_workspace *ws, struct api_error *e)
{
    size_t len;
    uint8_t *png = read_fixture(name, &len);
    json_t *out;
    api_predict_png(&out, png, len, p, seed, 1.5, &cfg, model, ws, e);
    free(png);
    return out;
}

static void test_predict_png(void **state)
{
    (void)state;
    struct bnn_workspace *ws = bnn_workspace_new(model);
    assert_non_null(ws);
    struct api_params p;
    struct api_error e = {0};
    api_params_init(&p, &cfg);
    p.samples = 64;
    json_t *a = predict_fixture("digit_gray8.png", &p, 123, ws, &e);
    assert_non_null(a);
    assert_int_equal(json_integer_value(json_object_get(a, "samples")), 64);
    assert_int_equal(json_integer_value(json_object_get(a, "seed")), 123);
    assert_string_equal(json_string_value(json_object_get(a, "mode")), "lrt");
    assert_string_equal(json_string_value(json_object_get(a, "preprocessing")), "none");
    json_t *classes = json_object_get(a, "classes");
    assert_int_equal(json_array_size(classes), 10);
    double sum = 0;
    for (size_t k = 0; k < 10; k++) {
        json_t *c = json_array_get(classes, k);
        assert_int_equal(json_integer_value(json_object_get(c, "label")), (json_int_t)k);
        double mean = json_real_value(json_object_get(c, "mean"));
        double lower = json_real_value(json_object_get(c, "lower"));
        double upper = json_real_value(json_object_get(c, "upper"));
        /* A skewed probability can have its mean outside the interval; the
         * interval itself is ordered and inside [0, 1]. */
        assert_true(0 <= lower && lower <= upper && upper <= 1);
        assert_true(0 <= mean && mean <= 1);
        sum += mean;
    }
    assert_true(sum > 0.999 && sum < 1.001);
    assert_true(json_is_boolean(json_object_get(a, "uncertain")));
    assert_true(json_real_value(json_object_get(json_object_get(a, "timing_ms"), "queue")) == 1.5);
    if (real_model)
        assert_int_equal(json_integer_value(json_object_get(a, "prediction")), 7); /* MNIST t10k[0] */

    /* Same (image, T, seed): the same bytes for the classes, also from the
     * same digit stored as 16-bit RGBA interlaced. */
    json_t *b = predict_fixture("digit_rgba16_adam7.png", &p, 123, ws, &e);
    assert_non_null(b);
    char *ca = json_dumps(json_object_get(a, "classes"), API_JSON_FLAGS);
    char *cb = json_dumps(json_object_get(b, "classes"), API_JSON_FLAGS);
    assert_string_equal(ca, cb);
    free(cb);
    json_decref(b);
    b = predict_fixture("digit_gray8.png", &p, 124, ws, &e);
    cb = json_dumps(json_object_get(b, "classes"), API_JSON_FLAGS);
    assert_string_not_equal(ca, cb);
    free(ca);
    free(cb);
    json_decref(b);
    json_decref(a);

    a = predict_fixture("digit_on_page_280.png", &p, 1, ws, &e);
    assert_non_null(a);
    assert_string_equal(json_string_value(json_object_get(a, "preprocessing")), "inverted+resized");
    if (real_model)
        assert_int_equal(json_integer_value(json_object_get(a, "prediction")), 7);
    json_decref(a);

    static const struct {
        const char *name;
        enum api_code code;
    } bad[] = {
        {"not_png.png", API_E_INVALID_PNG},        {"empty.png", API_E_INVALID_PNG},
        {"truncated_idat.png", API_E_INVALID_PNG}, {"bad_crc.png", API_E_INVALID_PNG},
        {"bad_zlib.png", API_E_INVALID_PNG},       {"huge_100000x100000.png", API_E_IMAGE_TOO_LARGE},
        {"zero_width.png", API_E_IMAGE_TOO_LARGE},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&e, 0, sizeof e);
        a = predict_fixture(bad[i].name, &p, 1, ws, &e);
        assert_null(a);
        if (e.code != bad[i].code)
            fail_msg("%s: expected %s, got %s (%s)", bad[i].name, api_code_name(bad[i].code),
                     api_code_name(e.code), e.message);
        assert_true(e.message[0] != '\0');
    }
    bnn_workspace_free(ws);
}

static void test_prediction_json(void **state)
{
    (void)state;
    struct bnn_prediction pr = {
        .n_classes = 10, .predicted = 3, .entropy = 0.5, .aleatoric = 0.3, .epistemic = 0.2};
    for (int k = 0; k < 10; k++)
        pr.classes[k] = (struct bnn_class_stats){k == 3 ? 0.91 : 0.01, 0.01, 0.0, k == 3 ? 1.0 : 0.02};
    struct api_params p;
    api_params_init(&p, &cfg);
    struct api_timing t = {0.25, 0.5, 2};
    json_t *j = api_prediction_json(&pr, &p, 77, "inverted", &t, 0.1);
    char *s = json_dumps(j, API_JSON_FLAGS | JSON_SORT_KEYS);
    assert_non_null(strstr(s, "\"prediction\":3"));
    assert_non_null(strstr(s, "\"uncertain\":true")); /* 0.2 > 0.1 */
    assert_non_null(strstr(s, "\"interval\":0.95,")); /* short, not 0.94999999999999996 */
    assert_non_null(strstr(s, "\"uncertainty\":{\"aleatoric\":0.3,\"entropy\":0.5,\"epistemic\":0.2}"));
    assert_non_null(strstr(s, "\"timing_ms\":{\"compute\":2.0,\"decode\":0.25,\"queue\":0.5}"));
    free(s);
    json_decref(j);
    j = api_prediction_json(&pr, &p, 77, "none", &t, 0.25);
    assert_true(json_is_false(json_object_get(j, "uncertain")));
    json_decref(j);
}

static void test_model_json(void **state)
{
    (void)state;
    json_t *j = api_model_json(model, &cfg);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "parameters")), 1769524);
    assert_string_equal(json_string_value(json_object_get(j, "architecture")), "784-784-256-256-10");
    assert_int_equal(json_array_size(json_object_get(j, "layers")), 4);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "limits"), "max_samples")), 10000);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_status_map, setup),
        cmocka_unit_test_setup(test_error_body, setup),
        cmocka_unit_test_setup(test_query_params, setup),
        cmocka_unit_test_setup(test_body_kind, setup),
        cmocka_unit_test_setup(test_base64, setup),
        cmocka_unit_test_setup(test_json_bodies, setup),
        cmocka_unit_test_setup(test_json_allocation_faults, setup),
        cmocka_unit_test_setup(test_multipart, setup),
        cmocka_unit_test_setup_teardown(test_predict_png, setup_model, teardown_model),
        cmocka_unit_test_setup(test_prediction_json, setup),
        cmocka_unit_test_setup_teardown(test_model_json, setup_model, teardown_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_v2_request.c - the Open Inference Protocol request side without HTTP
 * (v2_request.h): infer bodies built byte by byte per the
 * binary tensor data extension (JSON header, then each BYTES element as a
 * 4-byte little-endian length and the bytes), base64 JSON, pixel tensors
 * (UINT8 and FP32, flat and nested, JSON and binary), output selection and
 * binary flags, the request's parameters through api_request's setters,
 * one seed per request, and the bad cases (table: body -> code and words
 * of the message), with allocation faults on the parse (nothing leaks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "fault.h"
#include "predict.h"
#include "v2_request.h"

static struct cfg cfg;

static int setup(void **state)
{
    (void)state;
    cfg_defaults(&cfg);
    return 0;
}

/* --- building bodies ---------------------------------------------------------------- */

struct body {
    uint8_t buf[1 << 16];
    size_t len;
    char header_len[24]; /* Inference-Header-Content-Length, "" for none */
};

static void put(struct body *b, const void *data, size_t n)
{
    assert_true(b->len + n <= sizeof b->buf);
    memcpy(b->buf + b->len, data, n);
    b->len += n;
}

/* The JSON header; with_binary sets Inference-Header-Content-Length. */
static void header(struct body *b, const char *json, int with_binary)
{
    b->len = 0;
    put(b, json, strlen(json));
    snprintf(b->header_len, sizeof b->header_len, "%s", "");
    if (with_binary)
        snprintf(b->header_len, sizeof b->header_len, "%zu", strlen(json));
}

/* One BYTES element: 4-byte little-endian length, then the bytes. */
static void element(struct body *b, const void *data, uint32_t n)
{
    uint8_t le[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    put(b, le, 4);
    put(b, data, n);
}

static int parse(struct v2_request *rq, struct predict_input *in, const struct body *b, struct api_error *e)
{
    predict_input_init(in, &cfg, 0);
    return v2_parse_infer(rq, in, b->buf, b->len, b->header_len[0] ? b->header_len : NULL, &cfg, e);
}

static const uint8_t fake_png[] = "\x89PNG not decoded here";

/* --- good requests ---------------------------------------------------------------- */

static void test_binary_images(void **state)
{
    (void)state;
    struct body b;
    char json[512];
    size_t one = 4 + sizeof fake_png, two = 4 + 3;
    snprintf(json, sizeof json,
             "{\"id\":\"req-7\",\"parameters\":{\"seed\":42,\"samples\":20,\"priority\":3},"
             "\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[2],"
             "\"parameters\":{\"binary_data_size\":%zu}}]}",
             one + two);
    header(&b, json, 1);
    element(&b, fake_png, sizeof fake_png);
    element(&b, "abc", 3);
    struct v2_request rq;
    struct predict_input in;
    struct api_error e = {0};
    if (parse(&rq, &in, &b, &e) != 0)
        fail_msg("%s", e.message);
    assert_int_equal(in.n_images, 2);
    assert_true(in.batch);
    assert_int_equal(in.images[0].len, sizeof fake_png);
    assert_memory_equal(in.images[0].png, fake_png, sizeof fake_png);
    assert_int_equal(in.images[1].len, 3);
    assert_memory_equal(in.images[1].png, "abc", 3);
    assert_int_equal(in.params.seed, 42);
    assert_int_equal(in.params.samples, 20);
    assert_string_equal(rq.id, "req-7");
    assert_string_equal(rq.model_name, "mnist-bnn");
    /* every output, in the table's order, none in binary */
    assert_int_equal(rq.n_outputs, V2_OUT_COUNT);
    for (size_t i = 0; i < V2_OUT_COUNT; i++) {
        assert_int_equal(rq.outputs[i], (enum v2_output)i);
        assert_int_equal(rq.binary[i], 0);
    }
    predict_input_free(&in);
    v2_request_free(&rq);
    v2_request_free(&rq); /* idempotent */
}

static void test_json_images_and_outputs(void **state)
{
    (void)state;
    struct body b;
    /* "iVBO" is base64 of 89 50 4e; nested data is flattened row-major */
    header(
        &b,
        "{\"parameters\":{\"binary_data_output\":true,\"mode\":\"weights\",\"interval\":0.9},"
        "\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],"
        "\"parameters\":{\"content_type\":\"base64\"},\"data\":[[\"iVBO\"]]}],"
        "\"outputs\":[{\"name\":\"prediction\",\"parameters\":{\"binary_data\":false}},{\"name\":\"mean\"},"
        "{\"name\":\"prediction_set\",\"parameters\":{\"binary_data\":true}}]}",
        0);
    struct v2_request rq;
    struct predict_input in;
    struct api_error e = {0};
    if (parse(&rq, &in, &b, &e) != 0)
        fail_msg("%s", e.message);
    assert_int_equal(in.n_images, 1);
    assert_false(in.batch);
    assert_int_equal(in.images[0].len, 3);
    assert_memory_equal(in.images[0].png, "\x89PN", 3);
    assert_int_equal(in.params.mode, BNN_MODE_WEIGHTS);
    assert_true(in.params.interval == 0.9);
    assert_null(rq.id);
    assert_int_equal(rq.n_outputs, 3);
    assert_int_equal(rq.outputs[0], V2_OUT_PREDICTION);
    assert_int_equal(rq.binary[0], 0); /* its own flag wins over binary_data_output */
    assert_int_equal(rq.outputs[1], V2_OUT_MEAN);
    assert_int_equal(rq.binary[1], 1); /* binary_data_output */
    assert_int_equal(rq.outputs[2], V2_OUT_SET);
    assert_int_equal(rq.binary[2], 1);
    /* no seed given: one is drawn for the whole request */
    assert_true(in.params.set & PREDICT_SET_SEED);
    assert_true(in.params.seed <= PREDICT_SEED_MAX);
    predict_input_free(&in);
    v2_request_free(&rq);
}

static void test_pixels(void **state)
{
    (void)state;
    /* UINT8 [1,28,28] nested in JSON: rows of 28 */
    char *json = malloc(64 * 1024);
    size_t n =
        (size_t)sprintf(json, "{\"inputs\":[{\"name\":\"pixels\",\"datatype\":\"UINT8\",\"shape\":[1,28,28],"
                              "\"data\":[[");
    for (int r = 0; r < 28; r++) {
        n += (size_t)sprintf(json + n, "%s[", r ? "," : "");
        for (int c = 0; c < 28; c++)
            n += (size_t)sprintf(json + n, "%s%d", c ? "," : "", (r * 28 + c) % 256);
        n += (size_t)sprintf(json + n, "]");
    }
    sprintf(json + n, "]]}]}");
    struct body *b = malloc(sizeof *b);
    header(b, json, 0);
    struct v2_request rq;
    struct predict_input in;
    struct api_error e = {0};
    if (parse(&rq, &in, b, &e) != 0)
        fail_msg("%s", e.message);
    assert_int_equal(in.n_images, 1);
    assert_null(in.images[0].png);
    assert_non_null(in.images[0].gray);
    assert_int_equal(in.images[0].width, 28);
    assert_int_equal(in.images[0].height, 28);
    for (int i = 0; i < 784; i++)
        assert_int_equal(in.images[0].gray[i], i % 256);
    predict_input_free(&in);
    v2_request_free(&rq);

    /* FP32 [2,28,28] in binary: little-endian, scaled by 255 and rounded */
    char hdr[256];
    snprintf(hdr, sizeof hdr,
             "{\"inputs\":[{\"name\":\"pixels\",\"datatype\":\"FP32\",\"shape\":[2,28,28],"
             "\"parameters\":{\"binary_data_size\":%d}}]}",
             2 * 784 * 4);
    header(b, hdr, 1);
    for (int i = 0; i < 2 * 784; i++) {
        float f = (float)(i % 3) / 2.0f; /* 0, 0.5, 1 */
        uint32_t bits;
        memcpy(&bits, &f, 4);
        uint8_t le[4] = {(uint8_t)bits, (uint8_t)(bits >> 8), (uint8_t)(bits >> 16), (uint8_t)(bits >> 24)};
        put(b, le, 4);
    }
    if (parse(&rq, &in, b, &e) != 0)
        fail_msg("%s", e.message);
    assert_int_equal(in.n_images, 2);
    assert_true(in.batch);
    static const uint8_t want[3] = {0, 128, 255};
    for (int i = 0; i < 2 * 784; i++)
        assert_int_equal(in.images[i / 784].gray[i % 784], want[i % 3]);
    predict_input_free(&in);
    v2_request_free(&rq);
    free(b);
    free(json);
}

/* --- bad requests --------------------------------------------------------------------- */

#define IMG_IN(extra) "{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1]" extra "}]"
#define DATA ",\"data\":[\"iVBO\"]"

static void test_bad_json(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        enum api_code code;
        const char *words;
    } rows[] = {
        {"", API_E_INVALID_REQUEST, "JSON header"},
        {"[1]", API_E_INVALID_REQUEST, "object"},
        {"{}", API_E_INVALID_REQUEST, "inputs"},
        {"{\"inputs\":[]}", API_E_INVALID_REQUEST, "got 0"},
        {"{\"inputs\":{}}", API_E_INVALID_REQUEST, "no array"},
        {IMG_IN(DATA) ",\"model\":1}", API_E_INVALID_REQUEST, "unknown member 'model'"},
        {IMG_IN(DATA) ",\"id\":7}", API_E_INVALID_REQUEST, "id: expected a string"},
        {"{\"inputs\":[{\"name\":\"images\",\"datatype\":\"BYTES\",\"shape\":[1]" DATA "}]}",
         API_E_INVALID_REQUEST, "unknown input 'images'"},
        {"{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],\"extra\":1" DATA "}]}",
         API_E_INVALID_REQUEST, "unknown member 'extra'"},
        {"{\"inputs\":[{\"name\":\"image\",\"datatype\":\"FP32\",\"shape\":[1]" DATA "}]}",
         API_E_INVALID_REQUEST, "expected datatype BYTES, got FP32"},
        {"{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1,1]" DATA "}]}",
         API_E_INVALID_REQUEST, "expected shape [N] with N 1..64 (max_batch), got [1,1]"},
        {"{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[65]" DATA "}]}",
         API_E_INVALID_REQUEST, "got [65]"},
        {"{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[-1]" DATA "}]}",
         API_E_INVALID_REQUEST, "shape[0]"},
        {"{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[2]" DATA "}]}",
         API_E_INVALID_REQUEST, "data holds 1 elements, shape [2] has 2"},
        {IMG_IN("") "}", API_E_INVALID_REQUEST, "either data or binary_data_size, got neither"},
        {IMG_IN(",\"data\":[7]") "}", API_E_INVALID_REQUEST, "data[0]: expected a base64 string"},
        {IMG_IN(",\"data\":[\"!!!\"]") "}", API_E_INVALID_REQUEST, "data[0]: not valid base64"},
        {IMG_IN(",\"data\":[\"\"]") "}", API_E_INVALID_PNG, "empty image"},
        {IMG_IN(",\"parameters\":{\"content_type\":\"str\"}" DATA) "}", API_E_INVALID_REQUEST,
         "content_type 'str' is not supported"},
        {IMG_IN(DATA) ",\"parameters\":{\"samples\":0}}", API_E_INVALID_PARAMETER,
         "samples: expected 1..10000, got 0"},
        {IMG_IN(DATA) ",\"parameters\":{\"seed\":\"5\"}}", API_E_INVALID_PARAMETER,
         "seed: expected an integer"},
        {IMG_IN(DATA) ",\"parameters\":{\"mode\":\"mc\"}}", API_E_INVALID_PARAMETER,
         "mode: expected lrt or weights"},
        {IMG_IN(DATA) ",\"parameters\":{\"interval\":1}}", API_E_INVALID_PARAMETER, "interval"},
        {IMG_IN(DATA) ",\"parameters\":{\"binary_data_output\":1}}", API_E_INVALID_PARAMETER,
         "binary_data_output"},
        {IMG_IN(DATA) ",\"parameters\":[]}", API_E_INVALID_REQUEST, "parameters: expected an object"},
        {IMG_IN(DATA) ",\"outputs\":[{\"name\":\"logits\"}]}", API_E_INVALID_REQUEST,
         "unknown output 'logits'"},
        {IMG_IN(DATA) ",\"outputs\":[{\"name\":\"mean\"},{\"name\":\"mean\"}]}", API_E_INVALID_REQUEST,
         "'mean' requested twice"},
        {IMG_IN(DATA) ",\"outputs\":[{\"name\":\"mean\",\"parameters\":{\"binary_data\":\"yes\"}}]}",
         API_E_INVALID_REQUEST, "binary_data: expected true or false"},
        {IMG_IN(DATA) ",\"outputs\":[{\"name\":\"mean\",\"parameters\":{\"classification\":2}}]}",
         API_E_INVALID_REQUEST, "classification"},
        {IMG_IN(DATA) ",\"outputs\":[\"mean\"]}", API_E_INVALID_REQUEST, "outputs[0]: expected an object"},
        {"{\"inputs\":[{\"name\":\"pixels\",\"datatype\":\"FP64\",\"shape\":[1,28,28],\"data\":[0]}]}",
         API_E_INVALID_REQUEST, "expected datatype UINT8 or FP32, got FP64"},
        {"{\"inputs\":[{\"name\":\"pixels\",\"datatype\":\"UINT8\",\"shape\":[1,784],\"data\":[0]}]}",
         API_E_INVALID_REQUEST, "expected shape [N,28,28] with N 1..64 (max_batch), got [1,784]"},
        {"{\"inputs\":[{\"name\":\"pixels\",\"datatype\":\"UINT8\",\"shape\":[1,28,28],\"data\":[0,1]}]}",
         API_E_INVALID_REQUEST, "data holds 2 elements, shape [1,28,28] has 784"},
        {"{\"inputs\":[{\"name\":\"pixels\",\"datatype\":\"UINT8\",\"shape\":[1,28,28],\"data\":[256]}]}",
         API_E_INVALID_REQUEST, "value at [0,0,0]: expected UINT8 0..255, got 256"},
        {"{\"inputs\":[{\"name\":\"pixels\",\"datatype\":\"UINT8\",\"shape\":[1,28,28],\"data\":[0.5]}]}",
         API_E_INVALID_REQUEST, "data[0]: expected an integer 0..255"},
        {"{\"inputs\":[{\"name\":\"pixels\",\"datatype\":\"FP32\",\"shape\":[1,28,28],\"data\":[1.5]}]}",
         API_E_INVALID_REQUEST, "expected FP32 in [0, 1], got 1.5"},
        {"{\"inputs\":[{\"name\":\"pixels\",\"datatype\":\"FP32\",\"shape\":[1,28,28],\"data\":[\"x\"]}]}",
         API_E_INVALID_REQUEST, "data[0]: expected a number in [0, 1]"},
        {"{\"inputs\":[{\"name\":\"pixels\",\"datatype\":\"FP32\",\"shape\":[1,28,28],\"data\":[[[[[[[[[[0]]]"
         "]]]]]]]}]}",
         API_E_INVALID_REQUEST, "nested more than"},
    };
    struct body *b = malloc(sizeof *b);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        header(b, rows[i].json, 0);
        struct v2_request rq;
        struct predict_input in;
        struct api_error e = {0};
        int rc = parse(&rq, &in, b, &e);
        if (rc != (int)rows[i].code || !strstr(e.message, rows[i].words))
            fail_msg("row %zu (%s): expected %s '%s', got %s '%s'", i, rows[i].json,
                     api_code_name(rows[i].code), rows[i].words, api_code_name(e.code), e.message);
        assert_int_equal(in.n_images, 0); /* nothing left behind */
        assert_null(rq.id);
    }
    free(b);
}

/* The binary section: lengths per the extension's byte layout. */
static void test_bad_binary(void **state)
{
    (void)state;
    struct body *b = malloc(sizeof *b);
    struct v2_request rq;
    struct predict_input in;
    struct api_error e = {0};
    char hdr[256];
#define BIN_IMG(n, size)                                                                                     \
    snprintf(hdr, sizeof hdr,                                                                                \
             "{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[%d],"                       \
             "\"parameters\":{\"binary_data_size\":%d}}]}",                                                  \
             n, size)
#define EXPECT(words)                                                                                        \
    do {                                                                                                     \
        int rc_ = parse(&rq, &in, b, &e);                                                                    \
        if (rc_ != API_E_INVALID_REQUEST || !strstr(e.message, words))                                       \
            fail_msg("expected invalid_request '%s', got %s '%s'", words, api_code_name(e.code), e.message); \
        assert_int_equal(in.n_images, 0);                                                                    \
    } while (0)

    /* the declared size is more than what follows the header */
    BIN_IMG(1, 100);
    header(b, hdr, 1);
    element(b, "abc", 3);
    EXPECT("7 bytes follow the JSON header, but the inputs declare 100");
    /* bytes follow that no input declares */
    header(b, IMG_IN(DATA) "}", 1);
    put(b, "xx", 2);
    EXPECT("2 bytes follow the JSON header, but the inputs declare 0");
    /* an element's length runs past binary_data_size */
    BIN_IMG(1, 7);
    header(b, hdr, 1);
    uint8_t lie[4] = {200, 0, 0, 0};
    put(b, lie, 4);
    put(b, "abc", 3);
    EXPECT("element 0 declares 200 bytes, only 3 remain");
    /* the data ends inside an element's length */
    BIN_IMG(2, 9);
    header(b, hdr, 1);
    element(b, "abc", 3);
    put(b, "\x01\x00", 2);
    EXPECT("ends inside the length of element 1 of 2");
    /* bytes left after the N elements */
    BIN_IMG(1, 9);
    header(b, hdr, 1);
    element(b, "abc", 3);
    put(b, "zz", 2);
    EXPECT("2 bytes left after the 1 elements");
    /* both data and binary_data_size */
    header(b, IMG_IN(",\"parameters\":{\"binary_data_size\":0}" DATA) "}", 1);
    EXPECT("got both");
    /* pixels: the size must be N x 784 x the element size */
    snprintf(hdr, sizeof hdr,
             "{\"inputs\":[{\"name\":\"pixels\",\"datatype\":\"FP32\",\"shape\":[1,28,28],"
             "\"parameters\":{\"binary_data_size\":784}}]}");
    header(b, hdr, 1);
    for (int i = 0; i < 784; i++)
        put(b, "\0", 1);
    EXPECT("binary_data_size 784, expected 3136 for FP32 [1,28,28]");
    /* an FP32 NaN */
    snprintf(hdr, sizeof hdr,
             "{\"inputs\":[{\"name\":\"pixels\",\"datatype\":\"FP32\",\"shape\":[1,28,28],"
             "\"parameters\":{\"binary_data_size\":3136}}]}");
    header(b, hdr, 1);
    for (int i = 0; i < 784; i++)
        put(b, i == 30 ? "\x00\x00\xc0\x7f" : "\0\0\0\0", 4);
    EXPECT("value at [0,1,2]: expected FP32 in [0, 1], got nan");

    /* Inference-Header-Content-Length: digits, at most the body */
    static const char *const bad_lengths[] = {"x", "-1", "12a", " 5", "99999999999999999999"};
    header(b, IMG_IN(DATA) "}", 0);
    for (size_t i = 0; i < sizeof bad_lengths / sizeof bad_lengths[0]; i++) {
        snprintf(b->header_len, sizeof b->header_len, "%s", bad_lengths[i]);
        EXPECT("Inference-Header-Content-Length");
    }
    predict_input_init(&in, &cfg, 0); /* an empty header value (the harness's "" means none) */
    assert_int_equal(v2_parse_infer(&rq, &in, b->buf, b->len, "", &cfg, &e), API_E_INVALID_REQUEST);
    assert_non_null(strstr(e.message, "Inference-Header-Content-Length"));
    snprintf(b->header_len, sizeof b->header_len, "%zu", b->len + 1);
    EXPECT("Inference-Header-Content-Length: expected the JSON header's length in bytes, 0..");
    snprintf(b->header_len, sizeof b->header_len, "%zu", b->len - 1); /* cuts the JSON */
    EXPECT("JSON header");
    free(b);
#undef BIN_IMG
#undef EXPECT
}

/* Every allocation of a parse failed in turn: internal or a clean refusal,
 * nothing leaks (the ASan build's LeakSanitizer watches). */
static void test_allocation_faults(void **state)
{
    (void)state;
    struct body *b = malloc(sizeof *b);
    char hdr[256];
    snprintf(hdr, sizeof hdr,
             "{\"id\":\"x\",\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[3],"
             "\"parameters\":{\"binary_data_size\":%zu}}]}",
             3 * (4 + sizeof fake_png));
    header(b, hdr, 1);
    for (int i = 0; i < 3; i++)
        element(b, fake_png, sizeof fake_png);
    int failures = 0;
    for (int nth = 1; nth < 40; nth++) {
        struct v2_request rq;
        struct predict_input in;
        struct api_error e = {0};
        bnn_fault_set(nth);
        int rc = parse(&rq, &in, b, &e);
        int fired = bnn_fault_fired();
        bnn_fault_set(0);
        if (!fired) {
            assert_int_equal(rc, 0);
            assert_int_equal(in.n_images, 3);
            predict_input_free(&in);
            v2_request_free(&rq);
            break;
        }
        failures++;
        assert_int_equal(rc, API_E_INTERNAL);
        assert_int_equal(in.n_images, 0);
    }
    assert_true(failures >= 3);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_images), cmocka_unit_test(test_json_images_and_outputs),
        cmocka_unit_test(test_pixels),        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_bad_binary),    cmocka_unit_test(test_allocation_faults),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

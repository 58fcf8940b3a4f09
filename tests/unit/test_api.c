/* test_api.c - the API's error vocabulary (api.h): the one status map, the
 * error bodies (valid JSON whatever the message holds), message prefixes,
 * which codes ask for a retry, and the serialiser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"

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
    size_t len = 0;
    char *body = api_error_body(&e, 503, &status, &len);
    assert_int_equal(len, strlen(body));
    assert_int_equal(status, 400);
    assert_string_equal(body, "{\"error\":{\"code\":\"invalid_parameter\",\"message\":\"samples: expected "
                              "1..10000, got 20000\"}}\n");
    free(body);
    /* Messages with quotes and control characters stay valid JSON. */
    api_fail(&e, API_E_INVALID_PNG, "bad \"chunk\"\n\\");
    body = api_error_body(&e, 503, &status, NULL);
    json_error_t jerr;
    json_t *j = json_loads(body, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
                        "bad \"chunk\"\n\\");
    json_decref(j);
    free(body);
    api_fail(&e, API_E_OVERLOADED, "full");
    body = api_error_body(&e, 429, &status, NULL);
    assert_int_equal(status, 429);
    free(body);
}

static void test_retryable_and_prefix(void **state)
{
    (void)state;
    for (int c = 0; c < API_CODE_COUNT; c++) {
        int want = c == API_E_OVERLOADED || c == API_E_DRAINING || c == API_E_TIMEOUT;
        if (api_code_retryable((enum api_code)c) != want)
            fail_msg("%s: expected retryable %d", api_code_name((enum api_code)c), want);
    }
    struct api_error e;
    api_fail(&e, API_E_INVALID_PNG, "not a PNG: %s", "the 8-byte PNG signature is missing");
    api_error_prefix(&e, "images[3]");
    assert_string_equal(e.message, "images[3]: not a PNG: the 8-byte PNG signature is missing");
    /* A long message is cut, never overrun. */
    char lng[400];
    memset(lng, 'x', sizeof lng - 1);
    lng[sizeof lng - 1] = '\0';
    api_fail(&e, API_E_INTERNAL, "%s", lng);
    api_error_prefix(&e, "images[63]");
    assert_true(strlen(e.message) < API_MSG_LEN);
    assert_memory_equal(e.message, "images[63]: xxx", 15);
}

static void test_dump(void **state)
{
    (void)state;
    json_t *j = json_pack("{s:f,s:i,s:s}", "interval", 0.95, "n", 3, "s", "a\"b");
    size_t len = 0;
    char *s = api_dump(j, &len);
    /* Compact, short reals, one trailing newline. */
    assert_string_equal(s, "{\"interval\":0.95,\"n\":3,\"s\":\"a\\\"b\"}\n");
    assert_int_equal(len, strlen(s));
    free(s);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_map),
        cmocka_unit_test(test_error_body),
        cmocka_unit_test(test_retryable_and_prefix),
        cmocka_unit_test(test_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

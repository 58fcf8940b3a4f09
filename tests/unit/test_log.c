/* test_log.c - log lines: levels filter before formatting, text and JSON
 * access lines carry every field, JSON stays valid with hostile strings,
 * libmicrohttpd-style trailing newlines are trimmed, lines from several
 * threads never interleave. Output goes to a temporary file read back. */
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"

static char *slurp(FILE *f)
{
    fflush(f);
    long n = ftell(f);
    char *buf = calloc(1, (size_t)n + 1);
    rewind(f);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    return buf;
}

static void test_levels(void **state)
{
    (void)state;
    char err[LOG_ERR_LEN];
    assert_null(log_new(stderr, "verbose", "text", 1, err));
    assert_non_null(strstr(err, "verbose"));
    assert_null(log_new(stderr, "info", "xml", 1, err));
    assert_non_null(strstr(err, "log_format"));
    FILE *f = tmpfile();
    struct log *lg = log_new(f, "warn", "text", 1, err);
    assert_non_null(lg);
    assert_true(log_enabled(lg, LOG_ERROR));
    assert_true(log_enabled(lg, LOG_WARN));
    assert_false(log_enabled(lg, LOG_INFO));
    assert_false(log_enabled(NULL, LOG_ERROR));
    log_msg(lg, LOG_INFO, "hidden %d", 1);
    log_msg(lg, LOG_DEBUG, "hidden %d", 2);
    log_msg(lg, LOG_WARN, "shown %d\n", 3); /* trailing newline trimmed */
    log_msg(lg, LOG_ERROR, "shown %s", "4");
    char *out = slurp(f);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, " warn shown 3\n"));
    assert_non_null(strstr(out, " error shown 4\n"));
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 2);
    free(out);
    log_free(lg);
    log_free(NULL);
    fclose(f);
    enum log_level lv;
    assert_int_equal(log_level_parse("debug", &lv), 0);
    assert_int_equal(lv, LOG_DEBUG);
    assert_int_equal(log_level_parse("DEBUG", &lv), -1);
}

static void test_access_lines(void **state)
{
    (void)state;
    struct log_access a = {"POST", "/predict", 200, 1332, 11.7306, "abc-1", 100, "127.0.0.1"};
    char buf[1024];
    size_t n = log_format_access(buf, sizeof buf, LOG_TEXT, &a);
    assert_int_equal(n, strlen(buf));
    assert_non_null(strstr(buf, " access 127.0.0.1 POST /predict 200 1332 11.731ms id=abc-1 samples=100"));

    /* JSON: every field, valid even with quotes, backslashes and control
     * characters in client-chosen strings. */
    struct log_access h = {"GET", "/a\"b\\c\x01", 404, 0, 0.5, "id\"x", 0, NULL};
    log_format_access(buf, sizeof buf, LOG_JSON, &h);
    json_error_t jerr;
    json_t *j = json_loads(buf, 0, &jerr);
    if (!j)
        fail_msg("not JSON (%s): %s", jerr.text, buf);
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/a\"b\\c\x01");
    assert_string_equal(json_string_value(json_object_get(j, "request_id")), "id\"x");
    assert_string_equal(json_string_value(json_object_get(j, "remote")), "-");
    assert_string_equal(json_string_value(json_object_get(j, "msg")), "access");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 404);
    assert_int_equal(json_integer_value(json_object_get(j, "bytes")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "samples")), 0);
    assert_true(json_real_value(json_object_get(j, "ms")) == 0.5);
    json_decref(j);

    /* A path longer than the buffer: cut, never overrun. */
    char long_path[3000];
    memset(long_path, 'p', sizeof long_path - 1);
    long_path[sizeof long_path - 1] = '\0';
    struct log_access l = {"GET", long_path, 200, 1, 1, "x", 0, "::1"};
    char small[256];
    memset(small, 0x7f, sizeof small);
    n = log_format_access(small, 200, LOG_JSON, &l);
    assert_true(n >= 199);
    assert_true(strlen(small) < 200);
    assert_int_equal((unsigned char)small[255], 0x7f);
    n = log_format_access(small, 200, LOG_TEXT, &l);
    assert_true(strlen(small) < 200);
}

static void test_access_switch(void **state)
{
    (void)state;
    char err[LOG_ERR_LEN];
    FILE *f = tmpfile();
    struct log *off = log_new(f, "debug", "json", 0, err);
    struct log_access a = {"GET", "/healthz", 200, 16, 0.1, "id", 0, "127.0.0.1"};
    log_access(off, &a);
    log_msg(off, LOG_INFO, "a \"quoted\" message");
    char *out = slurp(f);
    assert_null(strstr(out, "healthz"));
    json_error_t jerr;
    json_t *j = json_loads(out, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "msg")), "a \"quoted\" message");
    assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
    json_decref(j);
    free(out);
    log_free(off);
    fclose(f);
}

struct writer {
    struct log *lg;
    int id;
};

static void *write_many(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < 500; i++) {
        struct log_access a = {"POST", "/predict", 200, (size_t)i, 1.0, "req", (unsigned)w->id, "127.0.0.1"};
        log_access(w->lg, &a);
    }
    return NULL;
}

static void test_threads_do_not_interleave(void **state)
{
    (void)state;
    char err[LOG_ERR_LEN];
    FILE *f = tmpfile();
    struct log *lg = log_new(f, "info", "json", 1, err);
    pthread_t t[4];
    struct writer w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct writer){lg, i};
        pthread_create(&t[i], NULL, write_many, &w[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    char *out = slurp(f);
    int lines = 0;
    for (char *save, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t jerr;
        json_t *j = json_loads(line, 0, &jerr);
        if (!j)
            fail_msg("line %d is not one JSON object: %s", lines, line);
        json_decref(j);
        lines++;
    }
    assert_int_equal(lines, 2000);
    free(out);
    log_free(lg);
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_access_lines),
        cmocka_unit_test(test_access_switch),
        cmocka_unit_test(test_threads_do_not_interleave),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_config.c - the configuration table: defaults, strict values, file
 * syntax, environment, precedence (defaults < file < env < cfg_set, the
 * order main applies them), cross-key validation, and cfg_print ->
 * cfg_parse_text giving back the same struct. The shipped
 * config/bnn-serve.conf must equal cfg_print of the defaults
 * (BNN_WRITE_CONF=1 rewrites it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

#define CONF_PATH "config/bnn-serve.conf"

static char *print_to_string(const struct cfg *c, size_t *len)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    assert_non_null(f);
    cfg_print(c, f);
    fclose(f);
    if (len)
        *len = n;
    return text;
}

static void expect_fail(int rc, const char *err, const char *needle1, const char *needle2)
{
    if (rc == 0)
        fail_msg("expected an error mentioning '%s', got success", needle1);
    if (!strstr(err, needle1))
        fail_msg("error '%s' does not name '%s'", err, needle1);
    if (needle2 && !strstr(err, needle2))
        fail_msg("error '%s' does not mention '%s'", err, needle2);
}

static void test_table(void **state)
{
    (void)state;
    size_t n = cfg_key_count();
    assert_int_equal(n, 32); /* one per member of struct cfg */
    for (size_t i = 0; i < n; i++) {
        assert_non_null(cfg_key_name(i));
        assert_non_null(cfg_key_help(i));
        assert_true(strlen(cfg_key_help(i)) > 10);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(cfg_key_name(i), cfg_key_name(j));
    }
    assert_null(cfg_key_name(n));
    assert_null(cfg_key_help(n));
}

static void test_defaults(void **state)
{
    (void)state;
    struct cfg c;
    char err[CFG_ERR_LEN] = "";
    cfg_defaults(&c);
    if (cfg_validate(&c, err))
        fail_msg("defaults do not validate: %s", err);
    assert_string_equal(c.host, "127.0.0.1");
    assert_int_equal(c.port, 8080);
    assert_string_equal(c.model, "model/weights/mnist-bnn.safetensors");
    assert_string_equal(c.model_name, "mnist-bnn");
    assert_string_equal(c.web_root, "service/web");
    assert_int_equal(c.workers, 0);
    assert_int_equal(c.http_threads, 1);
    assert_int_equal(c.queue_depth, 64);
    assert_int_equal(c.queue_cost, 1000000);
    assert_int_equal(c.overload_status, 503);
    assert_int_equal(c.retry_after, 1);
    assert_int_equal(c.default_samples, 100);
    assert_int_equal(c.max_samples, 10000);
    assert_int_equal(c.max_samples_weights, 1000);
    assert_int_equal(c.weights_pass_cost, 0);
    assert_true(c.default_interval == 0.95);
    assert_int_equal(c.max_body_bytes, 1 << 20);
    assert_int_equal(c.max_image_side, 4096);
    assert_int_equal(c.max_batch, 64);
    assert_int_equal(c.connection_limit, 512);
    assert_int_equal(c.per_ip_connection_limit, 0);
    assert_int_equal(c.connection_timeout, 30);
    assert_int_equal(c.connection_memory_limit, 64 << 10);
    assert_int_equal(c.job_timeout_ms, 30000);
    assert_int_equal(c.drain_timeout, 20);
    assert_string_equal(c.log_format, "text");
    assert_string_equal(c.log_level, "info");
    assert_int_equal(c.access_log, 1);
    assert_string_equal(c.cors_origins, "");
    /* Every default reads back through cfg_set: the table's default text is
     * valid under its own rules (cfg_defaults cannot report otherwise). */
    size_t len;
    char *text = print_to_string(&c, &len);
    struct cfg d;
    memset(&d, 0xa5, sizeof d);
    cfg_defaults(&d);
    assert_int_equal(cfg_parse_text(&d, text, len, "printed", err), 0);
    assert_memory_equal(&c, &d, sizeof c);
    free(text);
}

/* The shipped file documents every key with its default: it is exactly what
 * cfg_print writes for the defaults. */
static void test_shipped_file_matches_defaults(void **state)
{
    (void)state;
    struct cfg c;
    cfg_defaults(&c);
    size_t len;
    char *text = print_to_string(&c, &len);
    if (getenv("BNN_WRITE_CONF")) {
        FILE *f = fopen(CONF_PATH, "w");
        assert_non_null(f);
        fwrite(text, 1, len, f);
        fclose(f);
    }
    FILE *f = fopen(CONF_PATH, "rb");
    if (!f)
        fail_msg("cannot open %s (run from the repository root)", CONF_PATH);
    static char file[1 << 16];
    size_t n = fread(file, 1, sizeof file, f);
    fclose(f);
    if (n != len || memcmp(file, text, len) != 0)
        fail_msg("%s differs from cfg_print of the defaults; regenerate with "
                 "BNN_WRITE_CONF=1 build/tests/test_config",
                 CONF_PATH);
    for (size_t i = 0; i < cfg_key_count(); i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "\n%s = ", cfg_key_name(i));
        if (!strstr(text, needle))
            fail_msg("%s does not set key %s", CONF_PATH, cfg_key_name(i));
    }
    struct cfg d;
    char err[CFG_ERR_LEN];
    cfg_defaults(&d);
    d.port = 1;
    assert_int_equal(cfg_load_file(&d, CONF_PATH, err), 0);
    assert_memory_equal(&c, &d, sizeof c);
    free(text);
}

static void test_values_accepted(void **state)
{
    (void)state;
    struct cfg c;
    char err[CFG_ERR_LEN];
    cfg_defaults(&c);
    struct {
        const char *key, *value;
    } ok[] = {
        {"port", "0"},
        {"port", "65535"},
        {"workers", "256"},
        {"max-samples", "5"},
        {"default_samples", "5"},
        {"max_body_bytes", "2MiB"},
        {"default_interval", "0.5"},
        {"default_interval", "1e-3"},
        {"uncertain_entropy", "0"},
        {"uncertain_entropy", "model"},
        {"uncertain_epistemic", "2.5"},
        {"default_set_coverage", "0.99"},
        {"access_log", "no"},
        {"log_format", "json"},
        {"log_level", "debug"},
        {"overload_status", "429"},
        {"host", "::"},
        {"cors_origins", "https://a.example, https://b.example"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (cfg_set(&c, ok[i].key, ok[i].value, err))
            fail_msg("%s = '%s': expected success, got '%s'", ok[i].key, ok[i].value, err);
    assert_int_equal(c.port, 65535);
    assert_int_equal(c.max_samples, 5);
    assert_int_equal(c.max_body_bytes, 2 << 20);
    assert_true(c.default_interval == 1e-3);
    assert_int_equal(c.access_log, 0);
    assert_string_equal(c.log_format, "json");
    assert_string_equal(c.log_level, "debug");

    struct {
        const char *text;
        size_t bytes;
    } sizes[] = {{"1024", 1024},    {"4KiB", 4096},    {"4k", 4096},       {"4kB", 4000},  {"3MB", 3000000},
                 {"1MiB", 1 << 20}, {"1mib", 1 << 20}, {"1GiB", 1u << 30}, {"2048B", 2048}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (cfg_set(&c, "max_body_bytes", sizes[i].text, err))
            fail_msg("max_body_bytes = %s: %s", sizes[i].text, err);
        assert_int_equal(c.max_body_bytes, sizes[i].bytes);
    }
    const char *yes[] = {"true", "TRUE", "1", "yes", "on"}, *no[] = {"false", "0", "No", "off"};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(cfg_set(&c, "access_log", yes[i], err), 0);
        assert_int_equal(c.access_log, 1);
    }
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(cfg_set(&c, "access_log", no[i], err), 0);
        assert_int_equal(c.access_log, 0);
    }
}

/* Every bad value is refused, c is left unchanged, and the message names the
 * key and quotes the value. */
static void test_values_refused(void **state)
{
    (void)state;
    struct {
        const char *key, *value;
    } bad[] = {
        {"port", ""},
        {"port", "65536"},
        {"port", "-1"},
        {"port", "80x"},
        {"port", " 80"},
        {"port", "80 "},
        {"port", "0x50"},
        {"port", "+80"},
        {"port", "99999999999999999999999"},
        {"workers", "257"},
        {"http_threads", "0"},
        {"queue_depth", "0"},
        {"queue_cost", "0"},
        {"queue_cost", "4000000001"},
        {"max_samples_weights", "0"},
        {"weights_pass_cost", "100001"},
        {"overload_status", "200"},
        {"overload_status", "600"},
        {"default_samples", "0"},
        {"max_samples", "1.5"},
        {"default_interval", "0"},
        {"default_interval", "1"},
        {"default_interval", "nan"},
        {"default_interval", "inf"},
        {"default_interval", "0.5x"},
        {"default_interval", "0x1p-1"},
        {"default_interval", ""},
        {"uncertain_entropy", "-0.1"},
        {"uncertain_entropy", "Model"},
        {"uncertain_epistemic", "11"},
        {"uncertain_epistemic", ""},
        {"default_set_coverage", "1"},
        {"max_body_bytes", "1.5MiB"},
        {"max_body_bytes", "1 MiB"},
        {"max_body_bytes", "10"},
        {"max_body_bytes", "2GiB"},
        {"max_body_bytes", "1TiB"},
        {"max_body_bytes", "99999999999999999999GiB"},
        {"max_image_side", "0"},
        {"connection_memory_limit", "1k"},
        {"access_log", "maybe"},
        {"access_log", ""},
        {"log_format", "xml"},
        {"log_format", "JSON"},
        {"log_level", "verbose"},
        {"job_timeout_ms", "0"},
        {"drain_timeout", "3601"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cfg c, before;
        char err[CFG_ERR_LEN] = "";
        cfg_defaults(&c);
        before = c;
        int rc = cfg_set(&c, bad[i].key, bad[i].value, err);
        if (rc == 0)
            fail_msg("%s = '%s': expected an error, got success", bad[i].key, bad[i].value);
        expect_fail(rc, err, bad[i].key, NULL);
        if (bad[i].value[0] && !strchr(bad[i].value, ' ') && strlen(bad[i].value) < 20)
            expect_fail(rc, err, bad[i].key, bad[i].value);
        assert_memory_equal(&c, &before, sizeof c);
    }
    /* Strings: length and control characters. */
    struct cfg c;
    char err[CFG_ERR_LEN];
    char long_host[300];
    memset(long_host, 'h', sizeof long_host - 1);
    long_host[sizeof long_host - 1] = '\0';
    cfg_defaults(&c);
    expect_fail(cfg_set(&c, "host", long_host, err), err, "host", "255");
    expect_fail(cfg_set(&c, "model", "a\nb", err), err, "model", "control");
    expect_fail(cfg_set(&c, "no_such_key", "1", err), err, "no_such_key", "unknown");
}

static void test_file_syntax(void **state)
{
    (void)state;
    static const char text[] = "# a comment\n"
                               "\n"
                               "   # indented comment\n"
                               "port=9001\n"
                               "  workers   =   3   # trailing comment\n"
                               "model = /srv/models/a#b.safetensors\n"
                               "host = \"  spaced \\\"host\\\" # not a comment  \" # comment\n"
                               "cors_origins =\n"
                               "max_body_bytes = 2MiB\r\n"
                               "log_format = json";
    struct cfg c;
    char err[CFG_ERR_LEN] = "";
    cfg_defaults(&c);
    if (cfg_parse_text(&c, text, sizeof text - 1, "t.conf", err))
        fail_msg("parse failed: %s", err);
    assert_int_equal(c.port, 9001);
    assert_int_equal(c.workers, 3);
    assert_string_equal(c.model, "/srv/models/a#b.safetensors");
    assert_string_equal(c.host, "  spaced \"host\" # not a comment  ");
    assert_string_equal(c.cors_origins, "");
    assert_int_equal(c.max_body_bytes, 2 << 20);
    assert_string_equal(c.log_format, "json");

    struct {
        const char *text, *needle1, *needle2;
    } bad[] = {
        {"port = 1\nportt = 2\n", "t.conf:2", "portt"},
        {"# ok\n\nworkers = many\n", "t.conf:3", "workers"},
        {"just words\n", "t.conf:1", "key = value"},
        {"= 5\n", "t.conf:1", "key = value"},
        {"host = \"unterminated\n", "t.conf:1", "unterminated"},
        {"host = \"a\" junk\n", "t.conf:1", "junk"},
        {"host = \"a\\nb\"\n", "t.conf:1", "escaped"},
        {"port = 80\nport = 8o\n", "t.conf:2", "port"},
        {"BNN_SERVE_PORT = 1\n", "t.conf:1", "BNN_SERVE_PORT"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg_defaults(&c);
        int rc = cfg_parse_text(&c, bad[i].text, strlen(bad[i].text), "t.conf", err);
        expect_fail(rc, err, bad[i].needle1, bad[i].needle2);
    }
    /* A NUL inside the text is not silently accepted. */
    static const char nul[] = "host = ab\0c\n";
    cfg_defaults(&c);
    assert_int_not_equal(cfg_parse_text(&c, nul, sizeof nul - 1, "t.conf", err), 0);
}

static void test_load_file(void **state)
{
    (void)state;
    struct cfg c;
    char err[CFG_ERR_LEN];
    cfg_defaults(&c);
    expect_fail(cfg_load_file(&c, "/nonexistent/bnn.conf", err), err, "/nonexistent/bnn.conf",
                "No such file");
    char path[] = "/tmp/test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("max_samples = 77\ndefault_samples = 7\nbogus = 1\n", f);
    fclose(f);
    expect_fail(cfg_load_file(&c, path, err), err, path, ":3: unknown key 'bogus'");
    assert_int_equal(c.max_samples, 77); /* lines before the error applied */
    unlink(path);
}

/* envp as main gets it (char *const *), from string literals. */
static char **make_env(const char *const *vars)
{
    size_t n = 0;
    while (vars[n])
        n++;
    char **env = calloc(n + 1, sizeof *env);
    assert_non_null(env);
    for (size_t i = 0; i < n; i++)
        env[i] = strdup(vars[i]);
    return env;
}

static void free_env(char **env)
{
    for (size_t i = 0; env[i]; i++)
        free(env[i]);
    free(env);
}

static int apply_env(struct cfg *c, const char *const *vars, char err[CFG_ERR_LEN])
{
    char **env = make_env(vars);
    int rc = cfg_apply_env(c, env, err);
    free_env(env);
    return rc;
}

static void test_env(void **state)
{
    (void)state;
    struct cfg c;
    char err[CFG_ERR_LEN] = "";
    cfg_defaults(&c);
    const char *env_ok[] = {"HOME=/root",
                            "BNN_SERVE_PORT=9100",
                            "BNN_SERVE_LOG_FORMAT=json",
                            "PATH=/usr/bin:/bin",
                            "BNN_SERVE_MAX_BODY_BYTES=256KiB",
                            "NOT_BNN_SERVE_PORT=1",
                            NULL};
    if (apply_env(&c, env_ok, err))
        fail_msg("env failed: %s", err);
    assert_int_equal(c.port, 9100);
    assert_string_equal(c.log_format, "json");
    assert_int_equal(c.max_body_bytes, 256 << 10);

    const char *env_unknown[] = {"BNN_SERVE_PROT=1", NULL};
    expect_fail(apply_env(&c, env_unknown, err), err, "BNN_SERVE_PROT", "unknown");
    /* Not a key: a file path in the environment would be silently ignored. */
    const char *env_config[] = {"BNN_SERVE_CONFIG=/etc/bnn.conf", NULL};
    expect_fail(apply_env(&c, env_config, err), err, "BNN_SERVE_CONFIG", "unknown");
    const char *env_empty[] = {"BNN_SERVE_=1", NULL};
    expect_fail(apply_env(&c, env_empty, err), err, "BNN_SERVE_", "unknown");
    const char *env_lower[] = {"BNN_SERVE_port=1", NULL};
    expect_fail(apply_env(&c, env_lower, err), err, "BNN_SERVE_port", "unknown");
    const char *env_bad[] = {"BNN_SERVE_WORKERS=-2", NULL};
    expect_fail(apply_env(&c, env_bad, err), err, "BNN_SERVE_WORKERS", "workers");
    expect_fail(apply_env(&c, env_bad, err), err, "'-2'", NULL);
    assert_int_equal(cfg_apply_env(&c, NULL, err), 0);
}

/* defaults < file < environment < flags (cfg_set, applied last by main). */
static void test_precedence(void **state)
{
    (void)state;
    struct cfg c;
    char err[CFG_ERR_LEN];
    cfg_defaults(&c);
    static const char file[] = "port = 1001\nworkers = 2\nqueue_depth = 9\n";
    assert_int_equal(cfg_parse_text(&c, file, sizeof file - 1, "f", err), 0);
    const char *env[] = {"BNN_SERVE_PORT=1002", "BNN_SERVE_WORKERS=3", NULL};
    assert_int_equal(apply_env(&c, env, err), 0);
    assert_int_equal(cfg_set(&c, "port", "1003", err), 0);
    assert_int_equal(c.port, 1003);         /* flag wins */
    assert_int_equal(c.workers, 3);         /* env over file */
    assert_int_equal(c.queue_depth, 9);     /* file over default */
    assert_int_equal(c.max_samples, 10000); /* default */
}

static void test_validate(void **state)
{
    (void)state;
    struct cfg c;
    char err[CFG_ERR_LEN];
    cfg_defaults(&c);
    assert_int_equal(cfg_set(&c, "max_samples", "50", err), 0);
    expect_fail(cfg_validate(&c, err), err, "default_samples", "50");
    assert_int_equal(cfg_set(&c, "default_samples", "50", err), 0);
    assert_int_equal(cfg_validate(&c, err), 0);
    cfg_set(&c, "overload_status", "500", err);
    expect_fail(cfg_validate(&c, err), err, "overload_status", "500");
    cfg_set(&c, "overload_status", "429", err);
    assert_int_equal(cfg_validate(&c, err), 0);
    cfg_set(&c, "host", "", err);
    expect_fail(cfg_validate(&c, err), err, "host", NULL);
    cfg_set(&c, "host", "0.0.0.0", err);
    cfg_set(&c, "connection_limit", "10", err);
    cfg_set(&c, "per_ip_connection_limit", "11", err);
    expect_fail(cfg_validate(&c, err), err, "per_ip_connection_limit", "10");
}

/* Unusual but valid values survive cfg_print -> cfg_parse_text unchanged. */
static void test_print_parse_round_trip(void **state)
{
    (void)state;
    struct cfg c;
    char err[CFG_ERR_LEN];
    cfg_defaults(&c);
    struct {
        const char *key, *value;
    } set[] = {
        {"host", " lead and trail "},
        {"model", "/m/#hash\"quote\\back.safetensors"},
        {"web_root", "\"starts with a quote"},
        {"cors_origins", "*"},
        {"port", "0"},
        {"default_interval", "0.1234567890123456789"},
        {"uncertain_entropy", "0.30000000000000004"},
        {"default_set_coverage", "0.9"},
        {"max_body_bytes", "1000001"},
        {"connection_memory_limit", "3MiB"},
        {"log_format", "json"},
        {"log_level", "error"},
        {"access_log", "false"},
        {"overload_status", "429"},
    };
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
        if (cfg_set(&c, set[i].key, set[i].value, err))
            fail_msg("%s: %s", set[i].key, err);
    size_t len;
    char *text = print_to_string(&c, &len);
    struct cfg d;
    cfg_defaults(&d);
    if (cfg_parse_text(&d, text, len, "printed", err))
        fail_msg("printed config does not parse: %s\n%s", err, text);
    assert_string_equal(d.host, c.host);
    assert_string_equal(d.model, c.model);
    assert_string_equal(d.web_root, c.web_root);
    assert_true(d.default_interval == c.default_interval);
    assert_true(d.uncertain_entropy == c.uncertain_entropy);
    assert_true(isnan(d.uncertain_epistemic) && isnan(c.uncertain_epistemic)); /* "model" */
    assert_int_equal(d.max_body_bytes, 1000001);
    assert_memory_equal(&c, &d, sizeof c);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_shipped_file_matches_defaults),
        cmocka_unit_test(test_values_accepted),
        cmocka_unit_test(test_values_refused),
        cmocka_unit_test(test_file_syntax),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_print_parse_round_trip),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}

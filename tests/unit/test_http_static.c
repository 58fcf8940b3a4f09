/* test_http_static.c - static files and CORS (http_static.h) without a
 * server: a URL resolves only to a regular file inside the root (no "..",
 * hidden segments, backslashes, or symlinks leading out), the media type
 * and cache policy of what is read, and which Origin headers are echoed. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_static.h"

static char tmp[PATH_MAX];

static void write_file(const char *rel, const char *text)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/bnn-static-XXXXXX");
    if (!mkdtemp(tmp))
        return -1;
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/web", tmp);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/web/sub", tmp);
    mkdir(path, 0700);
    write_file("secret.txt", "outside");
    write_file("web/index.html", "<!doctype html>");
    write_file("web/app.js", "1;");
    write_file("web/.hidden", "no");
    write_file("web/sub/data.bin", "x");
    char target[PATH_MAX + 64];
    snprintf(target, sizeof target, "%s/secret.txt", tmp);
    snprintf(path, sizeof path, "%s/web/escape.txt", tmp);
    return symlink(target, path);
}

static int teardown(void **state)
{
    (void)state;
    static const char *const rel[] = {"web/escape.txt", "web/sub/data.bin", "web/.hidden", "web/app.js",
                                      "web/index.html", "secret.txt",       "web/sub",     "web"};
    char path[PATH_MAX + 64];
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp, rel[i]);
        remove(path);
    }
    return rmdir(tmp);
}

static void test_resolve(void **state)
{
    (void)state;
    char root[PATH_MAX + 8], err[256], out[PATH_MAX];
    snprintf(root, sizeof root, "%s/web", tmp);
    struct http_files f;
    assert_int_equal(http_files_init(&f, root, err, sizeof err), 0);
    static const struct {
        const char *url;
        int ok;
    } rows[] = {
        {"/", 1},
        {"/index.html", 1},
        {"/app.js", 1},
        {"/sub/data.bin", 1},
        {"/sub", 0},           /* a directory */
        {"/missing.css", 0},   /* no such file */
        {"/../secret.txt", 0}, /* out of the root */
        {"/sub/../app.js", 0}, /* any dot segment */
        {"/.hidden", 0},       /* hidden */
        {"/escape.txt", 0},    /* a symlink leading out */
        {"/sub//data.bin", 0}, /* empty segment */
        {"/sub\\data.bin", 0}, /* backslash */
        {"app.js", 0},         /* not absolute */
        {"/app.js\x01", 0},    /* unprintable */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int rc = http_files_resolve(&f, rows[i].url, out);
        if ((rc == 0) != rows[i].ok)
            fail_msg("%s: expected %s, got rc %d", rows[i].url, rows[i].ok ? "a file" : "no file", rc);
    }
    assert_int_equal(http_files_resolve(&f, "/", out), 0);
    char *body;
    size_t len;
    const char *type, *cache;
    assert_int_equal(http_files_read(out, &body, &len, &type, &cache), 0);
    assert_int_equal(len, strlen("<!doctype html>"));
    assert_memory_equal(body, "<!doctype html>", len);
    assert_string_equal(type, "text/html; charset=utf-8");
    assert_string_equal(cache, "no-cache");
    free(body);
    assert_int_equal(http_files_resolve(&f, "/app.js", out), 0);
    assert_int_equal(http_files_read(out, &body, &len, &type, &cache), 0);
    assert_string_equal(type, "text/javascript; charset=utf-8");
    assert_string_equal(cache, "public, max-age=300");
    free(body);
    assert_int_equal(http_files_resolve(&f, "/sub/data.bin", out), 0);
    assert_int_equal(http_files_read(out, &body, &len, &type, &cache), 0);
    assert_string_equal(type, "application/octet-stream");
    free(body);

    /* A missing root: everything is 404, and the reason is given. */
    assert_int_equal(http_files_init(&f, "/nonexistent/web", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/web"));
    assert_int_equal(http_files_resolve(&f, "/", out), -1);
}

static void test_cors(void **state)
{
    (void)state;
    struct http_cors c;
    char out[HTTP_ORIGIN_LEN];
    assert_int_equal(http_cors_init(&c, ""), 0);
    http_cors_match(&c, "http://a.example", out);
    assert_string_equal(out, "");
    http_cors_free(&c);

    assert_int_equal(http_cors_init(&c, " http://a.example , http://b.example:8080,,"), 0);
    assert_int_equal(c.n, 2);
    http_cors_match(&c, "http://b.example:8080", out);
    assert_string_equal(out, "http://b.example:8080");
    http_cors_match(&c, "http://a.example", out);
    assert_string_equal(out, "http://a.example");
    http_cors_match(&c, "http://a.example.evil", out);
    assert_string_equal(out, "");
    http_cors_match(&c, NULL, out);
    assert_string_equal(out, "");
    http_cors_free(&c);

    assert_int_equal(http_cors_init(&c, "*"), 0);
    http_cors_match(&c, "http://anything", out);
    assert_string_equal(out, "*");
    http_cors_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_cors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

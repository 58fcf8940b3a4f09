/* test_model_path.c - model_path_resolve on real files in a temporary
 * directory: a file as it is (also through a link), a directory's only
 * *.safetensors file (hidden entries, subdirectories and other files beside
 * it), and every refusal with the message naming the directory and what
 * it holds, in sorted order; a result that does not fit.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "model_path.h"

#define PATH_LEN 4096

struct fixture {
    char root[64];
};

static void touch(const char *dir, const char *name)
{
    char p[PATH_LEN];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
}

/* A fresh subdirectory of the fixture's root, its path in out. */
static void subdir(const struct fixture *fx, const char *name, char out[PATH_LEN])
{
    snprintf(out, PATH_LEN, "%s/%s", fx->root, name);
    assert_int_equal(mkdir(out, 0755), 0);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    snprintf(fx->root, sizeof fx->root, "/tmp/bnn-model-path-XXXXXX");
    if (!mkdtemp(fx->root)) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    int rc = nftw(fx->root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return rc;
}

static void expect_ok(const char *path, const char *want)
{
    char out[PATH_LEN], err[MODEL_PATH_ERR_LEN] = "";
    if (model_path_resolve(out, sizeof out, path, err) != 0)
        fail_msg("'%s': expected '%s', got the error '%s'", path, want, err);
    if (strcmp(out, want) != 0)
        fail_msg("'%s': expected '%s', got '%s'", path, want, out);
}

/* The error for path must contain every needle, in this order. */
static void expect_err(const char *path, ...)
{
    char out[PATH_LEN] = "unchanged", err[MODEL_PATH_ERR_LEN] = "";
    if (model_path_resolve(out, sizeof out, path, err) == 0)
        fail_msg("'%s': expected an error, got '%s'", path ? path : "(null)", out);
    assert_string_equal(out, "");
    va_list ap;
    va_start(ap, path);
    const char *at = err;
    for (const char *needle; (needle = va_arg(ap, const char *)) != NULL;) {
        const char *hit = strstr(at, needle);
        if (!hit)
            fail_msg("error '%s' lacks '%s' (after '%s')", err, needle, at);
        at = hit + strlen(needle);
    }
    va_end(ap);
}

static void test_file_as_is(void **state)
{
    struct fixture *fx = *state;
    char p[PATH_LEN], link[PATH_LEN];
    touch(fx->root, "weights.safetensors");
    touch(fx->root, "any-name.bin"); /* the loader judges the contents, not the name */
    snprintf(p, sizeof p, "%s/weights.safetensors", fx->root);
    expect_ok(p, p);
    snprintf(p, sizeof p, "%s/any-name.bin", fx->root);
    expect_ok(p, p);
    snprintf(link, sizeof link, "%s/link.safetensors", fx->root);
    assert_int_equal(symlink("weights.safetensors", link), 0);
    expect_ok(link, link); /* not canonicalised */
}

static void test_directory_with_one_model(void **state)
{
    struct fixture *fx = *state;
    char dir[PATH_LEN], want[PATH_LEN + 32], slash[PATH_LEN + 2];
    subdir(fx, "models", dir);
    touch(dir, "mnist-bnn.safetensors");
    snprintf(want, sizeof want, "%s/mnist-bnn.safetensors", dir);
    expect_ok(dir, want);
    snprintf(slash, sizeof slash, "%s/", dir);
    expect_ok(slash, want); /* no "//" */
    /* What a storage initializer or a person leaves beside it. */
    touch(dir, "README.md");
    touch(dir, "config.json");
    touch(dir, ".partial.safetensors");
    touch(dir, "model.safetensors.sha256");
    char sub[PATH_LEN + 32];
    snprintf(sub, sizeof sub, "%s/old.safetensors", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    expect_ok(dir, want);
}

static void test_directory_model_through_link(void **state)
{
    struct fixture *fx = *state;
    char dir[PATH_LEN], link[PATH_LEN + 32], target[PATH_LEN + 32];
    subdir(fx, "linked", dir);
    touch(fx->root, "elsewhere.safetensors");
    snprintf(target, sizeof target, "%s/elsewhere.safetensors", fx->root);
    snprintf(link, sizeof link, "%s/model.safetensors", dir);
    assert_int_equal(symlink(target, link), 0);
    expect_ok(dir, link);
}

static void test_root_directory(void **state)
{
    (void)state;
    /* "/" keeps its one slash; whatever / holds, the answer names it. */
    char out[PATH_LEN], err[MODEL_PATH_ERR_LEN];
    if (model_path_resolve(out, sizeof out, "/", err) != 0)
        assert_non_null(strstr(err, "directory '/' holds"));
    else
        assert_true(out[0] == '/' && out[1] != '/');
}

static void test_empty_directory(void **state)
{
    struct fixture *fx = *state;
    char dir[PATH_LEN];
    subdir(fx, "empty", dir);
    expect_err(dir, "directory '", dir, "' holds no .safetensors file (it is empty)", NULL);
    touch(dir, ".hidden.safetensors"); /* hidden entries do not count */
    expect_err(dir, dir, "(it is empty)", NULL);
}

static void test_directory_without_model_lists_what_it_holds(void **state)
{
    struct fixture *fx = *state;
    char dir[PATH_LEN], sub[PATH_LEN + 32];
    subdir(fx, "nomodel", dir);
    touch(dir, "model.pt");
    touch(dir, "config.json");
    snprintf(sub, sizeof sub, "%s/weights.safetensors", dir); /* a directory, not a file */
    assert_int_equal(mkdir(sub, 0755), 0);
    expect_err(dir, "directory '", dir,
               "' holds no .safetensors file (found: config.json, model.pt, weights.safetensors/)", NULL);
    /* Sorted and bounded: the four smallest names, then a count. */
    const char *names[] = {"f.txt", "b.txt", "h.txt", "a.txt", "e.txt", "c.txt", "g.txt"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        touch(dir, names[i]);
    expect_err(dir, "(found: a.txt, b.txt, c.txt, config.json and 6 more)", NULL);
}

static void test_directory_with_several_models(void **state)
{
    struct fixture *fx = *state;
    char dir[PATH_LEN];
    subdir(fx, "two", dir);
    touch(dir, "b.safetensors");
    touch(dir, "a.safetensors");
    touch(dir, "notes.txt");
    expect_err(dir, "directory '", dir, "' holds 2 .safetensors files (a.safetensors, b.safetensors)",
               "keep one, or name the file", NULL);
    for (char c = 'c'; c <= 'h'; c++) {
        char name[32];
        snprintf(name, sizeof name, "%c.safetensors", c);
        touch(dir, name);
    }
    expect_err(
        dir,
        "holds 8 .safetensors files (a.safetensors, b.safetensors, c.safetensors, d.safetensors and 4 more)",
        NULL);
}

static void test_missing_and_odd_paths(void **state)
{
    struct fixture *fx = *state;
    char p[PATH_LEN];
    snprintf(p, sizeof p, "%s/no-such-dir", fx->root);
    expect_err(p, "cannot access '", p, "': No such file or directory", NULL);
    snprintf(p, sizeof p, "%s/dangling.safetensors", fx->root);
    assert_int_equal(symlink("nowhere", p), 0);
    expect_err(p, "cannot access '", p, "'", NULL);
    expect_err("/dev/null", "'/dev/null' is neither a regular file nor a directory", NULL);
    expect_err("", "empty model path", NULL);
    expect_err(NULL, "empty model path", NULL);
}

static void test_dangling_link_in_directory_is_not_a_model(void **state)
{
    struct fixture *fx = *state;
    char dir[PATH_LEN], link[PATH_LEN + 32];
    subdir(fx, "dangling", dir);
    snprintf(link, sizeof link, "%s/model.safetensors", dir);
    assert_int_equal(symlink("nowhere.safetensors", link), 0);
    expect_err(dir, "holds no .safetensors file (found: model.safetensors)", NULL);
}

static void test_result_must_fit(void **state)
{
    struct fixture *fx = *state;
    char dir[PATH_LEN], file[PATH_LEN + 32], err[MODEL_PATH_ERR_LEN];
    subdir(fx, "fit", dir);
    touch(dir, "m.safetensors");
    snprintf(file, sizeof file, "%s/m.safetensors", dir);
    size_t need = strlen(file) + 1;
    char *out = malloc(need);
    assert_non_null(out);
    assert_int_equal(model_path_resolve(out, need, dir, err), 0); /* exactly enough */
    assert_string_equal(out, file);
    assert_int_equal(model_path_resolve(out, need - 1, dir, err), -1);
    assert_non_null(strstr(err, "path longer than"));
    assert_string_equal(out, "");
    assert_int_equal(model_path_resolve(out, need - 1, file, err), -1); /* a file too */
    assert_non_null(strstr(err, "path longer than"));
    free(out);
}

static void test_long_model_name_is_not_cut(void **state)
{
    struct fixture *fx = *state;
    char dir[PATH_LEN], name[256], want[PATH_LEN + 256];
    subdir(fx, "long", dir);
    memset(name, 'm', 200);
    snprintf(name + 200, sizeof name - 200, ".safetensors");
    touch(dir, name);
    snprintf(want, sizeof want, "%s/%s", dir, name);
    expect_ok(dir, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_as_is, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_with_one_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_model_through_link, setup, teardown),
        cmocka_unit_test(test_root_directory),
        cmocka_unit_test_setup_teardown(test_empty_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_without_model_lists_what_it_holds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_with_several_models, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_odd_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dangling_link_in_directory_is_not_a_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_result_must_fit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_model_name_is_not_cut, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

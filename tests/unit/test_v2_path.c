/* test_v2_path.c - which V2 path a URL names (v2_path.h), as a table:
 * every served path, with and without a version, the repository calls,
 * and what is under /v2 but not served (empty or too long segments, extra
 * or missing ones) or not under /v2 at all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "v2_path.h"

static void test_paths(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        enum v2_path_kind kind;
        const char *model, *version;
    } rows[] = {
        {"/v2", V2_PATH_SERVER, "", ""},
        {"/v2/", V2_PATH_SERVER, "", ""},
        {"/v2/health/live", V2_PATH_LIVE, "", ""},
        {"/v2/health/ready", V2_PATH_READY, "", ""},
        {"/v2/health/other", V2_PATH_UNKNOWN, "", ""},
        {"/v2/models/mnist-bnn", V2_PATH_MODEL, "mnist-bnn", ""},
        {"/v2/models/mnist-bnn/ready", V2_PATH_MODEL_READY, "mnist-bnn", ""},
        {"/v2/models/mnist-bnn/infer", V2_PATH_INFER, "mnist-bnn", ""},
        {"/v2/models/m/versions/0123456789ab", V2_PATH_MODEL, "m", "0123456789ab"},
        {"/v2/models/m/versions/7/ready", V2_PATH_MODEL_READY, "m", "7"},
        {"/v2/models/m/versions/7/infer", V2_PATH_INFER, "m", "7"},
        {"/v2/models/ready", V2_PATH_MODEL, "ready", ""}, /* a model may be called "ready" */
        {"/v2/models/m/versions", V2_PATH_UNKNOWN, "", ""},
        {"/v2/models/m/infer/x", V2_PATH_UNKNOWN, "", ""},
        {"/v2/models/m/", V2_PATH_UNKNOWN, "", ""},
        {"/v2/models//infer", V2_PATH_UNKNOWN, "", ""},
        {"/v2/models", V2_PATH_UNKNOWN, "", ""},
        {"/v2/repository/index", V2_PATH_REPO_INDEX, "", ""},
        {"/v2/repository/models/m/load", V2_PATH_REPO_LOAD, "m", ""},
        {"/v2/repository/models/m/unload", V2_PATH_REPO_UNLOAD, "m", ""},
        {"/v2/repository/models/m/delete", V2_PATH_UNKNOWN, "", ""},
        {"/v2x", V2_PATH_NONE, "", ""},
        {"/v1/model", V2_PATH_NONE, "", ""},
        {"/", V2_PATH_NONE, "", ""},
        {"/v2/a/b/c/d/e/f/g", V2_PATH_UNKNOWN, "", ""},
        /* a segment of V2_NAME_LEN bytes is too long */
        {"/v2/models/0123456789012345678901234567890123456789012345678901234567890123", V2_PATH_UNKNOWN, "",
         ""},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct v2_path p;
        enum v2_path_kind k = v2_path_parse(&p, rows[i].path);
        if (k != rows[i].kind || p.kind != k)
            fail_msg("%s: expected kind %d, got %d", rows[i].path, rows[i].kind, k);
        assert_string_equal(p.model, rows[i].model);
        assert_string_equal(p.version, rows[i].version);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

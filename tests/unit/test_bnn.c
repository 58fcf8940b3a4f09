/* test_bnn.c - the model container: shapes (1 layer, the shipped 4, the
 * maximum 8, and the refused ones), parameter count, architecture string,
 * metadata, variances, status names, and allocation faults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "bnn.h"
#include "infer.h"
#include "fault.h"

static void test_shipped_shape(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN], arch[64];
    const size_t dims[] = {784, 784, 256, 256, 10};
    struct bnn_model *m = bnn_model_new(dims, 4, err);
    assert_non_null(m);
    assert_int_equal(bnn_model_param_count(m), 1769524); /* DESIGN.md: 2 x 884,762 */
    assert_int_equal(bnn_model_n_in(m), 784);
    assert_int_equal(bnn_model_n_classes(m), 10);
    assert_string_equal(bnn_model_arch(m, arch, sizeof arch), "784-784-256-256-10");
    /* new model: zeros and unit sigmas, views do not overlap */
    for (size_t l = 0; l < 4; l++) {
        const struct bnn_layer *L = &m->layers[l];
        assert_int_equal(L->n_in, dims[l]);
        assert_int_equal(L->n_out, dims[l + 1]);
        assert_true(L->w_sigma == L->w_mu + L->n_in * L->n_out);
        assert_true(L->b_var + L->n_out <= m->storage + 3 * 884762);
        assert_float_equal(L->w_mu[L->n_in * L->n_out - 1], 0.0, 0.0);
        assert_float_equal(L->w_var[0], 1.0, 0.0);
        assert_float_equal(L->b_sigma[L->n_out - 1], 1.0, 0.0);
    }
    assert_true(m->layers[3].b_var + 10 == m->storage + 3 * 884762);
    /* a truncated architecture buffer stays terminated */
    char small[8];
    bnn_model_arch(m, small, sizeof small);
    assert_string_equal(small, "784-784");
    bnn_model_free(m);
}

static void test_shapes(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    const size_t one[] = {3, 2};
    struct bnn_model *m = bnn_model_new(one, 1, err);
    assert_non_null(m);
    assert_int_equal(bnn_model_param_count(m), 2 * (6 + 2));
    bnn_model_free(m);
    const size_t eight[] = {2, 2, 2, 2, 2, 2, 2, 2, 2};
    m = bnn_model_new(eight, BNN_MAX_LAYERS, err);
    assert_non_null(m);
    assert_int_equal(bnn_model_param_count(m), 8 * 2 * 6);
    bnn_model_free(m);

    static const struct {
        size_t dims[10], n;
        const char *expect;
    } bad[] = {
        {{3}, 0, "layer count must be 1..8, got 0"},  {{2, 2, 2, 2, 2, 2, 2, 2, 2, 2}, 9, "got 9"},
        {{784, 0, 10}, 2, "layer 0: widths must be"}, {{0, 5}, 1, "got 0 -> 5"},
        {{784, 17}, 1, "<= 16 classes, got 17"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_null(bnn_model_new(bad[i].dims, bad[i].n, err));
        if (!strstr(err, bad[i].expect))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, bad[i].expect);
    }
    bnn_model_free(NULL);
}

static void test_meta_and_var(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    const size_t dims[] = {2, 3};
    struct bnn_model *m = bnn_model_new(dims, 1, err);
    assert_null(bnn_meta_get(m, "format"));
    assert_int_equal(bnn_meta_set(m, "format", "x"), BNN_OK);
    assert_int_equal(bnn_meta_set(m, "beta", "1"), BNN_OK);
    assert_int_equal(bnn_meta_set(m, "format", "bnn-serve/1"), BNN_OK); /* replaces */
    assert_int_equal(m->n_meta, 2);
    assert_string_equal(bnn_meta_get(m, "format"), "bnn-serve/1");
    assert_string_equal(bnn_meta_get(m, "beta"), "1");
    assert_int_equal(bnn_meta_set(m, "empty", ""), BNN_OK);
    assert_string_equal(bnn_meta_get(m, "empty"), "");

    m->layers[0].w_sigma[4] = 0.5f;
    m->layers[0].b_sigma[2] = 3.0f;
    bnn_model_update_var(m);
    assert_float_equal(m->layers[0].w_var[4], 0.25, 0.0);
    assert_float_equal(m->layers[0].b_var[2], 9.0, 0.0);
    bnn_model_free(m);
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(bnn_status_name(BNN_OK), "ok");
    assert_string_equal(bnn_status_name(BNN_E_IO), "io");
    assert_string_equal(bnn_status_name(BNN_E_FORMAT), "format");
    assert_string_equal(bnn_status_name(BNN_E_INVALID), "invalid");
    assert_string_equal(bnn_status_name(BNN_E_NOMEM), "nomem");
    assert_string_equal(bnn_status_name(BNN_E_INTERNAL), "internal");
    assert_string_equal(bnn_status_name(99), "unknown");
}

static void test_alloc_faults(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    const size_t dims[] = {4, 3, 2};
    /* model_new: the struct, the storage, the cache of packed copies */
    for (long n = 1; n <= 3; n++) {
        bnn_fault_set(n);
        assert_null(bnn_model_new(dims, 2, err));
        assert_true(bnn_fault_fired());
        assert_non_null(strstr(err, "out of memory"));
    }
    bnn_fault_set(0);
    struct bnn_model *m = bnn_model_new(dims, 2, err);
    assert_non_null(m);
    /* meta_set: new key needs value, key and the grown array */
    for (long n = 1; n <= 3; n++) {
        bnn_fault_set(n);
        assert_int_equal(bnn_meta_set(m, "k", "v"), BNN_E_NOMEM);
        assert_int_equal(m->n_meta, 0);
    }
    bnn_fault_set(4);
    assert_int_equal(bnn_meta_set(m, "k", "v"), BNN_OK);
    assert_false(bnn_fault_fired());
    bnn_fault_set(1); /* replacing a value: only the copy can fail; the old one stays */
    assert_int_equal(bnn_meta_set(m, "k", "w"), BNN_E_NOMEM);
    assert_string_equal(bnn_meta_get(m, "k"), "v");
    bnn_fault_set(0);
    assert_int_equal(bnn_fault_ops(), 0);
    /* the weights packed for our GEMM (bnn_model_prepare, else the first
     * prediction): the copy's struct, then its storage; made once */
    if (strcmp(bnn_lrt_gemm_name(), "packed") == 0) {
        for (long n = 1; n <= 2; n++) {
            bnn_fault_set(n);
            assert_int_equal(bnn_model_prepare(m, err), BNN_E_NOMEM);
            assert_true(bnn_fault_fired());
            assert_non_null(strstr(err, "out of memory packing the weights"));
        }
        bnn_fault_set(3);
        assert_int_equal(bnn_model_prepare(m, err), BNN_OK);
        assert_false(bnn_fault_fired());
        bnn_fault_set(1);
        assert_int_equal(bnn_model_prepare(m, err), BNN_OK);
        assert_int_equal(bnn_fault_ops(), 0);
        bnn_fault_set(0);
    } else {
        assert_string_equal(bnn_lrt_gemm_name(), "openblas");
        assert_int_equal(bnn_model_prepare(m, err), BNN_OK);
    }
    bnn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_shape), cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_meta_and_var),  cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_alloc_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

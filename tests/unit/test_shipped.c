/* test_shipped.c - the weights in model/weights/: they load, have the
 * network's 1,769,524 parameters and the metadata the service and the
 * docs rely on, and reach >= 97.5 % accuracy on the 10,000 MNIST test images
 * at T = 100 - the figures recorded in the metadata are reproduced exactly.
 * Needs build/data/mnist (`make data`); missing data fails, never skips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnn.h"
#include "eval.h"
#include "idx.h"
#include "weights.h"

static const char *weights_path(void)
{
    const char *p = getenv("BNN_WEIGHTS");
    return p ? p : "model/weights/mnist-bnn.safetensors";
}

static const char *data_dir(void)
{
    const char *d = getenv("BNN_DATA");
    return d ? d : "build/data/mnist";
}

static int load_model(void **state)
{
    static struct bnn_model *m;
    char err[BNN_ERR_LEN];
    if (bnn_weights_load(&m, weights_path(), err)) {
        fprintf(stderr, "test_shipped: %s\n", err);
        return -1;
    }
    *state = m;
    return 0;
}

static int free_model(void **state)
{
    bnn_model_free(*state);
    return 0;
}

static void test_shape_and_metadata(void **state)
{
    struct bnn_model *m = *state;
    char arch[64];
    assert_int_equal(bnn_model_param_count(m), 1769524);
    assert_string_equal(bnn_model_arch(m, arch, sizeof arch), "784-784-256-256-10");
    assert_string_equal(bnn_meta_get(m, "format"), BNN_WEIGHTS_FORMAT);
    assert_string_equal(bnn_meta_get(m, "activation"), "relu");
    assert_string_equal(bnn_meta_get(m, "input"), "mnist-28x28-gray");
    const char *keys[] = {"recipe", "objective", "seed", "prior_scale", "beta", "kl_warmup_epochs", "lr",
                          "lr_schedule", "batch", "epochs_run", "stopping_epoch", "val_accuracy", "test_accuracy",
                          "test_nll", "test_ece", "train_seconds"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!bnn_meta_get(m, keys[i]))
            fail_msg("metadata key '%s' missing", keys[i]);
    /* every sigma is a proper scale */
    for (size_t l = 0; l < m->n_layers; l++) {
        const struct bnn_layer *ly = &m->layers[l];
        for (size_t i = 0; i < ly->n_in * ly->n_out; i++)
            if (!(ly->w_sigma[i] > 0 && isfinite(ly->w_mu[i])))
                fail_msg("layer %zu weight %zu: mu %g sigma %g", l, i, ly->w_mu[i], ly->w_sigma[i]);
    }
}

static void test_test_set_accuracy(void **state)
{
    struct bnn_model *m = *state;
    char err[BNN_ERR_LEN];
    struct idx_images im = {0};
    struct idx_labels lb = {0};
    if (idx_load_mnist(&im, &lb, data_dir(), "t10k", err))
        fail_msg("MNIST test set missing (run 'make data'): %s", err);
    assert_int_equal(im.n, 10000);
    struct eval_options o;
    eval_options_default(&o); /* T = 100, seed 1, LRT, 2 threads */
    struct eval_metrics e;
    if (eval_model(&e, NULL, NULL, m, im.pixels, lb.labels, im.n, &o, err))
        fail_msg("eval_model: %s", err);
    print_message("shipped weights, 10000 test images, T=100: accuracy %.4f nll %.4f ece %.4f brier %.5f "
                  "interval width %.4f\n", e.accuracy, e.nll, e.ece, e.brier, e.interval_width);
    if (e.accuracy < 0.975)
        fail_msg("expected test accuracy >= 0.975, got %.4f", e.accuracy);
    if (e.ece > 0.015)
        fail_msg("expected ECE <= 0.015, got %.4f", e.ece);
    /* the metadata's figures were measured the same way (T = 100, seed 1) */
    double meta_acc = atof(bnn_meta_get(m, "test_accuracy"));
    double meta_ece = atof(bnn_meta_get(m, "test_ece"));
    if (fabs(meta_acc - e.accuracy) > 6e-5 || fabs(meta_ece - e.ece) > 6e-5)
        fail_msg("metadata says accuracy %.4f ece %.4f, measured %.4f %.4f", meta_acc, meta_ece, e.accuracy, e.ece);
    idx_images_free(&im);
    idx_labels_free(&lb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_and_metadata),
        cmocka_unit_test(test_test_set_accuracy),
    };
    return cmocka_run_group_tests(tests, load_model, free_model);
}

/* test_shipped.c - the weights in model/weights/: they load, have the
 * design's network (784-784-256-256-10, 1,769,524 parameters) and the
 * metadata the service and the docs rely on, reach the project's bars
 * (>= 97.5 % accuracy, ECE <= 0.015) on the 10,000 MNIST test images, and
 * reproduce the test figures their metadata records.
 *
 * Only what is stable across builds and CPUs is compared: the figures are
 * re-measured as they were recorded (T = the metadata's test_samples, seed
 * 1, LRT) and must agree within a few images (accuracy) or a small margin
 * (NLL, ECE), since float rounding differs from one BLAS kernel to another
 * and can flip a borderline image. The expected figures come from the
 * metadata, so a retrained model needs no change here.
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

/* Accuracy may differ from the recorded one by this many test images;
 * NLL and ECE by these margins (the metadata rounds them to 4 decimals). */
#define ACCURACY_IMAGES 5
#define NLL_MARGIN 0.002
#define ECE_MARGIN 0.001

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

/* The metadata value of key as a number; fails the test when it is absent
 * or not a number. */
static double meta_number(const struct bnn_model *m, const char *key)
{
    const char *s = bnn_meta_get(m, key);
    char *end;
    if (!s)
        fail_msg("metadata key '%s' missing", key);
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v))
        fail_msg("metadata %s: expected a number, got '%s'", key, s);
    return v;
}

static void test_shape_and_metadata(void **state)
{
    struct bnn_model *m = *state;
    char arch[64];
    size_t params = 0;
    for (size_t l = 0; l < m->n_layers; l++) /* mean and scale of each weight and bias */
        params += 2 * (m->layers[l].n_in * m->layers[l].n_out + m->layers[l].n_out);
    const char *keys[] = {"format",       "architecture",  "activation",  "input",      "recipe",
                          "objective",    "seed",          "prior_scale", "beta",       "kl_warmup_epochs",
                          "lr",           "lr_schedule",   "batch",       "epochs_run", "stopping_epoch",
                          "val_accuracy", "test_accuracy", "test_nll",    "test_ece",   "test_samples",
                          "train_seconds"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!bnn_meta_get(m, keys[i]))
            fail_msg("metadata key '%s' missing", keys[i]);
    assert_string_equal(bnn_model_arch(m, arch, sizeof arch), "784-784-256-256-10");
    assert_int_equal(bnn_model_param_count(m), params);
    assert_int_equal(params, 1769524);
    assert_string_equal(bnn_meta_get(m, "format"), BNN_WEIGHTS_FORMAT);
    assert_string_equal(bnn_meta_get(m, "architecture"), arch);
    assert_string_equal(bnn_meta_get(m, "activation"), "relu");
    assert_string_equal(bnn_meta_get(m, "input"), "mnist-28x28-gray");
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
    /* measured as bnn-train and bnn-eval --write-meta record it */
    double meta_acc = meta_number(m, "test_accuracy"), meta_nll = meta_number(m, "test_nll");
    double meta_ece = meta_number(m, "test_ece"), meta_t = meta_number(m, "test_samples");
    if (!(meta_t >= 1 && meta_t <= 10000 && meta_t == floor(meta_t)))
        fail_msg("metadata test_samples: expected an integer in 1..10000, got %g", meta_t);
    struct eval_options o;
    eval_options_default(&o); /* seed 1, LRT, 2 threads */
    o.samples = (size_t)meta_t;
    struct eval_metrics e;
    if (eval_model(&e, NULL, NULL, m, im.pixels, lb.labels, im.n, &o, err))
        fail_msg("eval_model: %s", err);
    print_message("shipped weights, 10000 test images, T=%zu: accuracy %.4f nll %.4f ece %.4f brier %.5f "
                  "interval width %.4f (metadata: accuracy %.4f nll %.4f ece %.4f)\n",
                  o.samples, e.accuracy, e.nll, e.ece, e.brier, e.interval_width, meta_acc, meta_nll,
                  meta_ece);
    if (e.accuracy < 0.975)
        fail_msg("expected test accuracy >= 0.975, got %.4f", e.accuracy);
    if (e.ece > 0.015)
        fail_msg("expected ECE <= 0.015, got %.4f", e.ece);
    long right = lround(e.accuracy * (double)im.n), meta_right = lround(meta_acc * (double)im.n);
    if (labs(right - meta_right) > ACCURACY_IMAGES)
        fail_msg("expected %ld +- %d test images right (metadata accuracy %.4f), got %ld (%.4f)", meta_right,
                 ACCURACY_IMAGES, meta_acc, right, e.accuracy);
    if (fabs(e.nll - meta_nll) > NLL_MARGIN)
        fail_msg("expected NLL %.4f +- %.3f (metadata), got %.4f", meta_nll, NLL_MARGIN, e.nll);
    if (fabs(e.ece - meta_ece) > ECE_MARGIN)
        fail_msg("expected ECE %.4f +- %.3f (metadata), got %.4f", meta_ece, ECE_MARGIN, e.ece);
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

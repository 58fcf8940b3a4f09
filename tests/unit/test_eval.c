/* test_eval.c - evaluation metrics on hand-made probability sets, and
 * eval_model on real MNIST: independent of the thread count; the model
 * alone in agreement with the trainer's own LRT evaluation (a separate
 * implementation of the same predictive); each image's figures exactly
 * the answer the daemon's path (answer.h) gives it on replay; the decision
 * figures (flagged, wrong answers flagged, no digit, set coverage and
 * size) recounted from the per-image answers; and the test figures as
 * metadata. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "answer.h"
#include "bnn.h"
#include "eval.h"
#include "idx.h"
#include "train.h"

static const char *data_dir(void)
{
    const char *d = getenv("BNN_DATA");
    return d ? d : "build/data/mnist";
}

/* Four images, three classes, confidences in four different ECE bins
 * (0.70 -> bin 10, 0.50 -> 7, 0.78 -> 11, 0.62 -> 9 of 15), worked by hand:
 *   image  p                  label  correct  -log p_y   sum (p - y)^2
 *   0      0.70 0.20 0.10     0      yes      0.356675   0.1400
 *   1      0.50 0.40 0.10     1      no       0.916291   0.6200
 *   2      0.12 0.10 0.78     2      yes      0.248461   0.0728
 *   3      0.20 0.62 0.18     0      no       1.609438   1.0568
 * ECE = (0.30 + 0.50 + 0.22 + 0.62) / 4 = 0.41. */
static void test_metrics_hand_made(void **state)
{
    (void)state;
    const double p[] = {0.70, 0.20, 0.10, 0.50, 0.40, 0.10, 0.12, 0.10, 0.78, 0.20, 0.62, 0.18};
    const uint8_t y[] = {0, 1, 2, 0};
    struct eval_metrics e;
    char err[BNN_ERR_LEN];
    assert_int_equal(eval_metrics_from_probs(&e, p, y, 4, 3, err), BNN_OK);
    assert_int_equal(e.n, 4);
    assert_float_equal(e.accuracy, 0.5, 1e-12);
    assert_float_equal(e.nll, (0.356675 + 0.916291 + 0.248461 + 1.609438) / 4, 1e-6);
    assert_float_equal(e.brier_sum, (0.14 + 0.62 + 0.0728 + 1.0568) / 4, 1e-9);
    assert_float_equal(e.brier, (0.14 + 0.62 + 0.0728 + 1.0568) / 12, 1e-9);
    assert_float_equal(e.ece, 0.41, 1e-9);
    double h0 = -(0.7 * log(0.7) + 0.2 * log(0.2) + 0.1 * log(0.1));
    double h1 = -(0.5 * log(0.5) + 0.4 * log(0.4) + 0.1 * log(0.1));
    double h2 = -(0.12 * log(0.12) + 0.1 * log(0.1) + 0.78 * log(0.78));
    double h3 = -(0.2 * log(0.2) + 0.62 * log(0.62) + 0.18 * log(0.18));
    assert_float_equal(e.entropy, (h0 + h1 + h2 + h3) / 4, 1e-9);
    assert_true(isnan(e.interval_width));
    assert_int_equal(e.samples, 0);
}

/* Boundaries: perfect one-hot predictions, a uniform prediction, a zero
 * probability on the label (NLL clamped at -log 1e-15), one image. */
static void test_metrics_boundaries(void **state)
{
    (void)state;
    struct eval_metrics e;
    char err[BNN_ERR_LEN];
    double onehot[3 * 10] = {0};
    const uint8_t y[3] = {3, 0, 9};
    for (int i = 0; i < 3; i++)
        onehot[i * 10 + y[i]] = 1.0;
    assert_int_equal(eval_metrics_from_probs(&e, onehot, y, 3, 10, err), BNN_OK);
    assert_float_equal(e.accuracy, 1.0, 0);
    assert_float_equal(e.nll, 0.0, 1e-12);
    assert_float_equal(e.brier, 0.0, 1e-12);
    assert_float_equal(e.ece, 0.0, 1e-12);
    assert_float_equal(e.entropy, 0.0, 1e-12);

    double uni[10];
    for (int j = 0; j < 10; j++)
        uni[j] = 0.1;
    const uint8_t y7 = 7;
    assert_int_equal(eval_metrics_from_probs(&e, uni, &y7, 1, 10, err), BNN_OK);
    assert_float_equal(e.nll, log(10.0), 1e-12);
    assert_float_equal(e.brier_sum, 0.81 + 9 * 0.01, 1e-12);
    assert_float_equal(e.brier, 0.09, 1e-12);
    assert_float_equal(e.entropy, log(10.0), 1e-12);
    /* argmax ties go to the first class: wrong for label 7, ECE = conf */
    assert_float_equal(e.accuracy, 0.0, 0);
    assert_float_equal(e.ece, 0.1, 1e-12);

    const uint8_t y0 = 0;
    assert_int_equal(eval_metrics_from_probs(&e, onehot + 10, &y0, 1, 10, err), BNN_OK);
    const uint8_t y1 = 1; /* p[1] = 0 */
    assert_int_equal(eval_metrics_from_probs(&e, onehot + 10, &y1, 1, 10, err), BNN_OK);
    assert_float_equal(e.nll, -log(1e-15), 1e-9);
    assert_float_equal(e.ece, 1.0, 1e-12);
}

static void test_metrics_errors_and_no_labels(void **state)
{
    (void)state;
    struct eval_metrics e;
    char err[BNN_ERR_LEN] = "";
    const double p[] = {0.6, 0.4, 0.3, 0.7};
    const uint8_t bad[] = {0, 2};
    assert_int_equal(eval_metrics_from_probs(&e, p, bad, 2, 2, err), BNN_E_INVALID);
    assert_non_null(strstr(err, "label 1 is 2"));
    assert_int_equal(eval_metrics_from_probs(&e, p, bad, 0, 2, err), BNN_E_INVALID);
    assert_non_null(strstr(err, "n 0"));
    assert_int_equal(eval_metrics_from_probs(&e, p, NULL, 2, 2, err), BNN_OK);
    assert_true(isnan(e.accuracy) && isnan(e.nll) && isnan(e.ece) && isnan(e.brier));
    double h = -(0.6 * log(0.6) + 0.4 * log(0.4) + 0.3 * log(0.3) + 0.7 * log(0.7)) / 2;
    assert_float_equal(e.entropy, h, 1e-12);
}

struct fixture {
    struct idx_images train_im, test_im;
    struct idx_labels train_lb, test_lb;
    struct train_net *net;
    struct bnn_model *model;
};

/* A small real model: 784-100-10 trained for 200 steps on 4,000 images. */
static int setup_model(void **state)
{
    static struct fixture f;
    char err[BNN_ERR_LEN];
    if (idx_load_mnist(&f.train_im, &f.train_lb, data_dir(), "train", err) ||
        idx_load_mnist(&f.test_im, &f.test_lb, data_dir(), "t10k", err)) {
        fprintf(stderr, "test_eval: MNIST missing (run 'make data'): %s\n", err);
        return -1;
    }
    const size_t dims[] = {784, 100, 10}, B = 100;
    struct train_config c;
    if (train_config_recipe(&c, "default", err))
        return -1;
    c.threads = 2; /* the trainer's own parameter-loop threads */
    /* OpenBLAS's worker threads synchronise in ways ThreadSanitizer cannot
     * see (uninstrumented spin-waits), so keep BLAS on this thread here. */
    openblas_set_num_threads(1);
    f.net = train_net_new(dims, 2, B, err);
    if (!f.net)
        return -1;
    train_net_init(f.net, &c);
    float *x = malloc(B * 784 * sizeof *x);
    for (uint32_t step = 0; step < 200; step++) {
        size_t lo = (step % 40) * B;
        for (size_t i = 0; i < B * 784; i++)
            x[i] = f.train_im.pixels[lo * 784 + i] / 255.0f;
        train_draw_noise(f.net, B, 3, step, 0.25);
        train_forward(f.net, x, f.train_lb.labels + lo, B, NULL);
        train_backward(f.net, f.train_lb.labels + lo, B, 0.1 / 4000, 1.0);
        train_adam(f.net, 1e-3, step + 1);
    }
    free(x);
    f.model = train_net_to_model(f.net, NULL, err);
    *state = &f;
    return f.model ? 0 : -1;
}

static int teardown_model(void **state)
{
    struct fixture *f = *state;
    bnn_model_free(f->model);
    train_net_free(f->net);
    idx_images_free(&f->train_im);
    idx_images_free(&f->test_im);
    idx_labels_free(&f->train_lb);
    idx_labels_free(&f->test_lb);
    return 0;
}

static void test_eval_model_real(void **state)
{
    struct fixture *f = *state;
    char err[BNN_ERR_LEN];
    const size_t n = 2000;
    struct eval_options o;
    eval_options_default(&o);
    o.samples = 30;
    struct eval_metrics e1, e2;
    struct eval_image *img = calloc(n, sizeof *img);
    double *probs = calloc(n * 10, sizeof *probs);
    o.threads = 1;
    if (eval_model(&e1, NULL, NULL, f->model, f->test_im.pixels, f->test_lb.labels, n, &o, err))
        fail_msg("eval_model: %s", err);
    o.threads = 3;
    if (eval_model(&e2, img, probs, f->model, f->test_im.pixels, f->test_lb.labels, n, &o, err))
        fail_msg("eval_model: %s", err);
    /* identical whatever the thread count */
    assert_true(e1.accuracy == e2.accuracy && e1.nll == e2.nll && e1.ece == e2.ece && e1.brier == e2.brier);
    assert_true(e1.interval_width == e2.interval_width && e1.epistemic == e2.epistemic);
    print_message(
        "small model, 2000 test images, T=30: accuracy %.4f nll %.4f ece %.4f brier %.5f width %.4f\n",
        e1.accuracy, e1.nll, e1.ece, e1.brier, e1.interval_width);
    assert_true(e1.accuracy > 0.80);
    assert_int_equal(e1.samples, 30);
    assert_true(e1.interval_width > 0 && e1.interval_width < 1);
    assert_true(e1.epistemic >= 0 && e1.aleatoric >= 0);
    assert_float_equal(e1.entropy, e1.aleatoric + e1.epistemic, 1e-4);

    /* per-image results and mean probabilities agree with the summary */
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        hits += img[i].predicted == f->test_lb.labels[i];
        double s = 0;
        for (int k = 0; k < 10; k++)
            s += probs[i * 10 + k];
        assert_float_equal(s, 1.0, 1e-4);
        assert_float_equal(img[i].confidence, probs[i * 10 + img[i].predicted], 1e-6);
    }
    assert_float_equal((double)hits / n, e2.accuracy, 1e-12);

    /* the model alone on pixel/255 agrees with the trainer's LRT
     * evaluation, a separate implementation, on the same inputs */
    struct eval_metrics alone;
    o.pipeline = 0;
    if (eval_model(&alone, NULL, NULL, f->model, f->test_im.pixels, f->test_lb.labels, n, &o, err))
        fail_msg("eval_model: %s", err);
    o.pipeline = 1;
    double acc, nll;
    float *x = malloc(n * 784 * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n * 784; i++)
        x[i] = f->test_im.pixels[i] / 255.0f;
    train_evaluate(f->net, x, f->test_lb.labels, n, 30, 5, &acc, &nll);
    free(x);
    print_message("model alone: accuracy %.4f nll %.4f; trainer's evaluation: accuracy %.4f nll %.4f\n",
                  alone.accuracy, alone.nll, acc, nll);
    assert_true(fabs(acc - alone.accuracy) < 0.01);
    assert_true(fabs(nll - alone.nll) < 0.02);
    assert_float_equal(alone.no_digit, 0.0, 0);

    /* without labels: no accuracy, still uncertainty */
    struct eval_metrics e3;
    if (eval_model(&e3, NULL, NULL, f->model, f->test_im.pixels, NULL, 100, &o, err))
        fail_msg("eval_model: %s", err);
    assert_true(isnan(e3.accuracy));
    assert_true(e3.entropy > 0);

    /* bad options are refused with the values */
    o.samples = 0;
    assert_int_equal(eval_model(&e3, NULL, NULL, f->model, f->test_im.pixels, NULL, 10, &o, err),
                     BNN_E_INVALID);
    assert_non_null(strstr(err, "got 10, 0"));
    free(img);
    free(probs);
}

/* Each image's record is the answer the daemon's path gives it, replayed
 * with its seed; and with pipeline = 0, the answer to pixel/255. */
static void test_per_image_is_the_answer(void **state)
{
    struct fixture *f = *state;
    char err[BNN_ERR_LEN];
    enum { N = 40 };
    struct eval_options o;
    eval_options_default(&o);
    o.samples = 16;
    o.seed = 5;
    struct bnn_policy none;
    bnn_policy_none(&none);
    struct bnn_workspace *ws = bnn_workspace_new(f->model);
    assert_non_null(ws);
    for (int pipeline = 1; pipeline >= 0; pipeline--) {
        struct eval_image img[N];
        struct eval_metrics e;
        o.pipeline = pipeline;
        if (eval_model(&e, img, NULL, f->model, f->test_im.pixels, f->test_lb.labels, N, &o, err))
            fail_msg("eval_model: %s", err);
        for (size_t i = 0; i < N; i++) {
            struct bnn_question q = {o.samples, eval_image_seed(&o, i), o.coverage, o.mode, -1};
            struct bnn_answer a;
            const uint8_t *px = f->test_im.pixels + i * 784;
            if (pipeline) {
                assert_int_equal(bnn_answer_gray(&a, ws, f->model, &none, px, 28, 28, &q, err), BNN_OK);
            } else {
                float x[784];
                for (size_t u = 0; u < 784; u++)
                    x[u] = px[u] / 255.0f;
                assert_int_equal(bnn_answer_canonical(&a, ws, f->model, &none, x, 1, &q, err), BNN_OK);
            }
            assert_int_equal(img[i].predicted, a.pr.predicted);
            if (!(img[i].entropy == (float)a.pr.entropy && img[i].epistemic == (float)a.pr.epistemic))
                fail_msg("image %zu, pipeline %d: entropy %.9g vs %.9g, epistemic %.9g vs %.9g", i, pipeline,
                         img[i].entropy, a.pr.entropy, img[i].epistemic, a.pr.epistemic);
            assert_true(img[i].confidence == (float)a.pr.classes[a.pr.predicted].mean);
            assert_int_equal(img[i].digit_found, pipeline ? a.prep.verdict == PREP_DIGIT : 1);
        }
    }
    bnn_workspace_free(ws);
}

/* flagged, errors_flagged, no_digit, set_coverage and set_size recounted
 * from the per-image answers; blank pictures have no digit and are always
 * flagged on the daemon's path, never on the model alone's. */
static void test_decision_figures(void **state)
{
    struct fixture *f = *state;
    char err[BNN_ERR_LEN];
    enum { N = 300, BLANK = 20 };
    static uint8_t px[N * 784], labels[N];
    memcpy(px, f->test_im.pixels, (N - BLANK) * 784);
    memcpy(labels, f->test_lb.labels, N);
    for (size_t i = N - BLANK; i < N; i++)
        memset(px + i * 784, i % 2 ? 255 : 0, 784); /* white and black pages */
    struct bnn_policy p;
    bnn_policy_none(&p);
    p.entropy_max = 0.3;
    p.epistemic_max = 0.02;
    p.n_levels = 1;
    p.coverage[0] = 0.95;
    p.min_prob[0] = 0.1;
    struct eval_options o;
    eval_options_default(&o);
    o.samples = 16;
    o.policy = &p;
    o.set_level = 0;
    static struct eval_image img[N];
    static double probs[N * 10];
    for (int pipeline = 1; pipeline >= 0; pipeline--) {
        o.pipeline = pipeline;
        struct eval_metrics e;
        if (eval_model(&e, img, probs, f->model, px, labels, N, &o, err))
            fail_msg("eval_model: %s", err);
        size_t flagged = 0, wrong = 0, caught = 0, none = 0, covered = 0, size = 0;
        for (size_t i = 0; i < N; i++) {
            unsigned want = bnn_decide(&p, img[i].entropy, img[i].epistemic, img[i].digit_found);
            assert_int_equal(img[i].reasons, want);
            unsigned set = bnn_prediction_set(&p, 0, probs + i * 10, 10);
            assert_int_equal(img[i].set, set);
            flagged += want != 0;
            none += !img[i].digit_found;
            wrong += img[i].predicted != labels[i];
            caught += img[i].predicted != labels[i] && want;
            covered += (set >> labels[i]) & 1u;
            size += (size_t)__builtin_popcount(set);
            if (i >= N - BLANK && pipeline)
                assert_true(!img[i].digit_found && (want & BNN_REASON_NO_DIGIT));
        }
        print_message("%s: flagged %zu, wrong %zu (%zu flagged), no digit %zu, sets cover %zu, size %zu\n",
                      pipeline ? "daemon's path" : "model alone", flagged, wrong, caught, none, covered,
                      size);
        assert_true(flagged > 0 && flagged < N && wrong > 0);
        assert_float_equal(e.flagged, (double)flagged / N, 1e-12);
        assert_float_equal(e.errors_flagged, (double)caught / (double)wrong, 1e-12);
        assert_float_equal(e.no_digit, (double)none / N, 1e-12);
        assert_float_equal(e.set_coverage, (double)covered / N, 1e-12);
        assert_float_equal(e.set_size, (double)size / N, 1e-12);
        assert_int_equal(none, pipeline ? BLANK : 0);
    }
    /* without a level or a policy there are no set figures */
    o.set_level = -1;
    struct eval_metrics e;
    assert_int_equal(eval_model(&e, NULL, NULL, f->model, px, labels, 50, &o, err), BNN_OK);
    assert_true(isnan(e.set_coverage) && isnan(e.set_size));
    o.policy = NULL;
    o.set_level = 0;
    assert_int_equal(eval_model(&e, NULL, NULL, f->model, px, NULL, 50, &o, err), BNN_OK);
    assert_true(isnan(e.set_coverage) && isnan(e.errors_flagged));
}

static void test_metrics_to_meta(void **state)
{
    (void)state;
    const size_t dims[] = {4, 3};
    char err[BNN_ERR_LEN];
    struct bnn_model *m = bnn_model_new(dims, 1, err);
    assert_non_null(m);
    struct eval_metrics e = {.samples = 100,
                             .accuracy = 0.98765,
                             .nll = 0.04321,
                             .ece = 0.0071,
                             .brier = 0.002345,
                             .interval_width = 0.0789,
                             .flagged = 0.0512,
                             .set_coverage = NAN,
                             .set_size = NAN};
    assert_int_equal(eval_metrics_to_meta(m, &e, 0.95), BNN_OK);
    assert_string_equal(bnn_meta_get(m, "test_accuracy"), "0.9877");
    assert_string_equal(bnn_meta_get(m, "test_nll"), "0.0432");
    assert_string_equal(bnn_meta_get(m, "test_ece"), "0.0071");
    assert_string_equal(bnn_meta_get(m, "test_brier"), "0.00234");
    assert_string_equal(bnn_meta_get(m, "test_interval_width"), "0.0789");
    assert_string_equal(bnn_meta_get(m, "test_flagged"), "0.0512");
    assert_string_equal(bnn_meta_get(m, "test_samples"), "100");
    assert_null(bnn_meta_get(m, "test_set_coverage_0.95")); /* no sets measured */
    e.set_coverage = 0.9512;
    e.set_size = 1.0234;
    assert_int_equal(eval_metrics_to_meta(m, &e, 0.95), BNN_OK);
    assert_string_equal(bnn_meta_get(m, "test_set_coverage_0.95"), "0.9512");
    assert_string_equal(bnn_meta_get(m, "test_set_size_0.95"), "1.023");
    bnn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_hand_made),
        cmocka_unit_test(test_metrics_boundaries),
        cmocka_unit_test(test_metrics_errors_and_no_labels),
        cmocka_unit_test(test_metrics_to_meta),
    };
    const struct CMUnitTest real[] = {
        cmocka_unit_test(test_eval_model_real),
        cmocka_unit_test(test_per_image_is_the_answer),
        cmocka_unit_test(test_decision_figures),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed + cmocka_run_group_tests(real, setup_model, teardown_model);
}

/* test_train.c - the trainer: parameter count, gradients of every parameter
 * kind against central finite differences, learning on real MNIST, and
 * determinism for a fixed seed. */
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
#include "idx.h"
#include "rng.h"
#include "train.h"

static const char *data_dir(void)
{
    const char *d = getenv("BNN_DATA");
    return d ? d : "build/data/mnist";
}

static void test_param_count(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    const size_t dims[] = {784, 784, 256, 256, 10};
    struct train_net *net = train_net_new(dims, 4, 2, err);
    assert_non_null(net);
    assert_int_equal(train_net_param_count(net), 1769524);
    /* and the exported model agrees with bnn.h's count */
    struct train_config c;
    assert_int_equal(train_config_recipe(&c, "default", err), BNN_OK);
    train_net_init(net, &c);
    struct bnn_model *m = train_net_to_model(net, NULL, err);
    assert_non_null(m);
    assert_int_equal(bnn_model_param_count(m), 1769524);
    /* sigma = softplus(rho) on export, rho = -5 at start */
    assert_float_equal(m->layers[2].w_sigma[7], log1p(exp(-5.0)), 1e-6);
    assert_float_equal(m->layers[2].w_var[7], pow(log1p(exp(-5.0)), 2), 1e-8);
    bnn_model_free(m);
    train_net_free(net);
}

static void test_bad_shapes(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN] = "";
    const size_t zero[] = {784, 0, 10};
    assert_null(train_net_new(zero, 2, 4, err));
    assert_non_null(strstr(err, "got 0"));
    const size_t many[] = {4, 40};
    assert_null(train_net_new(many, 1, 4, err));
    assert_non_null(strstr(err, "classes"));
    struct train_config c;
    assert_int_equal(train_config_recipe(&c, "nope", err), BNN_E_INVALID);
    assert_non_null(strstr(err, "nope"));
    assert_int_equal(train_config_recipe(&c, "seed", err), BNN_OK);
    c.dropout = 1.0;
    assert_int_equal(train_config_check(&c, err), BNN_E_INVALID);
    assert_non_null(strstr(err, "dropout"));
}

/* Loss with the noise currently drawn in the net: mean NLL + klw * KL. */
static double loss_at(struct train_net *net, const float *x, const uint8_t *y, size_t B, double klw,
                      double ps)
{
    train_net_refresh(net);
    return train_forward(net, x, y, B, NULL) + klw * train_kl(net, ps);
}

/* Central differences for every parameter of a 6-5-4-3 net (batch 4) with
 * fixed LRT noise and dropout masks, against train_backward. Gradients are
 * computed in float, so the differences use h = 1e-3 and a tolerance of
 * 1e-3 absolute + 2 % relative; a wrong factor or sign is far outside it. */
static void test_gradients_match_finite_differences(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    const size_t dims[] = {6, 5, 4, 3};
    const size_t B = 4;
    const double klw = 0.05, ps = 0.7;
    struct train_net *net = train_net_new(dims, 3, B, err);
    assert_non_null(net);
    struct train_config c;
    assert_int_equal(train_config_recipe(&c, "default", err), BNN_OK);
    c.init_mu_std = 0.6;
    c.init_rho = -1.0;
    c.threads = 1;
    train_net_init(net, &c);
    /* spread the rhos so softplus is tested away from one point */
    float *p = train_net_param_data(net);
    size_t n = train_net_param_count(net);
    float u[512];
    assert_true(n <= 512);
    rng_uniforms(u, n, 99, 7, 0, 0);
    for (size_t l = 0; l < 3; l++) {
        struct train_view v = train_net_params(net, l);
        size_t nw = dims[l] * dims[l + 1];
        for (size_t i = 0; i < nw; i++)
            v.w_rho[i] = -2.0f + 2.5f * u[(v.w_rho - p) + i];
        for (size_t i = 0; i < dims[l + 1]; i++) {
            v.b_rho[i] = -2.0f + 2.5f * u[(v.b_rho - p) + i];
            v.b_mu[i] = 0.3f * (u[(v.b_mu - p) + i] - 0.5f);
        }
    }
    float x[4 * 6];
    rng_uniforms(x, 4 * 6, 5, 1, 0, 0);
    const uint8_t y[4] = {0, 2, 1, 2};
    train_draw_noise(net, B, 11, 3, 0.25);

    train_net_refresh(net);
    train_forward(net, x, y, B, NULL);
    train_backward(net, y, B, klw, ps);
    float *g = malloc(n * sizeof *g);
    memcpy(g, train_net_grads(net, 0).w_mu, n * sizeof *g); /* layer 0 w_mu starts the array */

    const char *kinds[4] = {"w_mu", "w_rho", "b_mu", "b_rho"};
    size_t checked[3][4] = {{0}}, worst_i = 0;
    double worst = 0;
    for (size_t l = 0; l < 3; l++) {
        struct train_view v = train_net_params(net, l);
        size_t nw = dims[l] * dims[l + 1], no = dims[l + 1];
        float *base[4] = {v.w_mu, v.w_rho, v.b_mu, v.b_rho};
        size_t cnt[4] = {nw, nw, no, no};
        for (int kind = 0; kind < 4; kind++) {
            for (size_t i = 0; i < cnt[kind]; i++) {
                float *q = base[kind] + i;
                size_t idx = (size_t)(q - p);
                float save = *q;
                const float h = 1e-3f;
                *q = save + h;
                double lp = loss_at(net, x, y, B, klw, ps);
                *q = save - h;
                double lm = loss_at(net, x, y, B, klw, ps);
                *q = save;
                double fd = (lp - lm) / (2.0 * h), an = g[idx];
                double tol = 1e-3 + 0.02 * fmax(fabs(fd), fabs(an));
                double rel = fabs(fd - an) / fmax(1e-6, fmax(fabs(fd), fabs(an)));
                if (fabs(fd - an) > tol)
                    fail_msg("layer %zu %s[%zu]: analytic %.6g, finite difference %.6g (rel. error %.3g)", l,
                             kinds[kind], i, an, fd, rel);
                if (fabs(fd) > 1e-2 && rel > worst)
                    worst = rel, worst_i = idx;
                checked[l][kind]++;
            }
        }
    }
    print_message("worst relative error among gradients > 1e-2: %.3g (parameter %zu)\n", worst, worst_i);
    assert_true(worst < 0.02);
    for (size_t l = 0; l < 3; l++)
        for (int kind = 0; kind < 4; kind++)
            assert_true(checked[l][kind] > 0);
    /* the gradients are not trivially zero */
    double norm = 0;
    for (size_t i = 0; i < n; i++)
        norm += (double)g[i] * g[i];
    assert_true(norm > 1e-4);
    free(g);
    train_net_free(net);
}

struct mnist {
    struct idx_images im;
    struct idx_labels lb;
};

static int load_mnist(void **state)
{
    static struct mnist m;
    char err[BNN_ERR_LEN];
    if (idx_load_mnist(&m.im, &m.lb, data_dir(), "train", err)) {
        fprintf(stderr, "test_train: MNIST missing (run 'make data'): %s\n", err);
        return -1; /* a failed setup fails the tests that need it */
    }
    *state = &m;
    return 0;
}

static int free_mnist(void **state)
{
    struct mnist *m = *state;
    if (m) {
        idx_images_free(&m->im);
        idx_labels_free(&m->lb);
    }
    return 0;
}

/* A few hundred steps on 3,000 real training images lift the held-out
 * accuracy (last 1,000 of the training split) from chance to > 80 %. */
static void test_learns_mnist_subset(void **state)
{
    struct mnist *d = *state;
    char err[BNN_ERR_LEN];
    struct train_config c;
    assert_int_equal(train_config_recipe(&c, "default", err), BNN_OK);
    c.limit = 3000;
    c.val_count = 1000;
    c.val_samples = 4;
    c.batch = 50;
    c.epochs = 5; /* 300 steps */
    c.warmup_epochs = 2;
    c.patience = 0;
    c.threads = 2;
    const size_t dims[] = {784, 128, 64, 10};
    struct bnn_model *m = NULL;
    struct train_result r;
    int rc = train_run(&m, &r, &c, dims, 3, &d->im, &d->lb, NULL, NULL, err);
    if (rc)
        fail_msg("train_run: %s", err);
    print_message("val accuracy %.4f at epoch %zu of %zu, %.1f s\n", r.best_val_acc, r.best_epoch,
                  r.epochs_run, r.train_seconds);
    assert_int_equal(r.n_train, 3000);
    assert_int_equal(r.epochs_run, 5);
    assert_true(r.best_val_acc > 0.80);
    assert_string_equal(bnn_meta_get(m, "recipe"), "default");
    assert_string_equal(bnn_meta_get(m, "architecture"), "784-128-64-10");
    assert_non_null(bnn_meta_get(m, "objective"));
    for (size_t l = 0; l < m->n_layers; l++)
        for (size_t i = 0; i < m->layers[l].n_out; i++)
            assert_true(m->layers[l].b_sigma[i] > 0);
    bnn_model_free(m);
}

/* Same seed twice -> bit-identical parameters; another seed differs. */
static void test_deterministic(void **state)
{
    struct mnist *d = *state;
    char err[BNN_ERR_LEN];
    struct train_config c;
    assert_int_equal(train_config_recipe(&c, "default", err), BNN_OK);
    c.limit = 500;
    c.val_count = 200;
    c.val_samples = 2;
    c.batch = 50;
    c.epochs = 2;
    c.threads = 2;
    c.seed = 42;
    const size_t dims[] = {784, 64, 10};
    struct bnn_model *m[3] = {NULL, NULL, NULL};
    struct train_result r;
    for (int i = 0; i < 3; i++) {
        if (i == 2)
            c.seed = 43;
        if (train_run(&m[i], &r, &c, dims, 2, &d->im, &d->lb, NULL, NULL, err))
            fail_msg("train_run: %s", err);
    }
    size_t nw = 784 * 64;
    assert_memory_equal(m[0]->layers[0].w_mu, m[1]->layers[0].w_mu, nw * sizeof(float));
    assert_memory_equal(m[0]->layers[0].w_sigma, m[1]->layers[0].w_sigma, nw * sizeof(float));
    assert_memory_equal(m[0]->layers[1].b_mu, m[1]->layers[1].b_mu, 10 * sizeof(float));
    assert_memory_not_equal(m[0]->layers[0].w_mu, m[2]->layers[0].w_mu, nw * sizeof(float));
    for (int i = 0; i < 3; i++)
        bnn_model_free(m[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_param_count),
        cmocka_unit_test(test_bad_shapes),
        cmocka_unit_test(test_gradients_match_finite_differences),
        cmocka_unit_test_setup_teardown(test_learns_mnist_subset, load_mnist, free_mnist),
        cmocka_unit_test_setup_teardown(test_deterministic, load_mnist, free_mnist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

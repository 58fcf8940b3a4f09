/* test_served_model.c - the served model bundle and its live replacement
 * (served_model.h) on real safetensors files written by the project's own
 * serializer: model_version is sha256's first 12 hex digits (known
 * vectors, and the file's own bytes), a load applies the configuration's
 * overrides and refuses what the daemon would refuse (missing, corrupt,
 * wrong input size, a default set coverage the weights lack); the reload
 * thread swaps a good file in while a held reference keeps the old bundle
 * alive (what a request in flight holds), keeps the old one on a corrupt
 * file or another architecture, counts both in the metrics, serves
 * requests without a waiter (SIGHUP), and answers requests after stop; and
 * readers acquiring and releasing from several threads while reloads run
 * (for ThreadSanitizer). */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "decide.h"
#include "metrics.h"
#include "rng.h"
#include "served_model.h"
#include "weights.h"

static struct cfg cfg;
static char dir[64], path[128];

static int setup(void **state)
{
    (void)state;
    cfg_defaults(&cfg);
    snprintf(dir, sizeof dir, "/tmp/bnn-served-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(cfg.model, sizeof cfg.model, "%s", path);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

/* A random model of widths dims (784-16-10 unless told), written to path. */
static void write_model(const size_t *dims, size_t n_layers, uint64_t seed)
{
    char err[BNN_ERR_LEN];
    struct bnn_model *m = bnn_model_new(dims, n_layers, err);
    assert_non_null(m);
    for (size_t l = 0; l < m->n_layers; l++) {
        struct bnn_layer *L = &m->layers[l];
        rng_normals(L->w_mu, L->n_in * L->n_out, seed, (uint32_t)l, 0, 0);
        for (size_t i = 0; i < L->n_in * L->n_out; i++)
            L->w_sigma[i] = 0.05f;
    }
    bnn_model_update_var(m);
    if (bnn_weights_save(path, m, err) != BNN_OK)
        fail_msg("%s", err);
    bnn_model_free(m);
}

static const size_t small[] = {784, 16, 10};

static void write_bytes(const char *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(bytes, 1, n, f);
    fclose(f);
}

/* The file's own model_version, from its bytes. */
static void file_version(char out[SERVED_VERSION_LEN])
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    served_model_version(out, buf, n);
}

static void test_version(void **state)
{
    (void)state;
    char v[SERVED_VERSION_LEN];
    served_model_version(v, (const uint8_t *)"abc", 3); /* FIPS 180-2's example */
    assert_string_equal(v, "ba7816bf8f01");
    served_model_version(v, (const uint8_t *)"", 0);
    assert_string_equal(v, "e3b0c44298fc");
}

static void test_load(void **state)
{
    (void)state;
    char err[SERVED_ERR_LEN], v[SERVED_VERSION_LEN];
    write_model(small, 2, 1);
    file_version(v);
    cfg.uncertain_entropy = 0.5; /* a configured threshold replaces the weights' */
    struct served_model *sm = served_model_load(&cfg, err);
    cfg.uncertain_entropy = NAN; /* back to the weights' own */
    if (!sm)
        fail_msg("%s", err);
    assert_string_equal(sm->version, v);
    assert_string_equal(sm->path, path);
    assert_string_equal(sm->arch, "784-16-10");
    assert_true(sm->policy.entropy_max == 0.5);
    assert_true(served_model_ref(sm) == sm);
    served_model_release(sm);
    served_model_release(sm);
    served_model_release(NULL);

    /* A directory holding the one file names it (KServe's /mnt/models). */
    snprintf(cfg.model, sizeof cfg.model, "%s", dir);
    sm = served_model_load(&cfg, err);
    assert_non_null(sm);
    assert_string_equal(sm->path, path);
    served_model_release(sm);
    snprintf(cfg.model, sizeof cfg.model, "%s", path);
}

static void expect_refused(const char *words)
{
    char err[SERVED_ERR_LEN];
    struct served_model *sm = served_model_load(&cfg, err);
    if (sm)
        fail_msg("expected a refusal mentioning '%s', got a model", words);
    if (!strstr(err, words))
        fail_msg("expected '%s' in '%s'", words, err);
}

static void test_load_refusals(void **state)
{
    (void)state;
    unlink(path);
    expect_refused(path);
    write_bytes("\x08\0\0\0\0\0\0\0{}", 10);
    expect_refused(path);
    const size_t wrong_input[] = {100, 16, 10};
    write_model(wrong_input, 2, 1);
    expect_refused("expected 784 inputs (28x28), got 100");
    /* weights calibrated for 0.9 only, the default set coverage is 0.95 */
    char err[BNN_ERR_LEN];
    struct bnn_model *m = bnn_model_new(small, 2, err);
    struct bnn_policy pol;
    bnn_policy_none(&pol);
    pol.n_levels = 1;
    pol.coverage[0] = 0.9;
    pol.min_prob[0] = 0.1;
    assert_int_equal(bnn_policy_to_meta(&pol, m), BNN_OK);
    assert_int_equal(bnn_weights_save(path, m, err), BNN_OK);
    bnn_model_free(m);
    expect_refused("default_set_coverage 0.95");
}

/* --- the reload thread ---------------------------------------------------------------- */

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    struct served_reload req;
};

static void on_done(void *cls)
{
    struct waiter *w = cls;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Asks for a reload and waits for its answer. */
static enum served_reload_status reload(struct served_models *s, struct waiter *w)
{
    *w = (struct waiter){PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, {.done = on_done, .cls = w}};
    served_models_reload(s, &w->req);
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    return w->req.status;
}

static char *render(struct metrics *m)
{
    char *text;
    size_t len;
    assert_int_equal(metrics_render(m, NULL, &text, &len), 0);
    return text;
}

static void test_reload(void **state)
{
    (void)state;
    char err[SERVED_ERR_LEN], v1[SERVED_VERSION_LEN], v2[SERVED_VERSION_LEN];
    write_model(small, 2, 1);
    file_version(v1);
    struct metrics *metrics = metrics_new(NULL);
    struct served_models *s = served_models_new(served_model_load(&cfg, err), &cfg, metrics, NULL, err);
    assert_non_null(s);
    struct served_model *held = served_models_acquire(s); /* a request in flight */
    assert_string_equal(held->version, v1);
    float w0 = held->model->layers[0].w_mu[0];

    /* A new file of the same shape is swapped in; the held bundle lives on. */
    write_model(small, 2, 2);
    file_version(v2);
    assert_string_not_equal(v1, v2);
    struct waiter w;
    assert_int_equal(reload(s, &w), SERVED_RELOAD_OK);
    assert_string_equal(w.req.version, v2);
    assert_non_null(strstr(w.req.message, v2));
    struct served_model *now = served_models_acquire(s);
    assert_string_equal(now->version, v2);
    assert_string_equal(held->version, v1);
    assert_true(held->model->layers[0].w_mu[0] == w0);
    assert_true(now->model->layers[0].w_mu[0] != w0);
    served_model_release(held); /* the last reference to v1: freed */
    served_model_release(now);

    /* A corrupt file, then another architecture: refused, v2 serves. */
    write_bytes("not safetensors", 15);
    assert_int_equal(reload(s, &w), SERVED_RELOAD_FAILED);
    assert_non_null(strstr(w.req.message, "still serving version"));
    assert_string_equal(w.req.version, v2);
    const size_t other[] = {784, 32, 10};
    write_model(other, 2, 3);
    assert_int_equal(reload(s, &w), SERVED_RELOAD_FAILED);
    assert_non_null(strstr(w.req.message, "architecture 784-32-10 differs from the served 784-16-10"));
    now = served_models_acquire(s);
    assert_string_equal(now->version, v2);
    served_model_release(now);

    char *text = render(metrics);
    assert_non_null(strstr(text, "bnn_model_reloads_total{result=\"ok\"} 1\n"));
    assert_non_null(strstr(text, "bnn_model_reloads_total{result=\"failed\"} 2\n"));
    char label[64];
    snprintf(label, sizeof label, "model_version=\"%s\"", v2);
    assert_non_null(strstr(text, label));
    free(text);

    /* Nobody waits (SIGHUP): the reload still happens. */
    write_model(small, 2, 4);
    served_models_reload(s, NULL);
    const struct timespec tick = {0, 5 * 1000 * 1000};
    for (int i = 0; i < 6000; i++) { /* a generous bound, not a timing check */
        text = render(metrics);
        int seen = strstr(text, "bnn_model_reloads_total{result=\"ok\"} 2\n") != NULL;
        free(text);
        if (seen)
            break;
        nanosleep(&tick, NULL);
    }
    now = served_models_acquire(s);
    file_version(v1);
    assert_string_equal(now->version, v1);
    served_model_release(now);

    /* After stop, a request is answered at once. */
    served_models_stop(s);
    assert_int_equal(reload(s, &w), SERVED_RELOAD_STOPPED);
    served_models_free(s);
    metrics_free(metrics);
}

struct reader {
    struct served_models *s;
    _Atomic int *stop;
    unsigned long reads;
};

/* Acquires, reads the bundle, releases, as jobs do. */
static void *read_loop(void *arg)
{
    struct reader *r = arg;
    while (!*r->stop) {
        struct served_model *sm = served_models_acquire(r->s);
        if (sm->model->layers[0].n_in != 784 || strlen(sm->version) != 12)
            abort();
        served_model_release(sm);
        r->reads++;
    }
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    (void)state;
    char err[SERVED_ERR_LEN];
    write_model(small, 2, 1);
    struct served_models *s = served_models_new(served_model_load(&cfg, err), &cfg, NULL, NULL, err);
    assert_non_null(s);
    _Atomic int stop = 0;
    struct reader r[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        r[i] = (struct reader){s, &stop, 0};
        pthread_create(&t[i], NULL, read_loop, &r[i]);
    }
    struct waiter w;
    for (int i = 0; i < 10; i++) {
        write_model(small, 2, (uint64_t)(10 + i));
        assert_int_equal(reload(s, &w), SERVED_RELOAD_OK);
    }
    stop = 1;
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    served_models_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_load_refusals),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_concurrent_readers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

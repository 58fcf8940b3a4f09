/* test_predict.c - a prediction from parsed input to answer without HTTP
 * (predict.h): the input's one door for images (empty refused once, named,
 * ownership moved), and real jobs through a real worker pool on real PNG
 * fixtures (a real MNIST digit) with the shipped weights when present, else
 * a random model of the same shape: the answer's fields, replay by seed,
 * every decode error's code, a batch that is all or nothing, and the
 * refusals pool_submit decides (queue full, shut down), the deadline and
 * the injected fault. */
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

#include "api_response.h"
#include "config.h"
#include "fault.h"
#include "predict.h"
#include "rng.h"
#include "weights.h"

#define SHIPPED "model/weights/mnist-bnn.safetensors"
#define FIXTURES "tests/data/png/"

static struct cfg cfg;
static struct bnn_model *model; /* owned by models */
static int real_model;
static struct metrics *metrics;
static struct served_models *models; /* model, no policy, version TEST_VERSION */

#define TEST_VERSION "0123456789ab"

/* --- the parsed input --------------------------------------------------------------- */

static uint8_t *dup_bytes(const char *s, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    memcpy(b, s, n);
    return b;
}

static void test_input(void **state)
{
    (void)state;
    cfg_defaults(&cfg);
    struct predict_input in;
    struct api_error e = {0};
    predict_input_init(&in, &cfg, 0);
    assert_int_equal(in.params.samples, 100);
    assert_true(in.params.interval == 0.95);
    assert_int_equal(in.params.mode, BNN_MODE_LRT);
    assert_int_equal(in.params.set, 0);
    assert_int_equal(predict_input_add_image(&in, dup_bytes("", 0), 0, &e), API_E_INVALID_PNG);
    assert_string_equal(e.message, "image: empty image");
    assert_int_equal(predict_input_add_image(&in, dup_bytes("abc", 3), 3, &e), 0);
    assert_int_equal(in.n_images, 1);
    predict_input_free(&in);
    predict_input_free(&in); /* idempotent */
    assert_int_equal(in.n_images, 0);

    predict_input_init(&in, &cfg, 1);
    for (int i = 0; i < 9; i++)
        assert_int_equal(predict_input_add_image(&in, dup_bytes("x", 1), 1, &e), 0);
    assert_int_equal(predict_input_add_image(&in, NULL, 0, &e), API_E_INVALID_PNG);
    assert_string_equal(e.message, "images[9]: empty image");
    /* Growth fails: the image offered is freed, the ones held stay. */
    bnn_fault_set(1);
    for (int i = 0; i < 8; i++)
        predict_input_add_image(&in, dup_bytes("y", 1), 1, &e);
    int fired = bnn_fault_fired();
    bnn_fault_set(0);
    assert_true(fired);
    assert_int_equal(e.code, API_E_INTERNAL);
    assert_int_equal(in.n_images, 16);
    predict_input_free(&in);
}

/* --- jobs through a real pool ----------------------------------------------------------- */

static struct bnn_model *random_model(void)
{
    const size_t dims[] = {784, 784, 256, 256, 10};
    char err[BNN_ERR_LEN];
    struct bnn_model *m = bnn_model_new(dims, 4, err);
    assert_non_null(m);
    for (size_t l = 0; l < m->n_layers; l++) {
        struct bnn_layer *L = &m->layers[l];
        rng_normals(L->w_mu, L->n_in * L->n_out, 99, (uint32_t)l, 0, 0);
        for (size_t i = 0; i < L->n_in * L->n_out; i++) {
            L->w_mu[i] *= 0.05f;
            L->w_sigma[i] = 0.02f;
        }
        for (size_t i = 0; i < L->n_out; i++)
            L->b_sigma[i] = 0.02f;
    }
    bnn_model_update_var(m);
    return m;
}

/* The shipped weights when present, else the random model (the same one
 * on every call). */
static struct bnn_model *load_model(void)
{
    char err[BNN_ERR_LEN];
    struct bnn_model *m = NULL;
    real_model = access(SHIPPED, R_OK) == 0;
    if (!real_model)
        return random_model();
    if (bnn_weights_load(&m, SHIPPED, err) != BNN_OK)
        fail_msg("%s", err);
    return m;
}

/* Served models around m (taken over) with policy pol (NULL: none). */
static struct served_models *serve(struct bnn_model *m, const struct bnn_policy *pol)
{
    char err[SERVED_ERR_LEN];
    struct served_model *sm = served_model_wrap(m, pol, TEST_VERSION);
    assert_non_null(sm);
    struct served_models *s = served_models_new(sm, &cfg, metrics, NULL, err);
    if (!s)
        fail_msg("served_models_new: %s", err);
    return s;
}

static int setup_model(void **state)
{
    (void)state;
    cfg_defaults(&cfg);
    metrics = metrics_new(NULL);
    model = load_model();
    models = serve(model, NULL);
    return metrics ? 0 : -1;
}

static int teardown_model(void **state)
{
    (void)state;
    served_models_free(models);
    metrics_free(metrics);
    return 0;
}

static struct pool *new_pool(unsigned workers, unsigned capacity)
{
    char err[POOL_ERR_LEN];
    struct pool *p = pool_new(workers, capacity, predict_worker_new, predict_worker_free, model, err);
    if (!p)
        fail_msg("pool_new: %s", err);
    return p;
}

/* A job's done callback: a flag behind a mutex, waited for by the test. */
struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
};

static void on_done(void *cls)
{
    struct waiter *w = cls;
    pthread_mutex_lock(&w->mu);
    w->done++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Runs in (moved into the job) and returns its answer; *samples gets the
 * passes computed. */
static struct predict_answer run_job(const struct predict_deps *d, struct predict_input *in,
                                     unsigned *samples)
{
    struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    struct api_error e = {0};
    struct predict_job *j = predict_job_new(d, in, api_predict_body, NULL, on_done, &w, "test", &e);
    assert_non_null(j);
    assert_int_equal(in->n_images, 0); /* moved */
    struct predict_answer a;
    assert_false(predict_job_answer(j, &a)); /* not finished before it ran */
    predict_submit(j);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    assert_true(predict_job_answer(j, &a));
    assert_int_equal(w.done, 1);
    if (samples)
        *samples = predict_job_samples(j);
    predict_job_free(j);
    return a;
}

static void add_fixture(struct predict_input *in, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, FIXTURES "%s", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("fixture %s: cannot open (run from the repository root)", path);
    uint8_t *buf = malloc(1 << 20);
    size_t len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    /* empty.png is 0 bytes: the input refuses it at the door. */
    struct api_error e;
    if (len > 0 && predict_input_add_image(in, buf, len, &e) != 0)
        fail_msg("%s: %s", name, e.message);
    if (len == 0)
        free(buf);
}

/* The answer of one fixture as a JSON document (200), or NULL with the
 * error code in *code. */
static json_t *predict_fixture(const struct predict_deps *d, const char *name, unsigned samples,
                               uint64_t seed, enum api_code *code)
{
    struct predict_input in;
    predict_input_init(&in, &cfg, 0);
    in.params.samples = samples;
    in.params.seed = seed;
    in.params.set = PREDICT_SET_SAMPLES | PREDICT_SET_SEED;
    add_fixture(&in, name);
    if (in.n_images == 0) {
        *code = API_E_INVALID_PNG;
        return NULL;
    }
    unsigned run = 0;
    struct predict_answer a = run_job(d, &in, &run);
    *code = a.code;
    json_error_t jerr;
    json_t *j = json_loadb(a.body, a.len, 0, &jerr);
    assert_non_null(j);
    if (a.code != API_OK) {
        assert_int_equal(a.status, api_http_status(a.code, cfg.overload_status));
        assert_true(json_string_length(json_object_get(json_object_get(j, "error"), "message")) > 0);
        json_decref(j);
        j = NULL;
    } else {
        assert_int_equal(a.status, 200);
        assert_int_equal(run, samples);
    }
    free(a.body);
    return j;
}

static void test_predict_png(void **state)
{
    (void)state;
    struct pool *pool = new_pool(2, 8);
    struct predict_deps d = {.cfg = &cfg, .models = models, .pool = pool, .metrics = metrics};
    enum api_code code;
    json_t *a = predict_fixture(&d, "digit_gray8.png", 64, 123, &code);
    assert_non_null(a);
    assert_int_equal(json_integer_value(json_object_get(a, "samples")), 64);
    assert_int_equal(json_integer_value(json_object_get(a, "seed")), 123);
    assert_string_equal(json_string_value(json_object_get(a, "model_version")), TEST_VERSION);
    assert_string_equal(json_string_value(json_object_get(a, "mode")), "lrt");
    assert_string_equal(json_string_value(json_object_get(a, "preprocessing")), "none");
    json_t *classes = json_object_get(a, "classes");
    assert_int_equal(json_array_size(classes), 10);
    double sum = 0;
    for (size_t k = 0; k < 10; k++) {
        json_t *c = json_array_get(classes, k);
        double mean = json_real_value(json_object_get(c, "mean"));
        double lower = json_real_value(json_object_get(c, "lower"));
        double upper = json_real_value(json_object_get(c, "upper"));
        /* A skewed probability can have its mean outside the interval; the
         * interval itself is ordered and inside [0, 1]. */
        assert_true(0 <= lower && lower <= upper && upper <= 1);
        assert_true(0 <= mean && mean <= 1);
        sum += mean;
    }
    assert_true(sum > 0.999 && sum < 1.001);
    assert_true(json_is_boolean(json_object_get(a, "uncertain")));
    assert_true(json_real_value(json_object_get(json_object_get(a, "timing_ms"), "queue")) >= 0);
    if (real_model)
        assert_int_equal(json_integer_value(json_object_get(a, "prediction")), 7); /* MNIST t10k[0] */

    /* Same (image, T, seed): the same bytes for the classes, also from the
     * same digit stored as 16-bit RGBA interlaced; another seed differs. */
    json_t *b = predict_fixture(&d, "digit_rgba16_adam7.png", 64, 123, &code);
    char *ca = json_dumps(json_object_get(a, "classes"), API_JSON_FLAGS);
    char *cb = json_dumps(json_object_get(b, "classes"), API_JSON_FLAGS);
    assert_string_equal(ca, cb);
    free(cb);
    json_decref(b);
    b = predict_fixture(&d, "digit_gray8.png", 64, 124, &code);
    cb = json_dumps(json_object_get(b, "classes"), API_JSON_FLAGS);
    assert_string_not_equal(ca, cb);
    free(ca);
    free(cb);
    json_decref(b);
    json_decref(a);

    a = predict_fixture(&d, "digit_on_page_280.png", 16, 1, &code);
    assert_non_null(strstr(json_string_value(json_object_get(a, "preprocessing")), "inverted"));
    assert_non_null(strstr(json_string_value(json_object_get(a, "preprocessing")), "resized"));
    if (real_model)
        assert_int_equal(json_integer_value(json_object_get(a, "prediction")), 7);
    json_decref(a);

    /* Without a policy only a picture without a digit is flagged; with one,
     * its thresholds and its set decide. */
    a = predict_fixture(&d, "blank_white_64.png", 16, 1, &code);
    assert_string_equal(json_string_value(json_object_get(a, "preprocessing")), "blank");
    assert_true(json_is_true(json_object_get(a, "uncertain")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(a, "uncertain_reasons"), 0)),
                        "no_digit");
    assert_true(json_is_null(json_object_get(a, "prediction_set")));
    json_decref(a);
    struct bnn_policy pol;
    bnn_policy_none(&pol);
    pol.entropy_max = 0; /* every answer has some entropy */
    pol.n_levels = 1;
    pol.coverage[0] = 0.95;
    pol.min_prob[0] = 0.5;
    d.models = serve(load_model(), &pol);
    a = predict_fixture(&d, "digit_gray8.png", 16, 1, &code);
    assert_true(json_is_true(json_object_get(a, "uncertain")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(a, "uncertain_reasons"), 0)),
                        "entropy");
    json_t *set = json_object_get(a, "prediction_set");
    if (real_model) {
        assert_int_equal(json_array_size(set), 1);
        assert_int_equal(json_integer_value(json_array_get(set, 0)), 7);
    }
    assert_true(json_real_value(json_object_get(a, "set_coverage")) == 0.95);
    json_decref(a);
    served_models_free(d.models);
    d.models = models;

    static const struct {
        const char *name;
        enum api_code code;
    } bad[] = {
        {"not_png.png", API_E_INVALID_PNG},        {"empty.png", API_E_INVALID_PNG},
        {"truncated_idat.png", API_E_INVALID_PNG}, {"bad_crc.png", API_E_INVALID_PNG},
        {"bad_zlib.png", API_E_INVALID_PNG},       {"huge_100000x100000.png", API_E_IMAGE_TOO_LARGE},
        {"zero_width.png", API_E_IMAGE_TOO_LARGE},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        a = predict_fixture(&d, bad[i].name, 4, 1, &code);
        assert_null(a);
        if (code != bad[i].code)
            fail_msg("%s: expected %s, got %s", bad[i].name, api_code_name(bad[i].code), api_code_name(code));
    }
    pool_shutdown(pool, 10);
    pool_free(pool);
}

static void test_batch(void **state)
{
    (void)state;
    struct pool *pool = new_pool(1, 4);
    struct predict_deps d = {.cfg = &cfg, .models = models, .pool = pool, .metrics = metrics};
    struct predict_input in;
    predict_input_init(&in, &cfg, 1);
    in.params.samples = 8;
    add_fixture(&in, "digit_gray8.png");
    add_fixture(&in, "digit_on_page_280.png");
    unsigned run;
    struct predict_answer a = run_job(&d, &in, &run);
    assert_int_equal(a.status, 200);
    assert_int_equal(run, 16);
    json_error_t jerr;
    json_t *j = json_loadb(a.body, a.len, 0, &jerr);
    json_t *results = json_object_get(j, "results");
    assert_int_equal(json_array_size(results), 2);
    /* No seed given: each image draws its own, echoed. */
    json_t *s0 = json_object_get(json_array_get(results, 0), "seed"),
           *s1 = json_object_get(json_array_get(results, 1), "seed");
    assert_true(json_is_integer(s0) && json_integer_value(s0) >= 0);
    assert_true(json_integer_value(s0) != json_integer_value(s1));
    json_decref(j);
    free(a.body);

    /* All or nothing: a bad image fails the batch, named. */
    predict_input_init(&in, &cfg, 1);
    in.params.samples = 8;
    add_fixture(&in, "digit_gray8.png");
    add_fixture(&in, "not_png.png");
    a = run_job(&d, &in, &run);
    assert_int_equal(a.status, 400);
    assert_int_equal(a.code, API_E_INVALID_PNG);
    assert_non_null(strstr(a.body, "images[1]: not a PNG"));
    assert_int_equal(run, 8);
    free(a.body);
    pool_shutdown(pool, 10);
    pool_free(pool);
}

/* A job of the test's own that holds the only worker until opened. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int entered, open;
};

static int gate_run(void *job, void *ctx)
{
    (void)ctx;
    struct gate *g = job;
    pthread_mutex_lock(&g->mu);
    g->entered = 1;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return 0;
}

static void gate_cancel(void *job)
{
    (void)job;
}

static void gate_set(struct gate *g, int open)
{
    pthread_mutex_lock(&g->mu);
    if (open)
        g->open = 1;
    pthread_cond_broadcast(&g->cv);
    while (!g->entered)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void one_fixture(struct predict_input *in, unsigned samples)
{
    predict_input_init(in, &cfg, 0);
    in->params.samples = samples;
    add_fixture(in, "digit_gray8.png");
}

static void test_refusals(void **state)
{
    (void)state;
    struct pool *pool = new_pool(1, 1);
    struct predict_deps d = {.cfg = &cfg, .models = models, .pool = pool, .metrics = metrics};
    struct api_error e = {0};
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    assert_int_equal(pool_submit(pool, &g, gate_run, gate_cancel), POOL_OK);
    gate_set(&g, 0); /* the worker is held */
    assert_int_equal(predict_admit(&d, &e), 0);
    struct gate filler = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 1, 1};
    assert_int_equal(pool_submit(pool, &filler, gate_run, gate_cancel), POOL_OK);
    /* Full: the fast path says so, and pool_submit decides the same. */
    assert_int_equal(predict_admit(&d, &e), API_E_OVERLOADED);
    assert_non_null(strstr(e.message, "queue full"));
    struct predict_input in;
    one_fixture(&in, 4);
    struct predict_answer a = run_job(&d, &in, NULL); /* done ran inside predict_submit */
    assert_int_equal(a.status, 503);
    assert_int_equal(a.code, API_E_OVERLOADED);
    free(a.body);
    cfg.overload_status = 429;
    one_fixture(&in, 4);
    a = run_job(&d, &in, NULL);
    assert_int_equal(a.status, 429);
    free(a.body);
    cfg.overload_status = 503;
    gate_set(&g, 1);
    pool_shutdown(pool, 10);
    /* Stopped: draining, also at once. */
    assert_int_equal(predict_admit(&d, &e), API_E_DRAINING);
    one_fixture(&in, 4);
    a = run_job(&d, &in, NULL);
    assert_int_equal(a.status, 503);
    assert_int_equal(a.code, API_E_DRAINING);
    assert_non_null(strstr(a.body, "shutting down"));
    free(a.body);
    pool_free(pool);
}

struct opener {
    struct pool *pool;
    struct gate *gate;
};

/* Opens the gate once a job is queued behind it and has waited 5 ms. */
static void *open_later(void *arg)
{
    struct opener *o = arg;
    struct timespec ts = {0, 5 * 1000 * 1000};
    while (pool_queued(o->pool) == 0)
        nanosleep(&ts, NULL);
    nanosleep(&ts, NULL);
    gate_set(o->gate, 1);
    return NULL;
}

static void test_deadline_and_fault(void **state)
{
    (void)state;
    struct pool *pool = new_pool(1, 4);
    struct predict_faults faults = {.every_nth = 2};
    struct predict_deps d = {
        .cfg = &cfg, .models = models, .pool = pool, .metrics = metrics, .faults = &faults};
    struct predict_input in;
    one_fixture(&in, 4);
    struct predict_answer a = run_job(&d, &in, NULL);
    assert_int_equal(a.status, 200);
    free(a.body);
    one_fixture(&in, 4);
    unsigned run = 1;
    a = run_job(&d, &in, &run); /* the second job */
    assert_int_equal(a.status, 500);
    assert_non_null(strstr(a.body, "injected fault"));
    assert_int_equal(run, 0);
    free(a.body);
    assert_int_equal(pool_failed(pool), 1);

    /* A job that waited past job_timeout_ms (at least 5 ms behind a held
     * worker, 1 ms allowed) is answered without being computed. */
    d.faults = NULL;
    cfg.job_timeout_ms = 1;
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    assert_int_equal(pool_submit(pool, &g, gate_run, gate_cancel), POOL_OK);
    gate_set(&g, 0);
    pthread_t t;
    struct opener o = {pool, &g};
    pthread_create(&t, NULL, open_later, &o);
    one_fixture(&in, 4);
    a = run_job(&d, &in, &run);
    pthread_join(t, NULL);
    cfg.job_timeout_ms = 30000;
    assert_int_equal(a.status, 503);
    assert_int_equal(a.code, API_E_TIMEOUT);
    assert_int_equal(run, 0);
    free(a.body);
    pool_shutdown(pool, 10);
    pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_input),
        cmocka_unit_test(test_predict_png),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_deadline_and_fault),
    };
    cfg_defaults(&cfg);
    return cmocka_run_group_tests(tests, setup_model, teardown_model);
}

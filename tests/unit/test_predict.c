/* test_predict.c - a prediction from parsed input to answer without HTTP
 * (predict.h): the input's one door for images (empty refused once, named,
 * ownership moved), and real jobs through a real worker pool on real PNG
 * fixtures (a real MNIST digit) with the shipped weights when present, else
 * a random model of the same shape: the answer's fields, replay by seed,
 * every decode error's code, a batch that is all or nothing, the refusals
 * pool_submit decides (queue full by requests or by cost, a request too
 * costly ever to fit, weights mode's samples limit, shut down), the
 * deadline in the queue and in compute, the injected fault; the blocks:
 * the same answer whatever the workers and block sizes, a light request
 * answered before a heavy one queued ahead of it, drain. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
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

static struct pool *new_pool_cost(unsigned workers, unsigned capacity, uint64_t cost)
{
    char err[POOL_ERR_LEN];
    struct pool *p = pool_new(workers, capacity, cost, predict_worker_new, predict_worker_free, model, err);
    if (!p)
        fail_msg("pool_new: %s", err);
    return p;
}

static struct pool *new_pool(unsigned workers, unsigned capacity)
{
    char err[POOL_ERR_LEN];
    struct pool *p =
        pool_new(workers, capacity, 1000000, predict_worker_new, predict_worker_free, model, err);
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

/* A job of the test's own: one step that holds a worker until opened. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int entered, open;
};

static void gate_step(void *job, void *ctx, struct pool_step *st)
{
    (void)ctx;
    struct gate *g = job;
    pthread_mutex_lock(&g->mu);
    g->entered = 1;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    st->last = 1;
}

static int gate_end(void *job, int stopped)
{
    (void)job, (void)stopped;
    return 0;
}

static const struct pool_job_ops gate_ops = {gate_step, gate_end};

/* Holds a worker: returns once the gate's step runs. */
static void gate_hold(struct pool *pool, struct gate *g)
{
    assert_int_equal(pool_submit(pool, g, &gate_ops, 1, 1), POOL_OK);
    pthread_mutex_lock(&g->mu);
    while (!g->entered)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
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
    struct pool *pool = new_pool(1, 2);
    struct predict_deps d = {.cfg = &cfg, .models = models, .pool = pool, .metrics = metrics};
    struct api_error e = {0};
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    gate_hold(pool, &g); /* the worker is held: one request in flight */
    assert_int_equal(predict_admit(&d, &e), 0);
    struct gate filler = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 1, 1};
    assert_int_equal(pool_submit(pool, &filler, &gate_ops, 1, 1), POOL_OK);
    /* Full: the fast path says so, and pool_submit decides the same. */
    assert_int_equal(predict_admit(&d, &e), API_E_OVERLOADED);
    assert_non_null(strstr(e.message, "queue full (2 requests in flight, queue_depth = 2)"));
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
    while (pool_queued(o->pool) < 2) /* the gate and the job */
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
    /* counted once the job's end returns, just after its answer was published */
    for (int i = 0; i < 10000 && pool_failed(pool) == 0; i++)
        usleep(1000);
    assert_int_equal(pool_failed(pool), 1);

    /* A job that waited past job_timeout_ms (at least 5 ms behind a held
     * worker, 1 ms allowed) is answered without being computed. */
    d.faults = NULL;
    cfg.job_timeout_ms = 1;
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    gate_hold(pool, &g);
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

/* --- blocks across workers and requests ----------------------------------------------- */

/* A job started without waiting; its done callback records the order jobs
 * finished in. */
struct pending {
    struct waiter w;
    struct predict_job *j;
    int order;
};

static atomic_int done_seq;

static void on_done_seq(void *cls)
{
    struct pending *p = cls;
    p->order = atomic_fetch_add(&done_seq, 1);
    on_done(&p->w);
}

static void start_job(const struct predict_deps *d, struct predict_input *in, struct pending *p)
{
    struct api_error e = {0};
    *p = (struct pending){.w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0}, .order = -1};
    p->j = predict_job_new(d, in, api_predict_body, NULL, on_done_seq, p, "test", &e);
    assert_non_null(p->j);
    predict_submit(p->j);
}

static struct predict_answer wait_job(struct pending *p, unsigned *samples)
{
    pthread_mutex_lock(&p->w.mu);
    while (!p->w.done)
        pthread_cond_wait(&p->w.cv, &p->w.mu);
    pthread_mutex_unlock(&p->w.mu);
    struct predict_answer a;
    assert_true(predict_job_answer(p->j, &a));
    if (samples)
        *samples = predict_job_samples(p->j);
    predict_job_free(p->j);
    p->j = NULL;
    return a;
}

static void input_for(struct predict_input *in, const char *const *names, size_t n, unsigned samples,
                      enum bnn_mode mode, uint64_t seed)
{
    predict_input_init(in, &cfg, n > 1);
    in->params.samples = samples;
    in->params.mode = mode;
    in->params.seed = seed;
    in->params.set = PREDICT_SET_SAMPLES | PREDICT_SET_SEED | PREDICT_SET_MODE;
    for (size_t i = 0; i < n; i++)
        add_fixture(in, names[i]);
}

/* The classes of result i (of a batch, or the one answer) as compact JSON. */
static char *classes_of(const struct predict_answer *a, size_t i)
{
    json_error_t jerr;
    json_t *doc = json_loadb(a->body, a->len, 0, &jerr);
    assert_non_null(doc);
    json_t *results = json_object_get(doc, "results");
    json_t *r = results ? json_array_get(results, i) : doc;
    assert_non_null(r);
    char *c = json_dumps(json_object_get(r, "classes"), API_JSON_FLAGS);
    json_decref(doc);
    return c;
}

static char *predict_classes(struct pool *pool, const char *name, unsigned samples, enum bnn_mode mode)
{
    struct predict_deps d = {.cfg = &cfg, .models = models, .pool = pool, .metrics = metrics};
    struct predict_input in;
    input_for(&in, &name, 1, samples, mode, 77);
    unsigned run = 0;
    struct predict_answer a = run_job(&d, &in, &run);
    if (a.status != 200)
        fail_msg("%s T = %u mode %s: expected 200, got %u: %s", name, samples, bnn_mode_name(mode), a.status,
                 a.body);
    assert_int_equal(run, samples);
    char *c = classes_of(&a, 0);
    free(a.body);
    return c;
}

/* Any split of a request's passes gives the same answer: 1 worker against 2
 * (the blocks of one image on both), the weights mode's block size moved
 * by weights_pass_cost, and a batch's images against the same images alone. */
static void test_blocks_same_answer(void **state)
{
    (void)state;
    struct pool *one = new_pool(1, 8), *two = new_pool(2, 8);
    char *a = predict_classes(one, "digit_gray8.png", 1000, BNN_MODE_LRT);
    char *b = predict_classes(two, "digit_gray8.png", 1000, BNN_MODE_LRT);
    assert_string_equal(a, b);
    free(a), free(b);
    static const unsigned costs[] = {0, 30, 120};
    char *w[3];
    for (size_t i = 0; i < 3; i++) { /* blocks of 120 / cost passes: 2 (or 1), 4, 1 */
        cfg.weights_pass_cost = costs[i];
        w[i] = predict_classes(i == 1 ? one : two, "digit_on_page_280.png", 9, BNN_MODE_WEIGHTS);
    }
    cfg.weights_pass_cost = 0;
    assert_string_equal(w[0], w[1]);
    assert_string_equal(w[0], w[2]);
    for (size_t i = 0; i < 3; i++)
        free(w[i]);

    static const char *const names[] = {"digit_gray8.png", "digit_on_page_280.png", "blank_white_64.png"};
    struct predict_deps d = {.cfg = &cfg, .models = models, .pool = two, .metrics = metrics};
    struct predict_input in;
    input_for(&in, names, 3, 250, BNN_MODE_LRT, 77);
    unsigned run = 0;
    struct predict_answer batch = run_job(&d, &in, &run);
    assert_int_equal(batch.status, 200);
    assert_int_equal(run, 750);
    for (size_t i = 0; i < 3; i++) {
        char *got = classes_of(&batch, i), *alone = predict_classes(one, names[i], 250, BNN_MODE_LRT);
        assert_string_equal(got, alone);
        free(got), free(alone);
    }
    free(batch.body);
    pool_shutdown(one, 10), pool_shutdown(two, 10);
    pool_free(one), pool_free(two);
}

/* One worker, a heavy request (200 blocks) queued before a light one: the
 * light one is answered first, the heavy one after, both 200. */
static void test_light_passes_heavy(void **state)
{
    (void)state;
    struct pool *pool = new_pool(1, 8);
    struct predict_deps d = {.cfg = &cfg, .models = models, .pool = pool, .metrics = metrics};
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    gate_hold(pool, &g);
    cfg.weights_pass_cost = 120; /* one pass a block */
    static const char *const name = "digit_gray8.png";
    struct predict_input heavy_in, light_in;
    input_for(&heavy_in, &name, 1, 200, BNN_MODE_WEIGHTS, 1);
    input_for(&light_in, &name, 1, 10, BNN_MODE_LRT, 1);
    struct pending heavy, light;
    start_job(&d, &heavy_in, &heavy);
    start_job(&d, &light_in, &light);
    assert_int_equal(pool_queued(pool), 3);
    assert_int_equal(pool_queued_cost(pool), 1 + 200 * 120 + 10);
    gate_set(&g, 1);
    unsigned heavy_run, light_run;
    struct predict_answer la = wait_job(&light, &light_run), ha = wait_job(&heavy, &heavy_run);
    cfg.weights_pass_cost = 0;
    assert_int_equal(la.status, 200);
    assert_int_equal(ha.status, 200);
    assert_int_equal(light_run, 10);
    assert_int_equal(heavy_run, 200);
    if (light.order > heavy.order)
        fail_msg("the light request finished after the heavy one (order %d, %d)", light.order, heavy.order);
    free(la.body), free(ha.body);
    pool_shutdown(pool, 10);
    pool_free(pool);
}

/* job_timeout_ms bounds compute: a heavy request past it is stopped at a
 * block boundary (503 timeout, part of its passes computed) while a light
 * one beside it is answered, and the worker serves on. */
static void test_deadline_in_compute(void **state)
{
    (void)state;
    struct pool *pool = new_pool(1, 8);
    struct predict_deps d = {.cfg = &cfg, .models = models, .pool = pool, .metrics = metrics};
    static const char *const names[] = {"digit_gray8.png", "digit_on_page_280.png"};
    struct predict_input heavy_in, light_in;
    /* 2 x 1000 weights passes: about a second of one core at the fastest */
    input_for(&heavy_in, names, 2, 1000, BNN_MODE_WEIGHTS, 3);
    input_for(&light_in, names, 1, 10, BNN_MODE_LRT, 3);
    cfg.job_timeout_ms = 300;
    struct pending heavy, light;
    start_job(&d, &heavy_in, &heavy);
    start_job(&d, &light_in, &light);
    unsigned heavy_run, light_run;
    struct predict_answer la = wait_job(&light, &light_run), ha = wait_job(&heavy, &heavy_run);
    cfg.job_timeout_ms = 30000;
    assert_int_equal(la.status, 200);
    assert_int_equal(light_run, 10);
    assert_int_equal(ha.status, 503);
    assert_int_equal(ha.code, API_E_TIMEOUT);
    assert_non_null(strstr(ha.body, "job_timeout_ms = 300"));
    assert_non_null(strstr(ha.body, "stopped"));
    assert_true(heavy_run > 0 && heavy_run < 2000);
    free(la.body), free(ha.body);
    assert_int_equal(pool_queued(pool), 0);
    assert_int_equal(pool_queued_cost(pool), 0);
    char *c = predict_classes(pool, "digit_gray8.png", 20, BNN_MODE_LRT); /* serves on */
    free(c);
    pool_shutdown(pool, 10);
    pool_free(pool);
}

static void test_weights_limit_and_cost(void **state)
{
    (void)state;
    /* queue_cost 5000 over 8 requests: a share of 625 */
    struct pool *pool = new_pool_cost(1, 8, 5000);
    struct predict_deps d = {.cfg = &cfg, .models = models, .pool = pool, .metrics = metrics};
    static const char *const name = "digit_gray8.png";
    struct predict_input in;
    cfg.max_samples_weights = 50;
    cfg.weights_pass_cost = 46;
    input_for(&in, &name, 1, 51, BNN_MODE_WEIGHTS, 1);
    struct predict_answer a = run_job(&d, &in, NULL);
    assert_int_equal(a.status, 400);
    assert_int_equal(a.code, API_E_INVALID_PARAMETER);
    assert_non_null(strstr(a.body, "samples: expected 1..50 for mode=weights (max_samples_weights), got 51"));
    free(a.body);
    input_for(&in, &name, 1, 100, BNN_MODE_WEIGHTS, 1);
    in.params.set &= ~(unsigned)PREDICT_SET_SAMPLES; /* the default, not given */
    a = run_job(&d, &in, NULL);
    assert_non_null(strstr(a.body, "got 100 (default_samples)"));
    free(a.body);
    cfg.max_samples_weights = 1000;
    /* 120 x 46 = 5520 lrt passes: never fits in 5000 */
    input_for(&in, &name, 1, 120, BNN_MODE_WEIGHTS, 1);
    a = run_job(&d, &in, NULL);
    assert_int_equal(a.status, 400);
    assert_non_null(strstr(a.body, "costs 5520 lrt passes (1 image(s) x 120 samples x 46 for mode=weights), "
                                   "above queue_cost = 5000"));
    free(a.body);
    /* Full by cost: a second heavy request is refused, a light one is not. */
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    gate_hold(pool, &g);
    struct predict_input heavy_in, light_in;
    input_for(&heavy_in, &name, 1, 100, BNN_MODE_WEIGHTS, 1); /* 4600 */
    struct pending heavy, light;
    start_job(&d, &heavy_in, &heavy);
    input_for(&in, &name, 1, 20, BNN_MODE_WEIGHTS, 1); /* 920: above the share, does not fit */
    a = run_job(&d, &in, NULL);
    assert_int_equal(a.status, 503);
    assert_int_equal(a.code, API_E_OVERLOADED);
    assert_non_null(
        strstr(a.body, "4601 lrt passes of work queued, queue_cost = 5000, and this request costs 920"));
    free(a.body);
    input_for(&light_in, &name, 1, 100, BNN_MODE_LRT, 1); /* 100: within the share */
    start_job(&d, &light_in, &light);
    gate_set(&g, 1);
    a = wait_job(&heavy, NULL);
    assert_int_equal(a.status, 200);
    free(a.body);
    a = wait_job(&light, NULL);
    assert_int_equal(a.status, 200);
    free(a.body);
    cfg.weights_pass_cost = 0;
    pool_shutdown(pool, 10);
    pool_free(pool);
}

struct drain_opener {
    struct pending *wait_for;
    struct gate *gate;
};

/* Opens the gate once the job it waits for was answered. */
static void *open_after_answer(void *arg)
{
    struct drain_opener *o = arg;
    pthread_mutex_lock(&o->wait_for->w.mu);
    while (!o->wait_for->w.done)
        pthread_cond_wait(&o->wait_for->w.cv, &o->wait_for->w.mu);
    pthread_mutex_unlock(&o->wait_for->w.mu);
    gate_set(o->gate, 1);
    return NULL;
}

/* Drain: every accepted request answered; at the deadline a request not
 * started and one stopped between two blocks both get 503 shutting down. */
static void test_drain(void **state)
{
    (void)state;
    static const char *const names[] = {"digit_gray8.png", "digit_on_page_280.png"};
    struct predict_input in;
    struct pending queued, running;
    /* not started: queued behind a held worker */
    struct pool *pool = new_pool(1, 8);
    struct predict_deps d = {.cfg = &cfg, .models = models, .pool = pool, .metrics = metrics};
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    gate_hold(pool, &g);
    input_for(&in, names, 1, 10, BNN_MODE_LRT, 1);
    start_job(&d, &in, &queued);
    pthread_t t;
    struct drain_opener o = {&queued, &g};
    pthread_create(&t, NULL, open_after_answer, &o);
    assert_int_equal(pool_shutdown(pool, 0.05), 2); /* the gate's job and ours */
    pthread_join(t, NULL);
    struct predict_answer a = wait_job(&queued, NULL);
    assert_int_equal(a.status, 503);
    assert_int_equal(a.code, API_E_DRAINING);
    assert_non_null(strstr(a.body, "shutting down: the request was not started within drain_timeout"));
    free(a.body);
    pool_free(pool);
    /* stopped between blocks: 2 x 1000 weights passes take a second or more */
    pool = new_pool(1, 8);
    d.pool = pool;
    input_for(&in, names, 2, 1000, BNN_MODE_WEIGHTS, 1);
    start_job(&d, &in, &running);
    while (pool_busy(pool) == 0)
        sched_yield();
    assert_int_equal(pool_shutdown(pool, 0.1), 1);
    unsigned run = 0;
    a = wait_job(&running, &run);
    assert_int_equal(a.status, 503);
    assert_non_null(strstr(a.body, "the request was not finished within drain_timeout"));
    assert_true(run > 0 && run < 2000);
    free(a.body);
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
        cmocka_unit_test(test_blocks_same_answer),
        cmocka_unit_test(test_light_passes_heavy),
        cmocka_unit_test(test_deadline_in_compute),
        cmocka_unit_test(test_weights_limit_and_cost),
        cmocka_unit_test(test_drain),
    };
    cfg_defaults(&cfg);
    return cmocka_run_group_tests(tests, setup_model, teardown_model);
}

/* predict.c - see predict.h.
 *
 * A job's life: predict_job_new moves the parsed input in; predict_submit
 * hands it to the pool; a worker runs job_run: job_check (deadline and
 * injected faults), job_compute (each image through predict_one: prepare =
 * decode -> preprocess, then infer), job_encode (the route's encoder), and
 * finally job_finish stores the answer and calls done. Compute and encode
 * are separate steps so that compute can later be cut into blocks of passes
 * scheduled across requests, with encode still run once at the end.
 *
 * Scratch: the workspace (bnn_workspace: per-layer buffers for one model
 * shape) belongs to the worker; the (T, classes) probabilities and the
 * statistics' scratch belong to the job, since they describe the request.
 */
#include "predict.h"
#include "timing.h"

#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "fault.h"
#include "image.h"
#include "preprocess.h"

struct predict_job {
    const struct predict_deps *deps;
    struct served_model *served;     /* the served model this job started with (a reference) */
    const struct bnn_model *model;   /* its model */
    const struct bnn_policy *policy; /* and its policy */
    int set_level;                   /* the policy's level for the sets, -1 = none */
    struct predict_input in;
    predict_encode_fn encode;
    void *encode_cls;
    predict_done_fn done;
    void *done_cls;
    const char *request_id;
    double t_submit; /* ms, monotonic */
    double queue_ms;
    struct predict_result *results; /* (n_images) */
    float *probs;                   /* (samples, n_classes): the image being computed */
    double *scratch;                /* (samples) */
    unsigned samples_run;
    struct predict_answer answer;
    _Atomic int finished;
};

/* --- the parsed input ------------------------------------------------------------ */

void predict_params_init(struct predict_params *p, const struct cfg *c)
{
    memset(p, 0, sizeof *p);
    p->samples = c->default_samples;
    p->interval = c->default_interval;
    p->set_coverage = c->default_set_coverage;
    p->mode = BNN_MODE_LRT;
}

void predict_input_init(struct predict_input *in, const struct cfg *c, int batch)
{
    memset(in, 0, sizeof *in);
    predict_params_init(&in->params, c);
    in->batch = batch;
}

const char *predict_image_name(const struct predict_input *in, size_t i, char buf[PREDICT_NAME_LEN])
{
    if (!in->batch)
        return "image";
    snprintf(buf, PREDICT_NAME_LEN, "images[%zu]", i);
    return buf;
}

/* Room for one more image; frees owned (the image offered) on failure. */
static int input_grow(struct predict_input *in, void *owned, struct api_error *e)
{
    char name[PREDICT_NAME_LEN];
    if (in->n_images < in->cap_images)
        return 0;
    size_t cap = in->cap_images ? 2 * in->cap_images : 4;
    struct predict_image *images = bnn_fault_realloc(in->images, cap * sizeof *images);
    if (!images) {
        free(owned);
        return api_fail(e, API_E_INTERNAL, "%s: out of memory", predict_image_name(in, in->n_images, name));
    }
    in->images = images;
    in->cap_images = cap;
    return 0;
}

int predict_input_add_image(struct predict_input *in, uint8_t *png, size_t len, struct api_error *e)
{
    char name[PREDICT_NAME_LEN];
    if (len == 0) {
        free(png);
        return api_fail(e, API_E_INVALID_PNG, "%s: empty image", predict_image_name(in, in->n_images, name));
    }
    int rc = input_grow(in, png, e);
    if (rc == 0)
        in->images[in->n_images++] = (struct predict_image){.png = png, .len = len};
    return rc;
}

int predict_input_add_gray(struct predict_input *in, uint8_t *gray, size_t width, size_t height,
                           struct api_error *e)
{
    int rc = input_grow(in, gray, e);
    if (rc == 0)
        in->images[in->n_images++] = (struct predict_image){.gray = gray, .width = width, .height = height};
    return rc;
}

void predict_input_free(struct predict_input *in)
{
    if (!in)
        return;
    for (size_t i = 0; i < in->n_images; i++) {
        free(in->images[i].png);
        free(in->images[i].gray);
    }
    free(in->images);
    in->images = NULL;
    in->n_images = in->cap_images = 0;
}

/* --- one image: decode -> preprocess -> infer ---------------------------------------- */

void *predict_worker_new(void *model)
{
    return bnn_workspace_new(model);
}

void predict_worker_free(void *worker)
{
    bnn_workspace_free(worker);
}

uint64_t predict_random_seed(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        /* No entropy source: a clock-derived seed is still a valid seed. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec;
    }
    return v & PREDICT_SEED_MAX;
}

/* The request's image as the network's input: decode (dimensions checked
 * against max_side before any pixel is) and canonicalise (preprocess.h);
 * pixels are canonicalised as they are, like a decoded PNG. */
static int prepare(float x[BNN_MNIST_PIXELS], struct prep_result *prep, const struct predict_image *im,
                   unsigned max_side, struct api_error *e)
{
    if (im->gray) {
        prep_canonical(x, prep, im->gray, im->width, im->height);
        return 0;
    }
    char err[IMG_ERR_LEN];
    struct img_gray gray;
    int rc = img_decode_png(&gray, im->png, im->len, max_side, err);
    if (rc != IMG_OK) {
        enum api_code code = rc == IMG_E_TOO_LARGE ? API_E_IMAGE_TOO_LARGE
                             : rc == IMG_E_NOMEM   ? API_E_INTERNAL
                                                   : API_E_INVALID_PNG;
        return api_fail(e, code, "%s", err);
    }
    prep_canonical(x, prep, gray.pixels, gray.width, gray.height);
    img_gray_free(&gray);
    return 0;
}

/* The T passes and their statistics. bnn_sample_probs checks the workspace,
 * T and mode (once per image); T and the interval were validated by the
 * request parser, which bnn_summarize relies on. */
static int infer(struct bnn_prediction *out, struct predict_job *j, struct bnn_workspace *ws, const float *x,
                 uint64_t seed, struct api_error *e)
{
    const struct predict_params *p = &j->in.params;
    char err[BNN_ERR_LEN];
    if (bnn_sample_probs(j->probs, ws, j->model, x, p->samples, seed, p->mode, err) != BNN_OK)
        return api_fail(e, API_E_INTERNAL, "prediction failed: %s", err);
    bnn_summarize(out, j->probs, p->samples, bnn_model_n_classes(j->model), p->interval, j->scratch);
    return 0;
}

static int predict_one(struct predict_result *r, struct predict_job *j, struct bnn_workspace *ws,
                       const struct predict_image *im, struct api_error *e)
{
    const struct cfg *c = j->deps->cfg;
    const struct predict_params *p = &j->in.params;
    float x[BNN_MNIST_PIXELS];
    double t0 = timing_now_ms();
    int rc = prepare(x, &r->a.prep, im, c->max_image_side, e);
    if (rc != 0)
        return rc;
    double t1 = timing_now_ms();
    r->seed = (p->set & PREDICT_SET_SEED) ? p->seed : predict_random_seed();
    rc = infer(&r->a.pr, j, ws, x, r->seed, e);
    if (rc != 0)
        return rc;
    /* the abstain rule and the set, as answer.h decides them for every path */
    bnn_answer_finish(&r->a, j->policy, r->a.prep.verdict == PREP_DIGIT, j->set_level);
    r->set_level = j->set_level;
    r->set_coverage = p->set_coverage;
    r->decode_ms = t1 - t0;
    r->compute_ms = timing_now_ms() - t1;
    return 0;
}

/* --- the job (worker side) ------------------------------------------------------------- */

/* Publishes the answer already stored in j->answer: the release store pairs
 * with predict_job_answer's acquire load. done is read first, since once
 * finished is set (and surely once done runs) the job may be freed. */
static void job_finish(struct predict_job *j)
{
    predict_done_fn done = j->done;
    void *cls = j->done_cls;
    atomic_store_explicit(&j->finished, 1, memory_order_release);
    done(cls);
}

static void job_fail(struct predict_job *j, const struct api_error *e)
{
    unsigned status;
    size_t len = 0;
    char *body = api_error_body(e, j->deps->cfg->overload_status, &status, &len);
    j->answer = (struct predict_answer){status, e->code, body, body ? len : 0, ""};
    memcpy(j->answer.message, e->message, sizeof j->answer.message);
    job_finish(j);
}

/* Before computing: the deadline, and the test-only injected fault. */
static int job_check(struct predict_job *j, struct api_error *e)
{
    const struct predict_deps *d = j->deps;
    if (j->queue_ms > (double)d->cfg->job_timeout_ms) {
        metrics_add_timed_out(d->metrics);
        return api_fail(e, API_E_TIMEOUT,
                        "job waited %.0f ms in the queue, over job_timeout_ms = %u; not computed",
                        j->queue_ms, d->cfg->job_timeout_ms);
    }
    struct predict_faults *f = d->faults;
    if (f && f->every_nth && (atomic_fetch_add(&f->jobs, 1) + 1) % f->every_nth == 0)
        return api_fail(e, API_E_INTERNAL, "injected fault (BNN_FAULT_EVERY_NTH_JOB=%u)", f->every_nth);
    return 0;
}

/* Every image, in order; a batch is all or nothing. */
static int job_compute(struct predict_job *j, struct bnn_workspace *ws, struct api_error *e)
{
    size_t n = j->in.n_images, samples = j->in.params.samples, k = bnn_model_n_classes(j->model);
    j->results = calloc(n, sizeof *j->results);
    j->probs = malloc(samples * k * sizeof *j->probs);
    j->scratch = malloc(samples * sizeof *j->scratch);
    if (!j->results || !j->probs || !j->scratch)
        return api_fail(e, API_E_INTERNAL, "out of memory for %zu x %zu probabilities", samples, k);
    for (size_t i = 0; i < n; i++) {
        int rc = predict_one(&j->results[i], j, ws, &j->in.images[i], e);
        if (rc != 0) {
            char name[PREDICT_NAME_LEN];
            if (j->in.batch)
                api_error_prefix(e, predict_image_name(&j->in, i, name));
            return rc;
        }
        j->samples_run += (unsigned)samples;
    }
    return 0;
}

static int job_encode(struct predict_job *j, struct api_error *e)
{
    struct predict_outcome o = {.in = &j->in,
                                .results = j->results,
                                .queue_ms = j->queue_ms,
                                .model_version = j->served->version,
                                .cls = j->encode_cls};
    size_t len = 0;
    char *body = j->encode(&o, &len);
    if (!body)
        return api_fail(e, API_E_INTERNAL, "out of memory encoding the response");
    j->answer = (struct predict_answer){200, API_OK, body, len, ""};
    return 0;
}

static int job_run(void *job, void *worker)
{
    struct predict_job *j = job;
    const struct predict_deps *d = j->deps;
    j->queue_ms = timing_now_ms() - j->t_submit;
    struct api_error e = {0};
    int rc = job_check(j, &e);
    if (rc == 0) {
        rc = job_compute(j, worker, &e);
        metrics_add_samples(d->metrics, j->samples_run);
    }
    if (rc == 0)
        rc = job_encode(j, &e);
    if (rc == 0) {
        job_finish(j);
        return 0;
    }
    int internal = e.code == API_E_INTERNAL;
    if (internal)
        log_msg(d->log, LOG_ERROR, "request %s: %s", j->request_id, e.message);
    job_fail(j, &e);
    return internal ? -1 : 0;
}

/* Cancelled at shutdown: the drain time ran out before a worker took it. */
static void job_cancel(void *job)
{
    struct predict_job *j = job;
    struct api_error e;
    api_fail(&e, API_E_DRAINING, "server shutting down: the job was not started within drain_timeout = %u s",
             j->deps->cfg->drain_timeout);
    job_fail(j, &e);
}

/* --- submitting ---------------------------------------------------------------------- */

/* What a refusal of pool_submit (or pool_admit) answers: a full queue is
 * counted and answered overload_status with Retry-After; a stopped pool is
 * shutting down. */
static int refusal(const struct predict_deps *d, int pool_rc, struct api_error *e)
{
    if (pool_rc == POOL_E_FULL) {
        metrics_add_rejected(d->metrics);
        return api_fail(e, API_E_OVERLOADED, "job queue full (%u waiting); retry in %u s",
                        pool_capacity(d->pool), d->cfg->retry_after);
    }
    return api_fail(e, API_E_DRAINING, "server is shutting down; retry later");
}

int predict_admit(const struct predict_deps *d, struct api_error *e)
{
    int rc = pool_admit(d->pool);
    return rc == POOL_OK ? 0 : refusal(d, rc, e);
}

const char *predict_levels_text(const struct bnn_policy *p)
{
    static _Thread_local char buf[96];
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < p->n_levels && used < sizeof buf; i++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%g", i ? ", " : "", p->coverage[i]);
    return p->n_levels ? buf : "(none: the weights carry no conformal calibration)";
}

struct predict_job *predict_job_new(const struct predict_deps *d, struct predict_input *in,
                                    predict_encode_fn encode, void *encode_cls, predict_done_fn done,
                                    void *done_cls, const char *request_id, struct api_error *e)
{
    struct predict_job *j = calloc(1, sizeof *j);
    if (!j) {
        predict_input_free(in);
        api_fail(e, API_E_INTERNAL, "out of memory");
        return NULL;
    }
    j->deps = d;
    j->served = served_models_acquire(d->models);
    j->model = j->served->model;
    j->policy = &j->served->policy;
    j->set_level = bnn_policy_level(j->policy, in->params.set_coverage);
    if (j->set_level < 0 && (in->params.set & PREDICT_SET_SET_COVERAGE)) {
        api_fail(e, API_E_INVALID_PARAMETER, "set_coverage: expected one of the calibrated levels %s, got %g",
                 predict_levels_text(j->policy), in->params.set_coverage);
        predict_input_free(in);
        served_model_release(j->served);
        free(j);
        return NULL;
    }
    j->in = *in;
    in->images = NULL; /* moved into the job */
    in->n_images = in->cap_images = 0;
    j->encode = encode;
    j->encode_cls = encode_cls;
    j->done = done;
    j->done_cls = done_cls;
    j->request_id = request_id;
    atomic_init(&j->finished, 0);
    return j;
}

void predict_submit(struct predict_job *j)
{
    j->t_submit = timing_now_ms();
    int rc = pool_submit(j->deps->pool, j, job_run, job_cancel);
    if (rc != POOL_OK) {
        struct api_error e;
        refusal(j->deps, rc, &e);
        job_fail(j, &e);
    }
}

int predict_job_answer(struct predict_job *j, struct predict_answer *a)
{
    if (!atomic_load_explicit(&j->finished, memory_order_acquire))
        return 0;
    *a = j->answer;
    j->answer.body = NULL;
    j->answer.len = 0;
    return 1;
}

unsigned predict_job_samples(const struct predict_job *j)
{
    return j ? j->samples_run : 0;
}

const char *predict_job_model_version(const struct predict_job *j)
{
    return j->served->version;
}

void predict_job_free(struct predict_job *j)
{
    if (!j)
        return;
    predict_input_free(&j->in);
    free(j->results);
    free(j->probs);
    free(j->scratch);
    free(j->answer.body);
    served_model_release(j->served);
    free(j);
}

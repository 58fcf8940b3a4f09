/* predict.c - see predict.h.
 *
 * A job's life: predict_job_new moves the parsed input in; predict_submit
 * checks the mode's samples limit and gives the pool the job, its cost and
 * one ready step per image; workers run job_step, several at once when
 * idle: an image's first step prepares it (decode -> canonicalise -> its
 * bnn_input: layer 0 once) and runs its first block, each further step one
 * block (at most BNN_BLOCK passes, about an LRT block's cost in either
 * mode); the step finishing an image's last block summarises it and takes
 * the decisions (answer.h), the one finishing the last image encodes. Every
 * step first checks job_timeout_ms (from submission: it bounds the wait
 * and the compute); job_end answers once no step runs.
 * Scratch: the workspace (per-layer buffers) belongs to the worker; each
 * image's input and (T, classes) rows to the job, until its summary.
 */
#include "predict.h"
#include "timing.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "fault.h"
#include "image.h"
#include "preprocess.h"

/* One image of a job from its first step to its summary (guarded by the
 * job's mutex, except x and probs, which the steps that own a block use). */
struct job_image {
    struct bnn_input *x;  /* made by the first step; read by every block */
    float *probs;         /* (samples, n_classes); block b owns its rows */
    unsigned next_block;  /* blocks handed out, the first with the prepare */
    unsigned blocks_done; /* the last one summarises */
    int prepared;         /* the other blocks may be taken */
    double compute_ms;    /* its blocks' and its summary's time */
};

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
    /* the steps (predict_submit sets them up; mu guards what changes) */
    pthread_mutex_t mu;
    struct job_image *images; /* (n_images) */
    unsigned block_passes;    /* passes per block */
    unsigned n_blocks;        /* per image */
    unsigned pass_cost;       /* of a pass in this mode, lrt passes */
    size_t next_image;        /* the first image not yet started */
    size_t first_open;        /* images below have every block handed out */
    size_t images_done;
    int started;      /* a step has run: queue_ms is set */
    int failed;       /* err is the answer; no more steps */
    size_t err_image; /* the image err is about (the lowest wins) */
    struct api_error err;
    unsigned samples_run;
    struct predict_answer answer;
    _Atomic int finished;
};

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

unsigned predict_pass_cost(const struct cfg *c, enum bnn_mode mode)
{
    return mode == BNN_MODE_WEIGHTS && c->weights_pass_cost ? c->weights_pass_cost : bnn_pass_cost(mode);
}

/* Frees what an image holds between its first step and its summary. */
static void image_release(struct job_image *im)
{
    bnn_input_free(im->x);
    free(im->probs);
    im->x = NULL;
    im->probs = NULL;
}

/* An image's first step, before its first block: prepare (decode -> canonicalise),
 * its seed unless given, its input (layer 0 once for all blocks), its rows. */
static int image_start(struct predict_job *j, size_t i, struct api_error *e)
{
    const struct predict_params *p = &j->in.params;
    struct predict_result *r = &j->results[i];
    struct job_image *im = &j->images[i];
    float x[BNN_MNIST_PIXELS];
    double t0 = timing_now_ms();
    int rc = prepare(x, &r->a.prep, &j->in.images[i], j->deps->cfg->max_image_side, e);
    if (rc != 0)
        return rc;
    r->decode_ms = timing_now_ms() - t0;
    r->seed = (p->set & PREDICT_SET_SEED) ? p->seed : predict_random_seed();
    size_t k = bnn_model_n_classes(j->model);
    char err[BNN_ERR_LEN];
    im->probs = malloc((size_t)p->samples * k * sizeof *im->probs);
    if (!im->probs)
        return api_fail(e, API_E_INTERNAL, "out of memory for %u x %zu probabilities", p->samples, k);
    if (bnn_input_new(&im->x, j->model, x, p->mode, err) != BNN_OK)
        return api_fail(e, API_E_INTERNAL, "prediction failed: %s", err);
    return 0;
}

/* After an image's last block, by the step that ran it: statistics (T and interval
 * validated by the request parser) and decisions (answer.h). */
static int image_finish(struct predict_job *j, size_t i, struct api_error *e)
{
    const struct predict_params *p = &j->in.params;
    struct predict_result *r = &j->results[i];
    struct job_image *im = &j->images[i];
    double t0 = timing_now_ms();
    double *scratch = malloc(p->samples * sizeof *scratch);
    if (!scratch)
        return api_fail(e, API_E_INTERNAL, "out of memory for %u doubles of scratch", p->samples);
    bnn_summarize(&r->a.pr, im->probs, p->samples, bnn_model_n_classes(j->model), p->interval, scratch);
    free(scratch);
    image_release(im);
    /* the abstain rule and the set, as answer.h decides them for every path */
    bnn_answer_finish(&r->a, j->policy, r->a.prep.verdict == PREP_DIGIT, j->set_level);
    r->set_level = j->set_level;
    r->set_coverage = p->set_coverage;
    r->compute_ms = im->compute_ms + (timing_now_ms() - t0);
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

/* --- the job's steps (workers) ------------------------------------------------------- */

/* A step's work: block `block` of image `image` (block 0 with its prepare). */
struct job_unit {
    size_t image;
    unsigned block;
};

/* The job cannot be answered 200 any more: err is the answer, the lowest
 * image's error when several fail (SIZE_MAX: about no image). */
static void job_failed(struct predict_job *j, size_t image, const struct api_error *e)
{
    char name[PREDICT_NAME_LEN];
    pthread_mutex_lock(&j->mu);
    if (!j->failed || image < j->err_image) {
        j->err = *e;
        j->err_image = image;
        if (image != SIZE_MAX && j->in.batch)
            api_error_prefix(&j->err, predict_image_name(&j->in, image, name));
    }
    j->failed = 1;
    pthread_mutex_unlock(&j->mu);
}

enum take { TAKE_UNIT, TAKE_NOTHING, TAKE_FAILED };

/* job_timeout_ms counts from submission: it bounds the wait and compute. */
static enum take timed_out(struct predict_job *j, double waited, struct api_error *e)
{
    const struct predict_deps *d = j->deps;
    metrics_add_timed_out(d->metrics);
    api_fail(e, API_E_TIMEOUT,
             "job past job_timeout_ms = %u: %.0f ms since it was queued, %u of %zu passes computed%s",
             d->cfg->job_timeout_ms, waited, j->samples_run, j->in.n_images * j->in.params.samples,
             j->next_image ? "; stopped" : "; not started");
    return TAKE_FAILED;
}

/* Under j->mu, at a block boundary: the deadline (on the first step also the queue
 * time and the test-only injected fault), then the next unit: a block of the lowest
 * prepared image with blocks left, else the next image's first step. */
static enum take take_unit(struct predict_job *j, struct job_unit *u, struct api_error *e)
{
    struct predict_faults *f = j->deps->faults;
    if (j->failed)
        return TAKE_NOTHING;
    double waited = timing_now_ms() - j->t_submit;
    if (!j->started) {
        j->started = 1;
        j->queue_ms = waited;
        if (f && f->every_nth && (atomic_fetch_add(&f->jobs, 1) + 1) % f->every_nth == 0) {
            api_fail(e, API_E_INTERNAL, "injected fault (BNN_FAULT_EVERY_NTH_JOB=%u)", f->every_nth);
            return TAKE_FAILED;
        }
    }
    if (waited > (double)j->deps->cfg->job_timeout_ms)
        return timed_out(j, waited, e);
    for (size_t i = j->first_open; i < j->next_image; i++) {
        struct job_image *im = &j->images[i];
        if (im->prepared && im->next_block < j->n_blocks) {
            *u = (struct job_unit){i, im->next_block++};
            while (j->first_open < j->next_image && j->images[j->first_open].prepared &&
                   j->images[j->first_open].next_block == j->n_blocks)
                j->first_open++;
            return TAKE_UNIT;
        }
    }
    if (j->next_image < j->in.n_images) {
        *u = (struct job_unit){j->next_image, 0};
        j->images[j->next_image++].next_block = 1;
        return TAKE_UNIT;
    }
    api_fail(e, API_E_INTERNAL, "scheduler: a step with no block left (%zu images)", j->in.n_images);
    return TAKE_FAILED;
}

/* One unit: the image's prepare first for block 0, the block's passes, and
 * for the image's last block its summary, for the job's last its answer.
 * 0, 1 when the job is complete, -1 with e set. */
static int run_unit(struct predict_job *j, struct bnn_workspace *ws, const struct job_unit *u,
                    struct pool_step *st, struct api_error *e)
{
    const struct predict_params *p = &j->in.params;
    struct job_image *im = &j->images[u->image];
    if (u->block == 0) {
        if (image_start(j, u->image, e) != 0)
            return -1;
        pthread_mutex_lock(&j->mu);
        im->prepared = 1; /* its other blocks may be taken from now */
        pthread_mutex_unlock(&j->mu);
        st->ready = j->n_blocks - 1;
    }
    unsigned first = u->block * j->block_passes;
    unsigned n = p->samples - first < j->block_passes ? p->samples - first : j->block_passes;
    char err[BNN_ERR_LEN];
    double t0 = timing_now_ms();
    if (bnn_sample_block(im->probs, ws, im->x, first, n, j->results[u->image].seed, err) != BNN_OK) {
        api_fail(e, API_E_INTERNAL, "prediction failed: %s", err);
        return -1;
    }
    double ms = timing_now_ms() - t0;
    metrics_add_block(j->deps->metrics, p->mode, n);
    st->cost = (uint64_t)n * j->pass_cost;
    pthread_mutex_lock(&j->mu);
    im->compute_ms += ms;
    j->samples_run += n;
    int image_done = ++im->blocks_done == j->n_blocks;
    pthread_mutex_unlock(&j->mu);
    if (!image_done)
        return 0;
    if (image_finish(j, u->image, e) != 0)
        return -1;
    pthread_mutex_lock(&j->mu);
    int all_done = ++j->images_done == j->in.n_images;
    pthread_mutex_unlock(&j->mu);
    if (!all_done)
        return 0;
    return job_encode(j, e) == 0 ? 1 : -1;
}

/* The pool's step: one unit of the job, on worker's workspace. */
static void job_step(void *job, void *worker, struct pool_step *st)
{
    struct predict_job *j = job;
    struct api_error e = {0};
    struct job_unit u = {SIZE_MAX, 0};
    pthread_mutex_lock(&j->mu);
    enum take t = take_unit(j, &u, &e);
    pthread_mutex_unlock(&j->mu);
    int rc = t == TAKE_UNIT ? run_unit(j, worker, &u, st, &e) : t == TAKE_FAILED ? -1 : 1;
    if (rc < 0)
        job_failed(j, u.image, &e);
    if (rc != 0)
        st->last = 1;
}

/* The pool's end: no step of the job runs now. Its answer, once: 200 when
 * complete, the error that stopped it, or shutting down when the drain time
 * ran out first. Returns -1 for an internal error (counted by the pool). */
static int job_end(void *job, int stopped)
{
    struct predict_job *j = job;
    const struct predict_deps *d = j->deps;
    for (size_t i = 0; i < j->in.n_images; i++)
        image_release(&j->images[i]);
    if (stopped) {
        struct api_error e;
        api_fail(&e, API_E_DRAINING,
                 "server shutting down: the request was not %s within drain_timeout = %u s",
                 j->started ? "finished" : "started", d->cfg->drain_timeout);
        job_fail(j, &e);
        return 0;
    }
    if (!j->failed && j->answer.status == 200) {
        job_finish(j);
        return 0;
    }
    if (!j->failed)
        api_fail(&j->err, API_E_INTERNAL, "the job ended without an answer (%zu of %zu images done)",
                 j->images_done, j->in.n_images);
    free(j->answer.body);
    j->answer.body = NULL;
    int internal = j->err.code == API_E_INTERNAL;
    if (internal)
        log_msg(d->log, LOG_ERROR, "request %s: %s", j->request_id, j->err.message);
    job_fail(j, &j->err);
    return internal ? -1 : 0;
}

static const struct pool_job_ops job_ops = {job_step, job_end};

/* --- submitting ---------------------------------------------------------------------- */

/* What a refusal of pool_submit (or pool_admit, j NULL) answers: full (requests or
 * queued cost) is counted, overload_status with Retry-After; a request costing more
 * than queue_cost alone is a 400 (it would never fit); a stopped pool: draining. */
static int refusal(const struct predict_deps *d, int pool_rc, const struct predict_job *j, uint64_t cost,
                   struct api_error *e)
{
    struct pool *p = d->pool;
    unsigned retry = d->cfg->retry_after;
    unsigned long long queued = pool_queued_cost(p), cap = pool_cost_capacity(p);
    switch (pool_rc) {
    case POOL_E_FULL:
        metrics_add_rejected(d->metrics);
        return api_fail(e, API_E_OVERLOADED,
                        "job queue full (%u requests in flight, queue_depth = %u); retry in %u s",
                        pool_queued(p), pool_capacity(p), retry);
    case POOL_E_COST:
        metrics_add_rejected(d->metrics);
        return api_fail(
            e, API_E_OVERLOADED,
            "job queue full: %llu lrt passes of work queued, queue_cost = %llu, and this request costs %llu; "
            "retry in %u s",
            queued, cap, (unsigned long long)cost, retry);
    case POOL_E_TOO_COSTLY:
        return api_fail(
            e, API_E_INVALID_PARAMETER,
            "samples: this request costs %llu lrt passes (%zu image(s) x %u samples x %u for mode=%s), "
            "above queue_cost = %llu; ask for fewer samples or images",
            (unsigned long long)cost, j->in.n_images, j->in.params.samples, j->pass_cost,
            bnn_mode_name(j->in.params.mode), cap);
    case POOL_E_NOMEM:
        return api_fail(e, API_E_INTERNAL, "out of memory queueing the job");
    default:
        return api_fail(e, API_E_DRAINING, "server is shutting down; retry later");
    }
}

int predict_admit(const struct predict_deps *d, struct api_error *e)
{
    int rc = pool_admit(d->pool);
    return rc == POOL_OK ? 0 : refusal(d, rc, NULL, 0, e);
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
    pthread_mutex_init(&j->mu, NULL);
    atomic_init(&j->finished, 0);
    return j;
}

/* What only the whole request tells (the mode's samples limit), the steps'
 * plan (passes per block: about one LRT block's cost in either mode) and
 * its cost, in lrt passes. 0, or the code set in e. */
static int job_plan(struct predict_job *j, uint64_t *cost, struct api_error *e)
{
    const struct cfg *c = j->deps->cfg;
    const struct predict_params *p = &j->in.params;
    size_t n = j->in.n_images;
    if (p->mode == BNN_MODE_WEIGHTS && p->samples > c->max_samples_weights)
        return api_fail(e, API_E_INVALID_PARAMETER,
                        "samples: expected 1..%u for mode=weights (max_samples_weights), got %u%s",
                        c->max_samples_weights, p->samples,
                        (p->set & PREDICT_SET_SAMPLES) ? "" : " (default_samples)");
    if (n == 0)
        return api_fail(e, API_E_INVALID_REQUEST, "no image");
    j->pass_cost = predict_pass_cost(c, p->mode);
    j->block_passes = j->pass_cost >= BNN_BLOCK ? 1 : BNN_BLOCK / j->pass_cost;
    j->n_blocks = (p->samples + j->block_passes - 1) / j->block_passes;
    j->results = calloc(n, sizeof *j->results);
    j->images = calloc(n, sizeof *j->images);
    if (!j->results || !j->images)
        return api_fail(e, API_E_INTERNAL, "out of memory for %zu images", n);
    *cost = (uint64_t)n * p->samples * j->pass_cost;
    return 0;
}

void predict_submit(struct predict_job *j)
{
    const struct predict_deps *d = j->deps;
    j->t_submit = timing_now_ms();
    struct api_error e = {0};
    uint64_t cost = 0;
    int rc = job_plan(j, &cost, &e);
    if (rc == 0) {
        rc = pool_submit(d->pool, j, &job_ops, (unsigned)j->in.n_images, cost);
        if (rc == POOL_OK)
            return;
        refusal(d, rc, j, cost, &e);
    }
    job_fail(j, &e); /* answered at once: the pool never had it */
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
    for (size_t i = 0; j->images && i < j->in.n_images; i++)
        image_release(&j->images[i]);
    predict_input_free(&j->in);
    free(j->images);
    free(j->results);
    pthread_mutex_destroy(&j->mu);
    free(j->answer.body);
    served_model_release(j->served);
    free(j);
}

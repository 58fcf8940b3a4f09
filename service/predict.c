/* predict.c - see predict.h.
 *
 * A prediction's life: predict_begin judges the headers; body calls append
 * to our own capped buffer or feed the post processor; predict_parse turns
 * the body into images and parameters; predict_enqueue suspends the
 * connection and queues the job; a worker decodes, preprocesses and
 * predicts, stores the answer and resumes; the HTTP side, called again,
 * takes the answer with predict_take_answer and queues it.
 */
#include "predict.h"
#include "timing.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "infer.h"

#define POST_BUFFER 16384

struct predict {
    const struct predict_deps *deps;
    struct MHD_Connection *conn;
    const char *request_id;

    /* body */
    int batch;
    enum api_body_kind kind;
    char *body;
    size_t body_len, body_cap;
    size_t received;   /* body bytes seen, kept or not */
    int too_large;     /* received passed max_body_bytes: answered 413 */
    int out_of_memory; /* growing the raw body failed: answered 500 */
    struct MHD_PostProcessor *pp;
    struct api_multipart mp;
    int mp_failed;
    struct api_params params;
    struct api_images images;

    /* job: filled by the worker before it resumes the connection */
    double t_enqueue;
    unsigned samples_run;
    struct predict_answer answer;
    _Atomic int job_done;
};

/* --- the job (worker side) ------------------------------------------------------ */

static uint64_t random_seed(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        /* No entropy source: a clock-derived seed is still a valid seed. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec;
    }
    return v & API_SEED_MAX;
}

/* Stores the answer for the event loop and resumes the connection. The
 * release store on job_done pairs with predict_take_answer's acquire load. */
static void job_finish(struct predict *p, unsigned status, enum api_code code, char *body, size_t len)
{
    p->answer.status = status;
    p->answer.code = code;
    p->answer.body = body;
    p->answer.len = len;
    atomic_store_explicit(&p->job_done, 1, memory_order_release);
    MHD_resume_connection(p->conn);
}

static void job_fail(struct predict *p, const struct api_error *e)
{
    unsigned status;
    char *body = api_error_body(e, p->deps->cfg->overload_status, &status);
    job_finish(p, status, e->code, body, body ? strlen(body) : 0);
}

static int job_run(void *job, void *ctx)
{
    struct predict *p = job;
    const struct predict_deps *d = p->deps;
    struct bnn_workspace *ws = ctx;
    double queue_ms = timing_now_ms() - p->t_enqueue;
    struct api_error e = {0};
    if (queue_ms > (double)d->cfg->job_timeout_ms) {
        metrics_add_timed_out(d->metrics);
        api_fail(&e, API_E_TIMEOUT, "job waited %.0f ms in the queue, over job_timeout_ms = %u; not computed",
                 queue_ms, d->cfg->job_timeout_ms);
        job_fail(p, &e);
        return 0;
    }
    if (d->fail_every_nth && (atomic_fetch_add(d->jobs_run, 1) + 1) % d->fail_every_nth == 0) {
        api_fail(&e, API_E_INTERNAL, "injected fault (BNN_FAULT_EVERY_NTH_JOB=%u)", d->fail_every_nth);
        log_msg(d->log, LOG_ERROR, "request %s: %s", p->request_id, e.message);
        job_fail(p, &e);
        return -1;
    }
    json_t *results = p->batch ? json_array() : NULL;
    json_t *one = NULL;
    int rc = 0;
    for (size_t i = 0; i < p->images.n; i++) {
        uint64_t seed = (p->params.set & API_SET_SEED) ? p->params.seed : random_seed();
        json_t *res;
        rc = api_predict_png(&res, p->images.items[i].data, p->images.items[i].len, &p->params, seed,
                             i == 0 ? queue_ms : 0.0, d->cfg, d->model, ws, &e);
        if (rc != 0) {
            if (p->batch) {
                char msg[API_MSG_LEN];
                snprintf(msg, sizeof msg, "images[%zu]: %.200s", i, e.message);
                memcpy(e.message, msg, sizeof msg);
            }
            break;
        }
        p->samples_run += p->params.samples;
        if (p->batch)
            json_array_append_new(results, res);
        else
            one = res;
    }
    metrics_add_samples(d->metrics, p->samples_run);
    if (rc != 0) {
        json_decref(results);
        if (e.code == API_E_INTERNAL)
            log_msg(d->log, LOG_ERROR, "request %s: %s", p->request_id, e.message);
        job_fail(p, &e);
        return e.code == API_E_INTERNAL ? -1 : 0;
    }
    json_t *doc = p->batch ? json_pack("{s:o}", "results", results) : one;
    size_t len = 0;
    char *body = doc ? api_dump(doc, &len) : NULL;
    json_decref(doc);
    if (!body) {
        api_fail(&e, API_E_INTERNAL, "out of memory encoding the response");
        job_fail(p, &e);
        return -1;
    }
    job_finish(p, 200, API_OK, body, len);
    return 0;
}

/* Cancelled at shutdown: the drain time ran out before a worker took it. */
static void job_cancel(void *job)
{
    struct predict *p = job;
    struct api_error e;
    api_fail(&e, API_E_DRAINING, "server shutting down: the job was not started within drain_timeout = %u s",
             p->deps->cfg->drain_timeout);
    job_fail(p, &e);
}

/* The queue is full: counted, and answered 503 (or 429) with Retry-After. */
static void fail_overloaded(const struct predict_deps *d, struct api_error *e)
{
    metrics_add_rejected(d->metrics);
    api_fail(e, API_E_OVERLOADED, "job queue full (%u waiting); retry in %u s", pool_capacity(d->pool),
             d->cfg->retry_after);
}

/* --- the request (event-loop side) ------------------------------------------------ */

static enum MHD_Result query_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct predict *p = cls;
    struct api_error *e = &p->mp.err;
    if (e->code != API_OK)
        return MHD_NO;
    api_param_set(&p->params, p->deps->cfg, key, value, e);
    return e->code == API_OK ? MHD_YES : MHD_NO;
}

static enum MHD_Result post_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                  const char *content_type, const char *transfer_encoding, const char *data,
                                  uint64_t off, size_t size)
{
    (void)kind, (void)content_type, (void)transfer_encoding;
    struct predict *p = cls;
    if (api_multipart_field(&p->mp, key, filename, off, data, size) != 0) {
        p->mp_failed = 1;
        return MHD_NO;
    }
    return MHD_YES;
}

struct predict *predict_begin(const struct predict_deps *deps, struct MHD_Connection *conn,
                              const char *request_id, int batch, struct api_error *e)
{
    const struct cfg *c = deps->cfg;
    struct predict *p = calloc(1, sizeof *p);
    if (!p) {
        api_fail(e, API_E_INTERNAL, "out of memory");
        return NULL;
    }
    p->deps = deps;
    p->conn = conn;
    p->request_id = request_id;
    p->batch = batch;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (!errno && end != cl && n > c->max_body_bytes) {
            api_fail(e, API_E_BODY_TOO_LARGE, "body of %llu bytes is over max_body_bytes = %zu", n,
                     c->max_body_bytes);
            goto fail;
        }
    }
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    p->kind = api_body_kind(ct);
    if (p->kind == API_BODY_NONE || (batch && p->kind == API_BODY_PNG)) {
        api_fail(e, API_E_UNSUPPORTED_MEDIA_TYPE, "Content-Type '%.80s' is not supported here; send %s",
                 ct ? ct : "(none)",
                 batch ? "application/json or multipart/form-data"
                       : "image/png, multipart/form-data or application/json");
        goto fail;
    }
    if (pool_queued(deps->pool) >= pool_capacity(deps->pool)) {
        fail_overloaded(deps, e);
        goto fail;
    }
    api_params_init(&p->params, c);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, query_param, p);
    if (p->mp.err.code != API_OK) {
        *e = p->mp.err;
        goto fail;
    }
    if (p->kind == API_BODY_MULTIPART) {
        api_multipart_init(&p->mp, &p->images, &p->params, c, batch);
        p->pp = MHD_create_post_processor(conn, POST_BUFFER, post_field, p);
        if (!p->pp) {
            api_fail(e, API_E_INVALID_REQUEST, "multipart/form-data without a usable boundary");
            goto fail;
        }
    }
    return p;
fail:
    predict_free(p);
    return NULL;
}

/* Drops the raw body kept so far; the rest of the upload is read and
 * discarded so that the answer can still be sent. */
static void body_drop(struct predict *p)
{
    free(p->body);
    p->body = NULL;
    p->body_len = p->body_cap = 0;
}

/* predict_body has checked the cap: body_len + size <= max_body_bytes. */
static void body_append(struct predict *p, const char *data, size_t size)
{
    if (p->body_len + size > p->body_cap) {
        size_t max = p->deps->cfg->max_body_bytes;
        size_t cap = p->body_cap ? p->body_cap : 16384;
        while (cap < p->body_len + size)
            cap *= 2;
        if (cap > max)
            cap = max;
        char *b = realloc(p->body, cap);
        if (!b) {
            p->out_of_memory = 1;
            body_drop(p);
            return;
        }
        p->body = b;
        p->body_cap = cap;
    }
    memcpy(p->body + p->body_len, data, size);
    p->body_len += size;
}

void predict_body(struct predict *p, const char *data, size_t size)
{
    /* Every body byte counts against max_body_bytes, multipart framing
     * included, so no form of upload can stream without bound; over the cap
     * mid-stream (chunked), the rest is discarded and 413 answered at the end. */
    p->received += size;
    if (!p->too_large && p->received > p->deps->cfg->max_body_bytes) {
        p->too_large = 1;
        body_drop(p);
    }
    if (p->too_large || p->out_of_memory)
        return;
    if (p->pp) {
        if (!p->mp_failed && MHD_post_process(p->pp, data, size) != MHD_YES)
            p->mp_failed = 1;
    } else {
        body_append(p, data, size);
    }
}

int predict_parse(struct predict *p, struct api_error *e)
{
    const struct cfg *c = p->deps->cfg;
    if (p->out_of_memory) {
        api_fail(e, API_E_INTERNAL, "out of memory reading the body");
        return -1;
    }
    if (p->too_large) {
        api_fail(e, API_E_BODY_TOO_LARGE, "body is over max_body_bytes = %zu", c->max_body_bytes);
        return -1;
    }
    switch (p->kind) {
    case API_BODY_PNG:
        if (p->body_len == 0) {
            api_fail(e, API_E_INVALID_PNG, "empty body: expected PNG bytes");
            return -1;
        }
        if (api_images_push(&p->images, NULL, 0) != 0) {
            api_fail(e, API_E_INTERNAL, "out of memory");
            return -1;
        }
        p->images.items[0].data = (uint8_t *)p->body; /* ownership moves to images */
        p->images.items[0].len = p->body_len;
        p->body = NULL;
        p->body_len = p->body_cap = 0;
        break;
    case API_BODY_JSON:
        if (api_parse_json(&p->params, &p->images, p->body ? p->body : "", p->body_len, p->batch, c, e) != 0)
            return -1;
        break;
    case API_BODY_MULTIPART:
        if (p->mp_failed) {
            if (p->mp.err.code == API_OK)
                api_fail(&p->mp.err, API_E_INVALID_REQUEST, "malformed multipart/form-data body");
            *e = p->mp.err;
            return -1;
        }
        if (api_multipart_finish(&p->mp) != 0) {
            *e = p->mp.err;
            return -1;
        }
        break;
    default:
        api_fail(e, API_E_INTERNAL, "unexpected body kind %d", (int)p->kind);
        return -1;
    }
    free(p->body);
    p->body = NULL;
    return 0;
}

void predict_enqueue(struct predict *p)
{
    const struct predict_deps *d = p->deps;
    /* Suspend before the job can possibly finish: resuming a connection that
     * is not suspended is undefined in libmicrohttpd. */
    p->t_enqueue = timing_now_ms();
    MHD_suspend_connection(p->conn);
    int rc = pool_submit(d->pool, p, job_run, job_cancel);
    if (rc != POOL_OK) {
        struct api_error e = {0};
        if (rc == POOL_E_FULL) {
            fail_overloaded(d, &e);
        } else {
            api_fail(&e, API_E_DRAINING, "server is shutting down; retry later");
        }
        job_fail(p, &e);
    }
}

int predict_take_answer(struct predict *p, struct predict_answer *a)
{
    if (!atomic_load_explicit(&p->job_done, memory_order_acquire))
        return 0;
    *a = p->answer;
    p->answer.body = NULL;
    p->answer.len = 0;
    return 1;
}

unsigned predict_samples_run(const struct predict *p)
{
    return p ? p->samples_run : 0;
}

void predict_free(struct predict *p)
{
    if (!p)
        return;
    if (p->pp)
        MHD_destroy_post_processor(p->pp);
    api_images_free(&p->images);
    free(p->body);
    free(p->answer.body);
    free(p);
}

/* http_v2.c - see http_v2.h.
 *
 * The path of an inference, each step once, as for /predict: begin (the
 * model's name and version, the media type, 413 on a declared length, the
 * admission fast path) -> body pieces (the one body cap, api_body_cap) ->
 * submit (v2_parse_infer into a predict_input, job, suspend, pool_submit
 * decides) -> answer (after a worker resumed the connection). A load goes
 * begin -> body -> submit (queued on the reload thread, suspended) ->
 * answer (after the reload thread resumed it).
 */
#include "http_v2.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_request.h"
#include "predict.h"
#include "served_model.h"
#include "v2_request.h"
#include "v2_response.h"

struct http_v2 {
    struct MHD_Connection *conn;
    struct v2_path path;
    char *body; /* what arrived (owned), within max_body_bytes */
    size_t len, cap;
    uint64_t received;
    struct api_error err; /* the body's first error */
    struct predict_input in;
    struct v2_request req;
    struct predict_job *job;
    struct served_reload reload;
    _Atomic int reload_done;
};

unsigned http_v2_error(const struct http_server *srv, struct http_response *out, const struct api_error *e)
{
    out->body = v2_error_body(e->message, &out->len);
    out->persistent = 0;
    out->content_type = "application/json";
    out->retry_after = api_code_retryable(e->code);
    return api_http_status(e->code, srv->cfg->overload_status);
}

__attribute__((format(printf, 4, 5))) static unsigned
fail(const struct http_server *srv, struct http_response *out, enum api_code code, const char *fmt, ...)
{
    struct api_error e = {.code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    return http_v2_error(srv, out, &e);
}

/* json (consumed) as the answer's body. */
static unsigned send_json(const struct http_server *srv, struct http_response *out, unsigned status,
                          json_t *json)
{
    out->body = json ? api_dump(json, &out->len) : NULL;
    json_decref(json);
    if (!out->body)
        return fail(srv, out, API_E_INTERNAL, "out of memory");
    out->content_type = "application/json";
    return status;
}

/* The name (and version) the path names are the served model's: 0, or 404
 * with out filled. */
static unsigned check_model(const struct http_server *srv, const struct v2_path *p,
                            const struct served_model *sm, struct http_response *out)
{
    if (strcmp(p->model, srv->cfg->model_name) != 0)
        return fail(srv, out, API_E_NOT_FOUND, "unknown model '%s' (this server serves '%s')", p->model,
                    srv->cfg->model_name);
    if (p->version[0] && strcmp(p->version, sm->version) != 0)
        return fail(srv, out, API_E_NOT_FOUND, "model '%s' has no version '%s' (serving version %s)",
                    p->model, p->version, sm->version);
    return 0;
}

static unsigned ready_answer(const struct http_server *srv, struct http_response *out, const char *name)
{
    int ready = atomic_load(&srv->state) == HTTP_READY;
    json_t *j =
        name ? json_pack("{s:s,s:b}", "name", name, "ready", ready) : json_pack("{s:b}", "ready", ready);
    return send_json(srv, out, ready ? 200 : 503, j);
}

unsigned http_v2_get(struct http_request *r, struct http_response *out)
{
    const struct http_server *srv = r->srv;
    struct v2_path p;
    switch (v2_path_parse(&p, r->path)) {
    case V2_PATH_SERVER:
        return send_json(srv, out, 200, v2_server_json(srv->version));
    case V2_PATH_LIVE:
        return send_json(srv, out, 200, json_pack("{s:b}", "live", 1));
    case V2_PATH_READY:
        return ready_answer(srv, out, NULL);
    case V2_PATH_MODEL:
    case V2_PATH_MODEL_READY: {
        struct served_model *sm = served_models_acquire(srv->predict->models);
        unsigned status = check_model(srv, &p, sm, out);
        if (status == 0)
            status = p.kind == V2_PATH_MODEL ? send_json(srv, out, 200, v2_model_json(p.model, sm))
                                             : ready_answer(srv, out, p.model);
        served_model_release(sm);
        return status;
    }
    default:
        return fail(srv, out, API_E_NOT_FOUND, "no such Open Inference Protocol path: %.200s", r->path);
    }
}

/* V2 clients send the JSON header as application/json, the binary
 * extension as application/octet-stream, or no Content-Type at all. */
static int infer_media_type(const char *ct)
{
    if (!ct)
        return 1;
    size_t n = strcspn(ct, "; \t");
    return (n == 16 && strncasecmp(ct, "application/json", n) == 0) ||
           (n == 24 && strncasecmp(ct, "application/octet-stream", n) == 0);
}

static const char *header(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* The declared length against the one body cap. */
static unsigned declared_cap(const struct http_server *srv, struct http_request *r, struct http_response *out)
{
    const char *cl = header(r->conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
    char *end;
    unsigned long long n = cl ? strtoull(cl, &end, 10) : 0;
    struct api_error e;
    if (cl && end != cl && api_body_cap(srv->cfg, n, 1, &e) != 0)
        return http_v2_error(srv, out, &e);
    return 0;
}

static unsigned begin_infer(struct http_request *r, struct http_v2 *v, struct http_response *out)
{
    const struct http_server *srv = r->srv;
    struct served_model *sm = served_models_acquire(srv->predict->models);
    unsigned status = check_model(srv, &v->path, sm, out);
    served_model_release(sm);
    const char *ct = header(r->conn, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (status == 0 && !infer_media_type(ct))
        status = fail(srv, out, API_E_UNSUPPORTED_MEDIA_TYPE,
                      "Content-Type '%.80s' is not supported here; send application/json, or "
                      "application/octet-stream with Inference-Header-Content-Length",
                      ct);
    if (status == 0)
        status = declared_cap(srv, r, out);
    struct api_error e;
    if (status == 0 && predict_admit(srv->predict, &e) != 0)
        status = http_v2_error(srv, out, &e);
    return status;
}

unsigned http_v2_begin(struct http_request *r, struct http_response *out)
{
    const struct http_server *srv = r->srv;
    struct http_v2 *v = calloc(1, sizeof *v);
    if (!v)
        return fail(srv, out, API_E_INTERNAL, "out of memory");
    r->v2 = v;
    v->conn = r->conn;
    predict_input_init(&v->in, srv->cfg, 0);
    atomic_init(&v->reload_done, 0);
    switch (v2_path_parse(&v->path, r->path)) {
    case V2_PATH_INFER:
        return begin_infer(r, v, out);
    case V2_PATH_REPO_LOAD:
    case V2_PATH_REPO_UNLOAD:
        if (strcmp(v->path.model, srv->cfg->model_name) != 0)
            return fail(srv, out, API_E_NOT_FOUND, "unknown model '%s' (this server serves '%s')",
                        v->path.model, srv->cfg->model_name);
        return declared_cap(srv, r, out);
    case V2_PATH_REPO_INDEX:
        return declared_cap(srv, r, out);
    default:
        return fail(srv, out, API_E_NOT_FOUND, "no such Open Inference Protocol path: %.200s", r->path);
    }
}

void http_v2_body(struct http_request *r, const char *data, size_t size)
{
    struct http_v2 *v = r->v2;
    v->received += size;
    if (v->err.code != API_OK)
        return; /* failed before: read and dropped */
    if (api_body_cap(r->srv->cfg, v->received, 0, &v->err) != 0) {
        free(v->body);
        v->body = NULL;
        v->len = v->cap = 0;
        return;
    }
    if (v->len + size > v->cap) {
        size_t cap = v->cap ? v->cap : 16384;
        while (cap < v->len + size)
            cap *= 2;
        char *b = realloc(v->body, cap);
        if (!b) {
            api_fail(&v->err, API_E_INTERNAL, "out of memory reading the body");
            return;
        }
        v->body = b;
        v->cap = cap;
    }
    memcpy(v->body + v->len, data, size);
    v->len += size;
}

/* The job is done (on a worker, or at once when refused), or the reload:
 * the access handler is called again and takes the answer. */
static void on_done(void *cls)
{
    struct http_v2 *v = cls;
    MHD_resume_connection(v->conn);
}

static void on_reloaded(void *cls)
{
    struct http_v2 *v = cls;
    atomic_store_explicit(&v->reload_done, 1, memory_order_release);
    MHD_resume_connection(v->conn);
}

/* Counted before anything can resume the connection, uncounted on
 * completion: http_free waits for this to reach zero. Suspended before it
 * can possibly be resumed. */
static void suspend(struct http_request *r)
{
    atomic_fetch_add(&r->srv->in_jobs, 1);
    r->had_job = 1;
    r->phase = HTTP_PH_QUEUED;
    MHD_suspend_connection(r->conn);
}

static unsigned submit_infer(struct http_request *r, struct http_v2 *v, struct http_response *out)
{
    struct http_server *srv = r->srv;
    struct api_error e = {0};
    int rc = v2_parse_infer(&v->req, &v->in, (const uint8_t *)(v->body ? v->body : ""), v->len,
                            header(r->conn, "Inference-Header-Content-Length"), srv->cfg, &e);
    free(v->body);
    v->body = NULL;
    if (rc != 0)
        return http_v2_error(srv, out, &e);
    v->job = predict_job_new(srv->predict, &v->in, v2_infer_body, &v->req, on_done, v, r->request_id, &e);
    if (!v->job)
        return http_v2_error(srv, out, &e);
    /* A version in the path is checked again against the model the job
     * holds: a reload may have replaced it since the headers came. */
    const char *version = predict_job_model_version(v->job);
    if (v->path.version[0] && strcmp(v->path.version, version) != 0) {
        predict_job_free(v->job);
        v->job = NULL;
        return fail(srv, out, API_E_NOT_FOUND, "model '%s' has no version '%s' (serving version %s)",
                    v->path.model, v->path.version, version);
    }
    suspend(r);
    predict_submit(v->job);
    return 0;
}

/* A load takes no parameters: the model is re-read from the configured
 * path. An empty body or {} (or {"parameters": {}}) is accepted. */
static unsigned submit_load(struct http_request *r, struct http_v2 *v, struct http_response *out)
{
    struct http_server *srv = r->srv;
    json_t *doc = v->len ? json_loadb(v->body, v->len, 0, NULL) : json_object();
    json_t *params = json_object_get(doc, "parameters");
    int ok = json_is_object(doc) && json_object_size(doc) == (params ? 1u : 0u) &&
             (!params || (json_is_object(params) && json_object_size(params) == 0));
    json_decref(doc);
    if (!ok)
        return fail(
            srv, out, API_E_INVALID_REQUEST,
            "load: expected an empty body or {}; bnn-serve re-reads the configured model path (%.200s) "
            "and takes no parameters",
            srv->cfg->model);
    if (atomic_load(&srv->state) != HTTP_READY)
        return fail(srv, out, API_E_DRAINING, "server is not ready (starting or shutting down); retry later");
    v->reload = (struct served_reload){.done = on_reloaded, .cls = v};
    suspend(r);
    served_models_reload(srv->predict->models, &v->reload);
    return 0;
}

unsigned http_v2_submit(struct http_request *r, struct http_response *out)
{
    struct http_server *srv = r->srv;
    struct http_v2 *v = r->v2;
    if (v->err.code != API_OK)
        return http_v2_error(srv, out, &v->err);
    if (v->path.kind == V2_PATH_INFER)
        return submit_infer(r, v, out);
    if (v->path.kind == V2_PATH_REPO_LOAD)
        return submit_load(r, v, out);
    if (v->path.kind == V2_PATH_REPO_UNLOAD)
        return fail(srv, out, API_E_INVALID_REQUEST,
                    "unload: bnn-serve serves one model and keeps it loaded; POST "
                    "/v2/repository/models/%s/load replaces it",
                    v->path.model);
    struct served_model *sm = served_models_acquire(srv->predict->models);
    json_t *index = json_pack("[{s:s,s:s,s:s}]", "name", srv->cfg->model_name, "version", sm->version,
                              "state", atomic_load(&srv->state) == HTTP_READY ? "READY" : "UNAVAILABLE");
    served_model_release(sm);
    return send_json(srv, out, 200, index);
}

static unsigned answer_load(struct http_request *r, struct http_v2 *v, struct http_response *out)
{
    const struct http_server *srv = r->srv;
    if (!atomic_load_explicit(&v->reload_done, memory_order_acquire))
        return 0; /* spurious: still loading */
    if (v->reload.status == SERVED_RELOAD_OK)
        return send_json(
            srv, out, 200,
            json_pack("{s:s,s:s}", "model_name", srv->cfg->model_name, "model_version", v->reload.version));
    return fail(srv, out, v->reload.status == SERVED_RELOAD_STOPPED ? API_E_DRAINING : API_E_INVALID_REQUEST,
                "load failed: %s", v->reload.message);
}

unsigned http_v2_answer(struct http_request *r, struct http_response *out)
{
    struct http_v2 *v = r->v2;
    if (v->path.kind == V2_PATH_REPO_LOAD)
        return answer_load(r, v, out);
    struct predict_answer a;
    if (!predict_job_answer(v->job, &a))
        return 0; /* spurious: still running */
    if (a.status != 200 || !a.body) {
        free(a.body);
        struct api_error e = {.code = a.body ? a.code : API_E_INTERNAL};
        snprintf(e.message, sizeof e.message, "%s",
                 a.body ? a.message : "out of memory encoding the response");
        return http_v2_error(r->srv, out, &e);
    }
    out->body = a.body;
    out->len = a.len;
    out->content_type = v->req.json_len ? "application/octet-stream" : "application/json";
    out->inference_header_len = v->req.json_len;
    return 200;
}

unsigned http_v2_samples(const struct http_v2 *v)
{
    return v ? predict_job_samples(v->job) : 0;
}

void http_v2_free(struct http_v2 *v)
{
    if (!v)
        return;
    free(v->body);
    predict_input_free(&v->in);
    v2_request_free(&v->req);
    predict_job_free(v->job);
    free(v);
}

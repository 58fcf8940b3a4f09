/* http.c - see http.h.
 *
 * A request's life: the first access-handler call allocates its state
 * (struct http_request, freed in the completion callback) and routes it.
 * Anything that may carry a body is judged on its headers at once
 * (dispatch: 404, 405, or http_predict_begin); GET, HEAD and OPTIONS are
 * answered on the second call. Then a prediction goes body pieces ->
 * http_predict_submit (suspended while its job runs) -> http_predict_answer.
 * Every handler fills a struct http_response and returns a status, and
 * respond() queues it.
 */
#include "http.h"
#include "http_internal.h"
#include "http_predict.h"
#include "http_v2.h"
#include "timing.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api_request.h"
#include "api_response.h"
#include "predict.h"
#include "v2_request.h"

typedef unsigned (*handler_fn)(struct http_request *r, struct http_response *out);

enum route_post { POST_NONE = 0, POST_PREDICT, POST_BATCH, POST_V2 };

struct route {
    const char *path;  /* NULL: the last row, any other path */
    const char *allow; /* the Allow header */
    enum metrics_route metric;
    handler_fn get;       /* GET and HEAD */
    enum route_post post; /* who takes a POST */
    int v2;               /* under /v2: errors in the protocol's form */
};

/* --- responses ---------------------------------------------------------------------- */

/* The one place a response is made: X-Request-Id, Content-Type,
 * Cache-Control, Retry-After, Allow and CORS for every answer. */
static enum MHD_Result respond(struct http_request *r, unsigned status, struct http_response *out)
{
    struct MHD_Response *resp;
    if (out->body && out->persistent)
        resp = MHD_create_response_from_buffer(out->len, out->body, MHD_RESPMEM_PERSISTENT);
    else if (out->body)
        resp = MHD_create_response_from_buffer_with_free_callback(out->len, out->body, free);
    else
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        if (!out->persistent)
            free(out->body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    if (out->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, out->content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                            out->cache_control ? out->cache_control : "no-store");
    if (out->retry_after) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", r->srv->cfg->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (out->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, out->allow);
    if (out->inference_header_len) {
        char ihcl[24];
        snprintf(ihcl, sizeof ihcl, "%zu", out->inference_header_len);
        MHD_add_response_header(resp, "Inference-Header-Content-Length", ihcl);
    }
    http_cors_headers(resp, r->origin, out->cors_methods);
    enum MHD_Result rc = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    r->status = status;
    r->bytes = out->body ? out->len : 0;
    r->phase = HTTP_PH_ANSWERED;
    return rc;
}

/* status 0: no answer yet (a body to read, a job running). */
static enum MHD_Result answer(struct http_request *r, unsigned status, struct http_response *out)
{
    return status ? respond(r, status, out) : MHD_YES;
}

unsigned http_error(const struct http_server *srv, struct http_response *out, const struct api_error *e)
{
    unsigned status;
    out->body = api_error_body(e, srv->cfg->overload_status, &status, &out->len);
    out->persistent = 0;
    out->content_type = "application/json";
    out->retry_after = api_code_retryable(e->code);
    return status;
}

unsigned http_fail(const struct http_server *srv, struct http_response *out, enum api_code code,
                   const char *fmt, ...)
{
    struct api_error e = {.code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    return http_error(srv, out, &e);
}

/* Text the server keeps for its lifetime, sent without a copy. */
static unsigned send_text(struct http_response *out, const char *text, size_t len, const char *content_type,
                          const char *cache_control)
{
    out->body = (char *)text;
    out->len = len;
    out->persistent = 1;
    out->content_type = content_type;
    out->cache_control = cache_control;
    return 200;
}

/* --- the operations endpoints -------------------------------------------------------- */

static unsigned h_health(struct http_request *r, struct http_response *out)
{
    (void)r;
    static const char ok[] = "{\"status\":\"ok\"}\n";
    return send_text(out, ok, sizeof ok - 1, "application/json", NULL);
}

static unsigned h_ready(struct http_request *r, struct http_response *out)
{
    static const char *const bodies[] = {
        [HTTP_STARTING] = "{\"status\":\"starting\"}\n",
        [HTTP_READY] = "{\"status\":\"ok\"}\n",
        [HTTP_DRAINING] = "{\"status\":\"draining\"}\n",
    };
    int st = atomic_load(&r->srv->state);
    send_text(out, bodies[st], strlen(bodies[st]), "application/json", NULL);
    return st == HTTP_READY ? 200 : 503;
}

static unsigned h_metrics(struct http_request *r, struct http_response *out)
{
    struct http_server *srv = r->srv;
    struct metrics_gauges g = {
        .queue_depth = pool_queued(srv->pool),
        .queue_capacity = pool_capacity(srv->pool),
        .queue_cost = pool_queued_cost(srv->pool),
        .queue_cost_capacity = pool_cost_capacity(srv->pool),
        .weights_pass_cost = predict_pass_cost(srv->cfg, BNN_MODE_WEIGHTS),
        .workers = pool_threads(srv->pool),
        .workers_busy = pool_busy(srv->pool),
        .ready = atomic_load(&srv->state) == HTTP_READY,
    };
    if (metrics_render(srv->metrics, &g, &out->body, &out->len) != 0)
        return http_fail(srv, out, API_E_INTERNAL, "out of memory rendering metrics");
    out->content_type = "text/plain; version=0.0.4; charset=utf-8";
    return 200;
}

/* Built per request from the served model, which a reload may replace. */
static unsigned h_model(struct http_request *r, struct http_response *out)
{
    const struct http_server *srv = r->srv;
    struct served_model *sm = served_models_acquire(srv->predict->models);
    json_t *mj = api_model_json(sm->model, &sm->policy, srv->cfg);
    if (mj && (json_object_set_new(mj, "server_version", json_string(srv->version)) != 0 ||
               json_object_set_new(mj, "model_version", json_string(sm->version)) != 0 ||
               json_object_set_new(mj, "model_name", json_string(srv->cfg->model_name)) != 0)) {
        json_decref(mj);
        mj = NULL;
    }
    served_model_release(sm);
    out->body = mj ? api_dump(mj, &out->len) : NULL;
    json_decref(mj);
    if (!out->body)
        return http_fail(srv, out, API_E_INTERNAL, "out of memory describing the model");
    out->content_type = "application/json";
    out->cache_control = "no-cache";
    return 200;
}

static unsigned h_openapi(struct http_request *r, struct http_response *out)
{
    if (!r->srv->openapi)
        return http_fail(r->srv, out, API_E_NOT_FOUND, "openapi.yaml was not found at start-up");
    return send_text(out, r->srv->openapi, r->srv->openapi_len, "application/yaml; charset=utf-8",
                     "no-cache");
}

/* r->file was resolved by dispatch. */
static unsigned h_static(struct http_request *r, struct http_response *out)
{
    if (http_files_read(r->file, &out->body, &out->len, &out->content_type, &out->cache_control) != 0)
        return http_fail(r->srv, out, API_E_INTERNAL, "reading %.200s failed", r->path);
    return 200;
}

/* --- routing ----------------------------------------------------------------------------- */

#define GET_ALLOW "GET, HEAD, OPTIONS"
#define POST_ALLOW "POST, OPTIONS"

/* The last row answers any other path: a static file or 404. */
static const struct route routes[] = {
    {"/predict", POST_ALLOW, METRICS_ROUTE_PREDICT, NULL, POST_PREDICT, 0},
    {"/predict/batch", POST_ALLOW, METRICS_ROUTE_PREDICT_BATCH, NULL, POST_BATCH, 0},
    {"/healthz", GET_ALLOW, METRICS_ROUTE_HEALTHZ, h_health, POST_NONE, 0},
    {"/readyz", GET_ALLOW, METRICS_ROUTE_READYZ, h_ready, POST_NONE, 0},
    {"/metrics", GET_ALLOW, METRICS_ROUTE_METRICS, h_metrics, POST_NONE, 0},
    {"/v1/model", GET_ALLOW, METRICS_ROUTE_MODEL, h_model, POST_NONE, 0},
    {"/openapi.yaml", GET_ALLOW, METRICS_ROUTE_OPENAPI, h_openapi, POST_NONE, 0},
    {NULL, GET_ALLOW, METRICS_ROUTE_STATIC, h_static, POST_NONE, 0},
};

/* Paths under /v2, by what v2_path_parse makes of them; an unknown one is
 * answered 404 by http_v2 whatever the method. */
#define ANY_ALLOW "GET, HEAD, POST, OPTIONS"
static const struct route v2_routes[V2_PATH_COUNT] = {
    [V2_PATH_UNKNOWN] = {"/v2", ANY_ALLOW, METRICS_ROUTE_OTHER, http_v2_get, POST_V2, 1},
    [V2_PATH_SERVER] = {"/v2", GET_ALLOW, METRICS_ROUTE_V2_METADATA, http_v2_get, POST_NONE, 1},
    [V2_PATH_LIVE] = {"/v2", GET_ALLOW, METRICS_ROUTE_V2_HEALTH, http_v2_get, POST_NONE, 1},
    [V2_PATH_READY] = {"/v2", GET_ALLOW, METRICS_ROUTE_V2_HEALTH, http_v2_get, POST_NONE, 1},
    [V2_PATH_MODEL] = {"/v2", GET_ALLOW, METRICS_ROUTE_V2_METADATA, http_v2_get, POST_NONE, 1},
    [V2_PATH_MODEL_READY] = {"/v2", GET_ALLOW, METRICS_ROUTE_V2_HEALTH, http_v2_get, POST_NONE, 1},
    [V2_PATH_INFER] = {"/v2", POST_ALLOW, METRICS_ROUTE_V2_INFER, NULL, POST_V2, 1},
    [V2_PATH_REPO_INDEX] = {"/v2", POST_ALLOW, METRICS_ROUTE_V2_REPOSITORY, NULL, POST_V2, 1},
    [V2_PATH_REPO_LOAD] = {"/v2", POST_ALLOW, METRICS_ROUTE_V2_REPOSITORY, NULL, POST_V2, 1},
    [V2_PATH_REPO_UNLOAD] = {"/v2", POST_ALLOW, METRICS_ROUTE_V2_REPOSITORY, NULL, POST_V2, 1},
};

static const struct route *route_find(const char *path)
{
    struct v2_path p;
    if (v2_path_parse(&p, path) != V2_PATH_NONE)
        return &v2_routes[p.kind];
    size_t i = 0;
    for (; routes[i].path; i++)
        if (strcmp(routes[i].path, path) == 0)
            break;
    return &routes[i];
}

/* A client's X-Request-Id is echoed when it is 1..64 printable characters;
 * otherwise (or when absent) one is generated: 16 hex digits of a keyed
 * counter, unique per process and not guessable from the previous one. */
static void request_id(struct http_request *r)
{
    const char *id = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-Id");
    size_t n = id ? strlen(id) : 0;
    int ok = n >= 1 && n <= 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = id[i] > 0x20 && id[i] < 0x7f;
    if (ok) {
        memcpy(r->request_id, id, n + 1);
        return;
    }
    uint64_t x = atomic_fetch_add(&r->srv->next_id, 1) + r->srv->id_key;
    /* splitmix64 finaliser: a bijection, so ids never repeat. */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    snprintf(r->request_id, sizeof r->request_id, "%016llx", (unsigned long long)x);
}

static unsigned dispatch(struct http_request *r, struct http_response *out)
{
    const char *m = r->method;
    if (!r->route->path && http_files_resolve(&r->srv->files, r->path, r->file) != 0) {
        r->metric = METRICS_ROUTE_OTHER;
        return http_fail(r->srv, out, API_E_NOT_FOUND, "no such route or file: %.200s", r->path);
    }
    if (strcmp(m, MHD_HTTP_METHOD_OPTIONS) == 0) { /* CORS preflight */
        out->allow = out->cors_methods = r->route->allow;
        return 204;
    }
    if ((strcmp(m, MHD_HTTP_METHOD_GET) == 0 || strcmp(m, MHD_HTTP_METHOD_HEAD) == 0) && r->route->get)
        return r->route->get(r, out);
    if (strcmp(m, MHD_HTTP_METHOD_POST) == 0 && r->route->post) {
        r->phase = HTTP_PH_BODY;
        return r->route->post == POST_V2 ? http_v2_begin(r, out)
                                         : http_predict_begin(r, r->route->post == POST_BATCH, out);
    }
    struct api_error e;
    api_fail(&e, API_E_METHOD_NOT_ALLOWED, "%.16s is not allowed on %.200s; allowed: %s", m, r->path,
             r->route->allow);
    out->allow = r->route->allow;
    return r->route->v2 ? http_v2_error(r->srv, out, &e) : http_error(r->srv, out, &e);
}

/* First call: the request's state, its route. */
static enum MHD_Result request_start(struct http_server *srv, struct MHD_Connection *conn, const char *url,
                                     const char *method, void **con_cls)
{
    struct http_request *r = calloc(1, sizeof *r);
    if (!r)
        return MHD_NO;
    *con_cls = r;
    r->srv = srv;
    r->conn = conn;
    r->t_start = timing_now_ms();
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->path, sizeof r->path, "%s", url);
    request_id(r);
    http_cors_match(&srv->cors, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"), r->origin);
    r->route = route_find(url);
    r->metric = r->route->metric;
    /* GET, HEAD and OPTIONS wait for the second call so the connection can
     * be kept alive; anything that may carry a body (POST, PUT, ...) is
     * judged on its headers now, so a refused body is never read. */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_OPTIONS) != 0) {
        struct http_response out = {0};
        return answer(r, dispatch(r, &out), &out);
    }
    r->phase = HTTP_PH_DEFERRED;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **con_cls)
{
    (void)version;
    struct http_request *r = *con_cls;
    struct http_response out = {0};
    if (!r)
        return request_start(cls, conn, url, method, con_cls);
    switch (r->phase) {
    case HTTP_PH_DEFERRED:
        if (*size == 0)
            return answer(r, dispatch(r, &out), &out);
        /* A body nobody asked for: read and dropped, within the body cap. */
        r->received += *size;
        *size = 0;
        struct api_error e;
        return api_body_cap(r->srv->cfg, r->received, 0, &e) == 0 ? MHD_YES : MHD_NO;
    case HTTP_PH_BODY:
        if (*size == 0)
            return answer(r, r->v2 ? http_v2_submit(r, &out) : http_predict_submit(r, &out), &out);
        if (r->v2)
            http_v2_body(r, data, *size);
        else
            http_predict_body(r, data, *size);
        *size = 0;
        return MHD_YES;
    case HTTP_PH_QUEUED:
        return answer(r, r->v2 ? http_v2_answer(r, &out) : http_predict_answer(r, &out), &out);
    case HTTP_PH_ANSWERED:
    default: /* the body of a request already answered: discarded */
        *size = 0;
        return MHD_YES;
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_server *srv = cls;
    struct http_request *r = *con_cls;
    if (!r)
        return;
    double ms = timing_now_ms() - r->t_start;
    unsigned status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? r->status : (r->status ? r->status : 499);
    metrics_observe_request(srv->metrics, r->metric, status, ms / 1e3);
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && toe != MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN)
        log_msg(srv->log, LOG_DEBUG, "request %s: connection ended early (code %d)", r->request_id, (int)toe);
    char remote[64] = "";
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        char port[8];
        getnameinfo(ci->client_addr,
                    ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                           : sizeof(struct sockaddr_in),
                    remote, sizeof remote, port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV);
    }
    struct log_access a = {.method = r->method,
                           .path = r->path,
                           .status = status,
                           .bytes = r->bytes,
                           .ms = ms,
                           .request_id = r->request_id,
                           .samples = http_predict_samples(r->predict) + http_v2_samples(r->v2),
                           .remote = remote};
    log_access(srv->log, &a);
    if (r->had_job)
        atomic_fetch_sub(&srv->in_jobs, 1);
    http_predict_free(r->predict);
    http_v2_free(r->v2);
    free(r);
    *con_cls = NULL;
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    struct http_server *srv = cls;
    if (!log_enabled(srv->log, LOG_WARN))
        return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    log_msg(srv->log, LOG_WARN, "libmicrohttpd: %s", msg);
}

/* --- lifecycle ----------------------------------------------------------------------------- */

int http_listen(const char *host, unsigned port, char err[HTTP_ERR_LEN])
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    char port_s[8];
    snprintf(port_s, sizeof port_s, "%u", port);
    int rc = getaddrinfo(host[0] ? host : NULL, port_s, &hints, &res);
    if (rc != 0) {
        snprintf(err, HTTP_ERR_LEN, "listen address '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, HTTP_ERR_LEN, "cannot listen on %s:%u: %s", host, port, strerror(saved));
    return fd;
}

/* What the handlers read: CORS origins, the web root. */
static int server_init(struct http_server *srv, const struct http_deps *deps, char err[HTTP_ERR_LEN])
{
    srv->cfg = deps->cfg;
    srv->pool = deps->pool;
    srv->metrics = deps->metrics;
    srv->log = deps->log;
    srv->predict = deps->predict;
    srv->openapi = deps->openapi;
    srv->openapi_len = deps->openapi_len;
    srv->version = deps->version ? deps->version : "";
    srv->listen_fd = -1;
    atomic_init(&srv->state, HTTP_STARTING);
    atomic_init(&srv->in_jobs, 0);
    atomic_init(&srv->next_id, 0);
    if (getrandom(&srv->id_key, sizeof srv->id_key, 0) != (ssize_t)sizeof srv->id_key)
        srv->id_key = (uint64_t)time(NULL);
    char ferr[HTTP_ERR_LEN];
    if (http_files_init(&srv->files, deps->cfg->web_root, ferr, sizeof ferr) != 0)
        log_msg(srv->log, LOG_WARN, "%s; GET / will answer 404", ferr);
    if (http_cors_init(&srv->cors, deps->cfg->cors_origins) != 0) {
        snprintf(err, HTTP_ERR_LEN, "http_start: out of memory");
        return -1;
    }
    return 0;
}

struct http_server *http_start(const struct http_deps *deps, int listen_fd, char err[HTTP_ERR_LEN])
{
    struct http_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, HTTP_ERR_LEN, "http_start: out of memory");
        return NULL;
    }
    if (server_init(srv, deps, err) != 0)
        goto fail;
    const struct cfg *c = deps->cfg;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_error, srv},
        {MHD_OPTION_LISTEN_SOCKET, listen_fd, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)c->connection_limit, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)c->per_ip_connection_limit, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)c->connection_timeout, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)c->connection_memory_limit, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, srv},
        {c->http_threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)c->http_threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    srv->daemon =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, HTTP_ERR_LEN, "libmicrohttpd failed to start (see the log above)");
        goto fail;
    }
    srv->listen_fd = listen_fd;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : 0;
    return srv;
fail:
    http_cors_free(&srv->cors);
    free(srv);
    return NULL;
}

unsigned http_port(const struct http_server *s)
{
    return s->port;
}

void http_set_state(struct http_server *s, enum http_state state)
{
    atomic_store(&s->state, (int)state);
}

void http_quiesce(struct http_server *s)
{
    if (!s->daemon)
        return;
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET) {
        /* Quiesced, the socket still completes handshakes into its backlog
         * that nobody will accept; shutting it down makes the kernel refuse
         * new connections at once. The fd itself is closed only after
         * MHD_stop_daemon, as libmicrohttpd requires. */
        shutdown(fd, SHUT_RDWR);
        s->listen_fd = fd;
    }
}

void http_free(struct http_server *s, double wait_seconds)
{
    if (!s)
        return;
    /* libmicrohttpd 0.9.75 panics when stopped with suspended connections,
     * and stopping closes connections whose answer is still being sent:
     * wait until every request that had a job has completed. */
    double deadline = timing_now_ms() + wait_seconds * 1e3;
    while (atomic_load(&s->in_jobs) > 0 && timing_now_ms() < deadline) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&s->in_jobs) > 0)
        log_msg(s->log, LOG_ERROR, "%u requests with a job still open at shutdown", atomic_load(&s->in_jobs));
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    http_cors_free(&s->cors);
    free(s);
}

/* http.c - see http.h.
 *
 * A request's life: the first access-handler call allocates its state
 * (struct http_request, freed in the completion callback), routes it and
 * rejects what can be rejected from the headers alone (404, 405, 503; for a
 * prediction predict_begin adds 413, 415, a full queue, bad parameters).
 * GET, HEAD and OPTIONS are answered on the second call. A prediction's body
 * goes to predict_body; the final call parses it, counts the job in
 * in_jobs and lets predict_enqueue suspend the connection; once a worker
 * has resumed it, the handler, called again, queues the job's answer.
 */
#include "http.h"
#include "timing.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "infer.h"
#include "predict.h"

#define MAX_ORIGINS 16
#define STATIC_MAX_BYTES (16u << 20)

struct http_server {
    struct MHD_Daemon *daemon;
    const struct cfg *cfg;
    struct pool *pool;
    struct metrics *metrics;
    struct log *log;
    const char *openapi;
    size_t openapi_len;
    char *model_json; /* GET /v1/model, built once */
    size_t model_json_len;
    char web_root[PATH_MAX]; /* realpath, "" when missing */
    char *origins[MAX_ORIGINS];
    size_t n_origins;
    int listen_fd;
    unsigned port;
    _Atomic int state;        /* enum http_state */
    _Atomic unsigned in_jobs; /* requests that were queued and have not completed yet */
    _Atomic uint64_t next_id;
    uint64_t id_key;
    struct predict_deps predict; /* what prediction requests borrow */
    atomic_uint jobs_run;        /* for predict.fail_every_nth */
};

struct http_request;
typedef enum MHD_Result (*handler_fn)(struct http_request *r, const char *data, size_t *size);

struct route {
    const char *path;
    const char *allow; /* the Allow header */
    enum metrics_route metric;
    handler_fn get; /* GET and HEAD */
    handler_fn post;
};

/* PH_DEFERRED: a request without a body to read is answered on the second
 * call, since a response queued on the first one makes libmicrohttpd close
 * the connection (no keep-alive). */
enum phase { PH_BODY = 0, PH_DEFERRED, PH_QUEUED, PH_ANSWERED };

struct http_request {
    struct http_server *srv;
    struct MHD_Connection *conn;
    const struct route *route;
    enum metrics_route metric;
    enum phase phase;
    char method[16];
    char path[256];
    char request_id[72];
    char origin[256]; /* an allowed Origin to echo, "" otherwise */
    double t_start;   /* ms, monotonic */
    unsigned status;  /* what we queued, for the access log */
    size_t bytes;

    size_t received; /* body bytes of a GET, discarded */

    struct predict *job; /* POST /predict[/batch] only, else NULL */
    int had_job;         /* counted in srv->in_jobs */
};

/* --- responses ------------------------------------------------------------ */

static void add_cors(struct http_request *r, struct MHD_Response *resp)
{
    if (!r->origin[0])
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->origin);
    if (strcmp(r->origin, "*") != 0)
        MHD_add_response_header(resp, "Vary", "Origin");
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
}

/* Queues body (malloc'd, ownership taken; NULL = empty) with status. Every
 * response goes through here, so every one carries X-Request-Id and CORS. */
static enum MHD_Result respond(struct http_request *r, unsigned status, char *body, size_t len,
                               const char *content_type, const char *cache_control, int retry_after,
                               const char *allow)
{
    struct MHD_Response *resp;
    if (body)
        resp = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    else
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, cache_control ? cache_control : "no-store");
    if (retry_after) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", r->srv->cfg->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    add_cors(r, resp);
    enum MHD_Result rc = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    r->status = status;
    r->bytes = body ? len : 0;
    r->phase = PH_ANSWERED;
    return rc;
}

static int wants_retry(enum api_code code)
{
    return code == API_E_OVERLOADED || code == API_E_DRAINING || code == API_E_TIMEOUT;
}

/* Every error response: api_error_body maps the code and writes the body. */
static enum MHD_Result respond_error(struct http_request *r, const struct api_error *e)
{
    unsigned status;
    char *body = api_error_body(e, r->srv->cfg->overload_status, &status);
    if (!body)
        return MHD_NO;
    const char *allow = e->code == API_E_METHOD_NOT_ALLOWED && r->route ? r->route->allow : NULL;
    return respond(r, status, body, strlen(body), "application/json", NULL, wants_retry(e->code), allow);
}

static enum MHD_Result fail(struct http_request *r, enum api_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result fail(struct http_request *r, enum api_code code, const char *fmt, ...)
{
    struct api_error e = {.code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    return respond_error(r, &e);
}

static enum MHD_Result respond_text(struct http_request *r, unsigned status, const char *text, size_t len,
                                    const char *content_type, const char *cache_control)
{
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return fail(r, API_E_INTERNAL, "out of memory");
    memcpy(copy, text, len);
    return respond(r, status, copy, len, content_type, cache_control, 0, NULL);
}

/* --- small handlers ------------------------------------------------------------ */

static enum MHD_Result h_health(struct http_request *r, const char *d, size_t *s)
{
    (void)d, (void)s;
    static const char ok[] = "{\"status\":\"ok\"}\n";
    return respond_text(r, 200, ok, sizeof ok - 1, "application/json", NULL);
}

static enum MHD_Result h_ready(struct http_request *r, const char *d, size_t *s)
{
    (void)d, (void)s;
    int st = atomic_load(&r->srv->state);
    const char *name = st == HTTP_READY ? "ok" : st == HTTP_DRAINING ? "draining" : "starting";
    char buf[48];
    int n = snprintf(buf, sizeof buf, "{\"status\":\"%s\"}\n", name);
    return respond_text(r, st == HTTP_READY ? 200 : 503, buf, (size_t)n, "application/json", NULL);
}

static enum MHD_Result h_metrics(struct http_request *r, const char *d, size_t *s)
{
    (void)d, (void)s;
    struct http_server *srv = r->srv;
    struct metrics_gauges g = {
        .queue_depth = pool_queued(srv->pool),
        .queue_capacity = pool_capacity(srv->pool),
        .workers = pool_threads(srv->pool),
        .workers_busy = pool_busy(srv->pool),
        .ready = atomic_load(&srv->state) == HTTP_READY,
    };
    char *text;
    size_t len;
    if (metrics_render(srv->metrics, &g, &text, &len) != 0)
        return fail(r, API_E_INTERNAL, "out of memory rendering metrics");
    return respond(r, 200, text, len, "text/plain; version=0.0.4; charset=utf-8", NULL, 0, NULL);
}

static enum MHD_Result h_model(struct http_request *r, const char *d, size_t *s)
{
    (void)d, (void)s;
    return respond_text(r, 200, r->srv->model_json, r->srv->model_json_len, "application/json", "no-cache");
}

static enum MHD_Result h_openapi(struct http_request *r, const char *d, size_t *s)
{
    (void)d, (void)s;
    if (!r->srv->openapi)
        return fail(r, API_E_NOT_FOUND, "openapi.yaml was not found at start-up");
    return respond_text(r, 200, r->srv->openapi, r->srv->openapi_len, "application/yaml; charset=utf-8",
                        "no-cache");
}

/* --- static files ----------------------------------------------------------------- */

static const char *content_type_of(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
        {".webmanifest", "application/manifest+json"},
        {".txt", "text/plain; charset=utf-8"},
        {".yaml", "application/yaml; charset=utf-8"},
        {".woff2", "font/woff2"},
    };
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* Maps a URL path to a regular file under web_root, or returns -1. Refuses
 * any segment that starts with '.' (so "..", hidden files), backslashes and
 * empty segments, then checks the resolved path (symlinks included) is still
 * inside the root. */
static int static_resolve(const struct http_server *srv, const char *url, char out[PATH_MAX])
{
    if (!srv->web_root[0] || url[0] != '/')
        return -1;
    const char *rel = url + 1;
    if (!*rel)
        rel = "index.html";
    if (strlen(rel) > 200 || strchr(rel, '\\'))
        return -1;
    for (const char *seg = rel; *seg;) {
        size_t n = strcspn(seg, "/");
        if (n == 0 || seg[0] == '.')
            return -1;
        for (size_t i = 0; i < n; i++)
            if (!isprint((unsigned char)seg[i]))
                return -1;
        seg += n;
        if (*seg == '/')
            seg++;
    }
    char joined[PATH_MAX];
    if ((size_t)snprintf(joined, sizeof joined, "%s/%s", srv->web_root, rel) >= sizeof joined)
        return -1;
    if (!realpath(joined, out))
        return -1;
    size_t root_len = strlen(srv->web_root);
    if (strncmp(out, srv->web_root, root_len) != 0 || out[root_len] != '/')
        return -1;
    struct stat st;
    if (stat(out, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)STATIC_MAX_BYTES)
        return -1;
    return 0;
}

static enum MHD_Result h_static(struct http_request *r, const char *d, size_t *s)
{
    (void)d, (void)s;
    char path[PATH_MAX];
    if (static_resolve(r->srv, r->path, path) != 0)
        return fail(r, API_E_NOT_FOUND, "no such route or file: %.200s", r->path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(r, API_E_NOT_FOUND, "no such route or file: %.200s", r->path);
    char *buf = NULL;
    size_t len = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) {
            buf = malloc((size_t)n + 1);
            if (buf)
                len = fread(buf, 1, (size_t)n, f);
        }
    }
    fclose(f);
    if (!buf)
        return fail(r, API_E_INTERNAL, "reading %.200s failed", r->path);
    /* HTML names the versioned assets it needs: revalidate it every time,
     * let the assets be cached briefly. */
    const char *type = content_type_of(path);
    const char *cache = strncmp(type, "text/html", 9) == 0 ? "no-cache" : "public, max-age=300";
    return respond(r, 200, buf, len, type, cache, 0, NULL);
}

/* --- prediction: see predict.h ---------------------------------------------------- */

/* First call of a POST /predict[/batch]: readiness here, the rest of what the
 * headers decide in predict_begin. */
static enum MHD_Result h_predict_begin(struct http_request *r)
{
    struct http_server *srv = r->srv;
    if (atomic_load(&srv->state) != HTTP_READY)
        return fail(r, API_E_DRAINING, "server is %s; retry later",
                    atomic_load(&srv->state) == HTTP_DRAINING ? "shutting down" : "starting");
    struct api_error e = {0};
    int batch = r->route->metric == METRICS_ROUTE_PREDICT_BATCH;
    r->job = predict_begin(&srv->predict, r->conn, r->request_id, batch, &e);
    if (!r->job)
        return respond_error(r, &e);
    return MHD_YES;
}

/* Final call: the whole body is here; parse it and queue the job. */
static enum MHD_Result h_predict_submit(struct http_request *r)
{
    struct http_server *srv = r->srv;
    struct api_error e = {0};
    if (predict_parse(r->job, &e) != 0)
        return respond_error(r, &e);
    if (atomic_load(&srv->state) != HTTP_READY || !pool_accepting(srv->pool))
        return fail(r, API_E_DRAINING, "server is shutting down; retry later");
    /* Counted before the job can possibly finish, uncounted on completion:
     * http_free waits for this to reach zero. */
    atomic_fetch_add(&srv->in_jobs, 1);
    r->phase = PH_QUEUED;
    r->had_job = 1;
    predict_enqueue(r->job);
    return MHD_YES;
}

static enum MHD_Result h_predict(struct http_request *r, const char *data, size_t *size)
{
    if (r->phase == PH_QUEUED) {
        /* Called again after the worker resumed us. */
        struct predict_answer a;
        if (!predict_take_answer(r->job, &a))
            return MHD_YES; /* spurious: still waiting */
        if (!a.body)
            return fail(r, API_E_INTERNAL, "out of memory encoding the response");
        return respond(r, a.status, a.body, a.len, "application/json", NULL, wants_retry(a.code), NULL);
    }
    if (*size > 0) {
        predict_body(r->job, data, *size);
        *size = 0;
        return MHD_YES;
    }
    return h_predict_submit(r);
}

/* --- routing ------------------------------------------------------------------------ */

#define GET_ALLOW "GET, HEAD, OPTIONS"
#define POST_ALLOW "POST, OPTIONS"

/* The last row answers any other path: a static file or 404. */
static const struct route routes[] = {
    {"/predict", POST_ALLOW, METRICS_ROUTE_PREDICT, NULL, h_predict},
    {"/predict/batch", POST_ALLOW, METRICS_ROUTE_PREDICT_BATCH, NULL, h_predict},
    {"/healthz", GET_ALLOW, METRICS_ROUTE_HEALTHZ, h_health, NULL},
    {"/readyz", GET_ALLOW, METRICS_ROUTE_READYZ, h_ready, NULL},
    {"/metrics", GET_ALLOW, METRICS_ROUTE_METRICS, h_metrics, NULL},
    {"/v1/model", GET_ALLOW, METRICS_ROUTE_MODEL, h_model, NULL},
    {"/openapi.yaml", GET_ALLOW, METRICS_ROUTE_OPENAPI, h_openapi, NULL},
    {NULL, GET_ALLOW, METRICS_ROUTE_STATIC, h_static, NULL},
};

static const struct route *route_find(const char *path)
{
    size_t i = 0;
    for (; routes[i].path; i++)
        if (strcmp(routes[i].path, path) == 0)
            break;
    return &routes[i];
}

static int origin_allowed(const struct http_server *srv, const char *origin, char out[256])
{
    for (size_t i = 0; i < srv->n_origins; i++) {
        if (strcmp(srv->origins[i], "*") == 0) {
            snprintf(out, 256, "*");
            return 1;
        }
        if (strcmp(srv->origins[i], origin) == 0) {
            snprintf(out, 256, "%s", origin);
            return 1;
        }
    }
    return 0;
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

static enum MHD_Result preflight(struct http_request *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->route->allow);
    if (r->origin[0]) {
        add_cors(r, resp);
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", r->route->allow);
        MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Content-Type, X-Request-Id");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    }
    enum MHD_Result rc = MHD_queue_response(r->conn, 204, resp);
    MHD_destroy_response(resp);
    r->status = 204;
    r->phase = PH_ANSWERED;
    return rc;
}

static enum MHD_Result dispatch(struct http_request *r, const char *data, size_t *size);

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **con_cls)
{
    (void)version;
    struct http_server *srv = cls;
    struct http_request *r = *con_cls;
    if (r) {
        if (r->phase == PH_ANSWERED) { /* body of a request already refused: discard */
            *size = 0;
            return MHD_YES;
        }
        if (r->phase == PH_DEFERRED) {
            if (*size > 0) { /* a GET with a body nobody asked for: bounded */
                r->received += *size;
                *size = 0;
                return r->received > srv->cfg->max_body_bytes ? MHD_NO : MHD_YES;
            }
            return dispatch(r, data, size);
        }
        return r->route->post(r, data, size);
    }

    r = calloc(1, sizeof *r);
    if (!r)
        return MHD_NO;
    *con_cls = r;
    r->srv = srv;
    r->conn = conn;
    r->t_start = timing_now_ms();
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->path, sizeof r->path, "%s", url);
    request_id(r);
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (origin)
        origin_allowed(srv, origin, r->origin);
    r->route = route_find(url);
    r->metric = r->route->metric;
    /* GET, HEAD and OPTIONS wait for the second call so the connection can
     * be kept alive; anything that may carry a body (POST, PUT, ...) is
     * judged on its headers now, so a refused body is never read. */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_OPTIONS) != 0)
        return dispatch(r, data, size);
    r->phase = PH_DEFERRED;
    return MHD_YES;
}

static enum MHD_Result dispatch(struct http_request *r, const char *data, size_t *size)
{
    struct http_server *srv = r->srv;
    const char *method = r->method, *url = r->path;
    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    int is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    int is_options = strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0;
    if (!r->route->path) { /* not an API route: static file or 404 */
        char path[PATH_MAX];
        if (static_resolve(srv, url, path) != 0) {
            r->metric = METRICS_ROUTE_OTHER;
            r->route = NULL;
            return fail(r, API_E_NOT_FOUND, "no such route or file: %.200s", url);
        }
    }
    if (is_options)
        return preflight(r);
    if (is_get && r->route->get)
        return r->route->get(r, data, size);
    if (is_post && r->route->post) {
        r->phase = PH_BODY;
        return h_predict_begin(r);
    }
    return fail(r, API_E_METHOD_NOT_ALLOWED, "%.16s is not allowed on %.200s; allowed: %s", method, url,
                r->route->allow);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
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
    struct log_access a = {
        r->method, r->path, status, r->bytes, ms, r->request_id, predict_samples_run(r->job), remote};
    log_access(srv->log, &a);
    if (r->had_job)
        atomic_fetch_sub(&srv->in_jobs, 1);
    predict_free(r->job);
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

/* --- lifecycle ---------------------------------------------------------------------- */

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

void *http_worker_new(void *model)
{
    return bnn_workspace_new(model);
}

void http_worker_free(void *ctx)
{
    bnn_workspace_free(ctx);
}

static void parse_origins(struct http_server *srv, const char *list)
{
    const char *p = list;
    while (*p && srv->n_origins < MAX_ORIGINS) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m > 0 && p[m - 1] == ' ')
            m--;
        if (m > 0)
            srv->origins[srv->n_origins++] = strndup(p, m);
        p += n;
    }
}

struct http_server *http_start(const struct http_deps *deps, int listen_fd, char err[HTTP_ERR_LEN])
{
    struct http_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, HTTP_ERR_LEN, "http_start: out of memory");
        return NULL;
    }
    srv->cfg = deps->cfg;
    atomic_init(&srv->jobs_run, 0);
    srv->predict = (struct predict_deps){deps->cfg, deps->model,          deps->pool,    deps->metrics,
                                         deps->log, deps->fail_every_nth, &srv->jobs_run};
    srv->pool = deps->pool;
    srv->metrics = deps->metrics;
    srv->log = deps->log;
    srv->openapi = deps->openapi;
    srv->openapi_len = deps->openapi_len;
    srv->listen_fd = -1;
    atomic_init(&srv->state, HTTP_STARTING);
    atomic_init(&srv->in_jobs, 0);
    atomic_init(&srv->next_id, 0);
    if (getrandom(&srv->id_key, sizeof srv->id_key, 0) != (ssize_t)sizeof srv->id_key)
        srv->id_key = (uint64_t)time(NULL);
    parse_origins(srv, deps->cfg->cors_origins);
    if (!realpath(deps->cfg->web_root, srv->web_root)) {
        log_msg(srv->log, LOG_WARN, "web_root %s: %s; GET / will answer 404", deps->cfg->web_root,
                strerror(errno));
        srv->web_root[0] = '\0';
    }
    json_t *mj = api_model_json(deps->model, deps->cfg);
    if (mj && deps->version)
        json_object_set_new(mj, "server_version", json_string(deps->version));
    srv->model_json = mj ? api_dump(mj, &srv->model_json_len) : NULL;
    json_decref(mj);
    if (!srv->model_json) {
        snprintf(err, HTTP_ERR_LEN, "http_start: out of memory describing the model");
        goto fail;
    }

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
    for (size_t i = 0; i < srv->n_origins; i++)
        free(srv->origins[i]);
    free(srv->model_json);
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
    for (size_t i = 0; i < s->n_origins; i++)
        free(s->origins[i]);
    free(s->model_json);
    free(s);
}

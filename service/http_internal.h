/* http_internal.h - what the files of the HTTP side (http.c,
 * http_predict.c, http_v2.c) share and nothing else includes: the server's state, one
 * request's state, and the response a handler fills.
 *
 * Invariant: a handler fills a struct http_response and returns its status,
 * or 0 for "no answer yet" (a body still arriving, a job still running);
 * http.c's respond is the one place that turns it into a libmicrohttpd
 * response, so every answer carries X-Request-Id and CORS the same way.
 * Ownership: a response's body is malloc'd and passes to libmicrohttpd in
 * respond, unless persistent (server-owned text that outlives every
 * response). A struct http_request lives from the first access-handler call
 * to the completion callback; struct http_server from http_start to
 * http_free.
 */
#ifndef BNN_HTTP_INTERNAL_H
#define BNN_HTTP_INTERNAL_H

#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "http.h"
#include "http_static.h"
#include "metrics.h"

struct MHD_Daemon;
struct MHD_Connection;
struct http_predict;
struct http_v2;

struct http_server {
    struct MHD_Daemon *daemon;
    const struct cfg *cfg;
    struct pool *pool; /* for the metrics gauges */
    struct metrics *metrics;
    struct log *log;
    const struct predict_deps *predict;
    const char *openapi; /* borrowed, or NULL (404) */
    size_t openapi_len;
    const char *version; /* bnn-serve's, borrowed */
    struct http_files files;
    struct http_cors cors;
    int listen_fd;
    unsigned port;
    _Atomic int state;        /* enum http_state */
    _Atomic unsigned in_jobs; /* requests whose job was submitted and that have not completed yet */
    _Atomic uint64_t next_id;
    uint64_t id_key;
};

struct http_response {
    char *body; /* malloc'd and owned, or NULL (empty), or persistent */
    size_t len;
    int persistent;              /* body outlives every response: neither copied nor freed */
    const char *content_type;    /* NULL: none */
    const char *cache_control;   /* NULL: no-store */
    const char *allow;           /* the Allow header, or NULL */
    const char *cors_methods;    /* a CORS preflight: the methods to allow */
    int retry_after;             /* send Retry-After: retry_after seconds */
    size_t inference_header_len; /* V2 binary answers: Inference-Header-Content-Length; 0 = none */
};

/* Where a request is. HTTP_PH_DEFERRED: one without a body to read is
 * answered on the second call, since a response queued on the first makes
 * libmicrohttpd close the connection (no keep-alive). */
enum http_phase { HTTP_PH_BODY = 0, HTTP_PH_DEFERRED, HTTP_PH_QUEUED, HTTP_PH_ANSWERED };

struct route;

struct http_request {
    struct http_server *srv;
    struct MHD_Connection *conn;
    const struct route *route;
    enum metrics_route metric;
    enum http_phase phase;
    char method[16];
    char path[256];
    char request_id[72];
    char origin[HTTP_ORIGIN_LEN]; /* an allowed Origin to echo, "" otherwise */
    char file[PATH_MAX];          /* a static file the path resolved to */
    double t_start;               /* ms, monotonic */
    unsigned status;              /* what was answered, for the access log */
    size_t bytes;
    uint64_t received;            /* body bytes of a request that takes none, discarded */
    struct http_predict *predict; /* POST /predict[/batch] only, else NULL */
    struct http_v2 *v2;           /* POST under /v2 only, else NULL */
    int had_job;                  /* counted in srv->in_jobs */
};

/* Fills out with e's JSON error body (and Retry-After when the code calls
 * for it); returns e's status. */
unsigned http_error(const struct http_server *srv, struct http_response *out, const struct api_error *e);

/* http_error for a code and a printf-style message. */
unsigned http_fail(const struct http_server *srv, struct http_response *out, enum api_code code,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif

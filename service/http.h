/* http.h - the daemon's HTTP side on libmicrohttpd: routes, per-request
 * state, the operations endpoints (probes, metrics, /v1/model, the spec),
 * start and stop. POST /predict[/batch] is http_predict.h's, the Open
 * Inference Protocol under /v2 http_v2.h's, static files and CORS
 * http_static.h's.
 * Invariant: a request whose job was submitted is counted until it
 * completes; http_free waits for the count to reach zero before stopping
 * libmicrohttpd.
 * Ownership: the server borrows everything in struct http_deps until
 * http_free.
 */
#ifndef BNN_HTTP_H
#define BNN_HTTP_H

#include <stddef.h>

#include "bnn.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"

#define HTTP_ERR_LEN 256

struct predict_deps;

enum http_state { HTTP_STARTING = 0, HTTP_READY = 1, HTTP_DRAINING = 2 };

struct http_deps {
    const struct cfg *cfg;
    struct pool *pool; /* sampled for the metrics gauges */
    struct metrics *metrics;
    struct log *log;
    const struct predict_deps *predict; /* what prediction jobs borrow; its served models are
                                           what /v1/model and /v2 describe */
    const char *openapi;                /* the spec's text, or NULL (404) */
    size_t openapi_len;
    const char *version; /* bnn-serve version for /v1/model and GET /v2 */
};

struct http_server;

/* Starts libmicrohttpd on an already listening socket (listen_fd; the server
 * takes it over and closes it in http_free). Readiness starts as
 * HTTP_STARTING. NULL with err filled on failure (listen_fd then still
 * belongs to the caller). Owned by caller: http_free. */
struct http_server *http_start(const struct http_deps *deps, int listen_fd, char err[HTTP_ERR_LEN]);

/* The TCP port actually bound (for port 0). */
unsigned http_port(const struct http_server *s);

/* What /readyz (and bnn_ready) report: 200 only in HTTP_READY. Whether a
 * prediction is taken is the pool's to say (pool_submit). */
void http_set_state(struct http_server *s, enum http_state state);

/* Stops accepting new connections; open ones are still served. */
void http_quiesce(struct http_server *s);

/* After pool_shutdown: waits (up to wait_seconds) for every resumed
 * connection to take its response, then stops the daemon and frees. */
void http_free(struct http_server *s, double wait_seconds);

/* Creates a listening TCP socket on host:port (IPv4 or IPv6, SO_REUSEADDR).
 * Returns the fd, or -1 with err naming the address and the reason
 * (e.g. "127.0.0.1:8080: Address already in use"). */
int http_listen(const char *host, unsigned port, char err[HTTP_ERR_LEN]);

#endif

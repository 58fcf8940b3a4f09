/* metrics.h - Prometheus counters, gauges and histograms for the daemon,
 * rendered in the text exposition format (version 0.0.4).
 *
 * A struct metrics lives in the server's state (no globals); every update
 * takes its mutex, so it may be shared by the HTTP and worker threads.
 * Gauges that belong to other modules (queue depth, busy workers) are passed
 * in at render time rather than mirrored here.
 */
#ifndef BNN_METRICS_H
#define BNN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "infer.h"

/* The route label; fixed so that client-chosen paths never become labels. */
enum metrics_route {
    METRICS_ROUTE_PREDICT = 0,
    METRICS_ROUTE_PREDICT_BATCH,
    METRICS_ROUTE_HEALTHZ,
    METRICS_ROUTE_READYZ,
    METRICS_ROUTE_METRICS,
    METRICS_ROUTE_MODEL,
    METRICS_ROUTE_OPENAPI,
    METRICS_ROUTE_STATIC,
    METRICS_ROUTE_V2_INFER,      /* POST /v2/models/{name}[/versions/{v}]/infer */
    METRICS_ROUTE_V2_HEALTH,     /* GET /v2/health/live and ready, /v2/models/.../ready */
    METRICS_ROUTE_V2_METADATA,   /* GET /v2, /v2/models/{name}[/versions/{v}] */
    METRICS_ROUTE_V2_REPOSITORY, /* POST /v2/repository/... */
    METRICS_ROUTE_OTHER,         /* 404s and the like */
    METRICS_ROUTE_COUNT
};

const char *metrics_route_name(enum metrics_route route);

/* Labels of bnn_model_info (which follows a model reload) and the constant
 * bnn_build_info; strings are copied. */
struct metrics_info {
    const char *architecture; /* "784-784-256-256-10" */
    size_t parameters;
    const char *model_path;
    const char *model_format;
    const char *version; /* bnn-serve version */
    const char *mhd_version;
    const char *model_version; /* 12 hex digits of the weights' sha256 */
};

/* Values sampled by the caller when /metrics is scraped. */
struct metrics_gauges {
    unsigned queue_depth;         /* prediction requests in flight (pool_queued) */
    unsigned queue_capacity;      /* queue_depth */
    uint64_t queue_cost;          /* their work not yet computed, lrt passes (pool_queued_cost) */
    uint64_t queue_cost_capacity; /* queue_cost */
    unsigned weights_pass_cost;   /* a weights pass in lrt passes (predict_pass_cost) */
    unsigned workers;
    unsigned workers_busy;
    int ready;
};

struct metrics;

/* NULL on out of memory. Owned by caller: metrics_free (NULL-safe). */
struct metrics *metrics_new(const struct metrics_info *info);
void metrics_free(struct metrics *m);

/* One finished request: counted by (route, status) and its duration added to
 * the route's histogram. status outside 100..599 is counted as 0. */
void metrics_observe_request(struct metrics *m, enum metrics_route route, unsigned status, double seconds);

/* A block of passes computed in mode: bnn_samples_total{mode} += passes,
 * bnn_blocks_total{mode} += 1. And jobs by outcome. */
void metrics_add_block(struct metrics *m, enum bnn_mode mode, uint64_t passes);
void metrics_add_rejected(struct metrics *m);  /* queue full */
void metrics_add_timed_out(struct metrics *m); /* job past its deadline */

/* A model reload, ok or failed (bnn_model_reloads_total{result}). */
void metrics_add_reload(struct metrics *m, int ok);

/* The served model changed: bnn_model_info's labels from info (its
 * architecture, parameters, model_path, model_format and model_version;
 * the build's are kept). Returns 0, or -1 when out of memory (the old
 * labels stay). */
int metrics_set_model(struct metrics *m, const struct metrics_info *info);

/* Renders everything into a new malloc'd NUL-terminated buffer (*out, owned
 * by caller; *len excludes the NUL). Returns 0, or -1 on out of memory. */
int metrics_render(struct metrics *m, const struct metrics_gauges *g, char **out, size_t *len);

/* Bucket upper bounds of bnn_request_duration_seconds (seconds, +Inf implied). */
#define METRICS_N_BUCKETS 14
extern const double metrics_buckets[METRICS_N_BUCKETS];

#endif

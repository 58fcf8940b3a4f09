/* predict.h - POST /predict[/batch] behind the HTTP side: header checks, body
 * accumulation and parsing, the job a worker runs, and the answer it leaves.
 * Invariant: once predict_enqueue suspends the connection, exactly one of the
 * job's run (worker) or cancel (pool shutdown) stores the answer and resumes
 * it, so no connection stays suspended after pool_shutdown.
 * Ownership: a struct predict belongs to its HTTP request (predict_free on
 * completion) and borrows its predict_deps, connection and request id.
 */
#ifndef BNN_PREDICT_H
#define BNN_PREDICT_H

#include <stdatomic.h>
#include <stddef.h>

#include "api.h"
#include "bnn.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"

struct MHD_Connection;

struct predict_deps {
    const struct cfg *cfg;
    const struct bnn_model *model;
    struct pool *pool; /* the worker contexts are bnn_workspaces for model */
    struct metrics *metrics;
    struct log *log;
    /* Fault injection for the integration tests (SQLite-style): when
     * fail_every_nth > 0, every nth job fails as an internal error (500) so
     * that path runs on the real daemon. main sets it from the environment
     * variable BNN_FAULT_EVERY_NTH_JOB; 0 (off) otherwise. */
    unsigned fail_every_nth;
    atomic_uint *jobs_run; /* counter for fail_every_nth, owned by http.c */
};

/* What the job left for the event loop. code is API_OK for a 200; body is
 * malloc'd, or NULL when encoding it ran out of memory. */
struct predict_answer {
    unsigned status;
    enum api_code code;
    char *body;
    size_t len;
};

struct predict;

/* First call of a prediction request: everything the headers decide
 * (Content-Length over max_body_bytes, Content-Type, a full queue, query
 * parameters, the multipart parser). Returns the request's state, or NULL
 * with e set to the error to answer. deps, conn and request_id are borrowed
 * until predict_free. Owned by caller: predict_free. */
struct predict *predict_begin(const struct predict_deps *deps, struct MHD_Connection *conn,
                              const char *request_id, int batch, struct api_error *e);

/* A piece of the body. Every byte counts against max_body_bytes, multipart
 * framing included; what goes wrong is reported by predict_parse. */
void predict_body(struct predict *p, const char *data, size_t size);

/* The whole body has arrived: parse it into images and parameters.
 * Returns 0, or -1 with e set to the error to answer. */
int predict_parse(struct predict *p, struct api_error *e);

/* Suspends the connection and queues the job. Cannot fail: a job the pool
 * refuses is answered (overloaded or draining) and the connection resumed
 * at once, like any other. */
void predict_enqueue(struct predict *p);

/* After the connection was resumed: 1 with the answer moved into *a (its
 * body now owned by caller), or 0 when the job has not finished yet. */
int predict_take_answer(struct predict *p, struct predict_answer *a);

/* Monte-Carlo samples computed for this request (0 for NULL). */
unsigned predict_samples_run(const struct predict *p);

/* NULL-safe. Only once the request has completed (its job, if any, is done). */
void predict_free(struct predict *p);

#endif

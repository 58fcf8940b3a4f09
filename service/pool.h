/* pool.h - a fixed set of compute threads fed by a bounded FIFO job queue.
 *
 * Invariant: every submitted job is handed exactly once to either its run
 * callback (by a worker) or its cancel callback (at shutdown, when the drain
 * time is over), never both, never neither. Submitting never blocks: a full
 * queue is reported at once so the caller can answer 503. Each worker owns a
 * context made by ctx_new on that thread (e.g. a bnn_workspace); jobs borrow
 * it for the duration of run. Jobs are owned by the submitter; the pool only
 * keeps pointers.
 */
#ifndef BNN_POOL_H
#define BNN_POOL_H

#include <stddef.h>

#define POOL_ERR_LEN 256

enum pool_status {
    POOL_OK = 0,
    POOL_E_FULL,    /* queue at capacity: try later */
    POOL_E_STOPPED, /* shutting down: no new work */
    POOL_E_NOMEM,
    POOL_E_THREAD /* a thread or a worker context could not be created */
};

/* Runs a job on a worker; ctx is that worker's context. Returns 0, or nonzero
 * for a failed job (counted by pool_failed; the pool goes on). */
typedef int (*pool_run_fn)(void *job, void *ctx);
/* Called instead of run for a job still queued when the drain time ran out. */
typedef void (*pool_cancel_fn)(void *job);
/* Makes / frees a worker's context; ctx_new returns NULL on failure. */
typedef void *(*pool_ctx_new_fn)(void *cls);
typedef void (*pool_ctx_free_fn)(void *ctx);

struct pool;

/* Starts n_threads workers (0 = number of online CPUs) and a queue of
 * capacity jobs (>= 1). ctx_new / ctx_free may be NULL (ctx is then NULL).
 * Returns NULL with err filled on failure (threads already started are
 * stopped). Owned by caller: pool_shutdown then pool_free. */
struct pool *pool_new(unsigned n_threads, unsigned capacity, pool_ctx_new_fn ctx_new,
                      pool_ctx_free_fn ctx_free, void *cls, char err[POOL_ERR_LEN]);

/* Queues a job; run and cancel must be non-NULL. Returns POOL_OK,
 * POOL_E_FULL or POOL_E_STOPPED; on an error the job was not taken. */
int pool_submit(struct pool *p, void *job, pool_run_fn run, pool_cancel_fn cancel);

/* Stops accepting jobs, lets the workers finish the queue for up to
 * drain_seconds, cancels what is still queued, joins the workers. A job
 * already running is always completed. Returns the number of cancelled jobs.
 * Idempotent. */
size_t pool_shutdown(struct pool *p, double drain_seconds);

/* NULL-safe; shuts down with no drain time first if needed. */
void pool_free(struct pool *p);

/* What pool_submit would answer now (POOL_OK, POOL_E_FULL or
 * POOL_E_STOPPED), by the same rule: a snapshot for refusing early, which
 * pool_submit may still contradict. */
int pool_admit(struct pool *p);

/* Snapshots for metrics. */
unsigned pool_threads(const struct pool *p);
unsigned pool_capacity(const struct pool *p);
unsigned pool_queued(struct pool *p);
unsigned pool_busy(struct pool *p);
size_t pool_failed(struct pool *p);

/* Number of online CPUs (>= 1). */
unsigned pool_cpu_count(void);

#endif

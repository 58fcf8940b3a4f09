/* pool.h - a fixed set of compute threads sharing divisible jobs fairly.
 *
 * A job is a sequence of steps (for bnn-serve: a block of Monte-Carlo passes
 * of one image), some of them ready at a time; a step may make more ready
 * (an image once decoded has its blocks). Workers take one ready step at a
 * time, round-robin across the jobs in flight: a large job uses every idle
 * worker, and a job arriving behind others gets its first step after about
 * one step of each of them. While the pool drains (pool_shutdown) the oldest
 * job goes first instead, so that as many as possible finish in time.
 *
 * Admission (pool_submit, the one authority) never blocks. A job is refused
 * at once when max_jobs are in flight, or when its cost neither fits in what
 * is left of max_cost nor is light (at most max_cost / max_jobs, a job's
 * share: light jobs are never refused because heavy ones fill the pool); a
 * job costing more than max_cost alone can never be admitted. Cost is in
 * the caller's units; it stays queued until the job's steps report it
 * computed, or the job ends.
 *
 * Invariant: every job pool_submit took is ended exactly once, by its end
 * callback, when no step of it runs and none will: after a step said it was
 * the last, or at the drain deadline (a job left with no step ready or
 * running is ended as if it had said last). Jobs are owned by the
 * submitter; the pool keeps pointers and never touches a job after its end
 * returned. Each
 * worker owns a context made by ctx_new on that thread (a bnn_workspace);
 * steps borrow it while they run.
 */
#ifndef BNN_POOL_H
#define BNN_POOL_H

#include <stddef.h>
#include <stdint.h>

#define POOL_ERR_LEN 256

enum pool_status {
    POOL_OK = 0,
    POOL_E_FULL,       /* max_jobs in flight: try later */
    POOL_E_COST,       /* the queued cost leaves no room for this job: try later */
    POOL_E_TOO_COSTLY, /* the job alone costs more than max_cost: never */
    POOL_E_STOPPED,    /* shutting down: no new work */
    POOL_E_NOMEM,
    POOL_E_THREAD /* a thread or a worker context could not be created */
};

/* What a step reports (zeroed before the step runs). */
struct pool_step {
    unsigned ready; /* steps it made ready (ignored once the job is closed) */
    uint64_t cost;  /* the cost it computed, taken off the job's queued cost */
    int last;       /* the job wants no more steps (complete, failed, past its
                       deadline): ready ones are dropped, running ones finish */
};

/* Runs one ready step of job on a worker; ctx is that worker's context.
 * Steps of one job may run at once on several workers. */
typedef void (*pool_step_fn)(void *job, void *ctx, struct pool_step *out);
/* Ends job, once, when none of its steps runs or will: stopped = 0 after a
 * step said last, 1 when the drain time ran out first (the job may have run
 * some steps, or none). Runs on a worker or on the thread in pool_shutdown.
 * Returns 0, or nonzero for a failed job (counted by pool_failed). */
typedef int (*pool_end_fn)(void *job, int stopped);

struct pool_job_ops {
    pool_step_fn step;
    pool_end_fn end;
};

/* Makes / frees a worker's context; ctx_new returns NULL on failure. */
typedef void *(*pool_ctx_new_fn)(void *cls);
typedef void (*pool_ctx_free_fn)(void *ctx);

struct pool;

/* Starts n_threads workers (0 = number of online CPUs) for at most max_jobs
 * jobs (>= 1) in flight costing at most max_cost (>= 1) queued. ctx_new /
 * ctx_free may be NULL (ctx is then NULL). Returns NULL with err filled on
 * failure (threads already started are stopped). Owned by caller:
 * pool_shutdown then pool_free. */
struct pool *pool_new(unsigned n_threads, unsigned max_jobs, uint64_t max_cost, pool_ctx_new_fn ctx_new,
                      pool_ctx_free_fn ctx_free, void *cls, char err[POOL_ERR_LEN]);

/* Takes a job of this cost with ready (>= 1) steps ready to run; ops (with
 * both callbacks) must outlive it. Returns POOL_OK, or POOL_E_FULL,
 * POOL_E_COST, POOL_E_TOO_COSTLY, POOL_E_STOPPED or POOL_E_NOMEM: the job
 * was not taken (and will never be ended by the pool). */
int pool_submit(struct pool *p, void *job, const struct pool_job_ops *ops, unsigned ready, uint64_t cost);

/* Stops admitting, lets the workers run the jobs in flight, oldest first,
 * for up to drain_seconds, then ends every job left as stopped: at once if
 * none of its steps runs, else when its running steps return (a step is
 * never interrupted). Joins the workers. Returns the number of jobs
 * stopped. Idempotent. */
size_t pool_shutdown(struct pool *p, double drain_seconds);

/* NULL-safe; shuts down with no drain time first if needed. */
void pool_free(struct pool *p);

/* What pool_submit would answer now for a light job (POOL_OK, POOL_E_FULL
 * or POOL_E_STOPPED), by the same rule: a snapshot for refusing early,
 * which pool_submit may still contradict. */
int pool_admit(struct pool *p);

/* Snapshots, for metrics and messages. */
unsigned pool_threads(const struct pool *p);
unsigned pool_capacity(const struct pool *p);      /* max_jobs */
uint64_t pool_cost_capacity(const struct pool *p); /* max_cost */
unsigned pool_queued(struct pool *p);              /* jobs in flight: admitted, not yet ended */
uint64_t pool_queued_cost(struct pool *p);         /* their cost not yet computed */
unsigned pool_busy(struct pool *p);                /* workers running a step */
size_t pool_failed(struct pool *p);

/* Number of online CPUs (>= 1). */
unsigned pool_cpu_count(void);

#endif

/* pool.c - see pool.h.
 *
 * One mutex guards everything. Each job in flight has an entry on two
 * lists: a ring in round-robin order, whose cursor is the entry offered the
 * next step (a new job joins just before it, so at the end of the round),
 * and a list in admission order (for draining, oldest first).
 * Invariants: an entry with no ready step has at least one running (an
 * entry that is closed with none running is ended and unlinked at once), so
 * a worker looking for a step passes at most n_threads entries before it
 * finds one; queued_cost is the sum of the entries' costs.
 * Shutdown: stopping turns admission off and the order to oldest first;
 * cancelling (the drain deadline) stops handing out steps: entries with no
 * step running are ended by the thread in pool_shutdown, the others by the
 * worker whose step returns last.
 */
#include "pool.h"

#include "fault.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct pool_entry {
    void *job;
    const struct pool_job_ops *ops;
    struct pool_entry *prev, *next;   /* the round-robin ring */
    struct pool_entry *older, *newer; /* admission order */
    unsigned ready, running;          /* steps */
    uint64_t cost;                    /* admitted, not yet computed */
    int closed;                       /* no more steps: last said, or stopped */
    int stopped;                      /* closed by the drain deadline */
};

struct pool_worker {
    struct pool *pool;
    pthread_t thread;
    void *ctx;
    int started;
    int ctx_failed;
};

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a step became ready, or stopping */
    pthread_cond_t idle; /* a worker made its context, or a job ended */
    struct pool_entry *cursor;
    struct pool_entry *oldest, *newest;
    unsigned n_jobs, max_jobs;
    uint64_t queued_cost, max_cost;
    unsigned busy;
    unsigned n_threads;
    unsigned n_ready; /* workers that have made (or failed) their context */
    int stopping;     /* no new jobs; oldest first */
    int cancelling;   /* drain time over: no more steps */
    int joined;
    size_t failed;
    pool_ctx_new_fn ctx_new;
    pool_ctx_free_fn ctx_free;
    void *cls;
    struct pool_worker *workers;
};

unsigned pool_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* Joins the ring just before the cursor and the age list as the newest. */
static void link_entry(struct pool *p, struct pool_entry *e)
{
    if (!p->cursor) {
        e->prev = e->next = e;
        p->cursor = e;
    } else {
        e->next = p->cursor;
        e->prev = p->cursor->prev;
        e->prev->next = e;
        p->cursor->prev = e;
    }
    e->older = p->newest;
    e->newer = NULL;
    if (p->newest)
        p->newest->newer = e;
    else
        p->oldest = e;
    p->newest = e;
    p->n_jobs++;
    p->queued_cost += e->cost;
}

static void unlink_entry(struct pool *p, struct pool_entry *e)
{
    if (e->next == e) {
        p->cursor = NULL;
    } else {
        e->prev->next = e->next;
        e->next->prev = e->prev;
        if (p->cursor == e)
            p->cursor = e->next;
    }
    if (e->older)
        e->older->newer = e->newer;
    else
        p->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        p->newest = e->older;
    p->n_jobs--;
    p->queued_cost -= e->cost;
}

/* The entry whose step runs next, or NULL when none is ready. */
static struct pool_entry *pick_locked(struct pool *p)
{
    if (p->cancelling || !p->cursor)
        return NULL;
    if (p->stopping) {
        for (struct pool_entry *e = p->oldest; e; e = e->newer)
            if (e->ready)
                return e;
        return NULL;
    }
    struct pool_entry *e = p->cursor;
    do {
        if (e->ready) {
            p->cursor = e->next;
            return e;
        }
        e = e->next;
    } while (e != p->cursor);
    return NULL;
}

static void wake(struct pool *p, unsigned steps)
{
    if (steps > 1)
        pthread_cond_broadcast(&p->work);
    else if (steps == 1)
        pthread_cond_signal(&p->work);
}

/* A step of e returned: its report applied. */
static void settle_locked(struct pool *p, struct pool_entry *e, const struct pool_step *st)
{
    uint64_t c = st->cost < e->cost ? st->cost : e->cost;
    e->cost -= c;
    p->queued_cost -= c;
    if (st->last) {
        e->closed = 1;
        e->stopped = 0; /* it ended on its own, even if the deadline came meanwhile */
        e->ready = 0;
    } else if (!e->closed && st->ready) {
        e->ready += st->ready;
        wake(p, st->ready);
    } else if (!e->closed && e->ready == 0 && e->running == 0) {
        e->closed = 1; /* nothing can run again: a job that forgot to say last still ends */
    }
}

/* Ends a closed entry with no step running: unlinked under the lock, ended
 * outside it. Called and returns with the lock held. */
static void end_locked(struct pool *p, struct pool_entry *e)
{
    unlink_entry(p, e);
    pthread_mutex_unlock(&p->mu);
    int rc = e->ops->end(e->job, e->stopped);
    free(e);
    pthread_mutex_lock(&p->mu);
    if (rc != 0)
        p->failed++;
    pthread_cond_broadcast(&p->idle); /* pool_shutdown may wait for the last job */
    if (p->stopping && p->n_jobs == 0)
        pthread_cond_broadcast(&p->work); /* idle workers may exit now */
}

static int worker_done_locked(const struct pool *p, const struct pool_worker *w)
{
    return w->ctx_failed || p->cancelling || (p->stopping && p->n_jobs == 0);
}

static void *worker_main(void *arg)
{
    struct pool_worker *w = arg;
    struct pool *p = w->pool;
    /* The context is made on the worker itself so that its memory is first
     * touched (and placed) by the thread that uses it. */
    if (p->ctx_new) {
        w->ctx = p->ctx_new(p->cls);
        w->ctx_failed = w->ctx == NULL;
    }
    pthread_mutex_lock(&p->mu);
    p->n_ready++;
    pthread_cond_broadcast(&p->idle);
    for (;;) {
        struct pool_entry *e = NULL;
        while (!worker_done_locked(p, w) && !(e = pick_locked(p)))
            pthread_cond_wait(&p->work, &p->mu);
        if (!e)
            break;
        e->ready--;
        e->running++;
        p->busy++;
        pthread_mutex_unlock(&p->mu);
        struct pool_step st = {0};
        e->ops->step(e->job, w->ctx, &st);
        pthread_mutex_lock(&p->mu);
        p->busy--;
        e->running--;
        settle_locked(p, e, &st);
        if (e->closed && e->running == 0)
            end_locked(p, e);
    }
    pthread_mutex_unlock(&p->mu);
    if (p->ctx_free && w->ctx)
        p->ctx_free(w->ctx);
    w->ctx = NULL;
    return NULL;
}

static void join_all(struct pool *p)
{
    for (unsigned i = 0; i < p->n_threads; i++)
        if (p->workers[i].started)
            pthread_join(p->workers[i].thread, NULL);
    p->joined = 1;
}

/* Starts the workers and waits until each has its context, so that a
 * failure is reported here and not as jobs that never run. 0 or -1. */
static int start_workers(struct pool *p, char err[POOL_ERR_LEN])
{
    unsigned started = 0;
    for (unsigned i = 0; i < p->n_threads; i++) {
        p->workers[i].pool = p;
        int rc = pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]);
        if (rc != 0) {
            snprintf(err, POOL_ERR_LEN, "pool_new: pthread_create worker %u of %u: %s", i, p->n_threads,
                     strerror(rc));
            break;
        }
        p->workers[i].started = 1;
        started++;
    }
    pthread_mutex_lock(&p->mu);
    while (p->n_ready < started)
        pthread_cond_wait(&p->idle, &p->mu);
    unsigned ctx_failures = 0;
    for (unsigned i = 0; i < p->n_threads; i++)
        ctx_failures += p->workers[i].ctx_failed;
    pthread_mutex_unlock(&p->mu);
    if (started == p->n_threads && ctx_failures > 0)
        snprintf(err, POOL_ERR_LEN, "pool_new: %u of %u workers could not create their context", ctx_failures,
                 p->n_threads);
    return started == p->n_threads && ctx_failures == 0 ? 0 : -1;
}

struct pool *pool_new(unsigned n_threads, unsigned max_jobs, uint64_t max_cost, pool_ctx_new_fn ctx_new,
                      pool_ctx_free_fn ctx_free, void *cls, char err[POOL_ERR_LEN])
{
    if (max_jobs == 0 || max_cost == 0) {
        snprintf(err, POOL_ERR_LEN, "pool_new: max_jobs and max_cost must be >= 1, got %u and %llu", max_jobs,
                 (unsigned long long)max_cost);
        return NULL;
    }
    if (n_threads == 0)
        n_threads = pool_cpu_count();
    struct pool *p = bnn_fault_calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, POOL_ERR_LEN, "pool_new: out of memory");
        return NULL;
    }
    p->workers = bnn_fault_calloc(n_threads, sizeof *p->workers);
    if (!p->workers) {
        free(p);
        snprintf(err, POOL_ERR_LEN, "pool_new: out of memory for %u workers", n_threads);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->idle, NULL);
    p->max_jobs = max_jobs;
    p->max_cost = max_cost;
    p->n_threads = n_threads;
    p->ctx_new = ctx_new;
    p->ctx_free = ctx_free;
    p->cls = cls;
    if (start_workers(p, err) != 0) {
        pool_free(p);
        return NULL;
    }
    return p;
}

/* The one rule for taking a job, shared by pool_submit and pool_admit. The
 * queued cost never passes 2 max_cost: max_cost for jobs that fitted, and
 * max_jobs light ones. */
static int admit_locked(const struct pool *p, uint64_t cost)
{
    if (p->stopping)
        return POOL_E_STOPPED;
    if (cost > p->max_cost)
        return POOL_E_TOO_COSTLY;
    if (p->n_jobs >= p->max_jobs)
        return POOL_E_FULL;
    if (cost <= p->max_cost / p->max_jobs || p->queued_cost + cost <= p->max_cost)
        return POOL_OK;
    return POOL_E_COST;
}

int pool_submit(struct pool *p, void *job, const struct pool_job_ops *ops, unsigned ready, uint64_t cost)
{
    assert(ops && ops->step && ops->end && ready >= 1);
    struct pool_entry *e = bnn_fault_calloc(1, sizeof *e);
    if (!e)
        return POOL_E_NOMEM;
    *e = (struct pool_entry){.job = job, .ops = ops, .ready = ready, .cost = cost};
    pthread_mutex_lock(&p->mu);
    int rc = admit_locked(p, cost);
    if (rc == POOL_OK) {
        link_entry(p, e);
        wake(p, ready);
    }
    pthread_mutex_unlock(&p->mu);
    if (rc != POOL_OK)
        free(e);
    return rc;
}

static struct timespec deadline_after(double seconds)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    if (seconds > 0) {
        double whole = (double)(long)seconds;
        t.tv_sec += (time_t)whole;
        t.tv_nsec += (long)((seconds - whole) * 1e9);
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
    }
    return t;
}

size_t pool_shutdown(struct pool *p, double drain_seconds)
{
    pthread_mutex_lock(&p->mu);
    if (p->joined) {
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    p->stopping = 1;
    pthread_cond_broadcast(&p->work);
    struct timespec deadline = deadline_after(drain_seconds);
    while (p->n_jobs > 0 && drain_seconds > 0)
        if (pthread_cond_timedwait(&p->idle, &p->mu, &deadline) == ETIMEDOUT)
            break;
    p->cancelling = 1;
    pthread_cond_broadcast(&p->work);
    /* Entries with a step running are ended by its worker; the others here,
     * outside the lock, in admission order (chained through newer). */
    size_t n = 0;
    struct pool_entry *now = NULL, **tail = &now;
    for (struct pool_entry *e = p->oldest, *newer; e; e = newer) {
        newer = e->newer;
        if (e->closed)
            continue; /* ends on its own when its running steps return */
        n++;
        e->closed = e->stopped = 1;
        e->ready = 0;
        if (e->running == 0) {
            unlink_entry(p, e);
            *tail = e;
            tail = &e->newer;
            e->newer = NULL;
        }
    }
    pthread_mutex_unlock(&p->mu);
    for (struct pool_entry *e = now, *next; e; e = next) {
        next = e->newer;
        e->ops->end(e->job, 1);
        free(e);
    }
    join_all(p);
    return n;
}

void pool_free(struct pool *p)
{
    if (!p)
        return;
    if (!p->joined)
        pool_shutdown(p, 0);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    free(p->workers);
    free(p);
}

unsigned pool_threads(const struct pool *p)
{
    return p->n_threads;
}

unsigned pool_capacity(const struct pool *p)
{
    return p->max_jobs;
}

uint64_t pool_cost_capacity(const struct pool *p)
{
    return p->max_cost;
}

#define POOL_GETTER(name, type, expr)                                                                        \
    type name(struct pool *p)                                                                                \
    {                                                                                                        \
        pthread_mutex_lock(&p->mu);                                                                          \
        type v = (expr);                                                                                     \
        pthread_mutex_unlock(&p->mu);                                                                        \
        return v;                                                                                            \
    }

POOL_GETTER(pool_queued, unsigned, p->n_jobs)
POOL_GETTER(pool_queued_cost, uint64_t, p->queued_cost)
POOL_GETTER(pool_busy, unsigned, p->busy)
POOL_GETTER(pool_admit, int, admit_locked(p, 0))
POOL_GETTER(pool_failed, size_t, p->failed)

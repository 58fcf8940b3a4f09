/* pool.c - see pool.h. The queue is a ring of capacity slots guarded by one
 * mutex; workers sleep on a condition variable. Shutdown sets a deadline:
 * until it passes, workers keep draining the queue; after it, the thread
 * calling pool_shutdown cancels whatever is left. */
#include "pool.h"

#include "fault.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct pool_item {
    void *job;
    pool_run_fn run;
    pool_cancel_fn cancel;
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
    pthread_cond_t work;  /* a job was queued, or stopping */
    pthread_cond_t ready; /* a worker finished making its context */
    struct pool_item *ring;
    unsigned capacity, head, count;
    unsigned busy;
    unsigned n_threads;
    unsigned n_ready; /* workers that have made (or failed) their context */
    int stopping;     /* no new jobs */
    int cancelling;   /* drain time over: workers take no more jobs */
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
    pthread_cond_broadcast(&p->ready);
    for (;;) {
        while (p->count == 0 && !p->stopping && !w->ctx_failed)
            pthread_cond_wait(&p->work, &p->mu);
        if (w->ctx_failed || p->cancelling || (p->stopping && p->count == 0))
            break;
        struct pool_item it = p->ring[p->head];
        p->head = (p->head + 1) % p->capacity;
        p->count--;
        p->busy++;
        pthread_mutex_unlock(&p->mu);
        int rc = it.run(it.job, w->ctx);
        pthread_mutex_lock(&p->mu);
        p->busy--;
        if (rc != 0)
            p->failed++;
        if (p->stopping && p->count == 0)
            pthread_cond_broadcast(&p->ready); /* pool_shutdown may be waiting for the queue to empty */
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

struct pool *pool_new(unsigned n_threads, unsigned capacity, pool_ctx_new_fn ctx_new,
                      pool_ctx_free_fn ctx_free, void *cls, char err[POOL_ERR_LEN])
{
    if (capacity == 0) {
        snprintf(err, POOL_ERR_LEN, "pool_new: queue capacity must be >= 1, got 0");
        return NULL;
    }
    if (n_threads == 0)
        n_threads = pool_cpu_count();
    struct pool *p = bnn_fault_calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, POOL_ERR_LEN, "pool_new: out of memory");
        return NULL;
    }
    p->ring = bnn_fault_calloc(capacity, sizeof *p->ring);
    p->workers = bnn_fault_calloc(n_threads, sizeof *p->workers);
    if (!p->ring || !p->workers) {
        free(p->ring);
        free(p->workers);
        free(p);
        snprintf(err, POOL_ERR_LEN, "pool_new: out of memory for %u slots and %u workers", capacity,
                 n_threads);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->ready, NULL);
    p->capacity = capacity;
    p->n_threads = n_threads;
    p->ctx_new = ctx_new;
    p->ctx_free = ctx_free;
    p->cls = cls;

    unsigned started = 0;
    for (unsigned i = 0; i < n_threads; i++) {
        p->workers[i].pool = p;
        int rc = pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]);
        if (rc != 0) {
            snprintf(err, POOL_ERR_LEN, "pool_new: pthread_create worker %u of %u: %s", i, n_threads,
                     strerror(rc));
            break;
        }
        p->workers[i].started = 1;
        started++;
    }
    /* Wait until every started worker has its context, so that a failure is
     * reported here and not as jobs that never run. */
    pthread_mutex_lock(&p->mu);
    while (p->n_ready < started)
        pthread_cond_wait(&p->ready, &p->mu);
    unsigned ctx_failures = 0;
    for (unsigned i = 0; i < n_threads; i++)
        ctx_failures += p->workers[i].ctx_failed;
    pthread_mutex_unlock(&p->mu);
    if (started < n_threads || ctx_failures > 0) {
        if (started == n_threads)
            snprintf(err, POOL_ERR_LEN, "pool_new: %u of %u workers could not create their context",
                     ctx_failures, n_threads);
        pool_free(p);
        return NULL;
    }
    return p;
}

/* The one rule for taking a job, shared by pool_submit and pool_admit. */
static int admit_locked(const struct pool *p)
{
    if (p->stopping)
        return POOL_E_STOPPED;
    return p->count == p->capacity ? POOL_E_FULL : POOL_OK;
}

int pool_submit(struct pool *p, void *job, pool_run_fn run, pool_cancel_fn cancel)
{
    pthread_mutex_lock(&p->mu);
    int rc = admit_locked(p);
    if (rc == POOL_OK) {
        p->ring[(p->head + p->count) % p->capacity] = (struct pool_item){job, run, cancel};
        p->count++;
        pthread_cond_signal(&p->work);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
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
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    if (drain_seconds > 0) {
        double whole = (double)(long)drain_seconds;
        deadline.tv_sec += (time_t)whole;
        deadline.tv_nsec += (long)((drain_seconds - whole) * 1e9);
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    /* Workers that lost their context exit at once; if none is left the
     * queue would never drain, so do not wait for it. */
    while (p->count > 0 && drain_seconds > 0) {
        int rc = pthread_cond_timedwait(&p->ready, &p->mu, &deadline);
        if (rc == ETIMEDOUT)
            break;
    }
    p->cancelling = 1;
    pthread_cond_broadcast(&p->work);
    /* Take the leftovers out under the lock, cancel them outside it. */
    unsigned n = p->count;
    struct pool_item *left = NULL;
    if (n > 0) {
        left = malloc(n * sizeof *left);
        for (unsigned i = 0; left && i < n; i++)
            left[i] = p->ring[(p->head + i) % p->capacity];
    }
    struct pool_item *ring_copy = left ? NULL : p->ring; /* out of memory: cancel straight from the ring */
    unsigned head = p->head;
    p->count = 0;
    pthread_mutex_unlock(&p->mu);

    for (unsigned i = 0; i < n; i++) {
        struct pool_item it = left ? left[i] : ring_copy[(head + i) % p->capacity];
        it.cancel(it.job);
    }
    free(left);
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
    pthread_cond_destroy(&p->ready);
    free(p->ring);
    free(p->workers);
    free(p);
}

unsigned pool_threads(const struct pool *p)
{
    return p->n_threads;
}

unsigned pool_capacity(const struct pool *p)
{
    return p->capacity;
}

#define POOL_GETTER(name, type, expr)                                                                        \
    type name(struct pool *p)                                                                                \
    {                                                                                                        \
        pthread_mutex_lock(&p->mu);                                                                          \
        type v = (expr);                                                                                     \
        pthread_mutex_unlock(&p->mu);                                                                        \
        return v;                                                                                            \
    }

POOL_GETTER(pool_queued, unsigned, p->count)
POOL_GETTER(pool_busy, unsigned, p->busy)
POOL_GETTER(pool_admit, int, admit_locked(p))
POOL_GETTER(pool_failed, size_t, p->failed)

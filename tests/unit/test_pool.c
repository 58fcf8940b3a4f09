/* test_pool.c - the worker pool: FIFO order, a full queue refused at once,
 * shutdown with pending jobs (each job run or cancelled exactly once), a
 * failing job counted while the others go on, worker contexts, many jobs
 * from several threads. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fault.h"
#include "pool.h"

/* A gate a job can wait on, so tests control when the worker is busy. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
    int entered;
};

static void gate_init(struct gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = 0;
    g->entered = 0;
}

static void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void gate_wait_entered(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    while (!g->entered)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

struct job {
    int id;
    struct gate *gate; /* wait on it when set */
    int fail;          /* return -1 */
    _Atomic int runs, cancels;
    void *ctx_seen;
    int *order; /* shared log of run order */
    _Atomic int *order_n;
};

static int job_run(void *p, void *ctx)
{
    struct job *j = p;
    j->ctx_seen = ctx;
    if (j->gate) {
        pthread_mutex_lock(&j->gate->mu);
        j->gate->entered = 1;
        pthread_cond_broadcast(&j->gate->cv);
        while (!j->gate->open)
            pthread_cond_wait(&j->gate->cv, &j->gate->mu);
        pthread_mutex_unlock(&j->gate->mu);
    }
    if (j->order)
        j->order[atomic_fetch_add(j->order_n, 1)] = j->id;
    atomic_fetch_add(&j->runs, 1);
    return j->fail ? -1 : 0;
}

static void job_cancel(void *p)
{
    struct job *j = p;
    atomic_fetch_add(&j->cancels, 1);
}

static void test_fifo_order(void **state)
{
    (void)state;
    char err[POOL_ERR_LEN];
    struct pool *p = pool_new(1, 16, NULL, NULL, NULL, err);
    assert_non_null(p);
    struct gate g;
    gate_init(&g);
    int order[16];
    _Atomic int n = 0;
    struct job blocker = {.id = -1, .gate = &g};
    struct job jobs[10];
    assert_int_equal(pool_submit(p, &blocker, job_run, job_cancel), POOL_OK);
    gate_wait_entered(&g);
    for (int i = 0; i < 10; i++) {
        jobs[i] = (struct job){.id = i, .order = order, .order_n = &n};
        assert_int_equal(pool_submit(p, &jobs[i], job_run, job_cancel), POOL_OK);
    }
    assert_int_equal(pool_queued(p), 10);
    assert_int_equal(pool_busy(p), 1);
    gate_open(&g);
    assert_int_equal(pool_shutdown(p, 10.0), 0);
    assert_int_equal(atomic_load(&n), 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(order[i], i);
        assert_int_equal(atomic_load(&jobs[i].runs), 1);
        assert_int_equal(atomic_load(&jobs[i].cancels), 0);
    }
    pool_free(p);
}

static void test_full_queue(void **state)
{
    (void)state;
    char err[POOL_ERR_LEN];
    struct pool *p = pool_new(1, 2, NULL, NULL, NULL, err);
    assert_non_null(p);
    assert_int_equal(pool_capacity(p), 2);
    struct gate g;
    gate_init(&g);
    struct job blocker = {.gate = &g}, a = {0}, b = {0}, c = {0};
    assert_int_equal(pool_admit(p), POOL_OK);
    assert_int_equal(pool_submit(p, &blocker, job_run, job_cancel), POOL_OK);
    gate_wait_entered(&g);
    assert_int_equal(pool_submit(p, &a, job_run, job_cancel), POOL_OK);
    assert_int_equal(pool_admit(p), POOL_OK);
    assert_int_equal(pool_submit(p, &b, job_run, job_cancel), POOL_OK);
    /* Full: refused at once, not taken; pool_admit says so beforehand. */
    assert_int_equal(pool_admit(p), POOL_E_FULL);
    assert_int_equal(pool_submit(p, &c, job_run, job_cancel), POOL_E_FULL);
    assert_int_equal(pool_queued(p), 2);
    gate_open(&g);
    pool_shutdown(p, 10.0);
    assert_int_equal(atomic_load(&a.runs) + atomic_load(&b.runs), 2);
    assert_int_equal(atomic_load(&c.runs) + atomic_load(&c.cancels), 0);
    pool_free(p);
}

static void *open_later(void *arg)
{
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    gate_open(arg);
    return NULL;
}

static void test_shutdown_cancels_pending(void **state)
{
    (void)state;
    char err[POOL_ERR_LEN];
    struct pool *p = pool_new(1, 8, NULL, NULL, NULL, err);
    assert_non_null(p);
    struct gate g;
    gate_init(&g);
    struct job blocker = {.gate = &g}, jobs[3] = {{0}};
    assert_int_equal(pool_submit(p, &blocker, job_run, job_cancel), POOL_OK);
    gate_wait_entered(&g);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pool_submit(p, &jobs[i], job_run, job_cancel), POOL_OK);
    pthread_t t;
    pthread_create(&t, NULL, open_later, &g);
    /* No drain time: the queued jobs are cancelled, the running one still
     * completes before shutdown returns. */
    assert_int_equal(pool_shutdown(p, 0.0), 3);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&blocker.runs), 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(atomic_load(&jobs[i].cancels), 1);
        assert_int_equal(atomic_load(&jobs[i].runs), 0);
    }
    assert_int_equal(pool_admit(p), POOL_E_STOPPED);
    struct job late = {0};
    assert_int_equal(pool_submit(p, &late, job_run, job_cancel), POOL_E_STOPPED);
    assert_int_equal(pool_shutdown(p, 1.0), 0); /* idempotent */
    pool_free(p);
}

static void test_shutdown_drains_within_time(void **state)
{
    (void)state;
    char err[POOL_ERR_LEN];
    struct pool *p = pool_new(2, 64, NULL, NULL, NULL, err);
    assert_non_null(p);
    struct job jobs[40];
    for (int i = 0; i < 40; i++) {
        jobs[i] = (struct job){.id = i};
        assert_int_equal(pool_submit(p, &jobs[i], job_run, job_cancel), POOL_OK);
    }
    assert_int_equal(pool_shutdown(p, 30.0), 0);
    for (int i = 0; i < 40; i++)
        assert_int_equal(atomic_load(&jobs[i].runs), 1);
    pool_free(p);
}

static void test_failed_job(void **state)
{
    (void)state;
    char err[POOL_ERR_LEN];
    struct pool *p = pool_new(1, 8, NULL, NULL, NULL, err);
    assert_non_null(p);
    struct job a = {.id = 1}, bad = {.id = 2, .fail = 1}, c = {.id = 3};
    assert_int_equal(pool_submit(p, &a, job_run, job_cancel), POOL_OK);
    assert_int_equal(pool_submit(p, &bad, job_run, job_cancel), POOL_OK);
    assert_int_equal(pool_submit(p, &c, job_run, job_cancel), POOL_OK);
    pool_shutdown(p, 10.0);
    assert_int_equal(atomic_load(&a.runs) + atomic_load(&bad.runs) + atomic_load(&c.runs), 3);
    assert_int_equal(pool_failed(p), 1);
    pool_free(p);
}

struct ctx_counts {
    _Atomic int made, freed;
    int fail_at; /* ctx_new fails on this call (1-based), 0 = never */
};

static void *ctx_new(void *cls)
{
    struct ctx_counts *c = cls;
    int n = atomic_fetch_add(&c->made, 1) + 1;
    if (c->fail_at && n == c->fail_at)
        return NULL;
    return malloc(64);
}

static void ctx_free(void *ctx)
{
    free(ctx);
}

static void test_worker_contexts(void **state)
{
    (void)state;
    char err[POOL_ERR_LEN];
    struct ctx_counts counts = {0};
    struct pool *p = pool_new(3, 8, ctx_new, ctx_free, &counts, err);
    assert_non_null(p);
    assert_int_equal(atomic_load(&counts.made), 3);
    assert_int_equal(pool_threads(p), 3);
    struct job j = {0};
    assert_int_equal(pool_submit(p, &j, job_run, job_cancel), POOL_OK);
    pool_shutdown(p, 10.0);
    assert_non_null(j.ctx_seen);
    pool_free(p);

    struct ctx_counts failing = {.fail_at = 2};
    p = pool_new(3, 8, ctx_new, ctx_free, &failing, err);
    assert_null(p);
    assert_non_null(strstr(err, "context"));
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char err[POOL_ERR_LEN];
    assert_null(pool_new(1, 0, NULL, NULL, NULL, err));
    assert_non_null(strstr(err, "capacity"));
    struct pool *p = pool_new(0, 1, NULL, NULL, NULL, err); /* 0 = number of CPUs */
    assert_non_null(p);
    assert_int_equal(pool_threads(p), pool_cpu_count());
    pool_free(p); /* without an explicit shutdown */
    pool_free(NULL);
}

/* Each allocation of pool_new failed in turn: NULL with a message, no leak
 * (ASan), no thread left behind. */
static void test_allocation_faults(void **state)
{
    (void)state;
    char err[POOL_ERR_LEN];
    long n = 1;
    for (;; n++) {
        err[0] = '\0';
        bnn_fault_set(n);
        struct pool *p = pool_new(2, 4, NULL, NULL, NULL, err);
        int fired = bnn_fault_fired();
        bnn_fault_set(0);
        if (!fired) {
            assert_non_null(p);
            pool_free(p);
            break;
        }
        assert_null(p);
        assert_non_null(strstr(err, "out of memory"));
    }
    assert_int_equal(n, 4); /* the pool, its ring and its workers */
}

struct submitter {
    struct pool *pool;
    struct job *jobs;
    int n;
    _Atomic int *full;
};

static void *submit_many(void *arg)
{
    struct submitter *s = arg;
    for (int i = 0; i < s->n; i++) {
        while (pool_submit(s->pool, &s->jobs[i], job_run, job_cancel) == POOL_E_FULL) {
            atomic_fetch_add(s->full, 1);
            sched_yield();
        }
    }
    return NULL;
}

static void test_many_jobs_many_threads(void **state)
{
    (void)state;
    char err[POOL_ERR_LEN];
    struct pool *p = pool_new(3, 4, NULL, NULL, NULL, err);
    assert_non_null(p);
    enum { N_SUB = 4, N_JOBS = 2000 };
    static struct job jobs[N_SUB][N_JOBS];
    memset(jobs, 0, sizeof jobs);
    _Atomic int full = 0;
    pthread_t t[N_SUB];
    struct submitter s[N_SUB];
    for (int i = 0; i < N_SUB; i++) {
        s[i] = (struct submitter){p, jobs[i], N_JOBS, &full};
        pthread_create(&t[i], NULL, submit_many, &s[i]);
    }
    for (int i = 0; i < N_SUB; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(pool_shutdown(p, 30.0), 0);
    for (int i = 0; i < N_SUB; i++)
        for (int k = 0; k < N_JOBS; k++)
            assert_int_equal(atomic_load(&jobs[i][k].runs), 1);
    pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_order),
        cmocka_unit_test(test_full_queue),
        cmocka_unit_test(test_shutdown_cancels_pending),
        cmocka_unit_test(test_shutdown_drains_within_time),
        cmocka_unit_test(test_failed_job),
        cmocka_unit_test(test_worker_contexts),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_allocation_faults),
        cmocka_unit_test(test_many_jobs_many_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

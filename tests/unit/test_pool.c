/* test_pool.c - the worker pool as a fair scheduler of divisible jobs:
 * round-robin order across jobs (a newcomer joins at the end of the round),
 * one job spread over every idle worker, steps that make more steps ready,
 * admission bounded by jobs and by queued cost (a light job's share, a job
 * too costly ever to fit), a step that says last (a deadline) dropping the
 * job's other steps while the running ones finish, draining oldest first
 * and stopping at the drain deadline (each job ended exactly once), worker
 * contexts, allocation faults, many jobs from several threads. */
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

/* A gate a step can wait on, so tests control when a worker is busy. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
    int entered;
};

#define GATE_INIT                                                                                            \
    {                                                                                                        \
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0                                            \
    }

static void gate_pass(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->entered++;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Waits until n steps are in the gate; 0, or -1 after 30 s (a failure, not
 * a hang). */
static int gate_wait_entered(struct gate *g, int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    int rc = 0;
    pthread_mutex_lock(&g->mu);
    while (g->entered < n && rc == 0)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, &until);
    pthread_mutex_unlock(&g->mu);
    return g->entered >= n ? 0 : -1;
}

/* The order steps ran in: job ids. */
struct order {
    pthread_mutex_t mu;
    int ids[256];
    int n;
};

struct job {
    int id;
    unsigned steps;      /* steps it runs in all (the one that runs last says so) */
    unsigned release;    /* its first step makes this many more ready */
    unsigned last_at;    /* the step (in run order, from 1) that says last early; 0 = none */
    struct gate *gate;   /* steps wait here ... */
    unsigned gate_step;  /* ... this one (from 1), 0 = every step */
    int end_rc;          /* what its end returns */
    struct pool *submit; /* its first step submits `child` to this pool */
    struct job *child;
    int child_rc;
    struct order *order;
    _Atomic unsigned ran;
    _Atomic int ends, stopped_ends;
    void *ctx_seen;
};

static void job_step(void *p, void *ctx, struct pool_step *st)
{
    struct job *j = p;
    unsigned n = atomic_fetch_add(&j->ran, 1) + 1;
    if (n == 1) /* steps of one job may run at once */
        j->ctx_seen = ctx;
    if (j->order) {
        pthread_mutex_lock(&j->order->mu);
        j->order->ids[j->order->n++] = j->id;
        pthread_mutex_unlock(&j->order->mu);
    }
    if (j->gate && (j->gate_step == 0 || j->gate_step == n))
        gate_pass(j->gate);
    st->cost = 1;
    if (n == 1)
        st->ready = j->release;
    st->last = n == j->steps || n == j->last_at;
}

static int job_end(void *p, int stopped)
{
    struct job *j = p;
    atomic_fetch_add(&j->ends, 1);
    if (stopped)
        atomic_fetch_add(&j->stopped_ends, 1);
    return j->end_rc;
}

static const struct pool_job_ops job_ops = {job_step, job_end};

/* A job whose first step submits its child (a newcomer while others run). */
static void parent_step(void *p, void *ctx, struct pool_step *st)
{
    struct job *j = p;
    if (atomic_load(&j->ran) == 0) /* checked by the test's thread, not here */
        j->child_rc = pool_submit(j->submit, j->child, &job_ops, j->child->steps, j->child->steps);
    job_step(p, ctx, st);
}

static const struct pool_job_ops parent_ops = {parent_step, job_end};

static int submit(struct pool *p, struct job *j)
{
    return pool_submit(p, j, &job_ops, j->release ? 1 : j->steps, j->steps);
}

static struct pool *new_pool(unsigned workers, unsigned max_jobs, uint64_t max_cost)
{
    char err[POOL_ERR_LEN];
    struct pool *p = pool_new(workers, max_jobs, max_cost, NULL, NULL, NULL, err);
    if (!p)
        fail_msg("pool_new: %s", err);
    return p;
}

static void test_round_robin_order(void **state)
{
    (void)state;
    struct pool *p = new_pool(1, 16, 1000);
    struct gate g = GATE_INIT;
    struct order o = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct job blocker = {.id = 9, .steps = 1, .gate = &g};
    struct job d = {.id = 4, .steps = 1, .order = &o};
    struct job a = {.id = 1, .steps = 4, .order = &o, .submit = p, .child = &d};
    struct job b = {.id = 2, .steps = 4, .order = &o}, c = {.id = 3, .steps = 2, .order = &o};
    assert_int_equal(submit(p, &blocker), POOL_OK);
    assert_int_equal(gate_wait_entered(&g, 1), 0);
    assert_int_equal(pool_submit(p, &a, &parent_ops, a.steps, a.steps), POOL_OK);
    assert_int_equal(submit(p, &b), POOL_OK);
    assert_int_equal(submit(p, &c), POOL_OK);
    assert_int_equal(pool_queued(p), 4);
    assert_int_equal(pool_queued_cost(p), 1 + 4 + 4 + 2);
    gate_open(&g);
    /* not pool_shutdown yet: draining would take the oldest first */
    while (atomic_load(&a.ends) + atomic_load(&b.ends) + atomic_load(&c.ends) + atomic_load(&d.ends) < 4)
        sched_yield();
    assert_int_equal(pool_shutdown(p, 30.0), 0);
    assert_int_equal(a.child_rc, POOL_OK);
    /* One step per job per round; d, submitted during a's first step, waits
     * for one step of each job already in flight. */
    static const int want[] = {1, 2, 3, 1, 4, 2, 3, 1, 2, 1, 2};
    assert_int_equal(o.n, sizeof want / sizeof want[0]);
    for (int i = 0; i < o.n; i++)
        if (o.ids[i] != want[i])
            fail_msg("step %d: expected job %d, got %d", i, want[i], o.ids[i]);
    struct job *all[] = {&a, &b, &c, &d, &blocker};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(atomic_load(&all[i]->ran), all[i]->steps);
        assert_int_equal(atomic_load(&all[i]->ends), 1);
        assert_int_equal(atomic_load(&all[i]->stopped_ends), 0);
    }
    assert_int_equal(pool_queued_cost(p), 0);
    pool_free(p);
}

static void test_one_job_every_worker(void **state)
{
    (void)state;
    struct pool *p = new_pool(3, 4, 1000);
    struct gate g = GATE_INIT;
    struct job j = {.id = 1, .steps = 6, .gate = &g};
    assert_int_equal(submit(p, &j), POOL_OK);
    /* Three steps of the one job at once: every worker is on it. */
    assert_int_equal(gate_wait_entered(&g, 3), 0);
    assert_int_equal(pool_busy(p), 3);
    assert_int_equal(pool_queued(p), 1);
    gate_open(&g);
    assert_int_equal(pool_shutdown(p, 30.0), 0);
    assert_int_equal(atomic_load(&j.ran), 6);
    assert_int_equal(atomic_load(&j.ends), 1);
    assert_int_equal(pool_busy(p), 0);
    pool_free(p);
}

static void test_cost_bound(void **state)
{
    (void)state;
    struct pool *p = new_pool(1, 8, 100); /* a light job's share: 100 / 8 = 12 */
    assert_int_equal(pool_cost_capacity(p), 100);
    assert_int_equal(pool_capacity(p), 8);
    struct gate g = GATE_INIT;
    struct job blocker = {.steps = 1, .gate = &g}, heavy[3] = {{.steps = 60}, {.steps = 39}, {.steps = 60}};
    struct job light = {.steps = 12}, over_share = {.steps = 13}, too_costly = {.steps = 101}, small[4];
    assert_int_equal(submit(p, &blocker), POOL_OK);
    assert_int_equal(gate_wait_entered(&g, 1), 0);
    assert_int_equal(submit(p, &heavy[0]), POOL_OK); /* 61 queued */
    assert_int_equal(submit(p, &heavy[2]), POOL_E_COST);
    assert_int_equal(submit(p, &heavy[1]), POOL_OK); /* exactly 100 */
    assert_int_equal(pool_queued_cost(p), 100);
    /* Full by cost: a light job still enters, a heavier one not, one that
     * could never fit is told so. */
    assert_int_equal(pool_admit(p), POOL_OK);
    assert_int_equal(submit(p, &light), POOL_OK);
    assert_int_equal(submit(p, &over_share), POOL_E_COST);
    assert_int_equal(submit(p, &too_costly), POOL_E_TOO_COSTLY);
    /* Full by jobs: 4 in flight, 4 more light ones, then nothing. */
    for (int i = 0; i < 4; i++) {
        small[i] = (struct job){.steps = 1};
        assert_int_equal(submit(p, &small[i]), POOL_OK);
    }
    assert_int_equal(pool_queued(p), 8);
    assert_int_equal(pool_queued_cost(p), 116);
    assert_int_equal(pool_admit(p), POOL_E_FULL);
    struct job one = {.steps = 1};
    assert_int_equal(submit(p, &one), POOL_E_FULL);
    gate_open(&g);
    pool_shutdown(p, 30.0);
    assert_int_equal(atomic_load(&heavy[0].ran), 60);
    assert_int_equal(atomic_load(&heavy[1].ran), 39);
    assert_int_equal(atomic_load(&light.ran), 12);
    struct job *refused[] = {&heavy[2], &over_share, &too_costly, &one};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(atomic_load(&refused[i]->ran) + atomic_load(&refused[i]->ends), 0);
    assert_int_equal(pool_queued_cost(p), 0);
    pool_free(p);
}

/* A step saying last (what a job past its deadline does) while another of
 * its steps runs: the rest is dropped, the running one finishes, then the
 * job ends once; its cost leaves the queue; other jobs go on. */
static void test_last_drops_the_rest(void **state)
{
    (void)state;
    struct pool *p = new_pool(2, 8, 1000);
    struct gate g = GATE_INIT;
    struct job j = {.id = 1, .steps = 10, .last_at = 2, .gate = &g, .gate_step = 1};
    struct job other = {.id = 2, .steps = 5};
    assert_int_equal(submit(p, &j), POOL_OK);
    assert_int_equal(gate_wait_entered(&g, 1), 0); /* step 1 holds a worker */
    /* the other worker runs step 2, which says last */
    while (atomic_load(&j.ran) < 2)
        sched_yield();
    assert_int_equal(submit(p, &other), POOL_OK);
    while (atomic_load(&other.ends) == 0)
        sched_yield();
    assert_int_equal(atomic_load(&j.ends), 0); /* not while step 1 runs */
    assert_int_equal(pool_queued(p), 1);
    assert_int_equal(pool_queued_cost(p), 9); /* its 10 less the one step reported */
    gate_open(&g);
    pool_shutdown(p, 30.0);
    assert_int_equal(atomic_load(&j.ran), 2);
    assert_int_equal(atomic_load(&j.ends), 1);
    assert_int_equal(atomic_load(&j.stopped_ends), 0);
    assert_int_equal(atomic_load(&other.ran), 5);
    assert_int_equal(pool_queued_cost(p), 0);
    pool_free(p);
}

struct opener {
    struct pool *pool;
    struct gate *gate;
    _Atomic int *wait_ends; /* open once this is 1; NULL: once the pool stops admitting */
};

static void *open_later(void *arg)
{
    struct opener *o = arg;
    while (o->wait_ends ? atomic_load(o->wait_ends) == 0 : pool_admit(o->pool) != POOL_E_STOPPED)
        sched_yield();
    gate_open(o->gate);
    return NULL;
}

static void test_drain_oldest_first(void **state)
{
    (void)state;
    struct pool *p = new_pool(1, 8, 1000);
    struct gate g = GATE_INIT;
    struct order o = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct job blocker = {.id = 9, .steps = 1, .gate = &g};
    struct job a = {.id = 1, .steps = 3, .order = &o}, b = {.id = 2, .steps = 3, .order = &o};
    assert_int_equal(submit(p, &blocker), POOL_OK);
    assert_int_equal(gate_wait_entered(&g, 1), 0);
    assert_int_equal(submit(p, &a), POOL_OK);
    assert_int_equal(submit(p, &b), POOL_OK);
    pthread_t t;
    struct opener op = {p, &g, NULL};
    pthread_create(&t, NULL, open_later, &op);
    assert_int_equal(pool_shutdown(p, 30.0), 0); /* everything finished in time */
    pthread_join(t, NULL);
    static const int want[] = {1, 1, 1, 2, 2, 2};
    assert_int_equal(o.n, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(o.ids[i], want[i]);
    assert_int_equal(atomic_load(&a.ends) + atomic_load(&b.ends), 2);
    assert_int_equal(atomic_load(&a.stopped_ends) + atomic_load(&b.stopped_ends), 0);
    struct job late = {.steps = 1};
    assert_int_equal(submit(p, &late), POOL_E_STOPPED);
    assert_int_equal(pool_admit(p), POOL_E_STOPPED);
    assert_int_equal(pool_shutdown(p, 1.0), 0); /* idempotent */
    pool_free(p);
}

static void test_drain_deadline_stops(void **state)
{
    (void)state;
    struct pool *p = new_pool(1, 8, 1000);
    struct gate g = GATE_INIT;
    /* The running job has a second step ready; a never started. */
    struct job run = {.id = 1, .steps = 2, .gate = &g, .gate_step = 1}, a = {.id = 2, .steps = 3};
    assert_int_equal(submit(p, &run), POOL_OK);
    assert_int_equal(gate_wait_entered(&g, 1), 0);
    assert_int_equal(submit(p, &a), POOL_OK);
    pthread_t t;
    /* a is ended (stopped) by pool_shutdown itself at the deadline; only
     * then does the running step return */
    struct opener op = {p, &g, &a.ends};
    pthread_create(&t, NULL, open_later, &op);
    assert_int_equal(pool_shutdown(p, 0.05), 2);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&a.ran), 0);
    assert_int_equal(atomic_load(&a.stopped_ends), 1);
    assert_int_equal(atomic_load(&run.ran), 1); /* its second step never ran */
    assert_int_equal(atomic_load(&run.ends), 1);
    assert_int_equal(atomic_load(&run.stopped_ends), 1);
    assert_int_equal(pool_queued(p), 0);
    pool_free(p);
}

/* A job that says neither last nor makes anything ready, with nothing
 * else running, still ends once (not stopped). A failing end is counted. */
static void forgetful_step(void *p, void *ctx, struct pool_step *st)
{
    (void)ctx, (void)st;
    atomic_fetch_add(&((struct job *)p)->ran, 1);
}

static void test_forgetful_and_failed(void **state)
{
    (void)state;
    static const struct pool_job_ops forgetful = {forgetful_step, job_end};
    struct pool *p = new_pool(1, 8, 1000);
    struct job f = {.steps = 3}, bad = {.steps = 1, .end_rc = -1}, ok = {.steps = 2};
    assert_int_equal(pool_submit(p, &f, &forgetful, 1, 3), POOL_OK);
    assert_int_equal(submit(p, &bad), POOL_OK);
    assert_int_equal(submit(p, &ok), POOL_OK);
    pool_shutdown(p, 30.0);
    assert_int_equal(atomic_load(&f.ran), 1);
    assert_int_equal(atomic_load(&f.ends), 1);
    assert_int_equal(atomic_load(&f.stopped_ends), 0);
    assert_int_equal(atomic_load(&ok.ran), 2);
    assert_int_equal(pool_failed(p), 1);
    assert_int_equal(pool_queued_cost(p), 0);
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
    struct pool *p = pool_new(3, 8, 100, ctx_new, ctx_free, &counts, err);
    assert_non_null(p);
    assert_int_equal(atomic_load(&counts.made), 3);
    assert_int_equal(pool_threads(p), 3);
    struct job j = {.steps = 1};
    assert_int_equal(submit(p, &j), POOL_OK);
    pool_shutdown(p, 10.0);
    assert_non_null(j.ctx_seen);
    pool_free(p);

    struct ctx_counts failing = {.fail_at = 2};
    p = pool_new(3, 8, 100, ctx_new, ctx_free, &failing, err);
    assert_null(p);
    assert_non_null(strstr(err, "context"));
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char err[POOL_ERR_LEN];
    assert_null(pool_new(1, 0, 10, NULL, NULL, NULL, err));
    assert_non_null(strstr(err, "max_jobs"));
    assert_null(pool_new(1, 1, 0, NULL, NULL, NULL, err));
    assert_non_null(strstr(err, "got 1 and 0"));
    struct pool *p = pool_new(0, 1, 1, NULL, NULL, NULL, err); /* 0 = number of CPUs */
    assert_non_null(p);
    assert_int_equal(pool_threads(p), pool_cpu_count());
    pool_free(p); /* without an explicit shutdown */
    pool_free(NULL);
}

/* Each allocation of pool_new failed in turn: NULL with a message, no leak
 * (ASan), no thread left behind; pool_submit's own allocation too. */
static void test_allocation_faults(void **state)
{
    (void)state;
    char err[POOL_ERR_LEN];
    long n = 1;
    for (;; n++) {
        err[0] = '\0';
        bnn_fault_set(n);
        struct pool *p = pool_new(2, 4, 10, NULL, NULL, NULL, err);
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
    assert_int_equal(n, 3); /* the pool and its workers */
    struct pool *p = new_pool(1, 4, 10);
    struct job j = {.steps = 1};
    bnn_fault_set(1);
    assert_int_equal(submit(p, &j), POOL_E_NOMEM);
    bnn_fault_set(0);
    assert_int_equal(pool_queued(p), 0);
    pool_free(p);
    assert_int_equal(atomic_load(&j.ends), 0);
}

struct submitter {
    struct pool *pool;
    struct job *jobs;
    int n;
    _Atomic int *refused;
};

static void *submit_many(void *arg)
{
    struct submitter *s = arg;
    for (int i = 0; i < s->n; i++) {
        int rc;
        while ((rc = submit(s->pool, &s->jobs[i])) == POOL_E_FULL || rc == POOL_E_COST) {
            atomic_fetch_add(s->refused, 1);
            sched_yield();
        }
        assert_int_equal(rc, POOL_OK);
    }
    return NULL;
}

static void test_many_jobs_many_threads(void **state)
{
    (void)state;
    struct pool *p = new_pool(3, 6, 40);
    enum { N_SUB = 4, N_JOBS = 1500 };
    static struct job jobs[N_SUB][N_JOBS];
    for (int i = 0; i < N_SUB; i++)
        for (int k = 0; k < N_JOBS; k++) /* 1..9 steps, every third released by its first */
            jobs[i][k] = (struct job){.steps = 1 + (unsigned)(i + k) % 9,
                                      .release = (i + k) % 3 == 0 ? (unsigned)(i + k) % 9 : 0};
    _Atomic int refused = 0;
    pthread_t t[N_SUB];
    struct submitter s[N_SUB];
    for (int i = 0; i < N_SUB; i++) {
        s[i] = (struct submitter){p, jobs[i], N_JOBS, &refused};
        pthread_create(&t[i], NULL, submit_many, &s[i]);
    }
    for (int i = 0; i < N_SUB; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(pool_shutdown(p, 60.0), 0);
    for (int i = 0; i < N_SUB; i++)
        for (int k = 0; k < N_JOBS; k++) {
            assert_int_equal(atomic_load(&jobs[i][k].ran), jobs[i][k].steps);
            assert_int_equal(atomic_load(&jobs[i][k].ends), 1);
        }
    assert_int_equal(pool_queued_cost(p), 0);
    pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_robin_order),
        cmocka_unit_test(test_one_job_every_worker),
        cmocka_unit_test(test_cost_bound),
        cmocka_unit_test(test_last_drops_the_rest),
        cmocka_unit_test(test_drain_oldest_first),
        cmocka_unit_test(test_drain_deadline_stops),
        cmocka_unit_test(test_forgetful_and_failed),
        cmocka_unit_test(test_worker_contexts),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_allocation_faults),
        cmocka_unit_test(test_many_jobs_many_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* served_model.c - see served_model.h.
 *
 * References: a bundle's count starts at 1 (its maker's). Taking the
 * current bundle's reference happens under the slot's mutex, so it can
 * never race with the swap that drops the slot's own reference; ending one
 * is a lock-free decrement, and whoever ends the last frees.
 *
 * The reload thread sleeps until asked. It takes every request queued so
 * far, loads once for all of them, swaps (or keeps the old bundle), then
 * answers them; requests that came in during the load wait for the next
 * round, so none is answered with a file read before it asked.
 */
#include "served_model.h"

#include <errno.h>
#include <math.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fault.h"
#include "model_path.h"
#include "predict.h"
#include "weights.h"

/* A weights file larger than this is refused before it is read. */
#define MODEL_FILE_MAX ((size_t)1 << 31)

/* err: a message cut to SERVED_ERR_LEN (a very long path is cut, not an
 * error of its own). */
__attribute__((format(printf, 2, 3))) static void set_err(char err[SERVED_ERR_LEN], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, SERVED_ERR_LEN, fmt, ap);
    va_end(ap);
}

void served_model_version(char out[SERVED_VERSION_LEN], const uint8_t *buf, size_t len)
{
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    sha256_update(&ctx, len, buf);
    sha256_digest(&ctx, sizeof digest, digest);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < (SERVED_VERSION_LEN - 1) / 2; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[SERVED_VERSION_LEN - 1] = '\0';
}

/* The whole file, so that the bytes hashed are the bytes parsed. */
static uint8_t *read_whole(const char *path, size_t *len, char err[SERVED_ERR_LEN])
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(err, "open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    uint8_t *buf = NULL;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        set_err(err, "%s: not a regular file", path);
    } else if ((uint64_t)st.st_size > MODEL_FILE_MAX) {
        set_err(err, "%s: %lld bytes, over the %zu a weights file may have", path, (long long)st.st_size,
                MODEL_FILE_MAX);
    } else if (!(buf = bnn_fault_malloc((size_t)st.st_size ? (size_t)st.st_size : 1))) {
        set_err(err, "read %s: out of memory (%lld bytes)", path, (long long)st.st_size);
    } else {
        *len = fread(buf, 1, (size_t)st.st_size, f);
        if (*len != (size_t)st.st_size) {
            set_err(err, "read %s: %s at byte %zu of %lld", path,
                    ferror(f) ? strerror(errno) : "short read (the file shrank while being read)", *len,
                    (long long)st.st_size);
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

/* The weights' policy with the configured thresholds in place of theirs. */
static int make_policy(struct served_model *sm, const struct cfg *c, char err[SERVED_ERR_LEN])
{
    char berr[BNN_ERR_LEN];
    if (bnn_policy_from_meta(&sm->policy, sm->model, berr) != BNN_OK) {
        set_err(err, "model %s: %s", sm->path, berr);
        return -1;
    }
    if (!isnan(c->uncertain_entropy))
        sm->policy.entropy_max = c->uncertain_entropy;
    if (!isnan(c->uncertain_epistemic))
        sm->policy.epistemic_max = c->uncertain_epistemic;
    if (sm->policy.n_levels && bnn_policy_level(&sm->policy, c->default_set_coverage) < 0) {
        set_err(err, "default_set_coverage %g: the model %s is calibrated for %s", c->default_set_coverage,
                sm->path, predict_levels_text(&sm->policy));
        return -1;
    }
    return 0;
}

static struct served_model *bundle_new(struct bnn_model *m)
{
    struct served_model *sm = bnn_fault_calloc(1, sizeof *sm);
    if (!sm) {
        bnn_model_free(m);
        return NULL;
    }
    sm->model = m;
    bnn_model_arch(m, sm->arch, sizeof sm->arch);
    atomic_init(&sm->refs, 1);
    return sm;
}

struct served_model *served_model_load(const struct cfg *c, char err[SERVED_ERR_LEN])
{
    char file[1024], merr[MODEL_PATH_ERR_LEN], berr[BNN_ERR_LEN], version[SERVED_VERSION_LEN];
    if (model_path_resolve(file, sizeof file, c->model, merr) != 0) {
        set_err(err, "%s", merr);
        return NULL;
    }
    size_t len = 0;
    uint8_t *buf = read_whole(file, &len, err);
    if (!buf)
        return NULL;
    served_model_version(version, buf, len);
    struct bnn_model *m = NULL;
    int rc = bnn_weights_parse(&m, buf, len, berr);
    free(buf);
    if (rc != BNN_OK) {
        set_err(err, "%s: %s", file, berr);
        return NULL;
    }
    if (bnn_model_n_in(m) != BNN_MNIST_PIXELS) {
        set_err(err, "model %s: expected %d inputs (28x28), got %zu", file, BNN_MNIST_PIXELS,
                bnn_model_n_in(m));
        bnn_model_free(m);
        return NULL;
    }
    if (bnn_model_prepare(m, berr) != BNN_OK) { /* the first request should not pack the weights */
        set_err(err, "model %s: %s", file, berr);
        bnn_model_free(m);
        return NULL;
    }
    struct served_model *sm = bundle_new(m);
    if (!sm) {
        set_err(err, "model %s: out of memory", file);
        return NULL;
    }
    snprintf(sm->path, sizeof sm->path, "%s", file);
    memcpy(sm->version, version, sizeof version);
    if (make_policy(sm, c, err) != 0) {
        served_model_release(sm);
        return NULL;
    }
    return sm;
}

struct served_model *served_model_wrap(struct bnn_model *m, const struct bnn_policy *policy,
                                       const char *version)
{
    struct served_model *sm = bundle_new(m);
    if (!sm)
        return NULL;
    if (policy)
        sm->policy = *policy;
    else
        bnn_policy_none(&sm->policy);
    snprintf(sm->version, sizeof sm->version, "%s", version ? version : "");
    return sm;
}

struct served_model *served_model_ref(struct served_model *sm)
{
    atomic_fetch_add_explicit(&sm->refs, 1, memory_order_relaxed);
    return sm;
}

void served_model_release(struct served_model *sm)
{
    /* acq_rel: every use of the bundle by other holders happens before the
     * free by whoever ends the last reference. */
    if (!sm || atomic_fetch_sub_explicit(&sm->refs, 1, memory_order_acq_rel) != 1)
        return;
    bnn_model_free(sm->model);
    free(sm);
}

/* --- the slot and its reload thread ------------------------------------------------ */

struct served_models {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    struct served_model *current; /* one reference held by the slot */
    const struct cfg *cfg;
    struct metrics *metrics;
    struct log *log;
    pthread_t thread;
    int started, stopping;
    unsigned anonymous;          /* requests nobody waits for (SIGHUP) */
    struct served_reload *queue; /* requests waiting for the next load, newest first */
};

/* bnn_model_info follows the bundle. */
static void publish(struct served_models *s, const struct served_model *sm)
{
    if (!s->metrics)
        return;
    const char *fmt = bnn_meta_get(sm->model, "format");
    struct metrics_info info = {.architecture = sm->arch,
                                .parameters = bnn_model_param_count(sm->model),
                                .model_path = sm->path,
                                .model_format = fmt ? fmt : "",
                                .model_version = sm->version};
    if (metrics_set_model(s->metrics, &info) != 0)
        log_msg(s->log, LOG_WARN, "metrics: out of memory updating bnn_model_info");
}

struct served_model *served_models_acquire(struct served_models *s)
{
    pthread_mutex_lock(&s->mu);
    struct served_model *sm = served_model_ref(s->current);
    pthread_mutex_unlock(&s->mu);
    return sm;
}

/* One load for every request taken: the new bundle replaces the current one
 * when it loads, validates and has the served architecture. Fills msg and
 * version; returns the status. */
static enum served_reload_status reload_once(struct served_models *s, char msg[SERVED_ERR_LEN],
                                             char version[SERVED_VERSION_LEN])
{
    char err[SERVED_ERR_LEN];
    struct served_model *cur = served_models_acquire(s);
    struct served_model *next = served_model_load(s->cfg, err);
    if (next && strcmp(next->arch, cur->arch) != 0) {
        set_err(err,
                "model %s: architecture %s differs from the served %s; the workers are built for the served "
                "shape, so a new architecture needs a restart",
                next->path, next->arch, cur->arch);
        served_model_release(next);
        next = NULL;
    }
    enum served_reload_status st = SERVED_RELOAD_FAILED;
    if (next) {
        pthread_mutex_lock(&s->mu);
        struct served_model *old = s->current;
        s->current = served_model_ref(next);
        pthread_mutex_unlock(&s->mu);
        served_model_release(old);
        publish(s, next);
        set_err(msg, "model %s reloaded: version %s (was %s)", next->path, next->version, cur->version);
        memcpy(version, next->version, SERVED_VERSION_LEN);
        log_msg(s->log, LOG_INFO, "%s", msg);
        served_model_release(next);
        st = SERVED_RELOAD_OK;
    } else {
        set_err(msg, "%.300s; still serving version %s", err, cur->version);
        memcpy(version, cur->version, SERVED_VERSION_LEN);
        log_msg(s->log, LOG_WARN, "model reload failed: %s", msg);
    }
    if (s->metrics)
        metrics_add_reload(s->metrics, st == SERVED_RELOAD_OK);
    served_model_release(cur);
    return st;
}

/* Answers a list of requests (taken off the queue). */
static void finish(struct served_reload *list, enum served_reload_status st, const char *msg,
                   const char *version)
{
    while (list) {
        struct served_reload *next = list->next; /* done may free list */
        list->status = st;
        snprintf(list->message, sizeof list->message, "%s", msg);
        snprintf(list->version, sizeof list->version, "%s", version);
        list->done(list->cls);
        list = next;
    }
}

static void *reload_main(void *arg)
{
    struct served_models *s = arg;
    char msg[SERVED_ERR_LEN], version[SERVED_VERSION_LEN];
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stopping && !s->queue && !s->anonymous)
            pthread_cond_wait(&s->wake, &s->mu);
        if (s->stopping)
            break;
        struct served_reload *taken = s->queue;
        s->queue = NULL;
        s->anonymous = 0;
        pthread_mutex_unlock(&s->mu);
        enum served_reload_status st = reload_once(s, msg, version);
        finish(taken, st, msg, version);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

struct served_models *served_models_new(struct served_model *initial, const struct cfg *c,
                                        struct metrics *metrics, struct log *lg, char err[SERVED_ERR_LEN])
{
    struct served_models *s = calloc(1, sizeof *s);
    if (!s) {
        set_err(err, "served_models_new: out of memory");
        served_model_release(initial);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    s->current = initial;
    s->cfg = c;
    s->metrics = metrics;
    s->log = lg;
    publish(s, initial);
    int rc = pthread_create(&s->thread, NULL, reload_main, s);
    if (rc != 0) {
        set_err(err, "served_models_new: pthread_create: %s", strerror(rc));
        served_models_free(s);
        return NULL;
    }
    s->started = 1;
    return s;
}

void served_models_reload(struct served_models *s, struct served_reload *req)
{
    pthread_mutex_lock(&s->mu);
    int stopped = s->stopping;
    if (!stopped && req) {
        req->next = s->queue;
        s->queue = req;
    } else if (!stopped) {
        s->anonymous++;
    }
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
    if (stopped && req) {
        req->next = NULL;
        finish(req, SERVED_RELOAD_STOPPED, "server is shutting down; the model was not reloaded", "");
    }
}

void served_models_stop(struct served_models *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    struct served_reload *left = s->queue;
    s->queue = NULL;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->mu);
    if (s->started) {
        pthread_join(s->thread, NULL);
        s->started = 0;
    }
    finish(left, SERVED_RELOAD_STOPPED, "server is shutting down; the model was not reloaded", "");
}

void served_models_free(struct served_models *s)
{
    if (!s)
        return;
    served_models_stop(s);
    served_model_release(s->current);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

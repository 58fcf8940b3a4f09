/* served_model.h - the model being served as one bundle, and its live
 * replacement. A struct served_model is everything an answer depends on
 * besides the request: the weights, their answer policy (decide.h) with the
 * configuration's overrides, and model_version - the first 12 hex digits of
 * the weights file's sha256 - so that (model_version, seed) replays an
 * answer. struct served_models holds the current bundle and a reload thread:
 * SIGHUP or the V2 repository load call ask it to re-read the configured
 * `model` path; the file is read, hashed, parsed and validated on that
 * thread (never on the HTTP thread or a worker), then swapped in at once. A
 * bad file, or one of another architecture (the workers' workspaces are
 * built for the served shape), keeps the old bundle serving.
 *
 * Invariant: a bundle never changes once made, and is freed when its last
 * reference goes. The slot holds one reference to the current bundle and
 * every prediction job one to the bundle it started with, so a request in
 * flight finishes on its model whatever is swapped meanwhile.
 * Ownership: served_model_load / _wrap / _ref and served_models_acquire
 * give a reference the caller ends with served_model_release.
 */
#ifndef BNN_SERVED_MODEL_H
#define BNN_SERVED_MODEL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "bnn.h"
#include "config.h"
#include "decide.h"
#include "log.h"
#include "metrics.h"

#define SERVED_VERSION_LEN 13 /* 12 hex digits and the NUL */
#define SERVED_ERR_LEN 512

struct served_model {
    struct bnn_model *model;  /* owned, read-only */
    struct bnn_policy policy; /* the weights' policy, config overrides applied */
    char version[SERVED_VERSION_LEN];
    char path[1024]; /* the weights file (cfg->model resolved), "" when wrapped */
    char arch[128];  /* "784-784-256-256-10" */
    atomic_uint refs;
};

/* The first 12 hex digits of sha256(buf[0..len)) (nettle). */
void served_model_version(char out[SERVED_VERSION_LEN], const uint8_t *buf, size_t len);

/* c->model resolved (model_path.h), read, hashed and parsed (weights.h);
 * refused unless it takes 28x28 inputs, its metadata's policy parses, and
 * default_set_coverage is one of its conformal levels (when it has any).
 * The policy gets uncertain_entropy / uncertain_epistemic from c when set.
 * NULL with err naming the file and the problem. */
struct served_model *served_model_load(const struct cfg *c, char err[SERVED_ERR_LEN]);

/* A bundle around a model already in memory (taken over: freed with the
 * bundle, or at once when this fails). policy NULL = bnn_policy_none.
 * NULL when out of memory. */
struct served_model *served_model_wrap(struct bnn_model *m, const struct bnn_policy *policy,
                                       const char *version);

/* Another reference to sm; returns sm. */
struct served_model *served_model_ref(struct served_model *sm);

/* Ends a reference; the last one frees the bundle. NULL-safe. */
void served_model_release(struct served_model *sm);

/* --- the slot and its reload thread ------------------------------------------------ */

/* One reload request and its outcome. status and message are set before
 * done runs (on the reload thread, or in served_models_stop); done may
 * free or reuse the request. */
enum served_reload_status { SERVED_RELOAD_OK = 0, SERVED_RELOAD_FAILED, SERVED_RELOAD_STOPPED };

struct served_reload {
    void (*done)(void *cls);
    void *cls;
    enum served_reload_status status;
    char message[SERVED_ERR_LEN];     /* why it failed, or what was loaded */
    char version[SERVED_VERSION_LEN]; /* what serves after it */
    struct served_reload *next;       /* private: the queue */
};

struct served_models;

/* The slot with initial as its current bundle (the reference is taken over)
 * and the reload thread started. c, metrics and lg are borrowed until
 * served_models_free; metrics' model info follows the current bundle and
 * counts reloads (bnn_model_reloads_total). NULL with err filled when the
 * thread cannot start (initial is then released). */
struct served_models *served_models_new(struct served_model *initial, const struct cfg *c,
                                        struct metrics *metrics, struct log *lg, char err[SERVED_ERR_LEN]);

/* A reference to the current bundle. Thread-safe; never NULL. */
struct served_model *served_models_acquire(struct served_models *s);

/* Asks for a reload of c->model. req NULL: nobody waits (SIGHUP). Requests
 * that arrive while a load runs are served by the next one, so each sees
 * the file as it is after it asked. After served_models_stop, req is done
 * at once with SERVED_RELOAD_STOPPED. */
void served_models_reload(struct served_models *s, struct served_reload *req);

/* Stops the reload thread (a load in progress completes) and finishes
 * every queued request with SERVED_RELOAD_STOPPED. Idempotent. */
void served_models_stop(struct served_models *s);

/* Stops, releases the current bundle, frees. NULL-safe. */
void served_models_free(struct served_models *s);

#endif

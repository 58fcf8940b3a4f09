/* predict.h - one prediction from parsed input to answer, with neither HTTP
 * nor a wire format in it: struct predict_input (the parameters and images a
 * request parser fills), the job the workers run on it - per image: decode
 * -> canonicalise -> its passes in blocks, spread over the workers and
 * interleaved with other requests' blocks (pool.h) -> statistics and
 * decisions into a struct predict_result; then encode: the answer written
 * by the route's encoder - and the workers' workspaces (the pool's worker
 * contexts).
 *
 * Invariant: a submitted job is finished exactly once - by the pool's end
 * of it (on the worker whose step was its last, or at the drain deadline)
 * or by predict_submit itself when it or the pool refused it (pool_submit
 * is the one authority on readiness and capacity) - and its done callback
 * runs once, after the answer is stored and after the job's last use of
 * anything shared.
 * Ownership: a job owns its input (moved in by predict_job_new), its
 * answer until predict_job_answer moves the body out, and a reference to
 * the served model it started with (served_model.h), ended by
 * predict_job_free; it borrows its deps, its encoder's context and its
 * request id until then.
 */
#ifndef BNN_PREDICT_H
#define BNN_PREDICT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "answer.h"
#include "api.h"
#include "bnn.h"
#include "config.h"
#include "infer.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "served_model.h"

/* Every answer echoes its seed as a JSON number, exact up to 2^53 - 1. */
#define PREDICT_SEED_MAX 9007199254740991ull
#define PREDICT_NAME_LEN 32

/* --- the parsed input ------------------------------------------------------------ */

enum predict_param_bit {
    PREDICT_SET_SAMPLES = 1,
    PREDICT_SET_INTERVAL = 2,
    PREDICT_SET_SEED = 4,
    PREDICT_SET_MODE = 8,
    PREDICT_SET_SET_COVERAGE = 16
};

struct predict_params {
    unsigned samples; /* T: 1..max_samples */
    double interval;  /* coverage in (0,1) */
    uint64_t seed;    /* 0..PREDICT_SEED_MAX when set & PREDICT_SET_SEED, else each image draws one */
    enum bnn_mode mode;
    double set_coverage; /* of the conformal prediction set: a calibrated level */
    unsigned set;        /* predict_param_bit: which the request gave */
};

/* One image as the request carried it: a PNG file, or 8-bit gray pixels
 * (an array a caller held, e.g. V2's pixels tensor). predict.c's prepare
 * step brings either to the same canonicalisation. */
struct predict_image {
    uint8_t *png; /* owned, len >= 1; NULL for pixels */
    size_t len;
    uint8_t *gray; /* owned (height, width) 8-bit gray, or NULL for a PNG */
    size_t width, height;
};

struct predict_input {
    struct predict_params params;
    struct predict_image *images; /* owned */
    size_t n_images, cap_images;
    int batch; /* a list of images: messages name them images[i], not image */
};

/* Config defaults for the parameters, no images. */
void predict_input_init(struct predict_input *in, const struct cfg *c, int batch);

/* Appends an image, taking png (malloc'd; freed here on failure too). The
 * one check that an image is not empty: invalid_png "image: empty image"
 * (or images[i]); out of memory is internal. Growth goes through
 * model/fault.h's hook. Returns 0 or the code set in e. */
int predict_input_add_image(struct predict_input *in, uint8_t *png, size_t len, struct api_error *e);

/* Appends pixels (height, width) 8-bit gray, taking gray (malloc'd; freed
 * here on failure too). Returns 0 or internal (out of memory) in e. */
int predict_input_add_gray(struct predict_input *in, uint8_t *gray, size_t width, size_t height,
                           struct api_error *e);

/* Frees the images (the parameters stay); NULL-safe, idempotent. */
void predict_input_free(struct predict_input *in);

/* "image" or "images[i]", as messages name image i. */
const char *predict_image_name(const struct predict_input *in, size_t i, char buf[PREDICT_NAME_LEN]);

/* Fills p with the configured defaults, nothing marked as given. */
void predict_params_init(struct predict_params *p, const struct cfg *c);

/* A seed drawn from the system's entropy, 0..PREDICT_SEED_MAX (what an
 * image gets when the request gives none). */
uint64_t predict_random_seed(void);

/* --- results and answers ----------------------------------------------------------- */

/* One image's prediction, in no wire format: answer.h's answer (what the
 * canonicalisation did, the statistics, the reasons to flag it, the
 * prediction set) and how it was computed. */
struct predict_result {
    struct bnn_answer a;
    uint64_t seed; /* the seed used, given or drawn */
    int set_level; /* the policy level of a.set, -1 = no set */
    double set_coverage;
    double decode_ms;  /* decode + canonicalisation */
    double compute_ms; /* the T passes and their statistics: the sum of its
                          blocks' times (on whichever workers), not elapsed */
};

/* What an encoder sees of a computed job. */
struct predict_outcome {
    const struct predict_input *in;
    const struct predict_result *results; /* in->n_images of them */
    double queue_ms;                      /* submit to its first step */
    const char *model_version;            /* of the served model that computed them */
    void *cls;                            /* the encoder's context (predict_job_new's encode_cls) */
};

/* Writes the answer body of a computed job (malloc'd, owned by caller, its
 * length in *len); NULL when out of memory. Runs on the worker; what it
 * writes into o->cls is the caller's to read once the job has finished. */
typedef char *(*predict_encode_fn)(const struct predict_outcome *o, size_t *len);

/* The answer a finished job leaves: 200 with the encoder's body, or an error
 * body (api.h's) and its message, for routes that write errors their own
 * way. body is NULL when even that ran out of memory. */
struct predict_answer {
    unsigned status;
    enum api_code code;
    char *body;
    size_t len;
    char message[API_MSG_LEN]; /* the error's message; "" for 200 */
};

/* Runs once when the job is finished (on a worker, the shutdown thread, or
 * inside predict_submit); the job may be freed as soon as it returns. */
typedef void (*predict_done_fn)(void *cls);

/* --- the service ---------------------------------------------------------------------- */

/* Fault injection for the integration tests (SQLite-style): when every_nth
 * > 0, every nth job fails as an internal error (500) so that path runs on
 * the real daemon. main owns the one instance (BNN_FAULT_EVERY_NTH_JOB). */
struct predict_faults {
    unsigned every_nth;
    atomic_uint jobs; /* jobs started so far */
};

struct predict_deps {
    const struct cfg *cfg;
    struct served_models *models; /* the current one is what new jobs start with: the
                                     model, its policy (abstain rule and sets, config
                                     overrides applied) and its model_version */
    struct pool *pool;            /* its worker contexts come from predict_worker_new */
    struct metrics *metrics;
    struct log *log;
    struct predict_faults *faults; /* NULL: none */
};

/* What one pass of mode costs in lrt passes (the unit of queue_cost and of
 * the queued-cost metrics): weights_pass_cost when set, else infer.h's
 * measured figure for the code path in use. */
unsigned predict_pass_cost(const struct cfg *c, enum bnn_mode mode);

/* The pool's worker context: a bnn_workspace for the model (cls). */
void *predict_worker_new(void *model);
void predict_worker_free(void *worker);

/* Fast path for the headers: would the pool take a job now? 0, or the
 * overloaded / draining error pool_submit would give (a full queue is
 * counted in metrics). Only a hint, so that a body is not read in vain:
 * predict_submit decides. */
int predict_admit(const struct predict_deps *d, struct api_error *e);

struct predict_job;

/* "0.9, 0.95, 0.99": the policy's conformal levels, for messages (a
 * thread-local buffer, valid until the next call on this thread). */
const char *predict_levels_text(const struct bnn_policy *p);

/* A job for in (whose images move into the job; *in is left empty), with a
 * reference to the current served model (d->models) held until
 * predict_job_free. encode writes its answer with encode_cls as o->cls.
 * NULL with e set when out of memory, or for a set_coverage the policy is
 * not calibrated for (in is then freed). Owned by caller: predict_job_free,
 * once done has run (or never submitted). */
struct predict_job *predict_job_new(const struct predict_deps *d, struct predict_input *in,
                                    predict_encode_fn encode, void *encode_cls, predict_done_fn done,
                                    void *done_cls, const char *request_id, struct api_error *e);

/* Queues the job, its cost = images x samples x predict_pass_cost. Cannot
 * fail: a job refused is finished at once, and done has run before this
 * returns - overloaded (queue_depth requests in flight, or no room in
 * queue_cost for a request above its share queue_cost / queue_depth),
 * draining, or 400 invalid_parameter for mode=weights with samples above
 * max_samples_weights or a request costing more than queue_cost alone. */
void predict_submit(struct predict_job *job);

/* 1 with the answer moved into *a (its body now owned by caller) once the
 * job has finished; 0 before. */
int predict_job_answer(struct predict_job *job, struct predict_answer *a);

/* Monte-Carlo passes computed (0 for NULL). */
unsigned predict_job_samples(const struct predict_job *job);

/* The model_version of the served model the job holds (borrowed until
 * predict_job_free). */
const char *predict_job_model_version(const struct predict_job *job);

/* NULL-safe. Not while the job is queued or running. */
void predict_job_free(struct predict_job *job);

#endif

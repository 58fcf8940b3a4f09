/* api.h - the HTTP API's data, independent of the HTTP library: request
 * parameters (query text or JSON), request bodies (raw PNG, multipart
 * fields, JSON with base64 images), the prediction job a worker runs
 * (decode -> preprocess -> Monte-Carlo prediction -> JSON), and every JSON
 * body the API sends. api_http_status is the one map from error codes to
 * HTTP statuses and api_error_body the one writer of error bodies.
 *
 * Ownership: api_images own their bytes (api_images_free); json_t results
 * are new references owned by the caller; strings returned by *_body are
 * malloc'd and owned by the caller.
 */
#ifndef BNN_API_H
#define BNN_API_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "bnn.h"
#include "config.h"
#include "infer.h"

#define API_MSG_LEN 256
#define API_SEED_MAX 9007199254740991ull /* 2^53 - 1: exact in a JSON double */
#define API_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(12))

enum api_code {
    API_OK = 0,
    API_E_INVALID_PNG,            /* 400: not a PNG, truncated, corrupt */
    API_E_INVALID_PARAMETER,      /* 400: out of range, malformed or unknown parameter */
    API_E_INVALID_REQUEST,        /* 400: body not the expected JSON / multipart shape */
    API_E_NOT_FOUND,              /* 404 */
    API_E_METHOD_NOT_ALLOWED,     /* 405 (caller adds Allow) */
    API_E_BODY_TOO_LARGE,         /* 413: body over max_body_bytes */
    API_E_IMAGE_TOO_LARGE,        /* 413: width or height over max_image_side */
    API_E_UNSUPPORTED_MEDIA_TYPE, /* 415 */
    API_E_OVERLOADED,             /* overload_status (503 or 429): queue full */
    API_E_DRAINING,               /* 503, code "overloaded": shutting down */
    API_E_TIMEOUT,                /* 503: job waited past its deadline */
    API_E_INTERNAL,               /* 500 */
    API_CODE_COUNT
};

struct api_error {
    enum api_code code;
    char message[API_MSG_LEN];
};

/* Sets e and returns code (printf-style message, values included). */
int api_fail(struct api_error *e, enum api_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The wire name ("invalid_png", ...). */
const char *api_code_name(enum api_code code);

/* The HTTP status for a code; overload_status is the configured status for a
 * full queue (503 or 429). API_OK maps to 200. */
unsigned api_http_status(enum api_code code, unsigned overload_status);

/* {"error": {"code": ..., "message": ...}} as a new string (owned by
 * caller) and its status in *status. NULL only when out of memory. */
char *api_error_body(const struct api_error *e, unsigned overload_status, unsigned *status);

/* --- parameters --------------------------------------------------------- */

enum api_param_bit { API_SET_SAMPLES = 1, API_SET_INTERVAL = 2, API_SET_SEED = 4, API_SET_MODE = 8 };

struct api_params {
    unsigned samples; /* 1..max_samples */
    double interval;  /* coverage in (0,1) */
    uint64_t seed;    /* 0..API_SEED_MAX, valid when set & API_SET_SEED */
    enum bnn_mode mode;
    unsigned set; /* api_param_bit: which were given explicitly */
};

/* Config defaults, nothing marked as given. */
void api_params_init(struct api_params *p, const struct cfg *c);

/* key=value from a query string or a multipart text field. Unknown keys,
 * malformed or out-of-range values fail with API_E_INVALID_PARAMETER and a
 * message such as "samples: expected 1..10000, got '20000'". */
int api_param_set(struct api_params *p, const struct cfg *c, const char *key, const char *value,
                  struct api_error *e);

/* --- bodies ---------------------------------------------------------------- */

enum api_body_kind { API_BODY_NONE = 0, API_BODY_PNG, API_BODY_MULTIPART, API_BODY_JSON };

/* Media type of a Content-Type header value (parameters and case ignored);
 * API_BODY_NONE when missing or unsupported. */
enum api_body_kind api_body_kind(const char *content_type);

struct api_image {
    uint8_t *data; /* owned */
    size_t len;
};

struct api_images {
    size_t n, cap;
    struct api_image *items; /* owned */
};

void api_images_free(struct api_images *im); /* NULL-safe; leaves it empty */

/* Appends a copy of data[0..len) as a new image. Returns 0 or -1 (memory).
 * Allocations here and in base64 go through model/fault.h's hook, so tests
 * can fail each one in turn. */
int api_images_push(struct api_images *im, const uint8_t *data, size_t len);
/* Appends to the last image. Returns 0 or -1 (memory). */
int api_images_append(struct api_images *im, const uint8_t *data, size_t len);

/* Standard or URL-safe base64, padding optional, whitespace ignored; a
 * leading "data:<type>;base64," is skipped. *out is malloc'd (owned by
 * caller). Returns 0, -1 for invalid input, -2 when out of memory. */
int api_base64_decode(uint8_t **out, size_t *out_len, const char *in, size_t in_len);

/* A JSON body: {"image": b64, params...} (batch = 0) or
 * {"images": [b64, ...], params...} (batch = 1, 1..max_batch images).
 * Parameters already marked as given in p (from the query) keep their
 * value; the JSON ones are still validated. Unknown members are refused. */
int api_parse_json(struct api_params *p, struct api_images *out, const char *body, size_t len, int batch,
                   const struct cfg *c, struct api_error *e);

/* Multipart form fields as the post processor delivers them: a field
 * arrives in pieces (off = offset of data within the field). Fields named
 * "image" become images (one for /predict, up to max_batch for the batch),
 * short text fields are parameters; anything else is refused. */
struct api_multipart {
    struct api_images *images; /* borrowed */
    struct api_params *params; /* borrowed */
    const struct cfg *cfg;     /* borrowed */
    int batch;
    size_t total; /* image bytes so far */
    char key[32]; /* text field being collected */
    char value[64];
    size_t value_len;
    int in_text;
    struct api_error err; /* set when a call fails */
};

void api_multipart_init(struct api_multipart *mp, struct api_images *images, struct api_params *params,
                        const struct cfg *c, int batch);
/* One piece. Returns 0 to go on, -1 to abort (mp->err says why). */
int api_multipart_field(struct api_multipart *mp, const char *key, const char *filename, uint64_t off,
                        const char *data, size_t size);
/* After the last piece: applies the pending text field, checks that there is
 * at least one image. Returns 0 or -1 (mp->err). */
int api_multipart_finish(struct api_multipart *mp);

/* --- the prediction job ----------------------------------------------------- */

struct api_timing {
    double decode_ms, queue_ms, compute_ms;
};

/* Decodes png (dimensions checked against max_image_side before decoding),
 * preprocesses, runs bnn_predict with p and seed on ws, and returns the
 * response object in *out (new reference). On failure *out is NULL and e is
 * set (invalid_png / image_too_large / internal). */
int api_predict_png(json_t **out, const uint8_t *png, size_t len, const struct api_params *p, uint64_t seed,
                    double queue_ms, const struct cfg *c, const struct bnn_model *m, struct bnn_workspace *ws,
                    struct api_error *e);

/* The /predict object of DESIGN.md from a finished prediction. */
json_t *api_prediction_json(const struct bnn_prediction *pr, const struct api_params *p, uint64_t seed,
                            const char *preprocessing, const struct api_timing *t,
                            double uncertain_threshold);

/* GET /v1/model. */
json_t *api_model_json(const struct bnn_model *m, const struct cfg *c);

/* Serialises with API_JSON_FLAGS plus a trailing newline; new string owned by
 * caller, NULL on out of memory. Does not consume j. */
char *api_dump(const json_t *j, size_t *len);

#endif

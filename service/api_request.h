/* api_request.h - a POST /predict[/batch] request read without HTTP: its
 * media type, the one body cap, parameters from the query or the body, and
 * the body in its three forms - raw PNG bytes, multipart/form-data fields
 * (the framing is parsed by the caller, e.g. libmicrohttpd's post
 * processor), JSON with base64 images - all into one struct predict_input.
 *
 * Invariant: every body byte, multipart framing included, counts against
 * max_body_bytes through api_body_cap, the one place that compares with it.
 * Once a request has failed, the rest of its body is counted and dropped,
 * and its first error is the one answered (except that going over the cap
 * replaces a parse error).
 * Ownership: struct api_request borrows its predict_input and cfg until
 * api_request_free; it owns the raw body and the multipart field being
 * collected. Images move into the predict_input as they complete.
 */
#ifndef BNN_API_REQUEST_H
#define BNN_API_REQUEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "config.h"
#include "predict.h"

enum api_body_kind { API_BODY_NONE = 0, API_BODY_PNG, API_BODY_MULTIPART, API_BODY_JSON };

/* Media type of a Content-Type header value (parameters and case ignored);
 * API_BODY_NONE when missing or unsupported. */
enum api_body_kind api_body_kind(const char *content_type);

/* The one body cap: total bytes (declared: a Content-Length; else what has
 * arrived so far) against max_body_bytes. 0, or body_too_large in e. */
int api_body_cap(const struct cfg *c, uint64_t total, int declared, struct api_error *e);

/* key=value from a query string or a multipart text field. Unknown keys,
 * malformed or out-of-range values fail with API_E_INVALID_PARAMETER and a
 * message such as "samples: expected 1..10000, got 20000". */
int api_param_set(struct predict_params *p, const struct cfg *c, const char *key, const char *value,
                  struct api_error *e);

/* A parameter given as a JSON value (as in a JSON body): samples and seed
 * integers, interval and set_coverage numbers, mode a string; the same
 * range checks as api_param_set. Validated on a copy and applied unless the
 * query already gave it. Unknown keys fail with API_E_INVALID_PARAMETER. */
int api_param_json(struct predict_params *p, const struct cfg *c, const char *key, json_t *v,
                   struct api_error *e);

/* Standard or URL-safe base64, padding optional, whitespace ignored; a
 * leading "data:<type>;base64," is skipped. *out is malloc'd (owned by
 * caller). Returns 0, -1 for invalid input, -2 when out of memory.
 * Allocations go through model/fault.h's hook. */
int api_base64_decode(uint8_t **out, size_t *out_len, const char *in, size_t in_len);

/* A JSON body: {"image": b64, params...}, or with in->batch
 * {"images": [b64, ...], params...} (1..max_batch images). Parameters
 * already marked as given in in->params (from the query) keep their value;
 * the JSON ones are still validated. Unknown members are refused. On
 * failure in's images are freed. */
int api_parse_json(struct predict_input *in, const char *body, size_t len, const struct cfg *c,
                   struct api_error *e);

/* Multipart form fields as a framing parser delivers them: a field arrives
 * in pieces (off = offset of data within the field). Fields named "image"
 * become images (one, or up to max_batch with in->batch), short text fields
 * are parameters; anything else is refused. */
enum api_field { API_FIELD_NONE = 0, API_FIELD_IMAGE, API_FIELD_TEXT };

struct api_multipart {
    struct predict_input *in; /* borrowed: images and parameters go here */
    const struct cfg *cfg;    /* borrowed */
    enum api_field open;      /* the field being collected */
    uint8_t *image;           /* its bytes when an image (owned) */
    size_t image_len;
    size_t n_images; /* image fields started */
    char key[32];    /* its name and value when text */
    char value[64];
    size_t value_len;
};

void api_multipart_init(struct api_multipart *mp, struct predict_input *in, const struct cfg *c);
/* One piece. Returns 0, or the code set in e. */
int api_multipart_field(struct api_multipart *mp, const char *key, uint64_t off, const char *data,
                        size_t size, struct api_error *e);
/* After the last piece: completes the open field, checks that there is an
 * image. Returns 0 or the code set in e. */
int api_multipart_finish(struct api_multipart *mp, struct api_error *e);
/* NULL-safe; frees a field still being collected. */
void api_multipart_free(struct api_multipart *mp);

/* --- one request's body ---------------------------------------------------------- */

struct api_request {
    const struct cfg *cfg;    /* borrowed */
    struct predict_input *in; /* borrowed: what the request fills */
    enum api_body_kind kind;
    uint64_t received; /* body bytes so far, kept or not */
    char *raw;         /* PNG or JSON body (owned) */
    size_t raw_len, raw_cap;
    struct api_multipart mp;
    struct api_error err; /* the body's first error */
};

/* What the headers decide: the declared length against the cap (413), the
 * media type (415; a batch takes no raw PNG). content_type and
 * content_length are header values or NULL. in->batch says the route.
 * Returns 0, or the code set in e. Either way: api_request_free. */
int api_request_begin(struct api_request *rq, struct predict_input *in, const struct cfg *c,
                      const char *content_type, const char *content_length, struct api_error *e);

/* Counts size more body bytes. 0: hand them on (api_request_append, or the
 * multipart framing parser); -1: drop them, the request has failed. */
int api_request_admit(struct api_request *rq, size_t size);

/* Keeps raw body bytes (PNG or JSON). */
void api_request_append(struct api_request *rq, const char *data, size_t size);

/* A multipart field piece from the framing parser: 0, or -1 to abort it
 * (the request has failed). */
int api_request_field(struct api_request *rq, const char *key, uint64_t off, const char *data, size_t size);

/* The framing parser gave up: a malformed body, unless a field already
 * said what was wrong. */
void api_request_malformed(struct api_request *rq);

/* The whole body has arrived: images and parameters into the predict_input.
 * Returns 0, or the code set in e. */
int api_request_finish(struct api_request *rq, struct api_error *e);

/* NULL-safe; the predict_input is not touched. */
void api_request_free(struct api_request *rq);

#endif

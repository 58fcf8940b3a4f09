/* api.h - the HTTP API's error vocabulary, shared by every route and by the
 * prediction job: the error codes, the one map from a code to its HTTP
 * status (api_http_status) and the one writer of error bodies
 * ({"error": {"code", "message"}}), plus the JSON serialiser every body
 * goes through. No HTTP library here: statuses are plain numbers.
 *
 * Invariant: every error a client sees is an api_error with a code from
 * enum api_code and a message that names the value at fault.
 * Ownership: strings returned by api_error_body and api_dump are malloc'd
 * and owned by the caller.
 */
#ifndef BNN_API_H
#define BNN_API_H

#include <jansson.h>
#include <stddef.h>

#define API_MSG_LEN 256
#define API_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(12))

enum api_code {
    API_OK = 0,
    API_E_INVALID_PNG,            /* 400: not a PNG, truncated, corrupt, empty */
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

/* Puts "prefix: " in front of e's message (e.g. "images[3]"). */
void api_error_prefix(struct api_error *e, const char *prefix);

/* The wire name ("invalid_png", ...). */
const char *api_code_name(enum api_code code);

/* The HTTP status for a code; overload_status is the configured status for a
 * full queue (503 or 429). API_OK maps to 200. */
unsigned api_http_status(enum api_code code, unsigned overload_status);

/* Whether an answer with this code tells the client when to retry
 * (Retry-After): overload, shutdown and timeouts. */
int api_code_retryable(enum api_code code);

/* {"error": {"code": ..., "message": ...}} as a new string (owned by
 * caller, length in *len when len is not NULL) and its status in *status.
 * NULL only when out of memory. */
char *api_error_body(const struct api_error *e, unsigned overload_status, unsigned *status, size_t *len);

/* Serialises with API_JSON_FLAGS plus a trailing newline; new string owned by
 * caller, NULL on out of memory. Does not consume j. */
char *api_dump(const json_t *j, size_t *len);

#endif

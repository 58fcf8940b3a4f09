/* http_v2.h - the Open Inference Protocol (KServe V2 REST) on
 * libmicrohttpd, beside the /predict API on the same port: health and
 * metadata (GET), inference (POST .../infer: the body read within the one
 * body cap, parsed by v2_request.h, run as a prediction job on the same
 * pool while the connection is suspended, answered by v2_response.h), and
 * the repository calls (POST /v2/repository/index, .../models/{name}/load,
 * which waits, suspended, for the reload thread of served_model.h).
 *
 * Every answer under /v2 that is an error is the protocol's
 * {"error": "message"} with Content-Type application/json.
 * Ownership: struct http_v2 belongs to its http_request (r->v2), freed by
 * http_v2_free in the completion callback.
 */
#ifndef BNN_HTTP_V2_H
#define BNN_HTTP_V2_H

#include <stddef.h>

#include "http_internal.h"

/* GET and HEAD on any /v2 path (404 for what is not served). */
unsigned http_v2_get(struct http_request *r, struct http_response *out);

/* POST, first call (headers only). 0: read the body; else an error status
 * with out filled. */
unsigned http_v2_begin(struct http_request *r, struct http_response *out);

/* A piece of the body, counted against the cap and kept. */
void http_v2_body(struct http_request *r, const char *data, size_t size);

/* Final call: answers (index, unload, errors), or submits the job or the
 * reload and suspends the connection (0). */
unsigned http_v2_submit(struct http_request *r, struct http_response *out);

/* Called again after the job or the reload resumed the connection: its
 * answer, or 0 when it is not finished. */
unsigned http_v2_answer(struct http_request *r, struct http_response *out);

/* The protocol's error body for e, its status, Retry-After when retryable. */
unsigned http_v2_error(const struct http_server *srv, struct http_response *out, const struct api_error *e);

/* Monte-Carlo passes computed for the request (0 for NULL). */
unsigned http_v2_samples(const struct http_v2 *v);

/* NULL-safe. Only once the request has completed. */
void http_v2_free(struct http_v2 *v);

#endif

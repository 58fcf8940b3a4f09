/* http_predict.h - POST /predict and /predict/batch on libmicrohttpd: the
 * headers and query (api_request.h decides), the body (raw, or through
 * libmicrohttpd's multipart post processor), then the job (predict.h) while
 * the connection is suspended, and its answer.
 *
 * The path of one prediction, each step once: begin (413 on a declared
 * length, 415, the admission fast path, query parameters) -> body pieces
 * (the one body cap) -> submit (parse into a predict_input, job, suspend,
 * pool_submit decides) -> answer (after a worker resumed the connection).
 * Ownership: struct http_predict belongs to its http_request (r->predict),
 * freed by http_predict_free in the completion callback.
 */
#ifndef BNN_HTTP_PREDICT_H
#define BNN_HTTP_PREDICT_H

#include <stddef.h>

#include "http_internal.h"

/* First call (headers only). 0: read the body; else an error status with
 * out filled. */
unsigned http_predict_begin(struct http_request *r, int batch, struct http_response *out);

/* A piece of the body; whatever goes wrong is answered by submit. */
void http_predict_body(struct http_request *r, const char *data, size_t size);

/* Final call: parses, submits the job and suspends the connection (0), or
 * answers the request's error (its status, out filled). */
unsigned http_predict_submit(struct http_request *r, struct http_response *out);

/* Called again after the job's done resumed the connection: the job's
 * answer (its status, out filled), or 0 when it is not finished. */
unsigned http_predict_answer(struct http_request *r, struct http_response *out);

/* Monte-Carlo passes computed for the request (0 for NULL). */
unsigned http_predict_samples(const struct http_predict *p);

/* NULL-safe. Only once the request has completed. */
void http_predict_free(struct http_predict *p);

#endif

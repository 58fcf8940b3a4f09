/* v2_response.h - the Open Inference Protocol (KServe V2 REST) answers,
 * without HTTP: the infer response (outputs in JSON, or after the JSON part
 * in binary per the binary tensor data extension), server and model
 * metadata, and the protocol's error body {"error": "message"}.
 *
 * Output encodings (v2_request.h lists them): FP32 and INT64 little-endian,
 * BOOL one byte (1 or 0), BYTES a 4-byte little-endian length then the
 * bytes; in JSON, numbers, booleans and strings, row-major and flat. FP32
 * values are the float32 of the statistic in both forms, so a binary and a
 * JSON answer carry the same numbers.
 *
 * Ownership: strings are malloc'd and owned by the caller, json_t results
 * are new references owned by the caller.
 */
#ifndef BNN_V2_RESPONSE_H
#define BNN_V2_RESPONSE_H

#include <jansson.h>
#include <stddef.h>

#include "predict.h"
#include "served_model.h"
#include "v2_request.h"

/* predict_encode_fn for POST .../infer; o->cls is the request's struct
 * v2_request, whose json_len it sets (0 when every output is in JSON). The
 * answer: {"model_name", "model_version", "id"?, "parameters": {"seed",
 * "samples", "interval", "mode", "set_coverage"?}, "outputs": [...]}. NULL
 * when out of memory. */
char *v2_infer_body(const struct predict_outcome *o, size_t *len);

/* {"error": message} with a trailing newline; NULL when out of memory. */
char *v2_error_body(const char *message, size_t *len);

/* GET /v2: {"name", "version", "extensions"}. */
json_t *v2_server_json(const char *version);

/* GET /v2/models/{name}: {"name", "versions", "platform", "inputs",
 * "outputs"}, -1 for the variable batch dimension. */
json_t *v2_model_json(const char *name, const struct served_model *sm);

#endif

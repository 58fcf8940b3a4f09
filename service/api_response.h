/* api_response.h - the JSON bodies of the HTTP API's answers, without HTTP:
 * a /predict answer (one image's object, or {"results": [...]} for a batch)
 * from the prediction's results, and GET /v1/model. Error bodies are
 * api.h's.
 *
 * Invariant: api_result_json is the one place that lays out the fields of a
 * prediction; numbers go in as JSON numbers, never through text.
 * Ownership: json_t results are new references owned by the caller; strings
 * are malloc'd and owned by the caller.
 */
#ifndef BNN_API_RESPONSE_H
#define BNN_API_RESPONSE_H

#include <jansson.h>
#include <stddef.h>

#include "bnn.h"
#include "config.h"
#include "predict.h"

/* The /predict object of one image (DESIGN.md): prediction, samples,
 * interval, seed, model_version, mode, preprocessing, classes, uncertainty,
 * uncertain, uncertain_reasons, prediction_set, set_coverage, timing_ms
 * (queue_ms is the job's wait, shown on its first image). NULL when out of
 * memory. */
json_t *api_result_json(const struct predict_result *r, const struct predict_params *p,
                        const char *model_version, double queue_ms);

/* predict_encode_fn for POST /predict and /predict/batch: the one object,
 * or {"results": [...]} in order when o->in->batch. */
char *api_predict_body(const struct predict_outcome *o, size_t *len);

/* GET /v1/model, with the answer policy in force. */
json_t *api_model_json(const struct bnn_model *m, const struct bnn_policy *policy, const struct cfg *c);

#endif

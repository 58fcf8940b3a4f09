/* v2_request.h - the Open Inference Protocol (KServe V2 REST) request side,
 * without HTTP: the body of POST .../infer (paths are v2_path.h's) -
 * a JSON header, then (binary tensor data extension) the tensors' raw bytes
 * - parsed into the same struct predict_input as every other route (images
 * and parameters) plus a struct v2_request saying how to answer (the id to
 * echo, the outputs and which of them go in binary).
 *
 * Inputs: exactly one, `image` (BYTES [N], each element a PNG file: in
 * binary as a 4-byte little-endian length then the bytes, or in JSON as
 * base64 strings, MLServer's content_type "base64") or `pixels` (UINT8
 * 0..255, or FP32 in [0, 1], shape [N, 28, 28]; pixels go through the same
 * canonicalisation as a decoded PNG). 1 <= N <= max_batch. Request
 * parameters samples, interval, seed, mode and set_coverage are checked by
 * api_request's setters, binary_data_output is honoured, any other is
 * ignored (the protocol's own, such as priority or timeout). One seed serves
 * the whole request: given, or drawn here.
 *
 * Invariant: a parse that fails leaves no image in the predict_input and
 * nothing owned in the v2_request; its message names the member at fault.
 * Ownership: the body is borrowed for the call; images are copied into the
 * predict_input; v2_request owns its id until v2_request_free.
 */
#ifndef BNN_V2_REQUEST_H
#define BNN_V2_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "config.h"
#include "predict.h"
#include "v2_path.h"

/* --- outputs ------------------------------------------------------------------------ */

enum v2_output {
    V2_OUT_MEAN = 0, /* FP32 [N, classes] */
    V2_OUT_STD,
    V2_OUT_LOWER,
    V2_OUT_UPPER,
    V2_OUT_PREDICTION,    /* INT64 [N] */
    V2_OUT_ENTROPY,       /* FP32 [N] */
    V2_OUT_ALEATORIC,     /* FP32 [N] */
    V2_OUT_EPISTEMIC,     /* FP32 [N] */
    V2_OUT_UNCERTAIN,     /* BOOL [N] */
    V2_OUT_REASONS,       /* BYTES [N]: uncertain_reasons comma-joined, "" when trusted */
    V2_OUT_SET,           /* BOOL [N, classes]: the conformal prediction set as a mask */
    V2_OUT_PREPROCESSING, /* BYTES [N]: what the canonicalisation did */
    V2_OUT_COUNT
};

struct v2_output_info {
    const char *name;
    const char *datatype; /* FP32, INT64, BOOL, BYTES */
    int per_class;        /* shape [N, classes] rather than [N] */
};

extern const struct v2_output_info v2_outputs[V2_OUT_COUNT];

/* --- the infer request ------------------------------------------------------------- */

struct v2_request {
    char *id;               /* the request's id, echoed (owned); NULL when absent */
    const char *model_name; /* borrowed from the configuration */
    size_t n_outputs;
    enum v2_output outputs[V2_OUT_COUNT]; /* to answer, in this order */
    unsigned char binary[V2_OUT_COUNT];   /* per position in outputs: in binary */
    size_t json_len;                      /* set by the encoder: bytes of the answer's JSON part when binary
                                             outputs follow it, 0 for a JSON-only answer */
};

/* Parses an infer body (len bytes). header_length is the
 * Inference-Header-Content-Length header's value (NULL: the whole body is
 * JSON). in must be predict_input_init'ed; its images and parameters are
 * filled, rq is reset and filled. Returns 0, or the code set in e
 * (invalid_request, invalid_parameter, invalid_png for an empty PNG,
 * internal for out of memory). */
int v2_parse_infer(struct v2_request *rq, struct predict_input *in, const uint8_t *body, size_t len,
                   const char *header_length, const struct cfg *c, struct api_error *e);

/* NULL-safe, idempotent. */
void v2_request_free(struct v2_request *rq);

#endif

/* fuzz_v2.c - libFuzzer harness for the Open Inference Protocol request
 * parser (v2_request.h): the binary tensor data extension (a JSON header of
 * Inference-Header-Content-Length bytes, then raw tensors, BYTES elements
 * as 4-byte little-endian lengths and bytes), base64 JSON, pixel tensors,
 * outputs and parameters; then, on success, the response encoder
 * (v2_response.h) over results of the parsed shape. The first byte picks:
 *   0 the whole rest is the body, no Inference-Header-Content-Length
 *   1 the next 2 bytes (little-endian) are the header length, as decimal
 *   2 the next byte n, then n bytes of header length text, then the body
 *   3 a URL path through v2_path_parse
 * Checked besides ASan/UBSan/LSan: a parsed input holds 1..max_batch
 * images, each a non-empty PNG or 28x28 pixels; parameters in range with a
 * seed set; outputs unique; a failure leaves no image behind and carries a
 * known code, a message, and an error body that is JSON; the encoder's
 * JSON part parses and its binary outputs add up to the body's length. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "predict.h"
#include "v2_request.h"
#include "v2_response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_input(const struct predict_input *in, const struct v2_request *rq, const struct cfg *c)
{
    const struct predict_params *p = &in->params;
    if (p->samples < 1 || p->samples > c->max_samples || !(p->interval > 0 && p->interval < 1) ||
        !(p->set & PREDICT_SET_SEED) || p->seed > PREDICT_SEED_MAX)
        abort();
    if (in->n_images < 1 || in->n_images > c->max_batch || in->batch != (in->n_images > 1))
        abort();
    for (size_t i = 0; i < in->n_images; i++) {
        const struct predict_image *im = &in->images[i];
        if (!im->png == !im->gray || (im->png && im->len == 0) ||
            (im->gray && (im->width != 28 || im->height != 28)))
            abort();
    }
    if (rq->n_outputs < 1 || rq->n_outputs > V2_OUT_COUNT)
        abort();
    for (size_t i = 0; i < rq->n_outputs; i++)
        for (size_t j = 0; j < i; j++)
            if (rq->outputs[i] == rq->outputs[j] || rq->binary[i] > 1)
                abort();
}

static void check_error(const struct api_error *e, const struct predict_input *in)
{
    if (e->code <= API_OK || e->code >= API_CODE_COUNT || !e->message[0] ||
        !memchr(e->message, '\0', sizeof e->message) || in->n_images != 0)
        abort();
    size_t len;
    char *body = v2_error_body(e->message, &len);
    if (!body)
        return; /* out of memory */
    json_t *j = json_loads(body, 0, NULL);
    if (!j || !json_is_string(json_object_get(j, "error")))
        abort();
    json_decref(j);
    free(body);
}

/* Encodes results of the parsed shape and reads the answer back. */
static void check_encode(const struct predict_input *in, struct v2_request *rq)
{
    struct predict_result *r = calloc(in->n_images, sizeof *r);
    if (!r)
        return;
    for (size_t i = 0; i < in->n_images; i++) {
        r[i].a.pr.n_classes = 10;
        r[i].a.pr.predicted = (int)(i % 10);
        r[i].a.reasons = (unsigned)i & 7;
        r[i].a.set = (unsigned)i * 37 & 1023;
        r[i].set_level = (int)(i % 2) - 1;
        r[i].seed = in->params.seed;
    }
    struct predict_outcome o = {.in = in, .results = r, .model_version = "0123456789ab", .cls = rq};
    size_t len = 0;
    char *body = v2_infer_body(&o, &len);
    if (body) {
        size_t hl = rq->json_len ? rq->json_len : len;
        json_t *doc = json_loadb(body, hl, 0, NULL);
        json_t *outputs = json_object_get(doc, "outputs");
        if (!doc || json_array_size(outputs) != rq->n_outputs)
            abort();
        size_t off = hl;
        for (size_t i = 0; i < json_array_size(outputs); i++) {
            json_t *size = json_object_get(json_object_get(json_array_get(outputs, i), "parameters"),
                                           "binary_data_size");
            if ((size != NULL) != rq->binary[i])
                abort();
            off += size ? (size_t)json_integer_value(size) : 0;
        }
        if (off != len)
            abort();
        json_decref(doc);
        free(body);
    }
    free(r);
}

static void fuzz_infer(const uint8_t *body, size_t len, const char *header_len, const struct cfg *c)
{
    struct predict_input in;
    struct v2_request rq;
    struct api_error e = {0};
    predict_input_init(&in, c, 0);
    if (v2_parse_infer(&rq, &in, body, len, header_len, c, &e) == 0) {
        check_input(&in, &rq, c);
        check_encode(&in, &rq);
    } else {
        check_error(&e, &in);
        if (rq.id)
            abort();
    }
    predict_input_free(&in);
    v2_request_free(&rq);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct cfg c;
    cfg_defaults(&c);
    c.max_batch = 4;
    c.max_samples = 1000;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    char hl[260];
    switch (data[0] % 4) {
    case 0:
        fuzz_infer(d, n, NULL, &c);
        break;
    case 1:
        if (n < 2)
            return 0;
        snprintf(hl, sizeof hl, "%u", (unsigned)d[0] | (unsigned)d[1] << 8);
        fuzz_infer(d + 2, n - 2, hl, &c);
        break;
    case 2: {
        if (n < 1 || (size_t)d[0] + 1 > n)
            return 0;
        size_t k = d[0];
        memcpy(hl, d + 1, k);
        hl[k] = '\0';
        fuzz_infer(d + 1 + k, n - 1 - k, hl, &c);
        break;
    }
    default: {
        char *path = malloc(n + 1);
        if (!path)
            return 0;
        memcpy(path, d, n);
        path[n] = '\0';
        struct v2_path p;
        enum v2_path_kind k = v2_path_parse(&p, path);
        if (k >= V2_PATH_COUNT || strlen(p.model) >= V2_NAME_LEN || strlen(p.version) >= V2_NAME_LEN ||
            (k == V2_PATH_NONE && strncmp(path, "/v2", 3) == 0 && (path[3] == '\0' || path[3] == '/')))
            abort();
        free(path);
        break;
    }
    }
    return 0;
}

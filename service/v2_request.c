/* v2_request.c - see v2_request.h.
 *
 * The body: [JSON header][binary section]. The header's length comes from
 * Inference-Header-Content-Length (the whole body without it); the binary
 * section must be exactly what the one input's binary_data_size declares.
 * JSON tensor data may be flat or nested (row-major either way): it is
 * walked leaf by leaf, so nothing is allocated for its shape.
 */
#include "v2_request.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_request.h"
#include "fault.h"

#define SIDE BNN_MNIST_SIDE
#define PIXELS BNN_MNIST_PIXELS
#define MAX_DEPTH 8 /* nesting of JSON data arrays */

const struct v2_output_info v2_outputs[V2_OUT_COUNT] = {
    [V2_OUT_MEAN] = {"mean", "FP32", 1},
    [V2_OUT_STD] = {"std", "FP32", 1},
    [V2_OUT_LOWER] = {"lower", "FP32", 1},
    [V2_OUT_UPPER] = {"upper", "FP32", 1},
    [V2_OUT_PREDICTION] = {"prediction", "INT64", 0},
    [V2_OUT_ENTROPY] = {"entropy", "FP32", 0},
    [V2_OUT_ALEATORIC] = {"aleatoric", "FP32", 0},
    [V2_OUT_EPISTEMIC] = {"epistemic", "FP32", 0},
    [V2_OUT_UNCERTAIN] = {"uncertain", "BOOL", 0},
    [V2_OUT_REASONS] = {"uncertain_reasons", "BYTES", 0},
    [V2_OUT_SET] = {"prediction_set", "BOOL", 1},
    [V2_OUT_PREPROCESSING] = {"preprocessing", "BYTES", 0},
};

#define OUTPUT_NAMES                                                                                         \
    "mean, std, lower, upper, prediction, entropy, aleatoric, epistemic, uncertain, uncertain_reasons, "     \
    "prediction_set, preprocessing"

/* --- one input tensor ---------------------------------------------------------------- */

struct tensor {
    const char *name; /* "image" or "pixels" */
    const char *datatype;
    size_t shape[4], rank;
    json_t *data;             /* NULL when in binary */
    int binary;               /* binary_data_size given */
    size_t binary_size;       /* its value */
    const char *content_type; /* BYTES in JSON: NULL or "base64" */
    const uint8_t *bytes;     /* its binary section */
};

static void shape_text(const struct tensor *t, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "[");
    for (size_t i = 0; i < t->rank && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, i ? ",%zu" : "%zu", t->shape[i]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
}

static int tensor_shape(struct tensor *t, json_t *shape, struct api_error *e)
{
    if (!json_is_array(shape) || json_array_size(shape) > 4)
        return api_fail(e, API_E_INVALID_REQUEST,
                        "inputs[0] (%s): shape: expected an array of at most 4 sizes", t->name);
    t->rank = json_array_size(shape);
    for (size_t i = 0; i < t->rank; i++) {
        json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > (1 << 30))
            return api_fail(e, API_E_INVALID_REQUEST, "inputs[0] (%s): shape[%zu]: expected a size 0..%d",
                            t->name, i, 1 << 30);
        t->shape[i] = (size_t)json_integer_value(d);
    }
    return 0;
}

/* The input's own parameters: binary_data_size and content_type are read,
 * others ignored. */
static int tensor_parameters(struct tensor *t, json_t *params, struct api_error *e)
{
    if (!params)
        return 0;
    if (!json_is_object(params))
        return api_fail(e, API_E_INVALID_REQUEST, "inputs[0] (%s): parameters: expected an object", t->name);
    json_t *size = json_object_get(params, "binary_data_size");
    if (size) {
        if (!json_is_integer(size) || json_integer_value(size) < 0)
            return api_fail(e, API_E_INVALID_REQUEST,
                            "inputs[0] (%s): binary_data_size: expected a byte count >= 0", t->name);
        t->binary = 1;
        t->binary_size = (size_t)json_integer_value(size);
    }
    json_t *ct = json_object_get(params, "content_type");
    if (ct && !json_is_string(ct))
        return api_fail(e, API_E_INVALID_REQUEST, "inputs[0] (%s): content_type: expected a string", t->name);
    t->content_type = ct ? json_string_value(ct) : NULL;
    return 0;
}

/* name, datatype, shape, parameters, data: what the protocol defines. */
static int tensor_header(struct tensor *t, json_t *in, struct api_error *e)
{
    if (!json_is_object(in))
        return api_fail(e, API_E_INVALID_REQUEST, "inputs[0]: expected an object with name, datatype, shape");
    const char *key;
    json_t *v;
    json_object_foreach(in, key, v)
    {
        if (strcmp(key, "name") && strcmp(key, "datatype") && strcmp(key, "shape") &&
            strcmp(key, "parameters") && strcmp(key, "data"))
            return api_fail(
                e, API_E_INVALID_REQUEST,
                "inputs[0]: unknown member '%.40s' (expected name, datatype, shape, parameters, data)", key);
    }
    const char *name = json_string_value(json_object_get(in, "name"));
    if (!name || (strcmp(name, "image") != 0 && strcmp(name, "pixels") != 0))
        return api_fail(
            e, API_E_INVALID_REQUEST,
            "inputs[0]: unknown input '%.40s' (expected image: BYTES [N] PNG files, or pixels: UINT8 "
            "or FP32 [N,28,28])",
            name ? name : "(no name)");
    t->name = strcmp(name, "image") == 0 ? "image" : "pixels";
    t->datatype = json_string_value(json_object_get(in, "datatype"));
    if (!t->datatype)
        return api_fail(e, API_E_INVALID_REQUEST, "inputs[0] (%s): datatype: expected a string", t->name);
    int rc = tensor_shape(t, json_object_get(in, "shape"), e);
    if (rc == 0)
        rc = tensor_parameters(t, json_object_get(in, "parameters"), e);
    t->data = json_object_get(in, "data");
    if (rc == 0 && t->binary == (t->data != NULL))
        rc = api_fail(e, API_E_INVALID_REQUEST,
                      "inputs[0] (%s): expected either data or binary_data_size, got %s", t->name,
                      t->binary ? "both" : "neither");
    return rc;
}

/* Visits the leaves of JSON data in row-major order; counts them all, calls
 * fn on the first want. */
typedef int (*leaf_fn)(void *ctx, json_t *leaf, size_t index, struct api_error *e);

static int walk(json_t *v, size_t *n, size_t want, leaf_fn fn, void *ctx, int depth, struct api_error *e)
{
    if (!json_is_array(v)) {
        int rc = *n < want ? fn(ctx, v, *n, e) : 0;
        (*n)++;
        return rc;
    }
    if (depth > MAX_DEPTH)
        return api_fail(e, API_E_INVALID_REQUEST, "data: nested more than %d deep", MAX_DEPTH);
    for (size_t i = 0; i < json_array_size(v); i++) {
        int rc = walk(json_array_get(v, i), n, want, fn, ctx, depth + 1, e);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int walk_all(const struct tensor *t, size_t want, leaf_fn fn, void *ctx, struct api_error *e)
{
    size_t n = 0;
    int rc = walk(t->data, &n, want, fn, ctx, 0, e);
    if (rc == 0 && n != want) {
        char shape[64];
        shape_text(t, shape, sizeof shape);
        rc = api_fail(e, API_E_INVALID_REQUEST, "inputs[0] (%s): data holds %zu elements, shape %s has %zu",
                      t->name, n, shape, want);
    }
    return rc;
}

/* --- image: BYTES [N] PNG files ----------------------------------------------------- */

static int add_png(struct predict_input *in, const uint8_t *bytes, size_t len, struct api_error *e)
{
    uint8_t *copy = bnn_fault_malloc(len ? len : 1);
    if (!copy)
        return api_fail(e, API_E_INTERNAL, "image: out of memory for %zu bytes", len);
    memcpy(copy, bytes, len);
    return predict_input_add_image(in, copy, len, e);
}

/* Elements as the binary extension lays them out: 4-byte LE length, bytes. */
static int image_binary(struct predict_input *in, const struct tensor *t, struct api_error *e)
{
    size_t off = 0, n = t->shape[0], size = t->binary_size;
    for (size_t i = 0; i < n; i++) {
        if (size - off < 4)
            return api_fail(e, API_E_INVALID_REQUEST,
                            "inputs[0] (image): binary data ends inside the length of element %zu of %zu "
                            "(binary_data_size %zu)",
                            i, n, size);
        const uint8_t *b = t->bytes + off;
        size_t len = (size_t)b[0] | (size_t)b[1] << 8 | (size_t)b[2] << 16 | (size_t)b[3] << 24;
        off += 4;
        if (len > size - off)
            return api_fail(
                e, API_E_INVALID_REQUEST,
                "inputs[0] (image): element %zu declares %zu bytes, only %zu remain of binary_data_size "
                "%zu",
                i, len, size - off, size);
        int rc = add_png(in, t->bytes + off, len, e);
        if (rc != 0)
            return rc;
        off += len;
    }
    if (off != size)
        return api_fail(e, API_E_INVALID_REQUEST,
                        "inputs[0] (image): %zu bytes left after the %zu elements of shape [%zu] "
                        "(binary_data_size %zu)",
                        size - off, n, n, size);
    return 0;
}

static int image_leaf(void *ctx, json_t *leaf, size_t index, struct api_error *e)
{
    struct predict_input *in = ctx;
    if (!json_is_string(leaf))
        return api_fail(e, API_E_INVALID_REQUEST, "inputs[0] (image): data[%zu]: expected a base64 string",
                        index);
    uint8_t *bytes;
    size_t n;
    int rc = api_base64_decode(&bytes, &n, json_string_value(leaf), json_string_length(leaf));
    if (rc == -2)
        return api_fail(e, API_E_INTERNAL, "inputs[0] (image): data[%zu]: out of memory", index);
    if (rc != 0)
        return api_fail(e, API_E_INVALID_REQUEST, "inputs[0] (image): data[%zu]: not valid base64", index);
    return predict_input_add_image(in, bytes, n, e);
}

static int image_input(struct predict_input *in, const struct tensor *t, const struct cfg *c,
                       struct api_error *e)
{
    if (strcmp(t->datatype, "BYTES") != 0)
        return api_fail(e, API_E_INVALID_REQUEST, "inputs[0] (image): expected datatype BYTES, got %.16s",
                        t->datatype);
    if (t->rank != 1 || t->shape[0] < 1 || t->shape[0] > c->max_batch) {
        char shape[64];
        shape_text(t, shape, sizeof shape);
        return api_fail(e, API_E_INVALID_REQUEST,
                        "inputs[0] (image): expected shape [N] with N 1..%u (max_batch), got %s",
                        c->max_batch, shape);
    }
    in->batch = t->shape[0] > 1;
    if (t->binary)
        return image_binary(in, t, e);
    if (t->content_type && strcmp(t->content_type, "base64") != 0)
        return api_fail(e, API_E_INVALID_REQUEST,
                        "inputs[0] (image): content_type '%.32s' is not supported; send PNG files as base64 "
                        "strings (content_type \"base64\") or in binary (binary_data_size)",
                        t->content_type);
    return walk_all(t, t->shape[0], image_leaf, in, e);
}

/* --- pixels: UINT8 or FP32 [N, 28, 28] ---------------------------------------------- */

struct pixels {
    uint8_t *gray; /* (N, 28, 28) */
    int fp32;
};

/* One value as 8-bit gray; FP32 in [0, 1] is scaled by 255 and rounded. */
static int pixel_value(uint8_t *out, double v, int fp32, size_t index, struct api_error *e)
{
    size_t img = index / PIXELS, row = index % PIXELS / SIDE, col = index % SIDE;
    if (fp32 && !(v >= 0.0 && v <= 1.0))
        return api_fail(e, API_E_INVALID_REQUEST,
                        "inputs[0] (pixels): value at [%zu,%zu,%zu]: expected FP32 in [0, 1], got %g", img,
                        row, col, v);
    if (!fp32 && !(v >= 0.0 && v <= 255.0 && v == floor(v)))
        return api_fail(e, API_E_INVALID_REQUEST,
                        "inputs[0] (pixels): value at [%zu,%zu,%zu]: expected UINT8 0..255, got %g", img, row,
                        col, v);
    *out = (uint8_t)(fp32 ? lrint(v * 255.0) : v);
    return 0;
}

static int pixel_leaf(void *ctx, json_t *leaf, size_t index, struct api_error *e)
{
    struct pixels *px = ctx;
    if (px->fp32 ? !json_is_number(leaf) : !json_is_integer(leaf))
        return api_fail(e, API_E_INVALID_REQUEST, "inputs[0] (pixels): data[%zu]: expected %s", index,
                        px->fp32 ? "a number in [0, 1]" : "an integer 0..255");
    return pixel_value(&px->gray[index], json_number_value(leaf), px->fp32, index, e);
}

/* Little-endian, row-major, no padding. */
static int pixels_binary(struct pixels *px, const struct tensor *t, size_t count, struct api_error *e)
{
    size_t esize = px->fp32 ? 4 : 1;
    if (t->binary_size != count * esize)
        return api_fail(e, API_E_INVALID_REQUEST,
                        "inputs[0] (pixels): binary_data_size %zu, expected %zu for %s [%zu,28,28]",
                        t->binary_size, count * esize, px->fp32 ? "FP32" : "UINT8", t->shape[0]);
    for (size_t i = 0; i < count; i++) {
        if (!px->fp32) {
            px->gray[i] = t->bytes[i];
            continue;
        }
        const uint8_t *b = t->bytes + 4 * i;
        uint32_t bits = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        float f;
        memcpy(&f, &bits, sizeof f);
        int rc = pixel_value(&px->gray[i], f, 1, i, e);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int pixels_input(struct predict_input *in, const struct tensor *t, const struct cfg *c,
                        struct api_error *e)
{
    struct pixels px = {.fp32 = strcmp(t->datatype, "FP32") == 0};
    if (!px.fp32 && strcmp(t->datatype, "UINT8") != 0)
        return api_fail(e, API_E_INVALID_REQUEST,
                        "inputs[0] (pixels): expected datatype UINT8 or FP32, got %.16s", t->datatype);
    if (t->rank != 3 || t->shape[0] < 1 || t->shape[0] > c->max_batch || t->shape[1] != SIDE ||
        t->shape[2] != SIDE) {
        char shape[64];
        shape_text(t, shape, sizeof shape);
        return api_fail(e, API_E_INVALID_REQUEST,
                        "inputs[0] (pixels): expected shape [N,28,28] with N 1..%u (max_batch), got %s",
                        c->max_batch, shape);
    }
    size_t n = t->shape[0], count = n * PIXELS;
    px.gray = bnn_fault_malloc(count);
    if (!px.gray)
        return api_fail(e, API_E_INTERNAL, "inputs[0] (pixels): out of memory");
    int rc = t->binary ? pixels_binary(&px, t, count, e) : walk_all(t, count, pixel_leaf, &px, e);
    in->batch = n > 1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint8_t *one = bnn_fault_malloc(PIXELS);
        if (!one) {
            rc = api_fail(e, API_E_INTERNAL, "inputs[0] (pixels): out of memory");
            break;
        }
        memcpy(one, px.gray + i * PIXELS, PIXELS);
        rc = predict_input_add_gray(in, one, SIDE, SIDE, e);
    }
    free(px.gray);
    return rc;
}

/* The one input, and the binary section it must account for exactly. */
static int parse_inputs(struct predict_input *in, json_t *inputs, const uint8_t *bin, size_t bin_len,
                        const struct cfg *c, struct api_error *e)
{
    if (!json_is_array(inputs) || json_array_size(inputs) != 1)
        return api_fail(
            e, API_E_INVALID_REQUEST,
            "inputs: expected an array of one input, image (BYTES [N], PNG files) or pixels (UINT8 or "
            "FP32 [N,28,28]), got %s%zu",
            json_is_array(inputs) ? "" : "no array, ", json_array_size(inputs));
    struct tensor t = {0};
    int rc = tensor_header(&t, json_array_get(inputs, 0), e);
    if (rc != 0)
        return rc;
    size_t declared = t.binary ? t.binary_size : 0;
    if (declared != bin_len)
        return api_fail(e, API_E_INVALID_REQUEST,
                        "binary data: %zu bytes follow the JSON header, but the inputs declare %zu "
                        "(binary_data_size)",
                        bin_len, declared);
    t.bytes = bin;
    return strcmp(t.name, "image") == 0 ? image_input(in, &t, c, e) : pixels_input(in, &t, c, e);
}

/* --- parameters, outputs, the request -------------------------------------------- */

static int is_predict_param(const char *key)
{
    static const char *const names[] = {"samples", "interval", "seed", "mode", "set_coverage"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(key, names[i]) == 0)
            return 1;
    return 0;
}

static int parse_parameters(struct predict_params *p, json_t *params, const struct cfg *c, int *binary_output,
                            struct api_error *e)
{
    if (!params)
        return 0;
    if (!json_is_object(params))
        return api_fail(e, API_E_INVALID_REQUEST, "parameters: expected an object");
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v)
    {
        int rc = 0;
        if (is_predict_param(key))
            rc = api_param_json(p, c, key, v, e);
        else if (strcmp(key, "binary_data_output") == 0 && !json_is_boolean(v))
            rc = api_fail(e, API_E_INVALID_PARAMETER, "binary_data_output: expected true or false");
        else if (strcmp(key, "binary_data_output") == 0)
            *binary_output = json_is_true(v);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int find_output(const char *name)
{
    for (int o = 0; o < V2_OUT_COUNT; o++)
        if (strcmp(name, v2_outputs[o].name) == 0)
            return o;
    return -1;
}

static int parse_output(struct v2_request *rq, json_t *item, size_t i, int binary_output, struct api_error *e)
{
    const char *name = json_string_value(json_object_get(item, "name"));
    int o = name ? find_output(name) : -1;
    if (o < 0)
        return api_fail(e, API_E_INVALID_REQUEST,
                        "outputs[%zu]: unknown output '%.40s' (expected " OUTPUT_NAMES ")", i,
                        name ? name : "(no name)");
    for (size_t j = 0; j < rq->n_outputs; j++)
        if (rq->outputs[j] == (enum v2_output)o)
            return api_fail(e, API_E_INVALID_REQUEST, "outputs[%zu]: '%s' requested twice", i, name);
    json_t *params = json_object_get(item, "parameters"), *bin = json_object_get(params, "binary_data");
    if (params && !json_is_object(params))
        return api_fail(e, API_E_INVALID_REQUEST, "outputs[%zu] (%s): parameters: expected an object", i,
                        name);
    if (bin && !json_is_boolean(bin))
        return api_fail(e, API_E_INVALID_REQUEST, "outputs[%zu] (%s): binary_data: expected true or false", i,
                        name);
    if (json_object_get(params, "classification"))
        return api_fail(e, API_E_INVALID_REQUEST,
                        "outputs[%zu] (%s): the classification extension is not supported; ask for mean and "
                        "prediction",
                        i, name);
    rq->binary[rq->n_outputs] = (unsigned char)(bin ? json_is_true(bin) : binary_output);
    rq->outputs[rq->n_outputs++] = (enum v2_output)o;
    return 0;
}

/* Absent or empty: every output, in v2_outputs' order. */
static int parse_outputs(struct v2_request *rq, json_t *outputs, int binary_output, struct api_error *e)
{
    if (!outputs || (json_is_array(outputs) && json_array_size(outputs) == 0)) {
        for (int o = 0; o < V2_OUT_COUNT; o++) {
            rq->binary[rq->n_outputs] = (unsigned char)binary_output;
            rq->outputs[rq->n_outputs++] = (enum v2_output)o;
        }
        return 0;
    }
    if (!json_is_array(outputs) || json_array_size(outputs) > V2_OUT_COUNT)
        return api_fail(e, API_E_INVALID_REQUEST, "outputs: expected an array of at most %d {\"name\": ...}",
                        V2_OUT_COUNT);
    for (size_t i = 0; i < json_array_size(outputs); i++) {
        json_t *item = json_array_get(outputs, i);
        if (!json_is_object(item))
            return api_fail(e, API_E_INVALID_REQUEST, "outputs[%zu]: expected an object with a name", i);
        int rc = parse_output(rq, item, i, binary_output, e);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Inference-Header-Content-Length: decimal, at most the body's length. */
static int header_length(const char *text, size_t len, size_t *out, struct api_error *e)
{
    size_t n = 0, digits = strspn(text, "0123456789");
    int ok = digits > 0 && digits <= 19 && text[digits] == '\0';
    for (size_t i = 0; ok && i < digits; i++)
        n = n * 10 + (size_t)(text[i] - '0');
    if (!ok || n > len)
        return api_fail(
            e, API_E_INVALID_REQUEST,
            "Inference-Header-Content-Length: expected the JSON header's length in bytes, 0..%zu (the "
            "body's length), got '%.24s'",
            len, text);
    *out = n;
    return 0;
}

static int parse_root(struct v2_request *rq, struct predict_input *in, json_t *root, const uint8_t *bin,
                      size_t bin_len, const struct cfg *c, struct api_error *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "id") && strcmp(key, "parameters") && strcmp(key, "inputs") && strcmp(key, "outputs"))
            return api_fail(e, API_E_INVALID_REQUEST,
                            "unknown member '%.40s' (expected id, parameters, inputs, outputs)", key);
    }
    json_t *id = json_object_get(root, "id");
    if (id && !json_is_string(id))
        return api_fail(e, API_E_INVALID_REQUEST, "id: expected a string");
    if (id && !(rq->id = strdup(json_string_value(id))))
        return api_fail(e, API_E_INTERNAL, "id: out of memory");
    int binary_output = 0;
    int rc = parse_parameters(&in->params, json_object_get(root, "parameters"), c, &binary_output, e);
    if (rc == 0)
        rc = parse_outputs(rq, json_object_get(root, "outputs"), binary_output, e);
    if (rc == 0)
        rc = parse_inputs(in, json_object_get(root, "inputs"), bin, bin_len, c, e);
    return rc;
}

int v2_parse_infer(struct v2_request *rq, struct predict_input *in, const uint8_t *body, size_t len,
                   const char *header_len, const struct cfg *c, struct api_error *e)
{
    memset(rq, 0, sizeof *rq);
    rq->model_name = c->model_name;
    size_t json_len = len;
    if (header_len && header_length(header_len, len, &json_len, e) != 0)
        return e->code;
    json_error_t jerr;
    json_t *root = json_loadb((const char *)body, json_len, JSON_REJECT_DUPLICATES, &jerr);
    int rc;
    if (!root)
        rc = api_fail(e, API_E_INVALID_REQUEST, "JSON header, line %d column %d: %s", jerr.line, jerr.column,
                      jerr.text);
    else if (!json_is_object(root))
        rc = api_fail(e, API_E_INVALID_REQUEST, "JSON header: expected an object with \"inputs\"");
    else
        rc = parse_root(rq, in, root, body + json_len, len - json_len, c, e);
    json_decref(root);
    if (rc == 0 && !(in->params.set & PREDICT_SET_SEED)) {
        in->params.seed = predict_random_seed(); /* one seed for every image */
        in->params.set |= PREDICT_SET_SEED;
    }
    if (rc != 0) {
        predict_input_free(in);
        v2_request_free(rq);
    }
    return rc;
}

void v2_request_free(struct v2_request *rq)
{
    if (!rq)
        return;
    free(rq->id);
    rq->id = NULL;
}

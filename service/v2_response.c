/* v2_response.c - see v2_response.h.
 *
 * One output at a time: its values go either into a JSON array ("data") or
 * onto the binary tail, in the order of the response's outputs, with
 * binary_data_size on the output. The JSON part is written last, its
 * length kept for Inference-Header-Content-Length.
 */
#include "v2_response.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "decide.h"
#include "preprocess.h"

/* The values of one output, JSON or binary. */
struct emit {
    json_t *data;  /* JSON: the flat array */
    uint8_t *tail; /* binary: every binary output so far */
    size_t len, cap;
    int binary;
    int failed; /* out of memory */
};

static void put_raw(struct emit *m, const void *bytes, size_t n)
{
    if (m->len + n > m->cap) {
        size_t cap = m->cap ? m->cap : 1024;
        while (cap < m->len + n)
            cap *= 2;
        uint8_t *t = realloc(m->tail, cap);
        if (!t) {
            m->failed = 1;
            return;
        }
        m->tail = t;
        m->cap = cap;
    }
    memcpy(m->tail + m->len, bytes, n);
    m->len += n;
}

static void put_json(struct emit *m, json_t *v)
{
    if (json_array_append_new(m->data, v) != 0)
        m->failed = 1;
}

static void put_le(struct emit *m, uint64_t v, size_t n)
{
    uint8_t b[8];
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put_raw(m, b, n);
}

static void put_f32(struct emit *m, double v)
{
    float f = (float)v;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if (m->binary)
        put_le(m, bits, 4);
    else /* jansson refuses NaN: a statistic that is not finite would be a bug, shown as null */
        put_json(m, isfinite(f) ? json_real((double)f) : json_null());
}

static void put_i64(struct emit *m, int64_t v)
{
    if (m->binary)
        put_le(m, (uint64_t)v, 8);
    else
        put_json(m, json_integer((json_int_t)v));
}

static void put_bool(struct emit *m, int v)
{
    if (m->binary)
        put_le(m, v ? 1 : 0, 1);
    else
        put_json(m, json_boolean(v));
}

static void put_bytes(struct emit *m, const char *s)
{
    size_t n = strlen(s);
    if (m->binary) {
        put_le(m, n, 4);
        put_raw(m, s, n);
    } else {
        put_json(m, json_string(s));
    }
}

/* "no_digit,entropy" in decide.h's order; "" when trusted. */
static void reasons_text(unsigned reasons, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned bit = 1; bit <= BNN_REASON_EPISTEMIC; bit <<= 1)
        if ((reasons & bit) && used < len)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "," : "", bnn_reason_name(bit));
}

static double class_stat(const struct bnn_class_stats *s, enum v2_output o)
{
    return o == V2_OUT_MEAN ? s->mean : o == V2_OUT_STD ? s->std : o == V2_OUT_LOWER ? s->lower : s->upper;
}

/* Output o's values for image r, row-major. */
static void image_values(struct emit *m, enum v2_output o, const struct predict_result *r)
{
    const struct bnn_prediction *pr = &r->a.pr;
    char text[160];
    switch (o) {
    case V2_OUT_MEAN:
    case V2_OUT_STD:
    case V2_OUT_LOWER:
    case V2_OUT_UPPER:
        for (size_t k = 0; k < pr->n_classes; k++)
            put_f32(m, class_stat(&pr->classes[k], o));
        break;
    case V2_OUT_PREDICTION:
        put_i64(m, pr->predicted);
        break;
    case V2_OUT_ENTROPY:
        put_f32(m, pr->entropy);
        break;
    case V2_OUT_ALEATORIC:
        put_f32(m, pr->aleatoric);
        break;
    case V2_OUT_EPISTEMIC:
        put_f32(m, pr->epistemic);
        break;
    case V2_OUT_UNCERTAIN:
        put_bool(m, r->a.reasons != 0);
        break;
    case V2_OUT_REASONS:
        reasons_text(r->a.reasons, text, sizeof text);
        put_bytes(m, text);
        break;
    case V2_OUT_SET: /* all false without conformal calibration */
        for (size_t k = 0; k < pr->n_classes; k++)
            put_bool(m, r->set_level >= 0 && (r->a.set & (1u << k)));
        break;
    case V2_OUT_PREPROCESSING:
        put_bytes(m, r->a.prep.verdict != PREP_DIGIT ? prep_verdict_name(r->a.prep.verdict)
                                                     : prep_describe(r->a.prep.steps, text, sizeof text));
        break;
    default:
        break;
    }
}

/* {"name", "datatype", "shape", "data" | "parameters": {"binary_data_size"}} */
static json_t *output_json(struct emit *m, enum v2_output o, int binary, const struct predict_outcome *oc)
{
    size_t n = oc->in->n_images, k = oc->results[0].a.pr.n_classes, start = m->len;
    const struct v2_output_info *info = &v2_outputs[o];
    m->binary = binary;
    m->data = binary ? NULL : json_array();
    if (!binary && !m->data)
        m->failed = 1;
    for (size_t i = 0; i < n && !m->failed; i++)
        image_values(m, o, &oc->results[i]);
    json_t *shape =
        info->per_class ? json_pack("[I,I]", (json_int_t)n, (json_int_t)k) : json_pack("[I]", (json_int_t)n);
    json_t *out = json_pack("{s:s,s:s,s:o}", "name", info->name, "datatype", info->datatype, "shape", shape);
    if (out && binary)
        json_object_set_new(out, "parameters",
                            json_pack("{s:I}", "binary_data_size", (json_int_t)(m->len - start)));
    else if (out)
        json_object_set_new(out, "data", m->data);
    else
        json_decref(m->data);
    m->data = NULL;
    if (!out)
        m->failed = 1;
    return out;
}

/* The request's parameters as used: one seed, T, coverage, mode, and the
 * prediction set's coverage when the weights have one. */
static json_t *parameters_json(const struct predict_outcome *o)
{
    const struct predict_params *p = &o->in->params;
    const struct predict_result *r = &o->results[0];
    json_t *j = json_pack("{s:I,s:I,s:f,s:s}", "seed", (json_int_t)r->seed, "samples", (json_int_t)p->samples,
                          "interval", p->interval, "mode", bnn_mode_name(p->mode));
    if (j && r->set_level >= 0)
        json_object_set_new(j, "set_coverage", json_real(r->set_coverage));
    return j;
}

/* The JSON part alone, or JSON part + binary tail. */
static char *assemble(json_t *doc, struct emit *m, struct v2_request *rq, size_t *len)
{
    if (!memchr(rq->binary, 1, rq->n_outputs)) {
        rq->json_len = 0;
        return api_dump(doc, len);
    }
    char *head = json_dumps(doc, API_JSON_FLAGS);
    if (!head)
        return NULL;
    size_t hlen = strlen(head);
    char *body = malloc(hlen + m->len + 1);
    if (body) {
        memcpy(body, head, hlen);
        if (m->len)
            memcpy(body + hlen, m->tail, m->len);
        *len = hlen + m->len;
        rq->json_len = hlen;
    }
    free(head);
    return body;
}

char *v2_infer_body(const struct predict_outcome *o, size_t *len)
{
    struct v2_request *rq = o->cls;
    struct emit m = {0};
    json_t *outputs = json_array();
    json_t *doc = json_pack("{s:s,s:s,s:o,s:o}", "model_name", rq->model_name, "model_version",
                            o->model_version, "parameters", parameters_json(o), "outputs", outputs);
    if (doc && rq->id)
        json_object_set_new(doc, "id", json_string(rq->id));
    for (size_t i = 0; doc && i < rq->n_outputs && !m.failed; i++)
        if (json_array_append_new(outputs, output_json(&m, rq->outputs[i], rq->binary[i], o)) != 0)
            m.failed = 1;
    char *body = doc && !m.failed ? assemble(doc, &m, rq, len) : NULL;
    json_decref(doc);
    free(m.tail);
    return body;
}

char *v2_error_body(const char *message, size_t *len)
{
    json_t *j = json_pack("{s:s}", "error", message);
    char *s = j ? api_dump(j, len) : NULL;
    json_decref(j);
    return s;
}

json_t *v2_server_json(const char *version)
{
    return json_pack("{s:s,s:s,s:[s,s]}", "name", "bnn-serve", "version", version, "extensions",
                     "binary_tensor_data", "model_repository");
}

static json_t *tensor_json(const char *name, const char *datatype, const int64_t *shape, size_t rank)
{
    json_t *dims = json_array();
    for (size_t i = 0; dims && i < rank; i++)
        json_array_append_new(dims, json_integer((json_int_t)shape[i]));
    return json_pack("{s:s,s:s,s:o}", "name", name, "datatype", datatype, "shape", dims);
}

json_t *v2_model_json(const char *name, const struct served_model *sm)
{
    const int64_t image[] = {-1}, pixels[] = {-1, BNN_MNIST_SIDE, BNN_MNIST_SIDE};
    const int64_t per_class[] = {-1, (int64_t)bnn_model_n_classes(sm->model)}, per_image[] = {-1};
    json_t *inputs = json_pack("[o,o]", tensor_json("image", "BYTES", image, 1),
                               tensor_json("pixels", "UINT8", pixels, 3));
    json_t *outputs = json_array();
    for (int o = 0; outputs && o < V2_OUT_COUNT; o++) {
        const struct v2_output_info *info = &v2_outputs[o];
        json_array_append_new(outputs,
                              tensor_json(info->name, info->datatype, info->per_class ? per_class : per_image,
                                          info->per_class ? 2 : 1));
    }
    return json_pack("{s:s,s:[s],s:s,s:o,s:o}", "name", name, "versions", sm->version, "platform",
                     "bnn-serve", "inputs", inputs, "outputs", outputs);
}

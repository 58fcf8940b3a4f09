/* api_response.c - see api_response.h. */
#include "api_response.h"

#include <math.h>
#include <stdlib.h>

#include "api.h"
#include "preprocess.h"

/* jansson refuses NaN and infinities; a statistic that is not finite would
 * be a bug upstream, shown as null rather than a broken document. */
static json_t *real_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *classes_json(const struct bnn_prediction *pr)
{
    json_t *classes = json_array();
    for (size_t k = 0; classes && k < pr->n_classes; k++) {
        const struct bnn_class_stats *s = &pr->classes[k];
        json_array_append_new(classes, json_pack("{s:I,s:o,s:o,s:o,s:o}", "label", (json_int_t)k, "mean",
                                                 real_or_null(s->mean), "std", real_or_null(s->std), "lower",
                                                 real_or_null(s->lower), "upper", real_or_null(s->upper)));
    }
    return classes;
}

json_t *api_result_json(const struct predict_result *r, const struct predict_params *p, double queue_ms)
{
    const struct bnn_prediction *pr = &r->pr;
    char prep[64];
    prep_describe(r->prep, prep, sizeof prep);
    return json_pack("{s:i,s:I,s:f,s:I,s:s,s:s,s:o,s:{s:o,s:o,s:o},s:b,s:{s:f,s:f,s:f}}", "prediction",
                     pr->predicted, "samples", (json_int_t)p->samples, "interval", p->interval, "seed",
                     (json_int_t)r->seed, "mode", bnn_mode_name(p->mode), "preprocessing", prep, "classes",
                     classes_json(pr), "uncertainty", "entropy", real_or_null(pr->entropy), "aleatoric",
                     real_or_null(pr->aleatoric), "epistemic", real_or_null(pr->epistemic), "uncertain",
                     r->uncertain, "timing_ms", "decode", r->decode_ms, "queue", queue_ms, "compute",
                     r->compute_ms);
}

char *api_predict_body(const struct predict_outcome *o, size_t *len)
{
    const struct predict_input *in = o->in;
    json_t *doc;
    if (!in->batch) {
        doc = api_result_json(&o->results[0], &in->params, o->queue_ms);
    } else {
        json_t *results = json_array();
        for (size_t i = 0; results && i < in->n_images; i++) {
            if (json_array_append_new(
                    results, api_result_json(&o->results[i], &in->params, i == 0 ? o->queue_ms : 0.0)) != 0) {
                json_decref(results);
                results = NULL;
            }
        }
        doc = results ? json_pack("{s:o}", "results", results) : NULL;
    }
    char *body = doc ? api_dump(doc, len) : NULL;
    json_decref(doc);
    return body;
}

json_t *api_model_json(const struct bnn_model *m, const struct cfg *c)
{
    char arch[128];
    bnn_model_arch(m, arch, sizeof arch);
    json_t *layers = json_array();
    for (size_t i = 0; layers && i < m->n_layers; i++)
        json_array_append_new(layers, json_pack("{s:I,s:I,s:s}", "in", (json_int_t)m->layers[i].n_in, "out",
                                                (json_int_t)m->layers[i].n_out, "activation",
                                                i + 1 < m->n_layers ? "relu" : "softmax"));
    json_t *meta = json_object();
    for (size_t i = 0; meta && i < m->n_meta; i++)
        json_object_set_new(meta, m->meta[i].key, json_string(m->meta[i].value));
    return json_pack("{s:s,s:o,s:I,s:I,s:I,s:s,s:o,s:[s,s],s:{s:I,s:f,s:s},s:{s:I,s:I,s:I,s:I,s:I}}",
                     "architecture", arch, "layers", layers, "parameters",
                     (json_int_t)bnn_model_param_count(m), "inputs", (json_int_t)bnn_model_n_in(m), "classes",
                     (json_int_t)bnn_model_n_classes(m), "input", "mnist-28x28-gray", "metadata", meta,
                     "modes", "lrt", "weights", "defaults", "samples", (json_int_t)c->default_samples,
                     "interval", c->default_interval, "mode", "lrt", "limits", "max_samples",
                     (json_int_t)c->max_samples, "max_batch", (json_int_t)c->max_batch, "max_body_bytes",
                     (json_int_t)c->max_body_bytes, "max_image_side", (json_int_t)c->max_image_side,
                     "queue_depth", (json_int_t)c->queue_depth);
}

/* api_response.c - see api_response.h. */
#include "api_response.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "api.h"
#include "cpu.h"
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

/* ["no_digit", "entropy", ...] in decide.h's order. */
static json_t *reasons_json(unsigned reasons)
{
    json_t *a = json_array();
    for (unsigned bit = 1; a && bit <= BNN_REASON_EPISTEMIC; bit <<= 1)
        if (reasons & bit)
            json_array_append_new(a, json_string(bnn_reason_name(bit)));
    return a;
}

/* The digits of the prediction set in ascending order; null without one. */
static json_t *set_json(const struct predict_result *r)
{
    if (r->set_level < 0)
        return json_null();
    json_t *a = json_array();
    for (size_t k = 0; a && k < r->a.pr.n_classes; k++)
        if (r->a.set & (1u << k))
            json_array_append_new(a, json_integer((json_int_t)k));
    return a;
}

/* What the canonicalisation did ("none", "inverted+resized+centred", ...),
 * or what it found instead of a digit ("blank", "no_background"). */
static const char *prep_text(const struct prep_result *p, char *buf, size_t len)
{
    if (p->verdict != PREP_DIGIT)
        return prep_verdict_name(p->verdict);
    return prep_describe(p->steps, buf, len);
}

json_t *api_result_json(const struct predict_result *r, const struct predict_params *p,
                        const char *model_version, double queue_ms)
{
    const struct bnn_prediction *pr = &r->a.pr;
    char prep[160];
    return json_pack("{s:i,s:I,s:f,s:I,s:s,s:s,s:s,s:o,s:{s:o,s:o,s:o},s:b,s:o,s:o,s:o,s:{s:f,s:f,s:f}}",
                     "prediction", pr->predicted, "samples", (json_int_t)p->samples, "interval", p->interval,
                     "seed", (json_int_t)r->seed, "model_version", model_version, "mode",
                     bnn_mode_name(p->mode), "preprocessing", prep_text(&r->a.prep, prep, sizeof prep),
                     "classes", classes_json(pr), "uncertainty", "entropy", real_or_null(pr->entropy),
                     "aleatoric", real_or_null(pr->aleatoric), "epistemic", real_or_null(pr->epistemic),
                     "uncertain", r->a.reasons != 0, "uncertain_reasons", reasons_json(r->a.reasons),
                     "prediction_set", set_json(r), "set_coverage",
                     r->set_level < 0 ? json_null() : json_real(r->set_coverage), "timing_ms", "decode",
                     r->decode_ms, "queue", queue_ms, "compute", r->compute_ms);
}

char *api_predict_body(const struct predict_outcome *o, size_t *len)
{
    const struct predict_input *in = o->in;
    json_t *doc;
    if (!in->batch) {
        doc = api_result_json(&o->results[0], &in->params, o->model_version, o->queue_ms);
    } else {
        json_t *results = json_array();
        for (size_t i = 0; results && i < in->n_images; i++) {
            if (json_array_append_new(results, api_result_json(&o->results[i], &in->params, o->model_version,
                                                               i == 0 ? o->queue_ms : 0.0)) != 0) {
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

/* A threshold as a number, or null when it never flags. */
static json_t *threshold_json(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* The answer policy in force: thresholds (and whether the configuration or
 * the weights set them) and the conformal levels. */
static json_t *policy_json(const struct bnn_policy *p, const struct cfg *c)
{
    json_t *levels = json_array();
    for (size_t i = 0; levels && i < p->n_levels; i++)
        json_array_append_new(
            levels, json_pack("{s:f,s:f}", "coverage", p->coverage[i], "min_probability", p->min_prob[i]));
    return json_pack(
        "{s:{s:o,s:o,s:s,s:o,s:I},s:o,s:f}", "uncertain", "entropy_above", threshold_json(p->entropy_max),
        "epistemic_above", threshold_json(p->epistemic_max), "source",
        isnan(c->uncertain_entropy) && isnan(c->uncertain_epistemic)   ? "model"
        : isnan(c->uncertain_entropy) || isnan(c->uncertain_epistemic) ? "model and config"
                                                                       : "config",
        "clean_flag_rate", real_or_null(p->clean_flag_rate), "calibrated_samples", (json_int_t)p->samples,
        "prediction_sets", levels, "default_set_coverage", c->default_set_coverage);
}

/* What computes the answers: our kernels' code path, what runs the LRT
 * GEMMs, and OpenBLAS's kernels. */
static json_t *compute_json(void)
{
    return json_pack("{s:s,s:s,s:s}", "kernels", bnn_cpu_path_name(), "lrt_gemm", bnn_lrt_gemm_name(),
                     "openblas", openblas_get_corename());
}

json_t *api_model_json(const struct bnn_model *m, const struct bnn_policy *policy, const struct cfg *c)
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
    json_t *doc =
        json_pack("{s:s,s:o,s:I,s:I,s:I,s:s,s:o,s:[s,s],s:{s:I,s:f,s:s},s:{s:I,s:I,s:I,s:I,s:I}}",
                  "architecture", arch, "layers", layers, "parameters", (json_int_t)bnn_model_param_count(m),
                  "inputs", (json_int_t)bnn_model_n_in(m), "classes", (json_int_t)bnn_model_n_classes(m),
                  "input", "mnist-28x28-gray", "metadata", meta, "modes", "lrt", "weights", "defaults",
                  "samples", (json_int_t)c->default_samples, "interval", c->default_interval, "mode", "lrt",
                  "limits", "max_samples", (json_int_t)c->max_samples, "max_batch", (json_int_t)c->max_batch,
                  "max_body_bytes", (json_int_t)c->max_body_bytes, "max_image_side",
                  (json_int_t)c->max_image_side, "queue_depth", (json_int_t)c->queue_depth);
    if (doc && (json_object_set_new(doc, "policy", policy_json(policy, c)) != 0 ||
                json_object_set_new(doc, "compute", compute_json()) != 0)) {
        json_decref(doc);
        doc = NULL;
    }
    return doc;
}

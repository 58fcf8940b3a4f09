/* api.c - see api.h. */
#include "api.h"
#include "timing.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fault.h"
#include "image.h"
#include "preprocess.h"

/* --- errors ------------------------------------------------------------- */

static const struct {
    const char *name;
    unsigned status; /* 0 = the configured overload status */
} code_table[API_CODE_COUNT] = {
    [API_OK] = {"ok", 200},
    [API_E_INVALID_PNG] = {"invalid_png", 400},
    [API_E_INVALID_PARAMETER] = {"invalid_parameter", 400},
    [API_E_INVALID_REQUEST] = {"invalid_request", 400},
    [API_E_NOT_FOUND] = {"not_found", 404},
    [API_E_METHOD_NOT_ALLOWED] = {"method_not_allowed", 405},
    [API_E_BODY_TOO_LARGE] = {"body_too_large", 413},
    [API_E_IMAGE_TOO_LARGE] = {"image_too_large", 413},
    [API_E_UNSUPPORTED_MEDIA_TYPE] = {"unsupported_media_type", 415},
    [API_E_OVERLOADED] = {"overloaded", 0},
    [API_E_DRAINING] = {"overloaded", 503},
    [API_E_TIMEOUT] = {"timeout", 503},
    [API_E_INTERNAL] = {"internal", 500},
};

int api_fail(struct api_error *e, enum api_code code, const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return (int)code;
}

const char *api_code_name(enum api_code code)
{
    return (unsigned)code < API_CODE_COUNT ? code_table[code].name : "internal";
}

unsigned api_http_status(enum api_code code, unsigned overload_status)
{
    if ((unsigned)code >= API_CODE_COUNT)
        return 500;
    if (code_table[code].status == 0)
        return overload_status == 429 ? 429 : 503;
    return code_table[code].status;
}

char *api_error_body(const struct api_error *e, unsigned overload_status, unsigned *status)
{
    *status = api_http_status(e->code, overload_status);
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", api_code_name(e->code), "message", e->message);
    if (!j)
        return NULL;
    char *s = api_dump(j, NULL);
    json_decref(j);
    return s;
}

char *api_dump(const json_t *j, size_t *len)
{
    char *s = json_dumps(j, API_JSON_FLAGS);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return NULL;
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    if (len)
        *len = n + 1;
    return t;
}

/* --- parameters --------------------------------------------------------- */

void api_params_init(struct api_params *p, const struct cfg *c)
{
    memset(p, 0, sizeof *p);
    p->samples = c->default_samples;
    p->interval = c->default_interval;
    p->mode = BNN_MODE_LRT;
}

/* Strict unsigned decimal: digits only, no sign, no spaces, no overflow. */
static int parse_u64(const char *s, uint64_t *out)
{
    if (!*s || strlen(s) > 20)
        return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Values are echoed in messages; keep them short and printable. */
static const char *shown(const char *v, char buf[40])
{
    size_t i = 0;
    for (; v[i] && i < 32; i++)
        buf[i] = isprint((unsigned char)v[i]) ? v[i] : '?';
    if (v[i]) {
        buf[i++] = '.';
        buf[i++] = '.';
        buf[i++] = '.';
    }
    buf[i] = '\0';
    return buf;
}

static int set_samples(struct api_params *p, const struct cfg *c, uint64_t v, const char *text,
                       struct api_error *e)
{
    char b[40];
    if (v < 1 || v > c->max_samples)
        return api_fail(e, API_E_INVALID_PARAMETER, "samples: expected 1..%u, got %s", c->max_samples,
                        shown(text, b));
    p->samples = (unsigned)v;
    p->set |= API_SET_SAMPLES;
    return 0;
}

static int set_interval(struct api_params *p, double v, const char *text, struct api_error *e)
{
    char b[40];
    if (!(v > 0.0 && v < 1.0))
        return api_fail(e, API_E_INVALID_PARAMETER,
                        "interval: expected a coverage strictly between 0 and 1, got %s", shown(text, b));
    p->interval = v;
    p->set |= API_SET_INTERVAL;
    return 0;
}

static int set_seed(struct api_params *p, uint64_t v, const char *text, struct api_error *e)
{
    char b[40];
    if (v > API_SEED_MAX)
        return api_fail(e, API_E_INVALID_PARAMETER, "seed: expected 0..%llu, got %s",
                        (unsigned long long)API_SEED_MAX, shown(text, b));
    p->seed = v;
    p->set |= API_SET_SEED;
    return 0;
}

static int set_mode(struct api_params *p, const char *v, struct api_error *e)
{
    char b[40];
    enum bnn_mode mode;
    if (bnn_mode_parse(v, &mode) != 0)
        return api_fail(e, API_E_INVALID_PARAMETER, "mode: expected lrt or weights, got '%s'", shown(v, b));
    p->mode = mode;
    p->set |= API_SET_MODE;
    return 0;
}

int api_param_set(struct api_params *p, const struct cfg *c, const char *key, const char *value,
                  struct api_error *e)
{
    char b[40];
    uint64_t u;
    if (!value)
        value = "";
    if (strcmp(key, "samples") == 0) {
        if (parse_u64(value, &u) != 0)
            return api_fail(e, API_E_INVALID_PARAMETER, "samples: expected an integer 1..%u, got '%s'",
                            c->max_samples, shown(value, b));
        return set_samples(p, c, u, value, e);
    }
    if (strcmp(key, "interval") == 0) {
        char *end;
        errno = 0;
        double v = strtod(value, &end);
        if (!*value || *end || errno || !isfinite(v) || isspace((unsigned char)*value))
            return api_fail(e, API_E_INVALID_PARAMETER, "interval: expected a number in (0,1), got '%s'",
                            shown(value, b));
        return set_interval(p, v, value, e);
    }
    if (strcmp(key, "seed") == 0) {
        if (parse_u64(value, &u) != 0)
            return api_fail(e, API_E_INVALID_PARAMETER, "seed: expected an integer 0..%llu, got '%s'",
                            (unsigned long long)API_SEED_MAX, shown(value, b));
        return set_seed(p, u, value, e);
    }
    if (strcmp(key, "mode") == 0)
        return set_mode(p, value, e);
    return api_fail(e, API_E_INVALID_PARAMETER,
                    "unknown parameter '%s' (expected samples, interval, seed, mode)", shown(key, b));
}

/* A body parameter: validated always, applied only when the query did not
 * already give it (the query wins, per openapi.yaml). */
static int body_param_set(struct api_params *p, const struct cfg *c, const char *key, const char *value,
                          struct api_error *e)
{
    struct api_params tmp = *p;
    int rc = api_param_set(&tmp, c, key, value, e);
    if (rc != 0)
        return rc;
    unsigned bit = tmp.set & ~p->set;
    if (bit)
        *p = tmp;
    return 0;
}

/* --- bodies -------------------------------------------------------------- */

enum api_body_kind api_body_kind(const char *content_type)
{
    if (!content_type)
        return API_BODY_NONE;
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    size_t n = strcspn(content_type, ";");
    while (n > 0 && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
        n--;
    static const struct {
        const char *type;
        enum api_body_kind kind;
    } kinds[] = {{"image/png", API_BODY_PNG},
                 {"multipart/form-data", API_BODY_MULTIPART},
                 {"application/json", API_BODY_JSON}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strlen(kinds[i].type) == n && strncasecmp(content_type, kinds[i].type, n) == 0)
            return kinds[i].kind;
    return API_BODY_NONE;
}

void api_images_free(struct api_images *im)
{
    if (!im)
        return;
    for (size_t i = 0; i < im->n; i++)
        free(im->items[i].data);
    free(im->items);
    memset(im, 0, sizeof *im);
}

int api_images_push(struct api_images *im, const uint8_t *data, size_t len)
{
    if (im->n == im->cap) {
        size_t cap = im->cap ? im->cap * 2 : 4;
        struct api_image *items = bnn_fault_realloc(im->items, cap * sizeof *items);
        if (!items)
            return -1;
        im->items = items;
        im->cap = cap;
    }
    im->items[im->n] = (struct api_image){NULL, 0};
    im->n++;
    return api_images_append(im, data, len);
}

int api_images_append(struct api_images *im, const uint8_t *data, size_t len)
{
    if (im->n == 0)
        return -1;
    struct api_image *last = &im->items[im->n - 1];
    if (len == 0)
        return 0;
    uint8_t *d = bnn_fault_realloc(last->data, last->len + len);
    if (!d)
        return -1;
    memcpy(d + last->len, data, len);
    last->data = d;
    last->len += len;
    return 0;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int api_base64_decode(uint8_t **out, size_t *out_len, const char *in, size_t in_len)
{
    *out = NULL;
    *out_len = 0;
    if (in_len > 5 && strncmp(in, "data:", 5) == 0) {
        const char *comma = memchr(in, ',', in_len);
        if (!comma)
            return -1;
        in_len -= (size_t)(comma + 1 - in);
        in = comma + 1;
    }
    uint8_t *buf = bnn_fault_malloc(in_len / 4 * 3 + 3);
    if (!buf)
        return -2;
    size_t n = 0, pad = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < in_len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad > 0) /* a bad character, or data after padding */
            goto fail;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* 6 leftover bits cannot encode a byte: the input was cut mid-group. */
    if (bits >= 6 || pad > 2)
        goto fail;
    *out = buf;
    *out_len = n;
    return 0;
fail:
    free(buf);
    return -1;
}

static int json_param(struct api_params *p, const struct cfg *c, const char *key, json_t *v,
                      struct api_error *e)
{
    char text[64];
    if (strcmp(key, "mode") == 0) {
        if (!json_is_string(v))
            return api_fail(e, API_E_INVALID_PARAMETER, "mode: expected the string lrt or weights");
        return body_param_set(p, c, key, json_string_value(v), e);
    }
    if (strcmp(key, "interval") == 0) {
        if (!json_is_number(v))
            return api_fail(e, API_E_INVALID_PARAMETER, "interval: expected a number in (0,1)");
        snprintf(text, sizeof text, "%.17g", json_number_value(v));
        return body_param_set(p, c, key, text, e);
    }
    if (strcmp(key, "samples") == 0 || strcmp(key, "seed") == 0) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            if (strcmp(key, "samples") == 0)
                return api_fail(e, API_E_INVALID_PARAMETER, "samples: expected an integer 1..%u",
                                c->max_samples);
            return api_fail(e, API_E_INVALID_PARAMETER, "seed: expected an integer 0..%llu",
                            (unsigned long long)API_SEED_MAX);
        }
        snprintf(text, sizeof text, "%lld", (long long)json_integer_value(v));
        return body_param_set(p, c, key, text, e);
    }
    return api_fail(e, API_E_INVALID_PARAMETER,
                    "unknown member '%.40s' (expected %s, samples, interval, seed, mode)", key,
                    "image or images");
}

static int json_image(struct api_images *out, json_t *v, const char *what, struct api_error *e)
{
    if (!json_is_string(v))
        return api_fail(e, API_E_INVALID_REQUEST, "%s: expected a base64 string", what);
    uint8_t *bytes;
    size_t n;
    int rc = api_base64_decode(&bytes, &n, json_string_value(v), json_string_length(v));
    if (rc == -2)
        return api_fail(e, API_E_INTERNAL, "%s: out of memory decoding base64", what);
    if (rc != 0)
        return api_fail(e, API_E_INVALID_REQUEST, "%s: not valid base64", what);
    if (n == 0) {
        free(bytes);
        return api_fail(e, API_E_INVALID_PNG, "%s: empty image", what);
    }
    rc = api_images_push(out, NULL, 0);
    if (rc != 0) {
        free(bytes);
        return api_fail(e, API_E_INTERNAL, "%s: out of memory", what);
    }
    out->items[out->n - 1].data = bytes;
    out->items[out->n - 1].len = n;
    return 0;
}

int api_parse_json(struct api_params *p, struct api_images *out, const char *body, size_t len, int batch,
                   const struct cfg *c, struct api_error *e)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return api_fail(e, API_E_INVALID_REQUEST, "JSON body, line %d column %d: %s", jerr.line, jerr.column,
                        jerr.text);
    int rc = 0;
    const char *image_key = batch ? "images" : "image";
    if (!json_is_object(root)) {
        rc = api_fail(e, API_E_INVALID_REQUEST, "JSON body: expected an object with \"%s\"", image_key);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, image_key) == 0)
            continue;
        if ((rc = json_param(p, c, key, v, e)) != 0)
            goto done;
    }
    json_t *img = json_object_get(root, image_key);
    if (!img) {
        rc = api_fail(e, API_E_INVALID_REQUEST, "JSON body: missing \"%s\"", image_key);
        goto done;
    }
    if (!batch) {
        rc = json_image(out, img, "image", e);
        goto done;
    }
    if (!json_is_array(img) || json_array_size(img) == 0) {
        rc = api_fail(e, API_E_INVALID_REQUEST, "images: expected an array of 1..%u base64 strings",
                      c->max_batch);
        goto done;
    }
    if (json_array_size(img) > c->max_batch) {
        rc = api_fail(e, API_E_INVALID_REQUEST, "images: expected at most %u (max_batch), got %zu",
                      c->max_batch, json_array_size(img));
        goto done;
    }
    for (size_t i = 0; i < json_array_size(img); i++) {
        char what[32];
        snprintf(what, sizeof what, "images[%zu]", i);
        if ((rc = json_image(out, json_array_get(img, i), what, e)) != 0)
            goto done;
    }
done:
    json_decref(root);
    if (rc != 0)
        api_images_free(out);
    return rc;
}

void api_multipart_init(struct api_multipart *mp, struct api_images *images, struct api_params *params,
                        const struct cfg *c, int batch)
{
    memset(mp, 0, sizeof *mp);
    mp->images = images;
    mp->params = params;
    mp->cfg = c;
    mp->batch = batch;
}

static int flush_text(struct api_multipart *mp)
{
    if (!mp->in_text)
        return 0;
    mp->in_text = 0;
    mp->value[mp->value_len] = '\0';
    return body_param_set(mp->params, mp->cfg, mp->key, mp->value, &mp->err) == 0 ? 0 : -1;
}

int api_multipart_field(struct api_multipart *mp, const char *key, const char *filename, uint64_t off,
                        const char *data, size_t size)
{
    (void)filename;
    if (!key)
        key = "";
    if (strcmp(key, "image") == 0) {
        if (off == 0) {
            if (flush_text(mp) != 0)
                return -1;
            if (!mp->batch && mp->images->n == 1) {
                api_fail(&mp->err, API_E_INVALID_REQUEST,
                         "multipart: expected one \"image\" field, got several "
                         "(use /predict/batch)");
                return -1;
            }
            if (mp->images->n == mp->cfg->max_batch) {
                api_fail(&mp->err, API_E_INVALID_REQUEST,
                         "multipart: more than %u (max_batch) \"image\" fields", mp->cfg->max_batch);
                return -1;
            }
            if (api_images_push(mp->images, NULL, 0) != 0) {
                api_fail(&mp->err, API_E_INTERNAL, "multipart: out of memory");
                return -1;
            }
        } else if (mp->images->n == 0) {
            api_fail(&mp->err, API_E_INVALID_REQUEST,
                     "multipart: \"image\" data at offset %llu without a start", (unsigned long long)off);
            return -1;
        }
        /* The body is already capped by max_body_bytes; this bounds what the
         * fields add up to even if the caller forgot. */
        if (mp->total + size > mp->cfg->max_body_bytes) {
            api_fail(&mp->err, API_E_BODY_TOO_LARGE, "multipart: images over %zu bytes (max_body_bytes)",
                     mp->cfg->max_body_bytes);
            return -1;
        }
        mp->total += size;
        if (api_images_append(mp->images, (const uint8_t *)data, size) != 0) {
            api_fail(&mp->err, API_E_INTERNAL, "multipart: out of memory");
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "samples") == 0 || strcmp(key, "interval") == 0 || strcmp(key, "seed") == 0 ||
        strcmp(key, "mode") == 0) {
        if (off == 0) {
            if (flush_text(mp) != 0)
                return -1;
            snprintf(mp->key, sizeof mp->key, "%s", key);
            mp->value_len = 0;
            mp->in_text = 1;
        }
        if (!mp->in_text || strcmp(mp->key, key) != 0 || mp->value_len + size >= sizeof mp->value) {
            api_fail(&mp->err, API_E_INVALID_PARAMETER, "%s: value too long", key);
            return -1;
        }
        memcpy(mp->value + mp->value_len, data, size);
        mp->value_len += size;
        return 0;
    }
    char b[40];
    api_fail(&mp->err, API_E_INVALID_REQUEST,
             "multipart: unknown field '%s' (expected image, samples, interval, "
             "seed, mode)",
             shown(key, b));
    return -1;
}

int api_multipart_finish(struct api_multipart *mp)
{
    if (flush_text(mp) != 0)
        return -1;
    if (mp->images->n == 0) {
        api_fail(&mp->err, API_E_INVALID_REQUEST, "multipart: no \"image\" field");
        return -1;
    }
    for (size_t i = 0; i < mp->images->n; i++) {
        if (mp->images->items[i].len == 0) {
            if (mp->batch)
                api_fail(&mp->err, API_E_INVALID_PNG, "images[%zu]: empty image", i);
            else
                api_fail(&mp->err, API_E_INVALID_PNG, "image: empty");
            return -1;
        }
    }
    return 0;
}

/* --- the prediction job ------------------------------------------------------ */

/* jansson refuses NaN and infinities; a statistic that is not finite would
 * be a bug upstream, shown as null rather than a broken document. */
static json_t *real_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

json_t *api_prediction_json(const struct bnn_prediction *pr, const struct api_params *p, uint64_t seed,
                            const char *preprocessing, const struct api_timing *t, double uncertain_threshold)
{
    json_t *classes = json_array();
    for (size_t k = 0; classes && k < pr->n_classes; k++) {
        const struct bnn_class_stats *s = &pr->classes[k];
        json_array_append_new(classes, json_pack("{s:I,s:o,s:o,s:o,s:o}", "label", (json_int_t)k, "mean",
                                                 real_or_null(s->mean), "std", real_or_null(s->std), "lower",
                                                 real_or_null(s->lower), "upper", real_or_null(s->upper)));
    }
    return json_pack("{s:i,s:I,s:f,s:I,s:s,s:s,s:o,s:{s:o,s:o,s:o},s:b,s:{s:f,s:f,s:f}}", "prediction",
                     pr->predicted, "samples", (json_int_t)p->samples, "interval", p->interval, "seed",
                     (json_int_t)seed, "mode", bnn_mode_name(p->mode), "preprocessing", preprocessing,
                     "classes", classes, "uncertainty", "entropy", real_or_null(pr->entropy), "aleatoric",
                     real_or_null(pr->aleatoric), "epistemic", real_or_null(pr->epistemic), "uncertain",
                     pr->epistemic > uncertain_threshold, "timing_ms", "decode", t->decode_ms, "queue",
                     t->queue_ms, "compute", t->compute_ms);
}

int api_predict_png(json_t **out, const uint8_t *png, size_t len, const struct api_params *p, uint64_t seed,
                    double queue_ms, const struct cfg *c, const struct bnn_model *m, struct bnn_workspace *ws,
                    struct api_error *e)
{
    *out = NULL;
    struct api_timing t = {0, queue_ms, 0};
    char err[IMG_ERR_LEN > BNN_ERR_LEN ? IMG_ERR_LEN : BNN_ERR_LEN];
    double t0 = timing_now_ms();
    struct img_gray gray;
    int rc = img_decode_png(&gray, png, len, c->max_image_side, err);
    if (rc != IMG_OK) {
        enum api_code code = rc == IMG_E_TOO_LARGE ? API_E_IMAGE_TOO_LARGE
                             : rc == IMG_E_NOMEM   ? API_E_INTERNAL
                                                   : API_E_INVALID_PNG;
        return api_fail(e, code, "%s", err);
    }
    float image[BNN_MNIST_PIXELS];
    struct prep_result prep_r;
    prep_canonical(image, &prep_r, gray.pixels, gray.width, gray.height);
    img_gray_free(&gray);
    char prep[160];
    if (prep_r.verdict == PREP_DIGIT)
        prep_describe(prep_r.steps, prep, sizeof prep);
    else
        snprintf(prep, sizeof prep, "no_digit:%s", prep_verdict_name(prep_r.verdict));
    double t1 = timing_now_ms();
    t.decode_ms = t1 - t0;

    struct bnn_prediction pr;
    rc = bnn_predict(&pr, ws, m, image, p->samples, seed, p->interval, p->mode, err);
    if (rc != BNN_OK)
        return api_fail(e, API_E_INTERNAL, "prediction failed: %s", err);
    t.compute_ms = timing_now_ms() - t1;
    *out = api_prediction_json(&pr, p, seed, prep, &t, c->uncertain_threshold);
    if (!*out)
        return api_fail(e, API_E_INTERNAL, "out of memory building the response");
    return 0;
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

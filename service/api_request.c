/* api_request.c - see api_request.h. */
#include "api_request.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fault.h"

/* --- media type and the body cap --------------------------------------------------- */

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

int api_body_cap(const struct cfg *c, uint64_t total, int declared, struct api_error *e)
{
    if (total <= c->max_body_bytes)
        return 0;
    return api_fail(e, API_E_BODY_TOO_LARGE, "body of %s%llu bytes is over max_body_bytes = %zu",
                    declared ? "" : "at least ", (unsigned long long)total, c->max_body_bytes);
}

/* --- parameters --------------------------------------------------------------------- */

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

/* The typed setters: the one range check of each parameter, whether the
 * value came as text (query, multipart) or as a JSON number. */
static int set_samples(struct predict_params *p, const struct cfg *c, uint64_t v, struct api_error *e)
{
    if (v < 1 || v > c->max_samples)
        return api_fail(e, API_E_INVALID_PARAMETER, "samples: expected 1..%u, got %llu", c->max_samples,
                        (unsigned long long)v);
    p->samples = (unsigned)v;
    p->set |= PREDICT_SET_SAMPLES;
    return 0;
}

static int set_interval(struct predict_params *p, double v, struct api_error *e)
{
    if (!(v > 0.0 && v < 1.0))
        return api_fail(e, API_E_INVALID_PARAMETER,
                        "interval: expected a coverage strictly between 0 and 1, got %g", v);
    p->interval = v;
    p->set |= PREDICT_SET_INTERVAL;
    return 0;
}

static int set_seed(struct predict_params *p, uint64_t v, struct api_error *e)
{
    if (v > PREDICT_SEED_MAX)
        return api_fail(e, API_E_INVALID_PARAMETER, "seed: expected 0..%llu, got %llu",
                        (unsigned long long)PREDICT_SEED_MAX, (unsigned long long)v);
    p->seed = v;
    p->set |= PREDICT_SET_SEED;
    return 0;
}

static int set_mode(struct predict_params *p, const char *v, struct api_error *e)
{
    char b[40];
    enum bnn_mode mode;
    if (bnn_mode_parse(v, &mode) != 0)
        return api_fail(e, API_E_INVALID_PARAMETER, "mode: expected lrt or weights, got '%s'", shown(v, b));
    p->mode = mode;
    p->set |= PREDICT_SET_MODE;
    return 0;
}

/* Any coverage in (0,1) parses; whether the model is calibrated for it is
 * the job's check (predict_job_new), since the model may be reloaded. */
static int set_set_coverage(struct predict_params *p, double v, struct api_error *e)
{
    if (!(v > 0.0 && v < 1.0))
        return api_fail(e, API_E_INVALID_PARAMETER,
                        "set_coverage: expected a calibrated coverage such as 0.9, 0.95 or 0.99, got %g", v);
    p->set_coverage = v;
    p->set |= PREDICT_SET_SET_COVERAGE;
    return 0;
}

/* A whole-string finite number (strtod alone takes leading spaces). */
static int parse_number(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || isspace((unsigned char)*s))
        return -1;
    *out = v;
    return 0;
}

int api_param_set(struct predict_params *p, const struct cfg *c, const char *key, const char *value,
                  struct api_error *e)
{
    double v;
    char b[40];
    uint64_t u;
    if (!value)
        value = "";
    if (strcmp(key, "samples") == 0) {
        if (parse_u64(value, &u) != 0)
            return api_fail(e, API_E_INVALID_PARAMETER, "samples: expected an integer 1..%u, got '%s'",
                            c->max_samples, shown(value, b));
        return set_samples(p, c, u, e);
    }
    if (strcmp(key, "interval") == 0) {
        if (parse_number(value, &v))
            return api_fail(e, API_E_INVALID_PARAMETER, "interval: expected a number in (0,1), got '%s'",
                            shown(value, b));
        return set_interval(p, v, e);
    }
    if (strcmp(key, "set_coverage") == 0) {
        if (parse_number(value, &v))
            return api_fail(e, API_E_INVALID_PARAMETER,
                            "set_coverage: expected a number such as 0.95, got '%s'", shown(value, b));
        return set_set_coverage(p, v, e);
    }
    if (strcmp(key, "seed") == 0) {
        if (parse_u64(value, &u) != 0)
            return api_fail(e, API_E_INVALID_PARAMETER, "seed: expected an integer 0..%llu, got '%s'",
                            (unsigned long long)PREDICT_SEED_MAX, shown(value, b));
        return set_seed(p, u, e);
    }
    if (strcmp(key, "mode") == 0)
        return set_mode(p, value, e);
    return api_fail(e, API_E_INVALID_PARAMETER,
                    "unknown parameter '%s' (expected samples, interval, seed, mode, set_coverage)",
                    shown(key, b));
}

/* A body parameter is validated on a copy and applied only when the query
 * did not already give it (the query wins, per openapi.yaml). */
static void keep_query(struct predict_params *p, const struct predict_params *from_body)
{
    if (from_body->set & ~p->set)
        *p = *from_body;
}

/* --- base64 --------------------------------------------------------------------------- */

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

/* --- JSON bodies ------------------------------------------------------------------------ */

int api_param_json(struct predict_params *p, const struct cfg *c, const char *key, json_t *v,
                   struct api_error *e)
{
    struct predict_params tmp = *p;
    int rc;
    int is_count = json_is_integer(v) && json_integer_value(v) >= 0;
    if (strcmp(key, "mode") == 0)
        rc = json_is_string(v)
                 ? set_mode(&tmp, json_string_value(v), e)
                 : api_fail(e, API_E_INVALID_PARAMETER, "mode: expected the string lrt or weights");
    else if (strcmp(key, "interval") == 0)
        rc = json_is_number(v) ? set_interval(&tmp, json_number_value(v), e)
                               : api_fail(e, API_E_INVALID_PARAMETER, "interval: expected a number in (0,1)");
    else if (strcmp(key, "set_coverage") == 0)
        rc = json_is_number(v)
                 ? set_set_coverage(&tmp, json_number_value(v), e)
                 : api_fail(e, API_E_INVALID_PARAMETER, "set_coverage: expected a number such as 0.95");
    else if (strcmp(key, "samples") == 0)
        rc = is_count
                 ? set_samples(&tmp, c, (uint64_t)json_integer_value(v), e)
                 : api_fail(e, API_E_INVALID_PARAMETER, "samples: expected an integer 1..%u", c->max_samples);
    else if (strcmp(key, "seed") == 0)
        rc = is_count ? set_seed(&tmp, (uint64_t)json_integer_value(v), e)
                      : api_fail(e, API_E_INVALID_PARAMETER, "seed: expected an integer 0..%llu",
                                 (unsigned long long)PREDICT_SEED_MAX);
    else
        rc = api_fail(e, API_E_INVALID_PARAMETER,
                      "unknown member '%.40s' (expected image or images, samples, interval, seed, mode, "
                      "set_coverage)",
                      key);
    if (rc == 0)
        keep_query(p, &tmp);
    return rc;
}

/* One base64 image; its bytes move into in. */
static int json_image(struct predict_input *in, json_t *v, struct api_error *e)
{
    char name[PREDICT_NAME_LEN];
    const char *what = predict_image_name(in, in->n_images, name);
    if (!json_is_string(v))
        return api_fail(e, API_E_INVALID_REQUEST, "%s: expected a base64 string", what);
    uint8_t *bytes;
    size_t n;
    int rc = api_base64_decode(&bytes, &n, json_string_value(v), json_string_length(v));
    if (rc == -2)
        return api_fail(e, API_E_INTERNAL, "%s: out of memory decoding base64", what);
    if (rc != 0)
        return api_fail(e, API_E_INVALID_REQUEST, "%s: not valid base64", what);
    return predict_input_add_image(in, bytes, n, e);
}

static int json_images(struct predict_input *in, json_t *img, const struct cfg *c, struct api_error *e)
{
    if (!in->batch)
        return json_image(in, img, e);
    if (!json_is_array(img) || json_array_size(img) == 0)
        return api_fail(e, API_E_INVALID_REQUEST, "images: expected an array of 1..%u base64 strings",
                        c->max_batch);
    if (json_array_size(img) > c->max_batch)
        return api_fail(e, API_E_INVALID_REQUEST, "images: expected at most %u (max_batch), got %zu",
                        c->max_batch, json_array_size(img));
    for (size_t i = 0; i < json_array_size(img); i++) {
        int rc = json_image(in, json_array_get(img, i), e);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int api_parse_json(struct predict_input *in, const char *body, size_t len, const struct cfg *c,
                   struct api_error *e)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return api_fail(e, API_E_INVALID_REQUEST, "JSON body, line %d column %d: %s", jerr.line, jerr.column,
                        jerr.text);
    int rc = 0;
    const char *image_key = in->batch ? "images" : "image";
    const char *key;
    json_t *v;
    if (!json_is_object(root))
        rc = api_fail(e, API_E_INVALID_REQUEST, "JSON body: expected an object with \"%s\"", image_key);
    json_object_foreach(root, key, v)
    {
        if (rc == 0 && strcmp(key, image_key) != 0)
            rc = api_param_json(&in->params, c, key, v, e);
    }
    json_t *img = json_object_get(root, image_key);
    if (rc == 0 && !img)
        rc = api_fail(e, API_E_INVALID_REQUEST, "JSON body: missing \"%s\"", image_key);
    if (rc == 0)
        rc = json_images(in, img, c, e);
    json_decref(root);
    if (rc != 0)
        predict_input_free(in);
    return rc;
}

/* --- multipart fields --------------------------------------------------------------------- */

void api_multipart_init(struct api_multipart *mp, struct predict_input *in, const struct cfg *c)
{
    memset(mp, 0, sizeof *mp);
    mp->in = in;
    mp->cfg = c;
}

void api_multipart_free(struct api_multipart *mp)
{
    if (!mp)
        return;
    free(mp->image);
    mp->image = NULL;
    mp->image_len = 0;
    mp->open = API_FIELD_NONE;
}

/* The field being collected is complete: an image moves into the input,
 * a text field is applied as a parameter. */
static int close_field(struct api_multipart *mp, struct api_error *e)
{
    enum api_field f = mp->open;
    mp->open = API_FIELD_NONE;
    if (f == API_FIELD_IMAGE) {
        uint8_t *png = mp->image;
        size_t len = mp->image_len;
        mp->image = NULL;
        mp->image_len = 0;
        return predict_input_add_image(mp->in, png, len, e);
    }
    if (f == API_FIELD_TEXT) {
        struct predict_params tmp = mp->in->params;
        mp->value[mp->value_len] = '\0';
        int rc = api_param_set(&tmp, mp->cfg, mp->key, mp->value, e);
        if (rc == 0)
            keep_query(&mp->in->params, &tmp);
        return rc;
    }
    return 0;
}

static int image_piece(struct api_multipart *mp, uint64_t off, const char *data, size_t size,
                       struct api_error *e)
{
    if (off == 0) {
        int rc = close_field(mp, e);
        if (rc != 0)
            return rc;
        if (!mp->in->batch && mp->n_images == 1)
            return api_fail(e, API_E_INVALID_REQUEST,
                            "multipart: expected one \"image\" field, got several (use /predict/batch)");
        if (mp->n_images == mp->cfg->max_batch)
            return api_fail(e, API_E_INVALID_REQUEST, "multipart: more than %u (max_batch) \"image\" fields",
                            mp->cfg->max_batch);
        mp->n_images++;
        mp->open = API_FIELD_IMAGE;
    } else if (mp->open != API_FIELD_IMAGE) {
        return api_fail(e, API_E_INVALID_REQUEST, "multipart: \"image\" data at offset %llu without a start",
                        (unsigned long long)off);
    }
    if (size == 0)
        return 0;
    uint8_t *d = bnn_fault_realloc(mp->image, mp->image_len + size);
    if (!d)
        return api_fail(e, API_E_INTERNAL, "multipart: out of memory");
    memcpy(d + mp->image_len, data, size);
    mp->image = d;
    mp->image_len += size;
    return 0;
}

static int text_piece(struct api_multipart *mp, const char *key, uint64_t off, const char *data, size_t size,
                      struct api_error *e)
{
    if (off == 0) {
        int rc = close_field(mp, e);
        if (rc != 0)
            return rc;
        snprintf(mp->key, sizeof mp->key, "%s", key);
        mp->value_len = 0;
        mp->open = API_FIELD_TEXT;
    }
    if (mp->open != API_FIELD_TEXT || strcmp(mp->key, key) != 0 || mp->value_len + size >= sizeof mp->value)
        return api_fail(e, API_E_INVALID_PARAMETER, "%s: value too long", key);
    memcpy(mp->value + mp->value_len, data, size);
    mp->value_len += size;
    return 0;
}

int api_multipart_field(struct api_multipart *mp, const char *key, uint64_t off, const char *data,
                        size_t size, struct api_error *e)
{
    char b[40];
    if (!key)
        key = "";
    if (strcmp(key, "image") == 0)
        return image_piece(mp, off, data, size, e);
    if (strcmp(key, "samples") == 0 || strcmp(key, "interval") == 0 || strcmp(key, "seed") == 0 ||
        strcmp(key, "mode") == 0 || strcmp(key, "set_coverage") == 0)
        return text_piece(mp, key, off, data, size, e);
    return api_fail(
        e, API_E_INVALID_REQUEST,
        "multipart: unknown field '%s' (expected image, samples, interval, seed, mode, set_coverage)",
        shown(key, b));
}

int api_multipart_finish(struct api_multipart *mp, struct api_error *e)
{
    int rc = close_field(mp, e);
    if (rc != 0)
        return rc;
    if (mp->in->n_images == 0)
        return api_fail(e, API_E_INVALID_REQUEST, "multipart: no \"image\" field");
    return 0;
}

/* --- one request's body ------------------------------------------------------------------ */

int api_request_begin(struct api_request *rq, struct predict_input *in, const struct cfg *c,
                      const char *content_type, const char *content_length, struct api_error *e)
{
    memset(rq, 0, sizeof *rq);
    rq->cfg = c;
    rq->in = in;
    if (content_length) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(content_length, &end, 10);
        if (!errno && end != content_length && api_body_cap(c, n, 1, e) != 0)
            return e->code;
    }
    rq->kind = api_body_kind(content_type);
    if (rq->kind == API_BODY_NONE || (in->batch && rq->kind == API_BODY_PNG))
        return api_fail(e, API_E_UNSUPPORTED_MEDIA_TYPE,
                        "Content-Type '%.80s' is not supported here; send %s",
                        content_type ? content_type : "(none)",
                        in->batch ? "application/json or multipart/form-data"
                                  : "image/png, multipart/form-data or application/json");
    if (rq->kind == API_BODY_MULTIPART)
        api_multipart_init(&rq->mp, in, c);
    return 0;
}

static void drop_raw(struct api_request *rq)
{
    free(rq->raw);
    rq->raw = NULL;
    rq->raw_len = rq->raw_cap = 0;
}

int api_request_admit(struct api_request *rq, size_t size)
{
    rq->received += size;
    /* Over the cap replaces a parse error (not out of memory), so that the
     * answer to an oversized body does not depend on where parsing stopped. */
    if (rq->err.code != API_E_BODY_TOO_LARGE && rq->err.code != API_E_INTERNAL &&
        api_body_cap(rq->cfg, rq->received, 0, &rq->err) != 0)
        drop_raw(rq);
    return rq->err.code == API_OK ? 0 : -1;
}

void api_request_append(struct api_request *rq, const char *data, size_t size)
{
    size_t need = rq->raw_len + size;
    if (need > rq->raw_cap) {
        size_t cap = rq->raw_cap ? rq->raw_cap : 16384;
        while (cap < need)
            cap *= 2;
        if (cap > rq->cfg->max_body_bytes)
            cap = rq->cfg->max_body_bytes > need ? rq->cfg->max_body_bytes : need;
        char *b = realloc(rq->raw, cap);
        if (!b) {
            api_fail(&rq->err, API_E_INTERNAL, "out of memory reading the body");
            drop_raw(rq);
            return;
        }
        rq->raw = b;
        rq->raw_cap = cap;
    }
    memcpy(rq->raw + rq->raw_len, data, size);
    rq->raw_len = need;
}

int api_request_field(struct api_request *rq, const char *key, uint64_t off, const char *data, size_t size)
{
    if (rq->err.code != API_OK)
        return -1;
    return api_multipart_field(&rq->mp, key, off, data, size, &rq->err) == 0 ? 0 : -1;
}

void api_request_malformed(struct api_request *rq)
{
    if (rq->err.code == API_OK)
        api_fail(&rq->err, API_E_INVALID_REQUEST, "malformed multipart/form-data body");
}

int api_request_finish(struct api_request *rq, struct api_error *e)
{
    int rc;
    if (rq->err.code != API_OK) {
        *e = rq->err;
        return e->code;
    }
    switch (rq->kind) {
    case API_BODY_PNG:
        rc = predict_input_add_image(rq->in, (uint8_t *)rq->raw, rq->raw_len, e); /* the bytes move */
        rq->raw = NULL;
        break;
    case API_BODY_JSON:
        rc = api_parse_json(rq->in, rq->raw ? rq->raw : "", rq->raw_len, rq->cfg, e);
        break;
    case API_BODY_MULTIPART:
        rc = api_multipart_finish(&rq->mp, e);
        break;
    default:
        rc = api_fail(e, API_E_INTERNAL, "unexpected body kind %d", (int)rq->kind);
    }
    drop_raw(rq);
    return rc;
}

void api_request_free(struct api_request *rq)
{
    if (!rq)
        return;
    drop_raw(rq);
    api_multipart_free(&rq->mp);
}

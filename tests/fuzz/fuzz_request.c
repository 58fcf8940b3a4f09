/* fuzz_request.c - libFuzzer harness for the request parsers of
 * api_request.h, the code that sees every byte a client sends before a PNG
 * is decoded. The first input byte picks the parser, the rest is its input:
 *   0 query string "k=v&k=v" through api_param_set
 *   1 Content-Type through api_body_kind
 *   2 base64 through api_base64_decode
 *   3 JSON body of /predict, 4 JSON body of /predict/batch (api_parse_json)
 *   5, 6 multipart fields: records [key length][key][piece length][piece]...
 *     through api_multipart_field / api_multipart_finish
 *   7, 8 a whole JSON body of /predict[/batch] in pieces of the first byte's
 *     size through api_request (the body cap, append, finish)
 * Checked besides ASan/UBSan: accepted parameters are in range, a parsed
 * input holds 1..max_batch non-empty images, failures carry a known code
 * and a message, and the error body is valid JSON.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_request.h"
#include "config.h"
#include "predict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_params(const struct predict_params *p, const struct cfg *c)
{
    if (p->samples < 1 || p->samples > c->max_samples || !(p->interval > 0 && p->interval < 1) ||
        p->seed > PREDICT_SEED_MAX || (p->mode != BNN_MODE_LRT && p->mode != BNN_MODE_WEIGHTS))
        abort();
}

static void check_error(const struct api_error *e, const struct cfg *c)
{
    if (e->code <= API_OK || e->code >= API_CODE_COUNT || !e->message[0] ||
        !memchr(e->message, '\0', sizeof e->message))
        abort();
    unsigned status = 0;
    char *body = api_error_body(e, c->overload_status, &status, NULL);
    if (!body)
        return; /* out of memory */
    json_error_t jerr;
    json_t *j = json_loads(body, 0, &jerr);
    if (!j || status < 400 || status > 599 ||
        !json_is_string(json_object_get(json_object_get(j, "error"), "code")))
        abort();
    json_decref(j);
    free(body);
}

static void fuzz_query(const char *s, size_t n, const struct cfg *c)
{
    struct predict_params p;
    predict_params_init(&p, c);
    char *copy = malloc(n + 1);
    if (!copy)
        return;
    memcpy(copy, s, n);
    copy[n] = '\0';
    char *save = NULL;
    for (char *kv = strtok_r(copy, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        const char *value = "";
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        struct api_error e = {0};
        if (api_param_set(&p, c, kv, value, &e) != 0) {
            check_error(&e, c);
            break;
        }
        check_params(&p, c);
    }
    free(copy);
}

static void check_input(const struct predict_input *in, const struct cfg *c)
{
    check_params(&in->params, c);
    if (in->n_images < 1 || in->n_images > (in->batch ? c->max_batch : 1))
        abort();
    for (size_t i = 0; i < in->n_images; i++)
        if (!in->images[i].png || in->images[i].len == 0)
            abort();
}

static void fuzz_json(const char *s, size_t n, int batch, const struct cfg *c)
{
    struct predict_input in;
    struct api_error e = {0};
    predict_input_init(&in, c, batch);
    if (api_parse_json(&in, s, n, c, &e) == 0) {
        check_input(&in, c);
    } else {
        check_error(&e, c);
        if (in.n_images != 0)
            abort(); /* a failed parse leaves nothing behind */
    }
    predict_input_free(&in);
}

static void fuzz_multipart(const uint8_t *d, size_t n, int batch, const struct cfg *c)
{
    struct predict_input in;
    struct api_multipart mp;
    struct api_error e = {0};
    predict_input_init(&in, c, batch);
    api_multipart_init(&mp, &in, c);
    char key[64] = "", prev[64] = "";
    uint64_t off = 0;
    int rc = 0;
    size_t i = 0;
    while (i < n && rc == 0) {
        size_t klen = d[i++] % 16;
        if (klen > n - i)
            break;
        memcpy(key, d + i, klen);
        key[klen] = '\0';
        i += klen;
        if (i >= n)
            break;
        size_t plen = d[i++];
        if (plen > n - i)
            plen = n - i;
        /* As MHD's post processor: the offset restarts with a new field. */
        if (strcmp(key, prev) != 0 || klen == 0)
            off = 0;
        rc = api_multipart_field(&mp, key, off, (const char *)d + i, plen, &e);
        off += plen;
        i += plen;
        memcpy(prev, key, sizeof prev);
    }
    if (rc == 0)
        rc = api_multipart_finish(&mp, &e);
    if (rc == 0)
        check_input(&in, c);
    else
        check_error(&e, c);
    api_multipart_free(&mp);
    predict_input_free(&in);
}

/* A JSON body as it arrives: pieces of 1..256 bytes through the cap. */
static void fuzz_body(const uint8_t *d, size_t n, int batch, const struct cfg *c)
{
    if (n < 1)
        return;
    size_t piece = (size_t)d[0] + 1;
    struct predict_input in;
    struct api_request rq;
    struct api_error e = {0};
    predict_input_init(&in, c, batch);
    if (api_request_begin(&rq, &in, c, "application/json", NULL, &e) != 0)
        abort();
    for (size_t i = 1; i < n; i += piece) {
        size_t k = n - i < piece ? n - i : piece;
        if (api_request_admit(&rq, k) == 0)
            api_request_append(&rq, (const char *)d + i, k);
    }
    if (api_request_finish(&rq, &e) == 0)
        check_input(&in, c);
    else
        check_error(&e, c);
    if (n - 1 > c->max_body_bytes && e.code != API_E_BODY_TOO_LARGE)
        abort(); /* the one cap holds whatever the pieces */
    api_request_free(&rq);
    predict_input_free(&in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct cfg c;
    cfg_defaults(&c);
    c.max_batch = 4;
    c.max_body_bytes = 64 << 10;
    c.max_samples = 1000;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 9) {
    case 0:
        fuzz_query(s, n, &c);
        break;
    case 1: {
        char *ct = malloc(n + 1);
        if (!ct)
            return 0;
        memcpy(ct, s, n);
        ct[n] = '\0';
        enum api_body_kind k = api_body_kind(ct);
        if (k != API_BODY_NONE && k != API_BODY_PNG && k != API_BODY_MULTIPART && k != API_BODY_JSON)
            abort();
        free(ct);
        break;
    }
    case 2: {
        uint8_t *out = NULL;
        size_t len = 0;
        if (api_base64_decode(&out, &len, s, n) == 0 && len > n)
            abort(); /* decoding only ever shrinks */
        free(out);
        break;
    }
    case 3:
    case 4:
        fuzz_json(s, n, data[0] % 9 == 4, &c);
        break;
    case 5:
    case 6:
        fuzz_multipart(data + 1, n, data[0] % 9 == 6, &c);
        break;
    default:
        fuzz_body(data + 1, n, data[0] % 9 == 8, &c);
        break;
    }
    return 0;
}

/* fuzz_request.c - libFuzzer harness for the request parsers of api.h, the
 * code that sees every byte a client sends before a PNG is decoded. The
 * first input byte picks the parser, the rest is its input:
 *   0 query string "k=v&k=v" through api_param_set
 *   1 Content-Type through api_body_kind
 *   2 base64 through api_base64_decode
 *   3 JSON body of /predict, 4 JSON body of /predict/batch (api_parse_json)
 *   5 multipart fields: records [key length][key][piece length][piece]...
 *     through api_multipart_field / api_multipart_finish
 * Checked besides ASan/UBSan: accepted parameters are in range, failures
 * carry a known code and a message, and the error body is valid JSON.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_params(const struct api_params *p, const struct cfg *c)
{
    if (p->samples < 1 || p->samples > c->max_samples || !(p->interval > 0 && p->interval < 1) ||
        p->seed > API_SEED_MAX || (p->mode != BNN_MODE_LRT && p->mode != BNN_MODE_WEIGHTS))
        abort();
}

static void check_error(const struct api_error *e, const struct cfg *c)
{
    if (e->code <= API_OK || e->code >= API_CODE_COUNT || !e->message[0] ||
        !memchr(e->message, '\0', sizeof e->message))
        abort();
    unsigned status = 0;
    char *body = api_error_body(e, c->overload_status, &status);
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
    struct api_params p;
    api_params_init(&p, c);
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

static void fuzz_json(const char *s, size_t n, int batch, const struct cfg *c)
{
    struct api_params p;
    struct api_images im = {0};
    struct api_error e = {0};
    api_params_init(&p, c);
    if (api_parse_json(&p, &im, s, n, batch, c, &e) == 0) {
        check_params(&p, c);
        if (im.n < 1 || im.n > (batch ? c->max_batch : 1))
            abort();
    } else {
        check_error(&e, c);
        if (im.n != 0)
            abort(); /* a failed parse leaves nothing behind */
    }
    api_images_free(&im);
}

static void fuzz_multipart(const uint8_t *d, size_t n, int batch, const struct cfg *c)
{
    struct api_params p;
    struct api_images im = {0};
    struct api_multipart mp;
    api_params_init(&p, c);
    api_multipart_init(&mp, &im, &p, c, batch);
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
        rc = api_multipart_field(&mp, key, NULL, off, (const char *)d + i, plen);
        off += plen;
        i += plen;
        memcpy(prev, key, sizeof prev);
    }
    if (rc == 0)
        rc = api_multipart_finish(&mp);
    if (rc == 0)
        check_params(&p, c);
    else
        check_error(&mp.err, c);
    api_images_free(&im);
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
    switch (data[0] % 7) {
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
        fuzz_json(s, n, data[0] % 7 == 4, &c);
        break;
    default:
        fuzz_multipart(data + 1, n, data[0] % 7 == 6, &c);
        break;
    }
    return 0;
}

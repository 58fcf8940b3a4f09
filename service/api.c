/* api.c - see api.h. */
#include "api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void api_error_prefix(struct api_error *e, const char *prefix)
{
    char msg[API_MSG_LEN];
    snprintf(msg, sizeof msg, "%.40s: %.200s", prefix, e->message);
    memcpy(e->message, msg, sizeof msg);
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

int api_code_retryable(enum api_code code)
{
    return code == API_E_OVERLOADED || code == API_E_DRAINING || code == API_E_TIMEOUT;
}

char *api_error_body(const struct api_error *e, unsigned overload_status, unsigned *status, size_t *len)
{
    *status = api_http_status(e->code, overload_status);
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", api_code_name(e->code), "message", e->message);
    if (!j)
        return NULL;
    char *s = api_dump(j, len);
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

/* log.c - leveled and access logging; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_LINE_MAX 2048

struct log {
    FILE *out;
    enum log_level level;
    enum log_format format;
    int access_log;
};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *name, enum log_level *out)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcmp(name, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -1;
}

const char *log_level_name(enum log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "?";
}

int log_format_parse(const char *name, enum log_format *out)
{
    if (strcmp(name, "text") == 0 || strcmp(name, "json") == 0) {
        *out = strcmp(name, "text") == 0 ? LOG_TEXT : LOG_JSON;
        return 0;
    }
    return -1;
}

struct log *log_new(FILE *out, const char *level, const char *format, int access_log, char err[LOG_ERR_LEN])
{
    enum log_level lv;
    enum log_format fmt;
    if (log_level_parse(level, &lv) != 0) {
        snprintf(err, LOG_ERR_LEN, "log_level: expected error|warn|info|debug, got '%s'", level);
        return NULL;
    }
    if (log_format_parse(format, &fmt) != 0) {
        snprintf(err, LOG_ERR_LEN, "log_format: expected text|json, got '%s'", format);
        return NULL;
    }
    struct log *lg = calloc(1, sizeof *lg);
    if (!lg) {
        snprintf(err, LOG_ERR_LEN, "log_new: out of memory");
        return NULL;
    }
    lg->out = out;
    lg->level = lv;
    lg->format = fmt;
    lg->access_log = access_log;
    return lg;
}

void log_free(struct log *lg)
{
    free(lg);
}

int log_enabled(const struct log *lg, enum log_level level)
{
    return lg && level <= lg->level;
}

/* ISO 8601 UTC with milliseconds: "2026-11-26T09:30:00.123Z". */
static void timestamp(char buf[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Appends s as the body of a JSON string (no quotes) at buf[*pos], never
 * past len-1; control characters become \u00XX. */
static void json_escape(char *buf, size_t len, size_t *pos, const char *s)
{
    size_t p = *pos;
    for (; s && *s && p + 7 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[p++] = '\\';
            buf[p++] = (char)c;
        } else if (c < 0x20) {
            p += (size_t)snprintf(buf + p, len - p, "\\u%04x", c);
        } else {
            buf[p++] = (char)c;
        }
    }
    buf[p < len ? p : len - 1] = '\0';
    *pos = p;
}

static void emit(struct log *lg, const char *line)
{
    /* One fputs per line: POSIX stdio locks the stream per call, so lines
     * from different threads stay whole. */
    fputs(line, lg->out);
    fflush(lg->out);
}

void log_msg(struct log *lg, enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(lg, level))
        return;
    char msg[LOG_LINE_MAX / 2], ts[32], line[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* libmicrohttpd's messages end with a newline of their own. */
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    timestamp(ts);
    if (lg->format == LOG_JSON) {
        size_t p = (size_t)snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                                    log_level_name(level));
        json_escape(line, sizeof line - 4, &p, msg);
        snprintf(line + p, sizeof line - p, "\"}\n");
    } else {
        snprintf(line, sizeof line, "%s %s %s\n", ts, log_level_name(level), msg);
    }
    emit(lg, line);
}

static const char *dash(const char *s)
{
    return s && *s ? s : "-";
}

size_t log_format_access(char *buf, size_t len, enum log_format format, const struct log_access *a)
{
    char ts[32];
    timestamp(ts);
    if (format == LOG_TEXT) {
        /* Request path and id are client-chosen; %s is fine since MHD has
         * already rejected control characters in the request line. */
        int n = snprintf(buf, len, "%s access %s %s %s %u %zu %.3fms id=%s samples=%u", ts, dash(a->remote),
                         dash(a->method), dash(a->path), a->status, a->bytes, a->ms, dash(a->request_id),
                         a->samples);
        return n < 0 ? 0 : (size_t)n;
    }
    size_t p =
        (size_t)snprintf(buf, len, "{\"ts\":\"%s\",\"level\":\"info\",\"msg\":\"access\",\"remote\":\"", ts);
    if (p >= len)
        return p;
    json_escape(buf, len, &p, dash(a->remote));
    p += (size_t)snprintf(buf + p, p < len ? len - p : 0, "\",\"method\":\"");
    if (p < len)
        json_escape(buf, len, &p, dash(a->method));
    p += (size_t)snprintf(buf + p, p < len ? len - p : 0, "\",\"path\":\"");
    if (p < len)
        json_escape(buf, len, &p, dash(a->path));
    p += (size_t)snprintf(buf + p, p < len ? len - p : 0,
                          "\",\"status\":%u,\"bytes\":%zu,\"ms\":%.3f,\"request_id\":\"", a->status, a->bytes,
                          a->ms);
    if (p < len)
        json_escape(buf, len, &p, dash(a->request_id));
    p += (size_t)snprintf(buf + p, p < len ? len - p : 0, "\",\"samples\":%u}", a->samples);
    return p;
}

void log_access(struct log *lg, const struct log_access *a)
{
    if (!lg || !lg->access_log)
        return;
    char line[LOG_LINE_MAX];
    size_t n = log_format_access(line, sizeof line - 1, lg->format, a);
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n] = '\n';
    line[n + 1] = '\0';
    emit(lg, line);
}

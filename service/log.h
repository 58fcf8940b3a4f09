/* log.h - the daemon's leveled log and per-request access log, as text or
 * JSON lines on one stream (stderr by default).
 *
 * Each line is formatted into a local buffer and written with one stdio call,
 * so lines from different threads never interleave. The level is checked
 * before anything is formatted. A struct log is immutable after log_new and
 * may be shared by all threads; it borrows the FILE it writes to.
 */
#ifndef BNN_LOG_H
#define BNN_LOG_H

#include <stddef.h>
#include <stdio.h>

#define LOG_ERR_LEN 256

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
enum log_format { LOG_TEXT = 0, LOG_JSON = 1 };

struct log;

/* One access-log record; strings are borrowed for the call (NULL = "-"). */
struct log_access {
    const char *method;
    const char *path;
    unsigned status;
    size_t bytes; /* response body bytes */
    double ms;    /* from first handler call to completion */
    const char *request_id;
    unsigned samples;   /* Monte-Carlo passes run for the request, 0 if none */
    const char *remote; /* client address */
};

/* "error", "warn", "info", "debug" -> level; -1 for an unknown name. */
int log_level_parse(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);
/* "text", "json" -> format; -1 for an unknown name. */
int log_format_parse(const char *name, enum log_format *out);

/* out is borrowed until log_free. level and format are names as above.
 * Returns NULL with err filled for an unknown name or out of memory. Owned
 * by caller. */
struct log *log_new(FILE *out, const char *level, const char *format, int access_log, char err[LOG_ERR_LEN]);

/* NULL-safe; does not close the stream. */
void log_free(struct log *lg);

/* True when a message at level would be written (NULL logger: never). */
int log_enabled(const struct log *lg, enum log_level level);

/* printf-style message; nothing is formatted when the level is off. */
void log_msg(struct log *lg, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One access line, when access logging is on. */
void log_access(struct log *lg, const struct log_access *a);

/* Formats one access line (no trailing newline) into buf; returns the length
 * that was needed, like snprintf. Exposed for tests. */
size_t log_format_access(char *buf, size_t len, enum log_format format, const struct log_access *a);

#endif

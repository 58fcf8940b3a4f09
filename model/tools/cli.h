/* cli.h - the strict argument parsers and clock the bnn-* tools share.
 * Header-only (each tool is one .c file). Parsers take the whole string:
 * no sign on unsigned values, no trailing garbage, finite numbers only;
 * they return 0, or -1 leaving *out unchanged.
 */
#ifndef BNN_TOOLS_CLI_H
#define BNN_TOOLS_CLI_H

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

static inline int cli_parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return -1;
    *out = (size_t)v;
    return 0;
}

static inline int cli_parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* Monotonic seconds, for durations. */
static inline double cli_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif

/* cli.h - what the bnn-* tools share on the command line: strict argument
 * parsers, the getopt epilogue and the usage-error messages, and a clock.
 * Header-only (each tool is one .c file).
 *
 * Parsers take the whole string: no sign on unsigned values, no trailing
 * garbage, finite numbers only (cli_parse_limit also "inf"); they return 0,
 * or -1 leaving *out unchanged.
 *
 * Each tool's main is parse options / run / report. Its parse_options
 * returns CLI_RUN to go on, or the exit status to leave with: 0 after
 * --help, 2 after a usage error (the message already on stderr, in the
 * form "PROG: error: what" followed by "try 'PROG --help'").
 */
#ifndef BNN_TOOLS_CLI_H
#define BNN_TOOLS_CLI_H

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLI_RUN (-1) /* parse_options: the options are good, run */

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

/* A threshold: a number >= 0, or "inf" (never reached). */
static inline int cli_parse_limit(const char *s, double *out)
{
    if (strcmp(s, "inf") == 0) {
        *out = INFINITY;
        return 0;
    }
    double v;
    if (cli_parse_double(s, &v) || v < 0)
        return -1;
    *out = v;
    return 0;
}

/* --threads: an integer in [1, 64]; the expectation it failed, or NULL. */
static inline const char *cli_threads(const char *s, size_t *out)
{
    return cli_parse_size(s, out) || *out < 1 || *out > 64 ? "an integer in [1, 64]" : NULL;
}

/* --interval: a coverage in (0, 1); the expectation it failed, or NULL. */
static inline const char *cli_coverage(const char *s, double *out)
{
    return cli_parse_double(s, out) || !(*out > 0 && *out < 1) ? "a coverage in (0, 1)" : NULL;
}

/* "PROG: error: WHAT" (": 'ARG'" when arg is not NULL) and the --help hint
 * on stderr; returns 2, the usage-error exit status. */
static inline int cli_usage_error(const char *prog, const char *what, const char *arg)
{
    if (arg)
        fprintf(stderr, "%s: error: %s: '%s'\ntry '%s --help'\n", prog, what, arg, prog);
    else
        fprintf(stderr, "%s: error: %s\ntry '%s --help'\n", prog, what, prog);
    return 2;
}

/* An option's bad value: "PROG: error: --NAME: expected EXPECTED, got 'ARG'"
 * with NAME found in opts by the value getopt_long returned. Returns 2. */
static inline int cli_bad_value(const char *prog, const struct option *opts, int c, const char *expected,
                                const char *arg)
{
    const char *name = "?";
    for (const struct option *o = opts; o->name; o++)
        if (o->val == c)
            name = o->name;
    fprintf(stderr, "%s: error: --%s: expected %s, got '%s'\ntry '%s --help'\n", prog, name, expected, arg,
            prog);
    return 2;
}

/* getopt_long returned '?': it has reported the unknown option or missing
 * argument; add the hint. Returns 2. */
static inline int cli_unknown_option(const char *prog)
{
    fprintf(stderr, "try '%s --help'\n", prog);
    return 2;
}

/* One option's value into a tool's options (opts, the tool's own struct):
 * NULL when it is good, else what was expected ("an integer 1..64"). */
typedef const char *(*cli_parse_fn)(void *opts, int c, const char *arg);

/* The option loop every tool runs: getopt_long over argv with the short
 * options `shorts` and the long ones `opts`; help_val (--help) prints
 * usage to stdout and returns 0, an unknown option or a bad value is a
 * usage error (2); each other option goes to parse. Returns CLI_RUN when
 * all were good (cli_finish then checks what is left). */
static inline int cli_getopt(const char *prog, int argc, char **argv, const char *shorts,
                             const struct option *opts, int help_val, void (*usage)(FILE *),
                             cli_parse_fn parse, void *o)
{
    int c;
    while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
        if (c == help_val) {
            usage(stdout);
            return 0;
        }
        if (c == '?')
            return cli_unknown_option(prog);
        const char *expected = parse(o, c, optarg);
        if (expected)
            return cli_bad_value(prog, opts, c, expected, optarg);
    }
    return CLI_RUN;
}

/* The getopt epilogue every tool ends its option loop with: operands left
 * over, or a false `complete` (required options missing, as `missing`
 * says), are usage errors. Returns CLI_RUN or 2. */
static inline int cli_finish(const char *prog, int argc, char **argv, int complete, const char *missing)
{
    if (optind < argc)
        return cli_usage_error(prog, "unexpected argument", argv[optind]);
    if (!complete)
        return cli_usage_error(prog, missing, NULL);
    return CLI_RUN;
}

/* Monotonic seconds, for durations. */
static inline double cli_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif

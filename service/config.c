/* config.c - the configuration table and its parsers.
 *
 * Invariant: cfg_keys[] has exactly one row per member of struct cfg, and
 * every row's default text parses under its own rules, so cfg_defaults is
 * the same code path as a file or an environment variable. Values are parsed
 * strictly: the whole text must be consumed, numbers must be in range, and
 * the message names the key, the accepted range and the rejected text.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum cfg_type {
    CFG_STR,    /* char[size]; printable characters only */
    CFG_UINT,   /* unsigned in [min, max] */
    CFG_SIZE,   /* size_t in [min, max], suffixes B, KiB, MiB, GiB, kB, MB, GB */
    CFG_DOUBLE, /* finite double; open interval (min, max) when open is set */
    CFG_BOOL,   /* true/false, 1/0, yes/no, on/off */
    CFG_CHOICE  /* char[size] holding one of choices[] */
};

struct cfg_key {
    const char *name;
    enum cfg_type type;
    size_t offset, size;
    double min, max;
    int open; /* CFG_DOUBLE: bounds are exclusive */
    const char *const *choices;
    const char *def;
    const char *help;
};

static const char *const log_formats[] = {"text", "json", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};

#define F(member) offsetof(struct cfg, member), sizeof(((struct cfg *)0)->member)

/* Bounds are deliberately generous: they reject typos and nonsense (a port
 * of 80000, a negative worker count), not unusual but valid deployments. */
static const struct cfg_key cfg_keys[] = {
    {"host", CFG_STR, F(host), 0, 0, 0, NULL, "127.0.0.1",
     "listen address (IPv4 or IPv6 literal; 0.0.0.0 or :: for all interfaces)"},
    {"port", CFG_UINT, F(port), 0, 65535, 0, NULL, "8080", "TCP port; 0 picks any free port"},
    {"model", CFG_STR, F(model), 0, 0, 0, NULL, "model/weights/mnist-bnn.safetensors",
     "weights file (safetensors) loaded at start-up"},
    {"web_root", CFG_STR, F(web_root), 0, 0, 0, NULL, "service/web",
     "directory of static files served under GET /"},
    {"workers", CFG_UINT, F(workers), 0, 256, 0, NULL, "0", "compute threads; 0 = number of CPUs"},
    {"http_threads", CFG_UINT, F(http_threads), 1, 64, 0, NULL, "1",
     "libmicrohttpd polling threads (HTTP is cheap; compute runs on the workers)"},
    {"queue_depth", CFG_UINT, F(queue_depth), 1, 1000000, 0, NULL, "64",
     "pending prediction jobs before new ones are refused with overload_status"},
    {"overload_status", CFG_UINT, F(overload_status), 429, 503, 0, NULL, "503",
     "HTTP status when the queue is full: 503 or 429"},
    {"retry_after", CFG_UINT, F(retry_after), 0, 3600, 0, NULL, "1",
     "seconds sent in Retry-After with overload answers"},
    {"default_samples", CFG_UINT, F(default_samples), 1, 1000000, 0, NULL, "100",
     "Monte-Carlo passes T when the request does not say"},
    {"max_samples", CFG_UINT, F(max_samples), 1, 1000000, 0, NULL, "10000",
     "largest T a request may ask for; above it the answer is 400"},
    {"default_interval", CFG_DOUBLE, F(default_interval), 0, 1, 1, NULL, "0.95",
     "interval coverage when the request does not say, in (0, 1)"},
    {"uncertain_threshold", CFG_DOUBLE, F(uncertain_threshold), 0, 10, 0, NULL, "0.174",
     "epistemic uncertainty (mutual information, nats) above which \"uncertain\" is true; 0.174 flags 5 % of "
     "clean MNIST test digits (docs/report.md)"},
    {"max_body_bytes", CFG_SIZE, F(max_body_bytes), 1024, 1024.0 * 1024 * 1024, 0, NULL, "1MiB",
     "largest request body; above it the answer is 413"},
    {"max_image_side", CFG_UINT, F(max_image_side), 1, 100000, 0, NULL, "4096",
     "largest PNG width or height, checked before decoding; above it the answer is 413"},
    {"max_batch", CFG_UINT, F(max_batch), 1, 4096, 0, NULL, "64", "images per POST /predict/batch"},
    {"connection_limit", CFG_UINT, F(connection_limit), 1, 1000000, 0, NULL, "512",
     "simultaneous connections (libmicrohttpd closes further ones)"},
    {"per_ip_connection_limit", CFG_UINT, F(per_ip_connection_limit), 0, 1000000, 0, NULL, "0",
     "simultaneous connections per client address; 0 = no limit"},
    {"connection_timeout", CFG_UINT, F(connection_timeout), 0, 86400, 0, NULL, "30",
     "seconds a connection may stay idle before it is closed; 0 = never"},
    {"connection_memory_limit", CFG_SIZE, F(connection_memory_limit), 4096, 16.0 * 1024 * 1024, 0, NULL,
     "64KiB", "libmicrohttpd memory pool per connection (headers and IO buffers)"},
    {"job_timeout_ms", CFG_UINT, F(job_timeout_ms), 1, 3600000, 0, NULL, "30000",
     "milliseconds from enqueue to result before the request fails with 503"},
    {"drain_timeout", CFG_UINT, F(drain_timeout), 0, 3600, 0, NULL, "20",
     "seconds in-flight requests get to finish after SIGTERM or SIGINT"},
    {"log_format", CFG_CHOICE, F(log_format), 0, 0, 0, log_formats, "text", "log lines as text or json"},
    {"log_level", CFG_CHOICE, F(log_level), 0, 0, 0, log_levels, "info",
     "least severe level logged: error, warn, info or debug"},
    {"access_log", CFG_BOOL, F(access_log), 0, 0, 0, NULL, "true", "one log line per request"},
    {"cors_origins", CFG_STR, F(cors_origins), 0, 0, 0, NULL, "",
     "comma-separated origins allowed by CORS (* for any); empty = no CORS headers"},
};

#undef F

#define N_KEYS (sizeof cfg_keys / sizeof cfg_keys[0])
#define ENV_PREFIX "BNN_SERVE_"

static void set_err(char err[CFG_ERR_LEN], const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, CFG_ERR_LEN, fmt, ap);
    va_end(ap);
}

size_t cfg_key_count(void)
{
    return N_KEYS;
}

const char *cfg_key_name(size_t i)
{
    return i < N_KEYS ? cfg_keys[i].name : NULL;
}

const char *cfg_key_help(size_t i)
{
    return i < N_KEYS ? cfg_keys[i].help : NULL;
}

/* Flags spell keys with '-' ("--max-samples"); accept both spellings. */
static const struct cfg_key *find_key(const char *name, size_t len)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *k = cfg_keys[i].name;
        if (strlen(k) != len)
            continue;
        size_t j = 0;
        while (j < len && (name[j] == k[j] || (name[j] == '-' && k[j] == '_')))
            j++;
        if (j == len)
            return &cfg_keys[i];
    }
    return NULL;
}

/* Decimal digits only: no sign, no spaces, no hex, no empty string. */
static int parse_u64(const char *s, const char **end, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *end = p;
    *out = v;
    return 0;
}

static int suffix_eq(const char *s, const char *suffix)
{
    return strcasecmp(s, suffix) == 0;
}

/* Multiplier for a size suffix; binary unless the SI spelling (kB, MB, GB)
 * says otherwise, since buffers and pools are naturally powers of two. */
static int size_multiplier(const char *s, uint64_t *mult)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } table[] = {
        {"", 1},         {"B", 1},        {"K", 1u << 10},   {"KiB", 1u << 10},
        {"kB", 1000},    {"KB", 1000},    {"M", 1u << 20},   {"MiB", 1u << 20},
        {"MB", 1000000}, {"G", 1u << 30}, {"GiB", 1u << 30}, {"GB", 1000000000},
    };
    /* Case matters only to tell nothing apart here except kB/KB, which agree;
     * compare case-insensitively but prefer the exact row. */
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(s, table[i].suffix) == 0) {
            *mult = table[i].mult;
            return 0;
        }
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (suffix_eq(s, table[i].suffix)) {
            *mult = table[i].mult;
            return 0;
        }
    return -1;
}

static int parse_double(const char *s, double *out)
{
    /* strtod would also take "inf", "nan", hex floats and leading spaces. */
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p) && !strchr(".eE+-", *p))
            return -1;
    if (!*s)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int find_choice(const char *const *choices, const char *s)
{
    for (int i = 0; choices[i]; i++)
        if (strcmp(choices[i], s) == 0)
            return i;
    return -1;
}

static void choices_text(const char *const *choices, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; choices[i] && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? "|" : "", choices[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static int set_value(struct cfg *c, const struct cfg_key *k, const char *value, char err[CFG_ERR_LEN])
{
    char *field = (char *)c + k->offset;
    switch (k->type) {
    case CFG_STR: {
        size_t n = strlen(value);
        if (n >= k->size) {
            set_err(err, "%s: expected at most %zu characters, got %zu", k->name, k->size - 1, n);
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            if (iscntrl((unsigned char)value[i])) {
                set_err(err, "%s: control character 0x%02x at position %zu", k->name,
                        (unsigned)(unsigned char)value[i], i);
                return -1;
            }
        /* Zero the tail too, so equal settings give equal structs (memcmp). */
        memset(field, 0, k->size);
        memcpy(field, value, n);
        return 0;
    }
    case CFG_UINT: {
        uint64_t v;
        const char *end;
        if (parse_u64(value, &end, &v) || *end || v < k->min || v > k->max) {
            set_err(err, "%s: expected an integer in %.0f..%.0f, got '%.64s'", k->name, k->min, k->max,
                    value);
            return -1;
        }
        *(unsigned *)field = (unsigned)v;
        return 0;
    }
    case CFG_SIZE: {
        uint64_t v, mult;
        const char *end;
        if (parse_u64(value, &end, &v) || size_multiplier(end, &mult) || (v && mult > UINT64_MAX / v) ||
            (double)(v * mult) < k->min || (double)(v * mult) > k->max || v * mult > SIZE_MAX) {
            set_err(
                err,
                "%s: expected a size in %.0f..%.0f bytes (suffixes KiB, MiB, GiB, kB, MB, GB), got '%.64s'",
                k->name, k->min, k->max, value);
            return -1;
        }
        *(size_t *)field = (size_t)(v * mult);
        return 0;
    }
    case CFG_DOUBLE: {
        double v;
        int bad = parse_double(value, &v) != 0;
        if (!bad)
            bad = k->open ? !(v > k->min && v < k->max) : !(v >= k->min && v <= k->max);
        if (bad) {
            set_err(err, "%s: expected a number in %c%g, %g%c, got '%.64s'", k->name, k->open ? '(' : '[',
                    k->min, k->max, k->open ? ')' : ']', value);
            return -1;
        }
        *(double *)field = v;
        return 0;
    }
    case CFG_BOOL: {
        int v;
        if (parse_bool(value, &v)) {
            set_err(err, "%s: expected true or false (also 1/0, yes/no, on/off), got '%.64s'", k->name,
                    value);
            return -1;
        }
        *(int *)field = v;
        return 0;
    }
    case CFG_CHOICE: {
        int i = find_choice(k->choices, value);
        if (i < 0) {
            char list[128];
            choices_text(k->choices, list, sizeof list);
            set_err(err, "%s: expected one of %s, got '%.64s'", k->name, list, value);
            return -1;
        }
        memset(field, 0, k->size);
        snprintf(field, k->size, "%s", k->choices[i]);
        return 0;
    }
    }
    set_err(err, "%s: internal error: unknown type", k->name);
    return -1;
}

void cfg_defaults(struct cfg *c)
{
    memset(c, 0, sizeof *c);
    /* Cannot fail: test_config checks every default against its own row. */
    for (size_t i = 0; i < N_KEYS; i++)
        (void)set_value(c, &cfg_keys[i], cfg_keys[i].def, NULL);
}

int cfg_set(struct cfg *c, const char *key, const char *value, char err[CFG_ERR_LEN])
{
    if (!key || !value) {
        set_err(err, "cfg_set: NULL %s", key ? "value" : "key");
        return -1;
    }
    const struct cfg_key *k = find_key(key, strlen(key));
    if (!k) {
        set_err(err, "unknown key '%.64s'", key);
        return -1;
    }
    return set_value(c, k, value, err);
}

/* Parses one "key = value" line (already without its newline) into c.
 * Values may be written in double quotes, with \" and \\ escapes, to keep
 * leading or trailing spaces or a '#'; unquoted, a '#' preceded by a space
 * starts a comment. */
static int parse_line(struct cfg *c, const char *line, size_t len, const char *where, char err[CFG_ERR_LEN])
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len || line[i] == '#')
        return 0;
    size_t key_start = i;
    while (i < len && (isalnum((unsigned char)line[i]) || line[i] == '_' || line[i] == '-'))
        i++;
    size_t key_len = i - key_start;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (key_len == 0 || i == len || line[i] != '=') {
        set_err(err, "%s: expected 'key = value', got '%.*s'", where, (int)(len < 64 ? len : 64), line);
        return -1;
    }
    const struct cfg_key *k = find_key(line + key_start, key_len);
    if (!k) {
        set_err(err, "%s: unknown key '%.*s'", where, (int)(key_len < 64 ? key_len : 64), line + key_start);
        return -1;
    }
    i++;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;

    char value[1024 + 8];
    size_t n = 0;
    if (i < len && line[i] == '"') {
        for (i++;; i++) {
            if (i == len) {
                set_err(err, "%s: %s: unterminated quoted value", where, k->name);
                return -1;
            }
            char ch = line[i];
            if (ch == '"')
                break;
            if (ch == '\\') {
                if (i + 1 == len || (line[i + 1] != '"' && line[i + 1] != '\\')) {
                    set_err(err, "%s: %s: only \\\" and \\\\ may be escaped in a quoted value", where,
                            k->name);
                    return -1;
                }
                ch = line[++i];
            }
            if (n + 1 >= sizeof value) {
                set_err(err, "%s: %s: value too long", where, k->name);
                return -1;
            }
            value[n++] = ch;
        }
        for (i++; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
            ;
        if (i < len && line[i] != '#') {
            set_err(err, "%s: %s: unexpected text after the quoted value: '%.*s'", where, k->name,
                    (int)(len - i < 32 ? len - i : 32), line + i);
            return -1;
        }
    } else {
        size_t end = i;
        while (end < len &&
               !(line[end] == '#' && (end == i || line[end - 1] == ' ' || line[end - 1] == '\t')))
            end++;
        while (end > i && (line[end - 1] == ' ' || line[end - 1] == '\t'))
            end--;
        if (end - i + 1 > sizeof value) {
            set_err(err, "%s: %s: value too long", where, k->name);
            return -1;
        }
        n = end - i;
        memcpy(value, line + i, n);
    }
    value[n] = '\0';
    if (memchr(value, '\0', n)) {
        set_err(err, "%s: %s: NUL byte in value", where, k->name);
        return -1;
    }
    char sub[CFG_ERR_LEN];
    if (set_value(c, k, value, sub)) {
        set_err(err, "%s: %s", where, sub);
        return -1;
    }
    return 0;
}

int cfg_parse_text(struct cfg *c, const char *text, size_t len, const char *origin, char err[CFG_ERR_LEN])
{
    const char *name = origin ? origin : "config";
    size_t pos = 0;
    unsigned line_no = 0;
    while (pos < len) {
        line_no++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t line_len = nl ? (size_t)(nl - (text + pos)) : len - pos;
        size_t eff = line_len;
        if (eff > 0 && text[pos + eff - 1] == '\r')
            eff--;
        char where[128];
        snprintf(where, sizeof where, "%.100s:%u", name, line_no);
        if (parse_line(c, text + pos, eff, where, err))
            return -1;
        pos += line_len + (nl ? 1 : 0);
    }
    return 0;
}

int cfg_load_file(struct cfg *c, const char *path, char err[CFG_ERR_LEN])
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(err, "open %s: %s", path, strerror(errno));
        return -1;
    }
    /* A config file is a few KiB; 1 MiB means the path names something else. */
    enum { MAX_CONFIG = 1 << 20 };
    char *buf = malloc(MAX_CONFIG + 1);
    if (!buf) {
        fclose(f);
        set_err(err, "%s: out of memory", path);
        return -1;
    }
    size_t n = fread(buf, 1, MAX_CONFIG + 1, f);
    int rc = -1;
    if (ferror(f))
        set_err(err, "read %s: %s", path, strerror(errno));
    else if (n > MAX_CONFIG)
        set_err(err, "%s: larger than %d bytes", path, MAX_CONFIG);
    else
        rc = cfg_parse_text(c, buf, n, path, err);
    free(buf);
    fclose(f);
    return rc;
}

int cfg_apply_env(struct cfg *c, char *const *envp, char err[CFG_ERR_LEN])
{
    const size_t plen = strlen(ENV_PREFIX);
    for (size_t e = 0; envp && envp[e]; e++) {
        const char *var = envp[e];
        if (strncmp(var, ENV_PREFIX, plen) != 0)
            continue;
        const char *eq = strchr(var, '=');
        if (!eq)
            continue;
        const char *name = var + plen;
        size_t name_len = (size_t)(eq - name);
        char key[64];
        if (name_len == 0 || name_len >= sizeof key) {
            set_err(err, "environment %.*s: unknown key", (int)(eq - var < 80 ? eq - var : 80), var);
            return -1;
        }
        for (size_t i = 0; i < name_len; i++)
            key[i] = (char)tolower((unsigned char)name[i]);
        key[name_len] = '\0';
        /* Only the upper-case spelling is ours; BNN_SERVE_port is a typo. */
        const struct cfg_key *k = NULL;
        int upper = 1;
        for (size_t i = 0; i < name_len; i++)
            if (islower((unsigned char)name[i]) || name[i] == '-')
                upper = 0;
        if (upper)
            k = find_key(key, name_len);
        if (!k) {
            set_err(err, "environment %.*s: unknown key '%s'", (int)(eq - var), var, key);
            return -1;
        }
        char sub[CFG_ERR_LEN];
        if (set_value(c, k, eq + 1, sub)) {
            set_err(err, "environment %.*s: %s", (int)(eq - var), var, sub);
            return -1;
        }
    }
    return 0;
}

int cfg_validate(const struct cfg *c, char err[CFG_ERR_LEN])
{
    if (c->overload_status != 503 && c->overload_status != 429) {
        set_err(err, "overload_status: expected 503 or 429, got %u", c->overload_status);
        return -1;
    }
    if (c->default_samples > c->max_samples) {
        set_err(err, "default_samples: %u is above max_samples %u", c->default_samples, c->max_samples);
        return -1;
    }
    if (!c->host[0]) {
        set_err(err, "host: must not be empty");
        return -1;
    }
    if (!c->model[0]) {
        set_err(err, "model: must not be empty");
        return -1;
    }
    if (!(c->default_interval > 0 && c->default_interval < 1)) {
        set_err(err, "default_interval: expected a number in (0, 1), got %g", c->default_interval);
        return -1;
    }
    if (find_choice(log_formats, c->log_format) < 0) {
        set_err(err, "log_format: expected one of text|json, got '%.8s'", c->log_format);
        return -1;
    }
    if (find_choice(log_levels, c->log_level) < 0) {
        set_err(err, "log_level: expected one of error|warn|info|debug, got '%.16s'", c->log_level);
        return -1;
    }
    if (c->per_ip_connection_limit > c->connection_limit) {
        set_err(err, "per_ip_connection_limit: %u is above connection_limit %u", c->per_ip_connection_limit,
                c->connection_limit);
        return -1;
    }
    return 0;
}

/* Shortest text that reads back as exactly v. */
static void format_double(char *buf, size_t len, double v)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void format_size(char *buf, size_t len, size_t v)
{
    if (v && v % (1u << 30) == 0)
        snprintf(buf, len, "%zuGiB", v >> 30);
    else if (v && v % (1u << 20) == 0)
        snprintf(buf, len, "%zuMiB", v >> 20);
    else if (v && v % (1u << 10) == 0)
        snprintf(buf, len, "%zuKiB", v >> 10);
    else
        snprintf(buf, len, "%zu", v);
}

/* Quotes a string only when the plain form would not read back the same. */
static void print_string(FILE *out, const char *s)
{
    size_t n = strlen(s);
    int quote = n > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '"' || s[n - 1] == ' ' || s[n - 1] == '\t' ||
                          strchr(s, '#'));
    if (!quote) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

void cfg_print(const struct cfg *c, FILE *out)
{
    fputs("# bnn-serve configuration: one \"key = value\" per line, '#' starts a comment.\n"
          "# Precedence: built-in defaults < this file (--config FILE) < environment\n"
          "# BNN_SERVE_<KEY> (e.g. BNN_SERVE_MAX_SAMPLES=500) < flags (--max-samples 500).\n"
          "# Sizes take KiB/MiB/GiB (or kB/MB/GB); booleans true/false, yes/no, on/off, 1/0.\n",
          out);
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct cfg_key *k = &cfg_keys[i];
        const char *field = (const char *)c + k->offset;
        char buf[64];
        fprintf(out, "\n# %s (default: %s)\n%s = ", k->help, k->def[0] ? k->def : "empty", k->name);
        switch (k->type) {
        case CFG_STR:
        case CFG_CHOICE:
            print_string(out, field);
            break;
        case CFG_UINT:
            fprintf(out, "%u", *(const unsigned *)field);
            break;
        case CFG_SIZE:
            format_size(buf, sizeof buf, *(const size_t *)field);
            fputs(buf, out);
            break;
        case CFG_DOUBLE:
            format_double(buf, sizeof buf, *(const double *)field);
            fputs(buf, out);
            break;
        case CFG_BOOL:
            fputs(*(const int *)field ? "true" : "false", out);
            break;
        }
        fputc('\n', out);
    }
}

/* config.c - the configuration table, its value parsers, and the
 * environment; the file syntax and printing are config_file.c's.
 *
 * Invariant: cfg_keys[] has exactly one row per member of struct cfg, and
 * every row's default text parses under its own rules, so cfg_defaults is
 * the same code path as a file or an environment variable. Values are parsed
 * strictly: the whole text must be consumed, numbers must be in range, and
 * the message names the key, the accepted range and the rejected text.
 */
#include "config.h"
#include "config_keys.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const log_formats[] = {"text", "json", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};

#define F(member) offsetof(struct cfg, member), sizeof(((struct cfg *)0)->member)

/* Bounds are deliberately generous: they reject typos and nonsense (a port
 * of 80000, a negative worker count), not unusual but valid deployments. */
const struct cfg_key cfg_keys[] = {
    {"host", CFG_STR, F(host), 0, 0, 0, NULL, "127.0.0.1",
     "listen address (IPv4 or IPv6 literal; 0.0.0.0 or :: for all interfaces)"},
    {"port", CFG_UINT, F(port), 0, 65535, 0, NULL, "8080", "TCP port; 0 picks any free port"},
    {"model", CFG_STR, F(model), 0, 0, 0, NULL, "model/weights/mnist-bnn.safetensors",
     "weights file (safetensors, or a directory holding one) loaded at start-up and on reload (SIGHUP, "
     "POST /v2/repository/models/NAME/load)"},
    {"model_name", CFG_STR, F(model_name), 0, 0, 0, NULL, "mnist-bnn",
     "the model's name in the Open Inference Protocol (/v2/models/NAME); letters, digits, '.', '_', '-'"},
    {"web_root", CFG_STR, F(web_root), 0, 0, 0, NULL, "service/web",
     "directory of static files served under GET /"},
    {"workers", CFG_UINT, F(workers), 0, 256, 0, NULL, "0", "compute threads; 0 = number of CPUs"},
    {"http_threads", CFG_UINT, F(http_threads), 1, 64, 0, NULL, "1",
     "libmicrohttpd polling threads (HTTP is cheap; compute runs on the workers)"},
    {"queue_depth", CFG_UINT, F(queue_depth), 1, 1000000, 0, NULL, "64",
     "prediction requests in flight (queued or computing) before new ones are refused with overload_status"},
    {"queue_cost", CFG_UINT, F(queue_cost), 1, 4000000000.0, 0, NULL, "1000000",
     "queued work, in lrt passes (a weights pass counts weights_pass_cost), before new requests are "
     "refused with overload_status; a request costing at most queue_cost / queue_depth is refused only by "
     "queue_depth, one costing more than queue_cost alone gets 400. 1000000 is about 5-10 s of one core"},
    {"overload_status", CFG_UINT, F(overload_status), 429, 503, 0, NULL, "503",
     "HTTP status when the queue is full: 503 or 429"},
    {"retry_after", CFG_UINT, F(retry_after), 0, 3600, 0, NULL, "1",
     "seconds sent in Retry-After with overload answers"},
    {"default_samples", CFG_UINT, F(default_samples), 1, 1000000, 0, NULL, "100",
     "Monte-Carlo passes T when the request does not say"},
    {"max_samples", CFG_UINT, F(max_samples), 1, 1000000, 0, NULL, "10000",
     "largest T a request may ask for; above it the answer is 400"},
    {"max_samples_weights", CFG_UINT, F(max_samples_weights), 1, 1000000, 0, NULL, "1000",
     "largest T for mode=weights (also at most max_samples); above it the answer is 400. 1000 passes are "
     "0.5 to 2 s of one core"},
    {"weights_pass_cost", CFG_UINT, F(weights_pass_cost), 0, 100000, 0, NULL, "0",
     "what a weights-mode pass costs in lrt passes, for queue_cost and for the blocks workers take; 0 = "
     "measured for the CPU code path in use (46 avx512, 85 avx2, 164 baseline)"},
    {"default_interval", CFG_DOUBLE, F(default_interval), 0, 1, 1, NULL, "0.95",
     "interval coverage when the request does not say, in (0, 1)"},
    {"uncertain_entropy", CFG_MODEL, F(uncertain_entropy), 0, 10, 0, NULL, "model",
     "predictive entropy (nats) above which an answer is flagged \"uncertain\"; model = the threshold "
     "calibrated on the validation digits and stored in the weights (docs/report.md)"},
    {"uncertain_epistemic", CFG_MODEL, F(uncertain_epistemic), 0, 10, 0, NULL, "model",
     "epistemic uncertainty (mutual information, nats) above which an answer is flagged \"uncertain\"; model "
     "= "
     "the weights' calibrated threshold"},
    {"default_set_coverage", CFG_DOUBLE, F(default_set_coverage), 0, 1, 1, NULL, "0.95",
     "coverage of the conformal prediction set when the request does not say; one of the levels the weights "
     "are calibrated for (0.9, 0.95, 0.99)"},
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
     "milliseconds from enqueue to result before the request fails with 503 timeout, waiting or computing "
     "(checked between blocks of passes)"},
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
const size_t cfg_n_keys = N_KEYS;
#define ENV_PREFIX "BNN_SERVE_"

void cfg_set_err(char err[CFG_ERR_LEN], const char *fmt, ...)
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
const struct cfg_key *cfg_find_key(const char *name, size_t len)
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

static int set_str(char *field, const struct cfg_key *k, const char *value, char err[CFG_ERR_LEN])
{
    size_t n = strlen(value);
    if (n >= k->size) {
        cfg_set_err(err, "%s: expected at most %zu characters, got %zu", k->name, k->size - 1, n);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (iscntrl((unsigned char)value[i])) {
            cfg_set_err(err, "%s: control character 0x%02x at position %zu", k->name,
                        (unsigned)(unsigned char)value[i], i);
            return -1;
        }
    /* Zero the tail too, so equal settings give equal structs (memcmp). */
    memset(field, 0, k->size);
    memcpy(field, value, n);
    return 0;
}

static int set_uint(unsigned *field, const struct cfg_key *k, const char *value, char err[CFG_ERR_LEN])
{
    uint64_t v;
    const char *end;
    if (parse_u64(value, &end, &v) || *end || v < k->min || v > k->max) {
        cfg_set_err(err, "%s: expected an integer in %.0f..%.0f, got '%.64s'", k->name, k->min, k->max,
                    value);
        return -1;
    }
    *field = (unsigned)v;
    return 0;
}

static int set_size(size_t *field, const struct cfg_key *k, const char *value, char err[CFG_ERR_LEN])
{
    uint64_t v, mult;
    const char *end;
    if (parse_u64(value, &end, &v) || size_multiplier(end, &mult) || (v && mult > UINT64_MAX / v) ||
        (double)(v * mult) < k->min || (double)(v * mult) > k->max || v * mult > SIZE_MAX) {
        cfg_set_err(
            err, "%s: expected a size in %.0f..%.0f bytes (suffixes KiB, MiB, GiB, kB, MB, GB), got '%.64s'",
            k->name, k->min, k->max, value);
        return -1;
    }
    *field = (size_t)(v * mult);
    return 0;
}

static int set_double(double *field, const struct cfg_key *k, const char *value, char err[CFG_ERR_LEN])
{
    double v;
    int bad = parse_double(value, &v) != 0;
    if (!bad)
        bad = k->open ? !(v > k->min && v < k->max) : !(v >= k->min && v <= k->max);
    if (bad) {
        cfg_set_err(err, "%s: expected a number in %c%g, %g%c, got '%.64s'", k->name, k->open ? '(' : '[',
                    k->min, k->max, k->open ? ')' : ']', value);
        return -1;
    }
    *field = v;
    return 0;
}

static int set_model(double *field, const struct cfg_key *k, const char *value, char err[CFG_ERR_LEN])
{
    double v;
    if (strcmp(value, "model") == 0) {
        *field = NAN;
        return 0;
    }
    if (parse_double(value, &v) || !(v >= k->min && v <= k->max)) {
        cfg_set_err(err, "%s: expected 'model' or a number in [%g, %g], got '%.64s'", k->name, k->min, k->max,
                    value);
        return -1;
    }
    *field = v;
    return 0;
}

static int set_bool(int *field, const struct cfg_key *k, const char *value, char err[CFG_ERR_LEN])
{
    if (parse_bool(value, field)) {
        cfg_set_err(err, "%s: expected true or false (also 1/0, yes/no, on/off), got '%.64s'", k->name,
                    value);
        return -1;
    }
    return 0;
}

static int set_choice(char *field, const struct cfg_key *k, const char *value, char err[CFG_ERR_LEN])
{
    int i = find_choice(k->choices, value);
    if (i < 0) {
        char list[128];
        choices_text(k->choices, list, sizeof list);
        cfg_set_err(err, "%s: expected one of %s, got '%.64s'", k->name, list, value);
        return -1;
    }
    memset(field, 0, k->size);
    snprintf(field, k->size, "%s", k->choices[i]);
    return 0;
}

int cfg_set_key(struct cfg *c, const struct cfg_key *k, const char *value, char err[CFG_ERR_LEN])
{
    char *field = (char *)c + k->offset;
    switch (k->type) {
    case CFG_STR:
        return set_str(field, k, value, err);
    case CFG_UINT:
        return set_uint((unsigned *)field, k, value, err);
    case CFG_SIZE:
        return set_size((size_t *)field, k, value, err);
    case CFG_DOUBLE:
        return set_double((double *)field, k, value, err);
    case CFG_MODEL:
        return set_model((double *)field, k, value, err);
    case CFG_BOOL:
        return set_bool((int *)field, k, value, err);
    case CFG_CHOICE:
        return set_choice(field, k, value, err);
    }
    cfg_set_err(err, "%s: internal error: unknown type", k->name);
    return -1;
}

void cfg_defaults(struct cfg *c)
{
    memset(c, 0, sizeof *c);
    /* Cannot fail: test_config checks every default against its own row. */
    for (size_t i = 0; i < N_KEYS; i++)
        (void)cfg_set_key(c, &cfg_keys[i], cfg_keys[i].def, NULL);
}

int cfg_set(struct cfg *c, const char *key, const char *value, char err[CFG_ERR_LEN])
{
    if (!key || !value) {
        cfg_set_err(err, "cfg_set: NULL %s", key ? "value" : "key");
        return -1;
    }
    const struct cfg_key *k = cfg_find_key(key, strlen(key));
    if (!k) {
        cfg_set_err(err, "unknown key '%.64s'", key);
        return -1;
    }
    return cfg_set_key(c, k, value, err);
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
            cfg_set_err(err, "environment %.*s: unknown key", (int)(eq - var < 80 ? eq - var : 80), var);
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
            k = cfg_find_key(key, name_len);
        if (!k) {
            cfg_set_err(err, "environment %.*s: unknown key '%s'", (int)(eq - var), var, key);
            return -1;
        }
        char sub[CFG_ERR_LEN];
        if (cfg_set_key(c, k, eq + 1, sub)) {
            cfg_set_err(err, "environment %.*s: %s", (int)(eq - var), var, sub);
            return -1;
        }
    }
    return 0;
}

int cfg_validate(const struct cfg *c, char err[CFG_ERR_LEN])
{
    if (c->overload_status != 503 && c->overload_status != 429) {
        cfg_set_err(err, "overload_status: expected 503 or 429, got %u", c->overload_status);
        return -1;
    }
    if (c->default_samples > c->max_samples) {
        cfg_set_err(err, "default_samples: %u is above max_samples %u", c->default_samples, c->max_samples);
        return -1;
    }
    if (!c->host[0]) {
        cfg_set_err(err, "host: must not be empty");
        return -1;
    }
    if (!c->model[0]) {
        cfg_set_err(err, "model: must not be empty");
        return -1;
    }
    if (!c->model_name[0] || strspn(c->model_name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                   "0123456789._-") != strlen(c->model_name)) {
        cfg_set_err(err, "model_name: expected 1..63 letters, digits, '.', '_' or '-', got '%.63s'",
                    c->model_name);
        return -1;
    }
    if (!(c->default_interval > 0 && c->default_interval < 1)) {
        cfg_set_err(err, "default_interval: expected a number in (0, 1), got %g", c->default_interval);
        return -1;
    }
    if (find_choice(log_formats, c->log_format) < 0) {
        cfg_set_err(err, "log_format: expected one of text|json, got '%.8s'", c->log_format);
        return -1;
    }
    if (find_choice(log_levels, c->log_level) < 0) {
        cfg_set_err(err, "log_level: expected one of error|warn|info|debug, got '%.16s'", c->log_level);
        return -1;
    }
    if (c->per_ip_connection_limit > c->connection_limit) {
        cfg_set_err(err, "per_ip_connection_limit: %u is above connection_limit %u",
                    c->per_ip_connection_limit, c->connection_limit);
        return -1;
    }
    return 0;
}

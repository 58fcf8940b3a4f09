/* config_file.c - the configuration file's syntax both ways: reading
 * "key = value" lines (cfg_parse_text, cfg_load_file) and printing the
 * effective configuration in that syntax (cfg_print, what --check-config
 * shows), so that what is printed reads back as the same struct.
 */
#include "config.h"
#include "config_keys.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_MAX (1024 + 8)

/* A quoted value from line[*i] (the opening quote), with \" and \\
 * escapes; *i ends past the closing quote and any trailing comment. */
static int read_quoted(char value[VALUE_MAX], size_t *n, const char *line, size_t len, size_t *i,
                       const char *where, const char *key, char err[CFG_ERR_LEN])
{
    size_t j = *i + 1;
    for (;; j++) {
        if (j == len) {
            cfg_set_err(err, "%s: %s: unterminated quoted value", where, key);
            return -1;
        }
        char ch = line[j];
        if (ch == '"')
            break;
        if (ch == '\\') {
            if (j + 1 == len || (line[j + 1] != '"' && line[j + 1] != '\\')) {
                cfg_set_err(err, "%s: %s: only \\\" and \\\\ may be escaped in a quoted value", where, key);
                return -1;
            }
            ch = line[++j];
        }
        if (*n + 1 >= VALUE_MAX) {
            cfg_set_err(err, "%s: %s: value too long", where, key);
            return -1;
        }
        value[(*n)++] = ch;
    }
    for (j++; j < len && (line[j] == ' ' || line[j] == '\t'); j++)
        ;
    if (j < len && line[j] != '#') {
        cfg_set_err(err, "%s: %s: unexpected text after the quoted value: '%.*s'", where, key,
                    (int)(len - j < 32 ? len - j : 32), line + j);
        return -1;
    }
    *i = len;
    return 0;
}

/* An unquoted value from line[i]: up to a '#' that follows a space (or
 * starts the value), trailing spaces dropped. */
static int read_plain(char value[VALUE_MAX], size_t *n, const char *line, size_t len, size_t i,
                      const char *where, const char *key, char err[CFG_ERR_LEN])
{
    size_t end = i;
    while (end < len && !(line[end] == '#' && (end == i || line[end - 1] == ' ' || line[end - 1] == '\t')))
        end++;
    while (end > i && (line[end - 1] == ' ' || line[end - 1] == '\t'))
        end--;
    if (end - i + 1 > VALUE_MAX) {
        cfg_set_err(err, "%s: %s: value too long", where, key);
        return -1;
    }
    *n = end - i;
    memcpy(value, line + i, *n);
    return 0;
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
        cfg_set_err(err, "%s: expected 'key = value', got '%.*s'", where, (int)(len < 64 ? len : 64), line);
        return -1;
    }
    const struct cfg_key *k = cfg_find_key(line + key_start, key_len);
    if (!k) {
        cfg_set_err(err, "%s: unknown key '%.*s'", where, (int)(key_len < 64 ? key_len : 64),
                    line + key_start);
        return -1;
    }
    for (i++; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
        ;
    char value[VALUE_MAX];
    size_t n = 0;
    int rc = i < len && line[i] == '"' ? read_quoted(value, &n, line, len, &i, where, k->name, err)
                                       : read_plain(value, &n, line, len, i, where, k->name, err);
    if (rc != 0)
        return -1;
    value[n] = '\0';
    if (memchr(value, '\0', n)) {
        cfg_set_err(err, "%s: %s: NUL byte in value", where, k->name);
        return -1;
    }
    char sub[CFG_ERR_LEN];
    if (cfg_set_key(c, k, value, sub)) {
        cfg_set_err(err, "%s: %s", where, sub);
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
        cfg_set_err(err, "open %s: %s", path, strerror(errno));
        return -1;
    }
    /* A config file is a few KiB; 1 MiB means the path names something else. */
    enum { MAX_CONFIG = 1 << 20 };
    char *buf = malloc(MAX_CONFIG + 1);
    if (!buf) {
        fclose(f);
        cfg_set_err(err, "%s: out of memory", path);
        return -1;
    }
    size_t n = fread(buf, 1, MAX_CONFIG + 1, f);
    int rc = -1;
    if (ferror(f))
        cfg_set_err(err, "read %s: %s", path, strerror(errno));
    else if (n > MAX_CONFIG)
        cfg_set_err(err, "%s: larger than %d bytes", path, MAX_CONFIG);
    else
        rc = cfg_parse_text(c, buf, n, path, err);
    free(buf);
    fclose(f);
    return rc;
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
    for (size_t i = 0; i < cfg_n_keys; i++) {
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
        case CFG_MODEL:
            if (isnan(*(const double *)field)) {
                fputs("model", out);
                break;
            }
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

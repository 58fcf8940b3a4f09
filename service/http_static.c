/* http_static.c - see http_static.h. */
#include "http_static.h"

#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* --- static files -------------------------------------------------------------- */

int http_files_init(struct http_files *f, const char *web_root, char *err, size_t err_len)
{
    if (realpath(web_root, f->root))
        return 0;
    snprintf(err, err_len, "web_root %s: %s", web_root, strerror(errno));
    f->root[0] = '\0';
    return -1;
}

static const char *content_type_of(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
        {".webmanifest", "application/manifest+json"},
        {".txt", "text/plain; charset=utf-8"},
        {".yaml", "application/yaml; charset=utf-8"},
        {".woff2", "font/woff2"},
    };
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* Refuses any segment that starts with '.' (so "..", hidden files),
 * backslashes, empty segments and unprintable bytes. */
static int relative_path_ok(const char *rel)
{
    if (strlen(rel) > 200 || strchr(rel, '\\'))
        return 0;
    for (const char *seg = rel; *seg;) {
        size_t n = strcspn(seg, "/");
        if (n == 0 || seg[0] == '.')
            return 0;
        for (size_t i = 0; i < n; i++)
            if (!isprint((unsigned char)seg[i]))
                return 0;
        seg += n;
        if (*seg == '/')
            seg++;
    }
    return 1;
}

int http_files_resolve(const struct http_files *f, const char *url, char out[PATH_MAX])
{
    if (!f->root[0] || url[0] != '/')
        return -1;
    const char *rel = url[1] ? url + 1 : "index.html";
    if (!relative_path_ok(rel))
        return -1;
    char joined[PATH_MAX];
    if ((size_t)snprintf(joined, sizeof joined, "%s/%s", f->root, rel) >= sizeof joined)
        return -1;
    /* The resolved path (symlinks included) must still be inside the root. */
    if (!realpath(joined, out))
        return -1;
    size_t root_len = strlen(f->root);
    if (strncmp(out, f->root, root_len) != 0 || out[root_len] != '/')
        return -1;
    struct stat st;
    if (stat(out, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)HTTP_STATIC_MAX_BYTES)
        return -1;
    return 0;
}

int http_files_read(const char *path, char **body, size_t *len, const char **type, const char **cache)
{
    *body = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && n <= (long)HTTP_STATIC_MAX_BYTES && fseek(f, 0, SEEK_SET) == 0) {
            *body = malloc((size_t)n + 1);
            if (*body)
                *len = fread(*body, 1, (size_t)n, f);
        }
    }
    fclose(f);
    if (!*body)
        return -1;
    /* HTML names the versioned assets it needs: revalidate it every time,
     * let the assets be cached briefly. */
    *type = content_type_of(path);
    *cache = strncmp(*type, "text/html", 9) == 0 ? "no-cache" : "public, max-age=300";
    return 0;
}

/* --- CORS --------------------------------------------------------------------- */

int http_cors_init(struct http_cors *c, const char *list)
{
    memset(c, 0, sizeof *c);
    for (const char *p = list; *p && c->n < HTTP_CORS_MAX_ORIGINS;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m > 0 && p[m - 1] == ' ')
            m--;
        if (m > 0) {
            c->origins[c->n] = strndup(p, m);
            if (!c->origins[c->n]) {
                http_cors_free(c);
                return -1;
            }
            c->n++;
        }
        p += n;
    }
    return 0;
}

void http_cors_free(struct http_cors *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->origins[i]);
    c->n = 0;
}

void http_cors_match(const struct http_cors *c, const char *origin, char out[HTTP_ORIGIN_LEN])
{
    out[0] = '\0';
    for (size_t i = 0; origin && i < c->n; i++) {
        if (strcmp(c->origins[i], "*") == 0 || strcmp(c->origins[i], origin) == 0) {
            snprintf(out, HTTP_ORIGIN_LEN, "%s", strcmp(c->origins[i], "*") == 0 ? "*" : origin);
            return;
        }
    }
}

void http_cors_headers(struct MHD_Response *resp, const char *origin, const char *methods)
{
    if (!origin[0])
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    if (strcmp(origin, "*") != 0)
        MHD_add_response_header(resp, "Vary", "Origin");
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
    if (methods) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", methods);
        MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Content-Type, X-Request-Id");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    }
}

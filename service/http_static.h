/* http_static.h - what the HTTP side serves besides the API: static files
 * under web_root (GET /, the browser demo) and CORS (which origins may call
 * the API from a browser, and the headers that say so).
 *
 * Invariant: a URL resolves only to a regular file inside the resolved
 * web_root (no "..", no hidden segments, no symlink leading out), at most
 * HTTP_STATIC_MAX_BYTES long. CORS headers are sent only for an Origin on
 * the configured list (or any with "*").
 * Ownership: struct http_files and struct http_cors are filled once at start
 * and read-only afterwards (shared by the polling threads); their _free
 * releases what _init allocated.
 */
#ifndef BNN_HTTP_STATIC_H
#define BNN_HTTP_STATIC_H

#include <limits.h>
#include <stddef.h>

#define HTTP_STATIC_MAX_BYTES (16u << 20)
#define HTTP_CORS_MAX_ORIGINS 16
#define HTTP_ORIGIN_LEN 256

struct MHD_Response;

struct http_files {
    char root[PATH_MAX]; /* realpath of web_root, "" when missing (everything 404) */
};

/* Resolves web_root. Returns 0, or -1 with root left empty and err saying
 * why (the caller logs it: the daemon still serves the API). */
int http_files_init(struct http_files *f, const char *web_root, char *err, size_t err_len);

/* Maps a URL path ("/" = index.html) to a file under the root into out.
 * Returns 0, or -1 when there is no such servable file. */
int http_files_resolve(const struct http_files *f, const char *url, char out[PATH_MAX]);

/* Reads a resolved file: *body malloc'd (owned by caller), its length, its
 * media type and cache policy (static strings). Returns 0 or -1. */
int http_files_read(const char *path, char **body, size_t *len, const char **type, const char **cache);

struct http_cors {
    char *origins[HTTP_CORS_MAX_ORIGINS]; /* owned; "*" allows any */
    size_t n;
};

/* Parses a comma-separated list (spaces ignored; entries past the limit are
 * dropped). Returns 0, or -1 when out of memory. */
int http_cors_init(struct http_cors *c, const char *list);
void http_cors_free(struct http_cors *c);

/* The Access-Control-Allow-Origin value for a request's Origin header into
 * out: the origin itself, "*", or "" when it is not allowed (or NULL). */
void http_cors_match(const struct http_cors *c, const char *origin, char out[HTTP_ORIGIN_LEN]);

/* Adds the CORS headers for an allowed origin (nothing for ""). A preflight
 * (methods != NULL) also gets Allow-Methods, Allow-Headers and Max-Age. */
void http_cors_headers(struct MHD_Response *resp, const char *origin, const char *methods);

#endif

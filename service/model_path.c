/* model_path.c - a file as it is, or the one *.safetensors file of a
 * directory (see model_path.h).
 *
 * The directory is read once. Only a bounded number of names is kept for
 * messages - the smallest few in byte order, so that what an error lists does
 * not depend on readdir's order - and counts of the rest; memory does not
 * grow with the directory.
 */
#include "model_path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define SUFFIX ".safetensors"
/* Names listed in an error message, each cut to this length. */
#define LIST_MAX 4
#define NAME_MAX_SHOWN 64

/* The LIST_MAX smallest names seen so far, sorted, and how many were seen. */
struct name_list {
    char names[LIST_MAX][NAME_MAX_SHOWN + 2]; /* + '/' for directories, NUL */
    size_t shown;
    size_t total;
};

struct dir_scan {
    struct name_list models; /* regular files named *.safetensors */
    struct name_list others; /* every other visible entry */
    char model[256];         /* the model's full name when models.total == 1 */
};

/* err: a message cut to MODEL_PATH_ERR_LEN (a very long path is cut, not
 * an error of its own). */
__attribute__((format(printf, 2, 3))) static void set_err(char err[MODEL_PATH_ERR_LEN], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, MODEL_PATH_ERR_LEN, fmt, ap);
    va_end(ap);
}

/* Inserts name (with suffix mark, e.g. "/") in order, keeping the smallest. */
static void list_add(struct name_list *l, const char *name, const char *mark)
{
    char entry[NAME_MAX_SHOWN + 2];
    snprintf(entry, sizeof entry, "%.*s%s", NAME_MAX_SHOWN, name, mark);
    l->total++;
    size_t at = l->shown;
    while (at > 0 && strcmp(entry, l->names[at - 1]) < 0)
        at--;
    if (at >= LIST_MAX)
        return;
    size_t last = l->shown < LIST_MAX ? l->shown : LIST_MAX - 1;
    for (size_t i = last; i > at; i--)
        memcpy(l->names[i], l->names[i - 1], sizeof l->names[i]);
    memcpy(l->names[at], entry, sizeof entry);
    if (l->shown < LIST_MAX)
        l->shown++;
}

/* "a, b, c and 5 more" into buf. */
static void list_format(char *buf, size_t len, const struct name_list *l)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l->shown && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", l->names[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    if (l->total > l->shown && used < len)
        snprintf(buf + used, len - used, " and %zu more", l->total - l->shown);
}

static int has_model_suffix(const char *name)
{
    size_t n = strlen(name), s = strlen(SUFFIX);
    return n > s && strcmp(name + n - s, SUFFIX) == 0;
}

/* Reads the directory into scan. Returns 0, or -1 with err set. */
static int scan_dir(struct dir_scan *scan, const char *dir, char err[MODEL_PATH_ERR_LEN])
{
    DIR *d = opendir(dir);
    if (!d) {
        set_err(err, "cannot read directory '%s': %s", dir, strerror(errno));
        return -1;
    }
    memset(scan, 0, sizeof *scan);
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* ., .., and hidden leftovers */
        struct stat st;
        int ok = fstatat(dirfd(d), e->d_name, &st, 0) == 0; /* follows links */
        if (ok && S_ISREG(st.st_mode) && has_model_suffix(e->d_name)) {
            list_add(&scan->models, e->d_name, "");
            snprintf(scan->model, sizeof scan->model, "%s", e->d_name);
        } else {
            list_add(&scan->others, e->d_name, ok && S_ISDIR(st.st_mode) ? "/" : "");
        }
        errno = 0;
    }
    int read_errno = errno;
    closedir(d);
    if (read_errno) {
        set_err(err, "cannot read directory '%s': %s", dir, strerror(read_errno));
        return -1;
    }
    return 0;
}

/* The one model of a scanned directory into out, or the reason there is
 * not exactly one. */
static int pick_model(char *out, size_t out_len, const char *dir, const struct dir_scan *scan,
                      char err[MODEL_PATH_ERR_LEN])
{
    char listed[MODEL_PATH_ERR_LEN];
    if (scan->models.total == 0) {
        if (scan->others.total == 0) {
            set_err(err, "directory '%s' holds no .safetensors file (it is empty)", dir);
        } else {
            list_format(listed, sizeof listed, &scan->others);
            set_err(err, "directory '%s' holds no .safetensors file (found: %s)", dir, listed);
        }
        return -1;
    }
    if (scan->models.total > 1) {
        list_format(listed, sizeof listed, &scan->models);
        set_err(err, "directory '%s' holds %zu .safetensors files (%s): keep one, or name the file", dir,
                scan->models.total, listed);
        return -1;
    }
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--; /* "/mnt/models/" -> "/mnt/models/x", not "//x" */
    const char *sep = dir[dl - 1] == '/' ? "" : "/";
    int n = snprintf(out, out_len, "%.*s%s%s", (int)dl, dir, sep, scan->model);
    if (n < 0 || (size_t)n >= out_len) {
        if (out_len)
            out[0] = '\0'; /* no cut path that names another file */
        set_err(err, "'%.*s%s%s': path longer than %zu bytes", (int)dl, dir, sep, scan->model,
                out_len ? out_len - 1 : 0);
        return -1;
    }
    return 0;
}

int model_path_resolve(char *out, size_t out_len, const char *path, char err[MODEL_PATH_ERR_LEN])
{
    if (out_len)
        out[0] = '\0';
    if (!path || !*path) {
        set_err(err, "empty model path");
        return -1;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        set_err(err, "cannot access '%s': %s", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        struct dir_scan scan;
        if (scan_dir(&scan, path, err) != 0)
            return -1;
        return pick_model(out, out_len, path, &scan, err);
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, "'%s' is neither a regular file nor a directory", path);
        return -1;
    }
    size_t n = strlen(path);
    if (n >= out_len) {
        set_err(err, "'%s': path longer than %zu bytes", path, out_len ? out_len - 1 : 0);
        return -1;
    }
    memcpy(out, path, n + 1);
    return 0;
}

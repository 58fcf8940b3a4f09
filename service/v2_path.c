/* v2_path.c - see v2_path.h. A path is split into at most six non-empty
 * segments after "/v2", each shorter than V2_NAME_LEN, then classified by
 * their count and their fixed words. */
#include "v2_path.h"

#include <stdio.h>
#include <string.h>

/* Splits path into at most max segments (copied, each < V2_NAME_LEN);
 * returns the count, or -1 for an empty or too long segment or too many. */
static int segments(const char *path, char seg[][V2_NAME_LEN], int max)
{
    int n = 0;
    if (*path != '/')
        return -1;
    while (*path == '/') {
        path++;
        size_t len = strcspn(path, "/");
        if (len == 0 || len >= V2_NAME_LEN || n == max)
            return -1;
        memcpy(seg[n], path, len);
        seg[n++][len] = '\0';
        path += len;
    }
    return n;
}

/* models/{m}[/versions/{v}][/ready|/infer]: seg[0] is "models". */
static enum v2_path_kind model_path(struct v2_path *p, char seg[][V2_NAME_LEN], int n)
{
    snprintf(p->model, sizeof p->model, "%s", seg[1]);
    int rest = 2;
    if (n >= 4 && strcmp(seg[2], "versions") == 0) {
        snprintf(p->version, sizeof p->version, "%s", seg[3]);
        rest = 4;
    }
    if (n == rest)
        return V2_PATH_MODEL;
    if (n == rest + 1 && strcmp(seg[rest], "ready") == 0)
        return V2_PATH_MODEL_READY;
    if (n == rest + 1 && strcmp(seg[rest], "infer") == 0)
        return V2_PATH_INFER;
    return V2_PATH_UNKNOWN;
}

static enum v2_path_kind classify(struct v2_path *p, char seg[][V2_NAME_LEN], int n)
{
    if (n == 0)
        return V2_PATH_SERVER;
    if (n == 2 && strcmp(seg[0], "health") == 0)
        return strcmp(seg[1], "live") == 0    ? V2_PATH_LIVE
               : strcmp(seg[1], "ready") == 0 ? V2_PATH_READY
                                              : V2_PATH_UNKNOWN;
    if (n >= 2 && strcmp(seg[0], "models") == 0)
        return model_path(p, seg, n);
    if (n == 2 && strcmp(seg[0], "repository") == 0 && strcmp(seg[1], "index") == 0)
        return V2_PATH_REPO_INDEX;
    if (n == 4 && strcmp(seg[0], "repository") == 0 && strcmp(seg[1], "models") == 0) {
        snprintf(p->model, sizeof p->model, "%s", seg[2]);
        return strcmp(seg[3], "load") == 0     ? V2_PATH_REPO_LOAD
               : strcmp(seg[3], "unload") == 0 ? V2_PATH_REPO_UNLOAD
                                               : V2_PATH_UNKNOWN;
    }
    return V2_PATH_UNKNOWN;
}

enum v2_path_kind v2_path_parse(struct v2_path *p, const char *path)
{
    memset(p, 0, sizeof *p);
    if (strncmp(path, "/v2", 3) != 0 || (path[3] != '\0' && path[3] != '/'))
        return p->kind = V2_PATH_NONE;
    char seg[6][V2_NAME_LEN];
    int n = path[3] == '\0' || strcmp(path + 3, "/") == 0 ? 0 : segments(path + 3, seg, 6);
    p->kind = n < 0 ? V2_PATH_UNKNOWN : classify(p, seg, n);
    if (p->kind == V2_PATH_UNKNOWN || p->kind == V2_PATH_SERVER)
        p->model[0] = p->version[0] = '\0';
    return p->kind;
}

/* v2_path.h - which Open Inference Protocol (KServe V2 REST) path a URL
 * names: the server, health, a model (and a version of it), its readiness
 * and inference, the repository's index, load and unload, or nothing
 * served. Pure: no allocation, no HTTP.
 */
#ifndef BNN_V2_PATH_H
#define BNN_V2_PATH_H

#define V2_NAME_LEN 64

enum v2_path_kind {
    V2_PATH_NONE = 0,    /* not under /v2 */
    V2_PATH_UNKNOWN,     /* under /v2, but nothing served there */
    V2_PATH_SERVER,      /* GET /v2 */
    V2_PATH_LIVE,        /* GET /v2/health/live */
    V2_PATH_READY,       /* GET /v2/health/ready */
    V2_PATH_MODEL,       /* GET /v2/models/{m}[/versions/{v}] */
    V2_PATH_MODEL_READY, /* GET /v2/models/{m}[/versions/{v}]/ready */
    V2_PATH_INFER,       /* POST /v2/models/{m}[/versions/{v}]/infer */
    V2_PATH_REPO_INDEX,  /* POST /v2/repository/index */
    V2_PATH_REPO_LOAD,   /* POST /v2/repository/models/{m}/load */
    V2_PATH_REPO_UNLOAD, /* POST /v2/repository/models/{m}/unload */
    V2_PATH_COUNT
};

struct v2_path {
    enum v2_path_kind kind;
    char model[V2_NAME_LEN];   /* "" when the path names none */
    char version[V2_NAME_LEN]; /* "" when the path names none */
};

/* Parses a URL path (no query string). Segments are non-empty and at most
 * V2_NAME_LEN - 1 bytes; anything else under /v2 is V2_PATH_UNKNOWN.
 * Returns p->kind. */
enum v2_path_kind v2_path_parse(struct v2_path *p, const char *path);

#endif

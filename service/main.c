/* main.c - bnn-serve: reads the configuration (defaults < file < BNN_SERVE_*
 * environment < flags), loads the model, starts the worker pool and the
 * HTTP server, then waits for SIGTERM / SIGINT and drains:
 * readiness 503 -> stop accepting -> finish (or cancel) queued jobs within
 * drain_timeout -> resume everything -> stop libmicrohttpd -> exit 0.
 *
 * Exit status: 0 ok, 1 runtime failure (model, port, ...), 2 usage or
 * configuration error.
 */
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bnn.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "predict.h"
#include "weights.h"

#define BNN_SERVE_VERSION "0.1.0"
#define DEFAULT_CONFIG "config/bnn-serve.conf"
#define PROBE_TIMEOUT_MS 3000
#define OPENAPI_MAX (4u << 20)

extern char **environ;

enum { OPT_HELP = 'h', OPT_VERSION = 'V', OPT_CONFIG = 1000, OPT_CHECK, OPT_PROBE, OPT_KEY_BASE = 2000 };

/* The daemon's one mutable global, because a signal handler can reach
 * nothing else: the SIGTERM/SIGINT caught on a thread other than main's
 * (see the wait loop in main), 0 until then. Lock-free, so async-signal-safe. */
static atomic_int signal_caught;

static void on_signal(int sig)
{
    atomic_store(&signal_caught, sig);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bnn-serve [options]\n"
            "Serves a Bayesian neural network (MNIST digits) over HTTP: POST /predict with a PNG.\n\n"
            "  --config FILE      configuration file (default %s when present)\n"
            "  --check-config     validate, print the effective configuration, exit\n"
            "  --probe URL        GET http://host:port/path; exit 0 iff the status is 200 (health checks)\n"
            "  --help             this text\n"
            "  --version          print the version\n\n"
            "Every configuration key is also a flag (--key-name VALUE) and an environment variable\n"
            "(BNN_SERVE_KEY_NAME). Precedence: defaults < file < environment < flags.\n\n",
            DEFAULT_CONFIG);
    for (size_t i = 0; i < cfg_key_count(); i++) {
        char flag[64], env[64];
        const char *k = cfg_key_name(i);
        size_t j = 0;
        for (; k[j] && j < sizeof flag - 1; j++) {
            flag[j] = k[j] == '_' ? '-' : k[j];
            env[j] = (char)(k[j] >= 'a' && k[j] <= 'z' ? k[j] - 'a' + 'A' : k[j]);
        }
        flag[j] = env[j] = '\0';
        fprintf(out, "  --%-26s %s\n  %-28s (env BNN_SERVE_%s)\n", flag, cfg_key_help(i), "", env);
    }
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "bnn-serve: error: %s\ntry 'bnn-serve --help'\n", msg);
    return 2;
}

/* --probe: a plain-socket HTTP/1.0 GET with a short timeout, so a container
 * health check needs no curl. */
static int probe(const char *url)
{
    char host[256], port[8] = "80", path[1024] = "/";
    const char *p = url;
    if (strncmp(p, "http://", 7) != 0) {
        fprintf(stderr, "bnn-serve: error: --probe: expected http://host:port/path, got '%s'\n", url);
        return 1;
    }
    p += 7;
    size_t n;
    if (*p == '[') { /* [IPv6]:port */
        n = strcspn(p + 1, "]");
        if (p[1 + n] != ']' || n >= sizeof host)
            return fprintf(stderr, "bnn-serve: error: --probe: bad host in '%s'\n", url), 1;
        memcpy(host, p + 1, n);
        host[n] = '\0';
        p += n + 2;
    } else {
        n = strcspn(p, ":/");
        if (n == 0 || n >= sizeof host)
            return fprintf(stderr, "bnn-serve: error: --probe: bad host in '%s'\n", url), 1;
        memcpy(host, p, n);
        host[n] = '\0';
        p += n;
    }
    if (*p == ':') {
        n = strcspn(p + 1, "/");
        if (n == 0 || n >= sizeof port)
            return fprintf(stderr, "bnn-serve: error: --probe: bad port in '%s'\n", url), 1;
        memcpy(port, p + 1, n);
        port[n] = '\0';
        p += n + 1;
    }
    if (*p == '/')
        snprintf(path, sizeof path, "%s", p);

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0)
        return fprintf(stderr, "bnn-serve: error: --probe: %s: %s\n", host, gai_strerror(rc)), 1;
    int fd = -1;
    struct timeval tv = {PROBE_TIMEOUT_MS / 1000, (PROBE_TIMEOUT_MS % 1000) * 1000};
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        /* On Linux SO_SNDTIMEO also bounds connect(). */
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return fprintf(stderr, "bnn-serve: error: --probe: cannot connect to %s:%s: %s\n", host, port,
                       strerror(errno)),
               1;
    char req[1400];
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s:%s\r\nConnection: close\r\n\r\n", path,
                       host, port);
    char resp[64] = "";
    size_t got = 0;
    if (send(fd, req, (size_t)len, MSG_NOSIGNAL) == len) {
        while (got < sizeof resp - 1) {
            ssize_t k = recv(fd, resp + got, sizeof resp - 1 - got, 0);
            if (k <= 0)
                break;
            got += (size_t)k;
        }
    }
    close(fd);
    resp[got] = '\0';
    int status = 0;
    if (sscanf(resp, "HTTP/%*d.%*d %d", &status) != 1) {
        fprintf(stderr, "bnn-serve: error: --probe: no HTTP answer from %s\n", url);
        return 1;
    }
    printf("%d\n", status);
    return status == 200 ? 0 : 1;
}

static char *read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (!buf || n > max) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The spec is looked for next to the web root's repository layout
 * (service/web -> ./openapi.yaml), then in the working directory. */
static char *load_openapi(const struct cfg *c, size_t *len)
{
    char path[2100];
    const char *candidates[] = {"%s/openapi.yaml", "%s/../../openapi.yaml", "%s/../openapi.yaml"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        snprintf(path, sizeof path, candidates[i], c->web_root);
        char *text = read_file(path, OPENAPI_MAX, len);
        if (text)
            return text;
    }
    return read_file("openapi.yaml", OPENAPI_MAX, len);
}

struct flag_setting {
    const char *key;
    const char *value;
};

int main(int argc, char **argv)
{
    size_t n_keys = cfg_key_count();
    struct option *opts = calloc(2 * n_keys + 6, sizeof *opts);
    char **names = calloc(n_keys, sizeof *names);
    struct flag_setting *flags = calloc((size_t)argc + 1, sizeof *flags);
    if (!opts || !names || !flags) {
        fprintf(stderr, "bnn-serve: error: out of memory\n");
        return 1;
    }
    size_t no = 0;
    opts[no++] = (struct option){"config", required_argument, NULL, OPT_CONFIG};
    opts[no++] = (struct option){"check-config", no_argument, NULL, OPT_CHECK};
    opts[no++] = (struct option){"probe", required_argument, NULL, OPT_PROBE};
    opts[no++] = (struct option){"help", no_argument, NULL, OPT_HELP};
    opts[no++] = (struct option){"version", no_argument, NULL, OPT_VERSION};
    for (size_t i = 0; i < n_keys; i++) {
        names[i] = strdup(cfg_key_name(i));
        for (char *c = names[i]; c && *c; c++)
            if (*c == '_')
                *c = '-';
        opts[no++] = (struct option){names[i], required_argument, NULL, OPT_KEY_BASE + (int)i};
        if (strcmp(names[i], cfg_key_name(i)) != 0) /* --key_name works too */
            opts[no++] = (struct option){cfg_key_name(i), required_argument, NULL, OPT_KEY_BASE + (int)i};
    }

    const char *config_path = NULL, *probe_url = NULL;
    int check = 0, n_flags = 0, opt, early = -1; /* early >= 0: exit with it */
    while (early < 0 && (opt = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
        switch (opt) {
        case OPT_HELP:
            usage(stdout);
            early = 0;
            break;
        case OPT_VERSION:
            printf("bnn-serve %s (libmicrohttpd %s)\n", BNN_SERVE_VERSION, MHD_get_version());
            early = 0;
            break;
        case OPT_CONFIG:
            config_path = optarg;
            break;
        case OPT_CHECK:
            check = 1;
            break;
        case OPT_PROBE:
            probe_url = optarg;
            break;
        default:
            if (opt >= OPT_KEY_BASE && opt < OPT_KEY_BASE + (int)n_keys) {
                flags[n_flags++] = (struct flag_setting){cfg_key_name((size_t)(opt - OPT_KEY_BASE)), optarg};
                break;
            }
            fprintf(stderr, "try 'bnn-serve --help'\n");
            early = 2;
        }
    }
    /* The option table is done with; flags[] points into argv and the
     * config key table, both of which outlive it. */
    for (size_t i = 0; i < n_keys; i++)
        free(names[i]);
    free(names);
    free(opts);
    if (early < 0 && optind < argc) {
        char msg[300];
        snprintf(msg, sizeof msg, "unexpected argument '%.200s'", argv[optind]);
        early = usage_error(msg);
    }
    if (early < 0 && probe_url)
        early = probe(probe_url);
    if (early >= 0) {
        free(flags);
        return early;
    }

    struct cfg cfg;
    char err[CFG_ERR_LEN];
    cfg_defaults(&cfg);
    if (!config_path && access(DEFAULT_CONFIG, R_OK) == 0)
        config_path = DEFAULT_CONFIG;
    int bad = config_path && cfg_load_file(&cfg, config_path, err) != 0;
    bad = bad || cfg_apply_env(&cfg, environ, err) != 0;
    for (int i = 0; i < n_flags && !bad; i++)
        bad = cfg_set(&cfg, flags[i].key, flags[i].value, err) != 0;
    free(flags);
    if (bad)
        return usage_error(err);
    if (cfg_validate(&cfg, err) != 0)
        return usage_error(err);
    if (check) {
        cfg_print(&cfg, stdout);
        return 0;
    }

    char lerr[LOG_ERR_LEN];
    struct log *lg = log_new(stderr, cfg.log_level, cfg.log_format, cfg.access_log, lerr);
    if (!lg)
        return usage_error(lerr);

    /* Each worker runs its own single-threaded BLAS: parallelism comes from
     * serving several requests at once, not from splitting one GEMM. */
    openblas_set_num_threads(1);

    int rc = 1;
    struct bnn_model *model = NULL;
    struct metrics *metrics = NULL;
    struct pool *pool = NULL;
    struct http_server *srv = NULL;
    char *openapi = NULL;
    int listen_fd = -1;
    char berr[BNN_ERR_LEN], perr[POOL_ERR_LEN], herr[HTTP_ERR_LEN];

    if (bnn_weights_load(&model, cfg.model, berr) != BNN_OK) {
        fprintf(stderr, "bnn-serve: error: model: %s\n", berr);
        goto done;
    }
    if (bnn_model_n_in(model) != BNN_MNIST_PIXELS) {
        fprintf(stderr, "bnn-serve: error: model %s: expected %d inputs (28x28), got %zu\n", cfg.model,
                BNN_MNIST_PIXELS, bnn_model_n_in(model));
        goto done;
    }

    /* SIGTERM/SIGINT are blocked here, so every thread we create inherits
     * the mask, and the main thread waits for them with sigtimedwait below.
     * That alone is not enough: OpenBLAS starts its threads in a library
     * constructor, before main can block anything, and a process-directed
     * signal delivered to one of them would take the default action and
     * kill the daemon mid-drain. The handler turns such a signal into
     * signal_caught instead. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    char arch[128];
    bnn_model_arch(model, arch, sizeof arch);
    const char *fmt = bnn_meta_get(model, "format");
    struct metrics_info info = {
        arch, bnn_model_param_count(model), cfg.model, fmt ? fmt : "", BNN_SERVE_VERSION, MHD_get_version()};
    metrics = metrics_new(&info);
    if (!metrics) {
        fprintf(stderr, "bnn-serve: error: out of memory\n");
        goto done;
    }
    pool = pool_new(cfg.workers, cfg.queue_depth, predict_worker_new, predict_worker_free, model, perr);
    if (!pool) {
        fprintf(stderr, "bnn-serve: error: worker pool: %s\n", perr);
        goto done;
    }
    listen_fd = http_listen(cfg.host, cfg.port, herr);
    if (listen_fd < 0) {
        fprintf(stderr, "bnn-serve: error: %s\n", herr);
        goto done;
    }
    size_t openapi_len = 0;
    openapi = load_openapi(&cfg, &openapi_len);
    if (!openapi)
        log_msg(lg, LOG_WARN,
                "openapi.yaml not found near web_root %s or in the working directory; "
                "GET /openapi.yaml will answer 404",
                cfg.web_root);
    /* Test-only: BNN_FAULT_EVERY_NTH_JOB=n makes every nth prediction job
     * fail as an internal error (tests/integration/test_faults.py). */
    const char *fault = getenv("BNN_FAULT_EVERY_NTH_JOB");
    struct predict_faults faults = {.every_nth = fault ? (unsigned)strtoul(fault, NULL, 10) : 0};
    if (faults.every_nth)
        log_msg(lg, LOG_WARN, "fault injection: every %u-th prediction job fails (BNN_FAULT_EVERY_NTH_JOB)",
                faults.every_nth);
    struct predict_deps predict = {
        .cfg = &cfg, .model = model, .pool = pool, .metrics = metrics, .log = lg, .faults = &faults};
    struct http_deps deps = {.cfg = &cfg,
                             .model = model,
                             .pool = pool,
                             .metrics = metrics,
                             .log = lg,
                             .predict = &predict,
                             .openapi = openapi,
                             .openapi_len = openapi_len,
                             .version = BNN_SERVE_VERSION};
    srv = http_start(&deps, listen_fd, herr);
    if (!srv) {
        fprintf(stderr, "bnn-serve: error: %s\n", herr);
        goto done;
    }
    listen_fd = -1; /* the server owns it now */
    http_set_state(srv, HTTP_READY);
    printf("bnn-serve: listening on http://%s%s%s:%u (model %s, %s, %u workers, queue %u)\n",
           strchr(cfg.host, ':') ? "[" : "", cfg.host, strchr(cfg.host, ':') ? "]" : "", http_port(srv),
           cfg.model, arch, pool_threads(pool), cfg.queue_depth);
    fflush(stdout);
    log_msg(lg, LOG_INFO, "ready: port %u, model %s (%s, %zu parameters), %u workers", http_port(srv),
            cfg.model, arch, bnn_model_param_count(model), pool_threads(pool));

    /* Wait in sigtimedwait: while the main thread waits there the kernel
     * hands it a process-directed SIGTERM first (and ThreadSanitizer, which
     * defers handlers until a thread calls into libc, sees it at once). A
     * signal that lands on another thread between waits went through the
     * handler into signal_caught, polled every tick. */
    int sig = 0;
    const struct timespec tick = {0, 100 * 1000 * 1000};
    while (!sig) {
        int s = sigtimedwait(&sigs, NULL, &tick);
        sig = s > 0 ? s : atomic_load(&signal_caught);
    }
    log_msg(lg, LOG_INFO, "%s: draining (up to %u s)", sig == SIGINT ? "SIGINT" : "SIGTERM",
            cfg.drain_timeout);
    http_set_state(srv, HTTP_DRAINING);
    http_quiesce(srv);
    size_t cancelled = pool_shutdown(pool, (double)cfg.drain_timeout);
    http_free(srv, 10.0);
    srv = NULL;
    log_msg(lg, LOG_INFO, "stopped; %zu queued jobs cancelled", cancelled);
    rc = 0;
done:
    if (srv) {
        pool_shutdown(pool, 0);
        http_free(srv, 1.0);
    }
    if (listen_fd >= 0)
        close(listen_fd);
    pool_free(pool);
    metrics_free(metrics);
    free(openapi);
    bnn_model_free(model);
    log_free(lg);
    return rc;
}

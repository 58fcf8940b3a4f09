/* main.c - bnn-serve: reads the configuration (defaults < file < BNN_SERVE_*
 * environment < flags), loads the model, starts the worker pool, the model
 * reload thread and the HTTP server, then waits for signals: SIGHUP asks
 * for a model reload (served_model.h) and serving goes on; SIGTERM / SIGINT
 * drain: readiness 503 -> stop accepting -> finish (or cancel) queued jobs
 * within drain_timeout -> stop the reload thread -> resume everything ->
 * stop libmicrohttpd -> exit 0.
 *
 * Exit status: 0 ok, 1 runtime failure (model, port, ...), 2 usage or
 * configuration error.
 */
#include <cblas.h>
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <getopt.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bnn.h"
#include "config.h"
#include "cpu.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "model_path.h"
#include "pool.h"
#include "predict.h"
#include "probe.h"
#include "served_model.h"

#define BNN_SERVE_VERSION "0.1.0"
#define DEFAULT_CONFIG "config/bnn-serve.conf"
#define OPENAPI_MAX (4u << 20)
#define MMAP_THRESHOLD (1 << 20) /* bytes */

extern char **environ;

enum { OPT_HELP = 'h', OPT_VERSION = 'V', OPT_CONFIG = 1000, OPT_CHECK, OPT_PROBE, OPT_KEY_BASE = 2000 };

/* The daemon's one mutable global, because a signal handler can reach
 * nothing else: the signals caught on a thread other than main's (see
 * wait_for_signal), as bits (SIG_BIT), 0 until then. Lock-free, so
 * async-signal-safe. */
static atomic_uint signals_caught;

#define SIG_BIT(sig) ((sig) == SIGHUP ? 1u : (sig) == SIGINT ? 2u : (sig) == SIGTERM ? 4u : 0u)

static void on_signal(int sig)
{
    atomic_fetch_or(&signals_caught, SIG_BIT(sig));
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

/* --- options ---------------------------------------------------------------------- */

struct flag_setting {
    const char *key;
    const char *value;
};

struct options {
    const char *config_path, *probe_url;
    int check;
    struct flag_setting *flags; /* --key value, in order; point into argv and the key table */
    int n_flags;
};

/* The fixed options, then --key-name (and --key_name) for every config key;
 * names[] holds the dashed spellings (owned by caller). */
static struct option *option_table(char **names, size_t n_keys)
{
    struct option *opts = calloc(2 * n_keys + 6, sizeof *opts);
    if (!opts)
        return NULL;
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
        opts[no++] = (struct option){names[i] ? names[i] : cfg_key_name(i), required_argument, NULL,
                                     OPT_KEY_BASE + (int)i};
        if (names[i] && strcmp(names[i], cfg_key_name(i)) != 0) /* --key_name works too */
            opts[no++] = (struct option){cfg_key_name(i), required_argument, NULL, OPT_KEY_BASE + (int)i};
    }
    return opts;
}

/* One option; -1 to go on, or the exit status (--help, --version, bad). */
static int take_option(struct options *o, int opt, size_t n_keys)
{
    switch (opt) {
    case OPT_HELP:
        usage(stdout);
        return 0;
    case OPT_VERSION:
        printf("bnn-serve %s (libmicrohttpd %s, OpenBLAS %s, kernels %s)\n", BNN_SERVE_VERSION,
               MHD_get_version(), openblas_get_corename(), bnn_cpu_path_name());
        return 0;
    case OPT_CONFIG:
        o->config_path = optarg;
        return -1;
    case OPT_CHECK:
        o->check = 1;
        return -1;
    case OPT_PROBE:
        o->probe_url = optarg;
        return -1;
    default:
        if (opt >= OPT_KEY_BASE && opt < OPT_KEY_BASE + (int)n_keys) {
            o->flags[o->n_flags++] =
                (struct flag_setting){cfg_key_name((size_t)(opt - OPT_KEY_BASE)), optarg};
            return -1;
        }
        fprintf(stderr, "try 'bnn-serve --help'\n");
        return 2;
    }
}

/* getopt_long over argv into o (o->flags owned by caller). Returns -1 to go
 * on, or the status to exit with. */
static int parse_options(struct options *o, int argc, char **argv)
{
    size_t n_keys = cfg_key_count();
    char **names = calloc(n_keys, sizeof *names);
    struct option *opts = names ? option_table(names, n_keys) : NULL;
    o->flags = calloc((size_t)argc + 1, sizeof *o->flags);
    int early = -1, opt;
    if (!names || !opts || !o->flags) {
        fprintf(stderr, "bnn-serve: error: out of memory\n");
        early = 1;
    }
    while (early < 0 && (opt = getopt_long(argc, argv, "hV", opts, NULL)) != -1)
        early = take_option(o, opt, n_keys);
    for (size_t i = 0; names && i < n_keys; i++)
        free(names[i]);
    free(names);
    free(opts);
    if (early < 0 && optind < argc) {
        char msg[300];
        snprintf(msg, sizeof msg, "unexpected argument '%.200s'", argv[optind]);
        early = usage_error(msg);
    }
    return early;
}

/* defaults < file < environment < flags, then the cross-key checks.
 * 0, or 2 after saying why. */
static int load_config(struct cfg *cfg, const struct options *o)
{
    char err[CFG_ERR_LEN];
    const char *path = o->config_path;
    cfg_defaults(cfg);
    if (!path && access(DEFAULT_CONFIG, R_OK) == 0)
        path = DEFAULT_CONFIG;
    int bad = path && cfg_load_file(cfg, path, err) != 0;
    bad = bad || cfg_apply_env(cfg, environ, err) != 0;
    for (int i = 0; i < o->n_flags && !bad; i++)
        bad = cfg_set(cfg, o->flags[i].key, o->flags[i].value, err) != 0;
    bad = bad || cfg_validate(cfg, err) != 0;
    return bad ? usage_error(err) : 0;
}

/* --probe URL: prints the status, exit 0 iff it is 200. */
static int probe(const char *url)
{
    int status = 0;
    char err[PROBE_ERR_LEN];
    if (probe_get(url, &status, err) != 0) {
        fprintf(stderr, "bnn-serve: error: --probe: %s\n", err);
        return 1;
    }
    printf("%d\n", status);
    return status == 200 ? 0 : 1;
}

/* --- serving ------------------------------------------------------------------------ */

/* Everything the daemon runs on, in start order; stop() frees in reverse. */
struct daemon {
    const struct cfg *cfg;
    struct log *log;
    struct served_model *initial; /* the model loaded at start (a reference), until models takes it */
    struct served_models *models; /* the current model and its reload thread */
    struct metrics *metrics;
    struct pool *pool;
    int listen_fd;
    char *openapi;
    size_t openapi_len;
    struct predict_faults faults;
    struct predict_deps predict;
    struct http_deps http;
    struct http_server *srv;
};

/* SIGTERM/SIGINT/SIGHUP are blocked here, so every thread created
 * afterwards inherits the mask, and the main thread waits for them with
 * sigtimedwait. That alone is not enough: OpenBLAS starts its threads in a
 * library constructor, before main can block anything, and a
 * process-directed signal delivered to one of them would take the default
 * action and kill the daemon (SIGHUP's default is to terminate too). The
 * handler turns such a signal into signals_caught instead. */
static void catch_signals(sigset_t *sigs)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigemptyset(sigs);
    sigaddset(sigs, SIGTERM);
    sigaddset(sigs, SIGINT);
    sigaddset(sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* The model and what serves it: metrics, workers, the reload thread, the
 * listening socket. */
static int start_model(struct daemon *d)
{
    const struct cfg *cfg = d->cfg;
    char serr[SERVED_ERR_LEN], perr[POOL_ERR_LEN], herr[HTTP_ERR_LEN];
    if (bnn_cpu_init(serr) != BNN_OK) { /* a bad BNN_CPU_PATH stops start-up */
        fprintf(stderr, "bnn-serve: error: %s\n", serr);
        return -1;
    }
    d->initial = served_model_load(cfg, serr);
    if (!d->initial) {
        fprintf(stderr, "bnn-serve: error: model: %s\n", serr);
        return -1;
    }
    struct metrics_info info = {.version = BNN_SERVE_VERSION, .mhd_version = MHD_get_version()};
    d->metrics = metrics_new(&info); /* the model's labels: served_models_new */
    if (!d->metrics) {
        fprintf(stderr, "bnn-serve: error: out of memory\n");
        return -1;
    }
    /* Workspaces are built for this model's shape; a reload keeps the shape
     * (served_model.h), so they fit every model served after it. */
    d->pool = pool_new(cfg->workers, cfg->queue_depth, cfg->queue_cost, predict_worker_new,
                       predict_worker_free, d->initial->model, perr);
    if (!d->pool) {
        fprintf(stderr, "bnn-serve: error: worker pool: %s\n", perr);
        return -1;
    }
    struct served_model *initial = d->initial;
    d->initial = NULL; /* taken over, even on failure */
    d->models = served_models_new(initial, cfg, d->metrics, d->log, serr);
    if (!d->models) {
        fprintf(stderr, "bnn-serve: error: %s\n", serr);
        return -1;
    }
    d->listen_fd = http_listen(cfg->host, cfg->port, herr);
    if (d->listen_fd < 0) {
        fprintf(stderr, "bnn-serve: error: %s\n", herr);
        return -1;
    }
    return 0;
}

/* The HTTP side on the listening socket, with what its routes borrow. */
static int start_http(struct daemon *d)
{
    const struct cfg *cfg = d->cfg;
    char herr[HTTP_ERR_LEN];
    d->openapi = load_openapi(cfg, &d->openapi_len);
    if (!d->openapi)
        log_msg(d->log, LOG_WARN,
                "openapi.yaml not found near web_root %s or in the working directory; "
                "GET /openapi.yaml will answer 404",
                cfg->web_root);
    /* Test-only: BNN_FAULT_EVERY_NTH_JOB=n makes every nth prediction job
     * fail as an internal error (tests/integration/test_faults.py). */
    const char *fault = getenv("BNN_FAULT_EVERY_NTH_JOB");
    d->faults.every_nth = fault ? (unsigned)strtoul(fault, NULL, 10) : 0;
    if (d->faults.every_nth)
        log_msg(d->log, LOG_WARN,
                "fault injection: every %u-th prediction job fails (BNN_FAULT_EVERY_NTH_JOB)",
                d->faults.every_nth);
    d->predict = (struct predict_deps){.cfg = cfg,
                                       .models = d->models,
                                       .pool = d->pool,
                                       .metrics = d->metrics,
                                       .log = d->log,
                                       .faults = &d->faults};
    d->http = (struct http_deps){.cfg = cfg,
                                 .pool = d->pool,
                                 .metrics = d->metrics,
                                 .log = d->log,
                                 .predict = &d->predict,
                                 .openapi = d->openapi,
                                 .openapi_len = d->openapi_len,
                                 .version = BNN_SERVE_VERSION};
    d->srv = http_start(&d->http, d->listen_fd, herr);
    if (!d->srv) {
        fprintf(stderr, "bnn-serve: error: %s\n", herr);
        return -1;
    }
    d->listen_fd = -1; /* the server owns it now */
    return 0;
}

/* Waits in sigtimedwait: while the main thread waits there the kernel hands
 * it a process-directed signal first (and ThreadSanitizer, which defers
 * handlers until a thread calls into libc, sees it at once). A signal that
 * lands on another thread between waits went through the handler into
 * signals_caught, polled every tick. SIGHUP asks the reload thread for a
 * reload and the wait goes on; SIGTERM or SIGINT is returned. */
static int wait_for_signal(struct daemon *d, const sigset_t *sigs)
{
    const struct timespec tick = {0, 100 * 1000 * 1000};
    for (;;) {
        int s = sigtimedwait(sigs, NULL, &tick);
        unsigned caught = atomic_exchange(&signals_caught, 0) | (s > 0 ? SIG_BIT(s) : 0);
        if (caught & SIG_BIT(SIGHUP)) {
            log_msg(d->log, LOG_INFO, "SIGHUP: reloading the model from %s", d->cfg->model);
            served_models_reload(d->models, NULL);
        }
        if (caught & SIG_BIT(SIGTERM))
            return SIGTERM;
        if (caught & SIG_BIT(SIGINT))
            return SIGINT;
    }
}

/* Readiness 503 -> no new connections -> queued jobs finish (or are
 * cancelled) within drain_timeout -> every answer taken -> stopped. */
static void drain(struct daemon *d, int sig)
{
    log_msg(d->log, LOG_INFO, "%s: draining (up to %u s)", sig == SIGINT ? "SIGINT" : "SIGTERM",
            d->cfg->drain_timeout);
    http_set_state(d->srv, HTTP_DRAINING);
    http_quiesce(d->srv);
    size_t cancelled = pool_shutdown(d->pool, (double)d->cfg->drain_timeout);
    served_models_stop(d->models); /* a load waiting is answered 503 */
    http_free(d->srv, 10.0);
    d->srv = NULL;
    log_msg(d->log, LOG_INFO, "stopped; %zu queued jobs cancelled", cancelled);
}

static void stop(struct daemon *d)
{
    if (d->srv) {
        pool_shutdown(d->pool, 0);
        if (d->models)
            served_models_stop(d->models);
        http_free(d->srv, 1.0);
    }
    if (d->listen_fd >= 0)
        close(d->listen_fd);
    pool_free(d->pool);
    served_models_free(d->models); /* after the pool: no job holds a model now */
    served_model_release(d->initial);
    metrics_free(d->metrics);
    free(d->openapi);
}

/* Starts everything, serves until SIGTERM/SIGINT, drains. 0 or 1. */
static int serve(const struct cfg *cfg, struct log *lg)
{
    /* Each worker runs its own single-threaded BLAS: parallelism comes from
     * serving several requests at once, not from splitting one GEMM. */
    openblas_set_num_threads(1);
    /* Large blocks (a model's ~10 MiB of tensors, a weights file read for
     * a reload, a big PNG) straight from and back to the kernel: a fixed
     * threshold stops glibc from raising it after the first such free and
     * then keeping every reloaded model's memory in a thread's arena. */
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    struct daemon d = {.cfg = cfg, .log = lg, .listen_fd = -1};
    sigset_t sigs;
    int rc = 1;
    catch_signals(&sigs); /* before any thread of ours starts */
    if (start_model(&d) != 0 || start_http(&d) != 0)
        goto done;
    http_set_state(d.srv, HTTP_READY);
    struct served_model *sm = served_models_acquire(d.models);
    printf("bnn-serve: listening on http://%s%s%s:%u (model %s, %s, version %s, %u workers, queue %u)\n",
           strchr(cfg->host, ':') ? "[" : "", cfg->host, strchr(cfg->host, ':') ? "]" : "", http_port(d.srv),
           cfg->model, sm->arch, sm->version, pool_threads(d.pool), cfg->queue_depth);
    fflush(stdout);
    log_msg(lg, LOG_INFO, "ready: port %u, model %s (%s, %zu parameters, version %s), %u workers",
            http_port(d.srv), sm->path, sm->arch, bnn_model_param_count(sm->model), sm->version,
            pool_threads(d.pool));
    served_model_release(sm);
    drain(&d, wait_for_signal(&d, &sigs));
    rc = 0;
done:
    stop(&d);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o = {0};
    struct cfg cfg;
    int rc = parse_options(&o, argc, argv); /* rc >= 0: exit with it */
    if (rc < 0 && o.probe_url)
        rc = probe(o.probe_url);
    if (rc < 0 && load_config(&cfg, &o) != 0)
        rc = 2;
    free(o.flags);
    if (rc >= 0)
        return rc;
    if (o.check) {
        cfg_print(&cfg, stdout);
        return 0;
    }
    char lerr[LOG_ERR_LEN];
    struct log *lg = log_new(stderr, cfg.log_level, cfg.log_format, cfg.access_log, lerr);
    if (!lg)
        return usage_error(lerr);
    rc = serve(&cfg, lg);
    log_free(lg);
    return rc;
}

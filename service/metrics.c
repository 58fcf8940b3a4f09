/* metrics.c - see metrics.h. Counters are plain integers guarded by one
 * mutex: an update is a few additions, far cheaper than the request it
 * measures, and a scrape sees a consistent snapshot. */
#include "metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Request latency buckets: from a probe (sub-millisecond) to a large batch
 * with many samples (seconds). */
const double metrics_buckets[METRICS_N_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};

#define STATUS_MIN 100
#define STATUS_N 500 /* statuses 100..599 */

static const char *const route_names[METRICS_ROUTE_COUNT] = {
    "predict", "predict_batch", "healthz",   "readyz",      "metrics",       "model", "openapi",
    "static",  "v2_infer",      "v2_health", "v2_metadata", "v2_repository", "other"};

struct histogram {
    uint64_t buckets[METRICS_N_BUCKETS]; /* non-cumulative; summed at render */
    uint64_t count;
    double sum;
};

struct metrics {
    pthread_mutex_t mu;
    uint64_t requests[METRICS_ROUTE_COUNT][STATUS_N + 1]; /* [..][STATUS_N] = out of range */
    struct histogram duration[METRICS_ROUTE_COUNT];
    uint64_t samples[2], blocks[2]; /* by enum bnn_mode */
    uint64_t rejected, timed_out;
    uint64_t reloads[2]; /* [0] failed, [1] ok */
    char *architecture, *model_path, *model_format, *model_version, *version, *mhd_version;
    size_t parameters;
};

const char *metrics_route_name(enum metrics_route route)
{
    return (unsigned)route < METRICS_ROUTE_COUNT ? route_names[route] : "other";
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

struct metrics *metrics_new(const struct metrics_info *info)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return NULL;
    }
    m->architecture = dup_or_empty(info ? info->architecture : NULL);
    m->model_path = dup_or_empty(info ? info->model_path : NULL);
    m->model_format = dup_or_empty(info ? info->model_format : NULL);
    m->model_version = dup_or_empty(info ? info->model_version : NULL);
    m->version = dup_or_empty(info ? info->version : NULL);
    m->mhd_version = dup_or_empty(info ? info->mhd_version : NULL);
    m->parameters = info ? info->parameters : 0;
    if (!m->architecture || !m->model_path || !m->model_format || !m->model_version || !m->version ||
        !m->mhd_version) {
        metrics_free(m);
        return NULL;
    }
    return m;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m->architecture);
    free(m->model_path);
    free(m->model_format);
    free(m->model_version);
    free(m->version);
    free(m->mhd_version);
    free(m);
}

void metrics_observe_request(struct metrics *m, enum metrics_route route, unsigned status, double seconds)
{
    if ((unsigned)route >= METRICS_ROUTE_COUNT)
        route = METRICS_ROUTE_OTHER;
    size_t s = (status >= STATUS_MIN && status < STATUS_MIN + STATUS_N) ? status - STATUS_MIN : STATUS_N;
    size_t b = 0;
    while (b < METRICS_N_BUCKETS && seconds > metrics_buckets[b])
        b++;
    pthread_mutex_lock(&m->mu);
    m->requests[route][s]++;
    if (b < METRICS_N_BUCKETS)
        m->duration[route].buckets[b]++;
    m->duration[route].count++;
    m->duration[route].sum += seconds;
    pthread_mutex_unlock(&m->mu);
}

static void add_counter(struct metrics *m, uint64_t *c, uint64_t n)
{
    pthread_mutex_lock(&m->mu);
    *c += n;
    pthread_mutex_unlock(&m->mu);
}

void metrics_add_block(struct metrics *m, enum bnn_mode mode, uint64_t passes)
{
    size_t i = mode == BNN_MODE_WEIGHTS ? 1 : 0;
    pthread_mutex_lock(&m->mu);
    m->samples[i] += passes;
    m->blocks[i]++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_add_rejected(struct metrics *m)
{
    add_counter(m, &m->rejected, 1);
}

void metrics_add_timed_out(struct metrics *m)
{
    add_counter(m, &m->timed_out, 1);
}

void metrics_add_reload(struct metrics *m, int ok)
{
    add_counter(m, &m->reloads[ok ? 1 : 0], 1);
}

int metrics_set_model(struct metrics *m, const struct metrics_info *info)
{
    char *s[4] = {dup_or_empty(info->architecture), dup_or_empty(info->model_path),
                  dup_or_empty(info->model_format), dup_or_empty(info->model_version)};
    if (!s[0] || !s[1] || !s[2] || !s[3]) {
        for (size_t i = 0; i < 4; i++)
            free(s[i]);
        return -1;
    }
    pthread_mutex_lock(&m->mu);
    char *old[4] = {m->architecture, m->model_path, m->model_format, m->model_version};
    m->architecture = s[0];
    m->model_path = s[1];
    m->model_format = s[2];
    m->model_version = s[3];
    m->parameters = info->parameters;
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < 4; i++)
        free(old[i]);
    return 0;
}

/* Label values escaped per the exposition format: backslash, quote, newline. */
static void put_label(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f), fputc(*s, f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void render_requests(FILE *f, const struct metrics *m)
{
    fputs("# HELP bnn_requests_total HTTP requests answered, by route and status.\n"
          "# TYPE bnn_requests_total counter\n",
          f);
    for (size_t r = 0; r < METRICS_ROUTE_COUNT; r++)
        for (size_t s = 0; s <= STATUS_N; s++)
            if (m->requests[r][s])
                fprintf(f, "bnn_requests_total{route=\"%s\",status=\"%zu\"} %llu\n", route_names[r],
                        s == STATUS_N ? 0 : s + STATUS_MIN, (unsigned long long)m->requests[r][s]);
}

static void render_durations(FILE *f, const struct metrics *m)
{
    fputs("# HELP bnn_request_duration_seconds Time from the first byte of the request to the response.\n"
          "# TYPE bnn_request_duration_seconds histogram\n",
          f);
    for (size_t r = 0; r < METRICS_ROUTE_COUNT; r++) {
        const struct histogram *h = &m->duration[r];
        if (h->count == 0)
            continue;
        uint64_t cum = 0;
        for (size_t b = 0; b < METRICS_N_BUCKETS; b++) {
            cum += h->buckets[b];
            fprintf(f, "bnn_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n", route_names[r],
                    metrics_buckets[b], (unsigned long long)cum);
        }
        fprintf(f, "bnn_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", route_names[r],
                (unsigned long long)h->count);
        fprintf(f, "bnn_request_duration_seconds_sum{route=\"%s\"} %.9g\n", route_names[r], h->sum);
        fprintf(f, "bnn_request_duration_seconds_count{route=\"%s\"} %llu\n", route_names[r],
                (unsigned long long)h->count);
    }
}

static void render_jobs(FILE *f, const struct metrics *m)
{
    static const char *const modes[2] = {"lrt", "weights"};
    fputs("# HELP bnn_samples_total Monte-Carlo forward passes run, by mode.\n"
          "# TYPE bnn_samples_total counter\n",
          f);
    for (size_t i = 0; i < 2; i++)
        fprintf(f, "bnn_samples_total{mode=\"%s\"} %llu\n", modes[i], (unsigned long long)m->samples[i]);
    fputs(
        "# HELP bnn_blocks_total Blocks of passes run (the unit workers take, round-robin across requests), "
        "by mode.\n"
        "# TYPE bnn_blocks_total counter\n",
        f);
    for (size_t i = 0; i < 2; i++)
        fprintf(f, "bnn_blocks_total{mode=\"%s\"} %llu\n", modes[i], (unsigned long long)m->blocks[i]);
    fprintf(
        f,
        "# HELP bnn_jobs_rejected_total Prediction requests refused because the queue was full (queue_depth "
        "or queue_cost).\n"
        "# TYPE bnn_jobs_rejected_total counter\n"
        "bnn_jobs_rejected_total %llu\n"
        "# HELP bnn_jobs_timed_out_total Prediction requests answered 503 past job_timeout_ms, waiting or "
        "computing.\n"
        "# TYPE bnn_jobs_timed_out_total counter\n"
        "bnn_jobs_timed_out_total %llu\n"
        "# HELP bnn_model_reloads_total Model reloads (SIGHUP or POST /v2/repository/models/{name}/load), by "
        "result; a failed one keeps the old model serving.\n"
        "# TYPE bnn_model_reloads_total counter\n"
        "bnn_model_reloads_total{result=\"ok\"} %llu\n"
        "bnn_model_reloads_total{result=\"failed\"} %llu\n",
        (unsigned long long)m->rejected, (unsigned long long)m->timed_out, (unsigned long long)m->reloads[1],
        (unsigned long long)m->reloads[0]);
}

static void render_gauges(FILE *f, const struct metrics_gauges *g)
{
    static const struct metrics_gauges none = {0};
    g = g ? g : &none;
    fprintf(f,
            "# HELP bnn_queue_depth Prediction requests in flight (queued or computing).\n"
            "# TYPE bnn_queue_depth gauge\n"
            "bnn_queue_depth %u\n"
            "# HELP bnn_queue_capacity Requests in flight at which new ones are refused (queue_depth).\n"
            "# TYPE bnn_queue_capacity gauge\n"
            "bnn_queue_capacity %u\n"
            "# HELP bnn_queue_cost Work admitted and not yet computed, in lrt passes.\n"
            "# TYPE bnn_queue_cost gauge\n"
            "bnn_queue_cost %llu\n"
            "# HELP bnn_queue_cost_capacity Queued work above which requests beyond their share are refused "
            "(queue_cost).\n"
            "# TYPE bnn_queue_cost_capacity gauge\n"
            "bnn_queue_cost_capacity %llu\n"
            "# HELP bnn_pass_cost What one pass costs in lrt passes, by mode (the unit of bnn_queue_cost).\n"
            "# TYPE bnn_pass_cost gauge\n"
            "bnn_pass_cost{mode=\"lrt\"} 1\n"
            "bnn_pass_cost{mode=\"weights\"} %u\n",
            g->queue_depth, g->queue_capacity, (unsigned long long)g->queue_cost,
            (unsigned long long)g->queue_cost_capacity, g->weights_pass_cost);
    fprintf(f,
            "# HELP bnn_workers Compute worker threads.\n"
            "# TYPE bnn_workers gauge\n"
            "bnn_workers %u\n"
            "# HELP bnn_workers_busy Workers running a block.\n"
            "# TYPE bnn_workers_busy gauge\n"
            "bnn_workers_busy %u\n"
            "# HELP bnn_ready 1 when the daemon accepts predictions (readyz 200).\n"
            "# TYPE bnn_ready gauge\n"
            "bnn_ready %d\n",
            g->workers, g->workers_busy, g->ready != 0);
}

static void render_info(FILE *f, const struct metrics *m)
{
    fputs("# HELP bnn_model_info The model being served.\n# TYPE bnn_model_info "
          "gauge\nbnn_model_info{architecture=\"",
          f);
    put_label(f, m->architecture);
    fprintf(f, "\",parameters=\"%zu\",path=\"", m->parameters);
    put_label(f, m->model_path);
    fputs("\",format=\"", f);
    put_label(f, m->model_format);
    fputs("\",model_version=\"", f);
    put_label(f, m->model_version);
    fputs("\"} 1\n# HELP bnn_build_info The bnn-serve build.\n# TYPE bnn_build_info "
          "gauge\nbnn_build_info{version=\"",
          f);
    put_label(f, m->version);
    fputs("\",libmicrohttpd=\"", f);
    put_label(f, m->mhd_version);
    fputs("\",compiler=\"", f);
#ifdef __VERSION__
    put_label(f, __VERSION__);
#endif
    fputs("\"} 1\n", f);
}

int metrics_render(struct metrics *m, const struct metrics_gauges *g, char **out, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return -1;
    pthread_mutex_lock(&m->mu);
    render_requests(f, m);
    render_durations(f, m);
    render_jobs(f, m);
    render_gauges(f, g);
    render_info(f, m);
    pthread_mutex_unlock(&m->mu);
    if (fclose(f) != 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* test_metrics.c - Prometheus text exposition: counters by (route, status),
 * cumulative histogram buckets with sum and count, gauges from the caller,
 * escaped info labels, every sample line well-formed, exact counts under
 * concurrent updates. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static const struct metrics_info info = {
    "784-784-256-256-10", 1769524, "model/w\"x\\.safetensors", "bnn-serve/1", "0.1.0", "0.9.75", ""};

static char *render(struct metrics *m, const struct metrics_gauges *g)
{
    char *text;
    size_t len;
    assert_int_equal(metrics_render(m, g, &text, &len), 0);
    assert_int_equal(strlen(text), len);
    return text;
}

/* The value of the sample line that starts with prefix (name and labels). */
static double sample(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, prefix, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    fail_msg("no sample line '%s' in:\n%s", prefix, text);
    return -1;
}

/* name{labels} value, name value, or a # HELP / # TYPE comment. */
static void check_format(const char *text)
{
    char *copy = strdup(text);
    int samples = 0;
    for (char *save, *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') {
            assert_true(strncmp(line, "# HELP bnn_", 11) == 0 || strncmp(line, "# TYPE bnn_", 11) == 0);
            continue;
        }
        size_t name = strspn(line, "abcdefghijklmnopqrstuvwxyz_");
        assert_true(name > 4);
        const char *rest = line + name;
        if (*rest == '{') {
            const char *close = strstr(rest, "} ");
            assert_non_null(close);
            rest = close + 1;
        }
        assert_int_equal(*rest, ' ');
        char *end;
        strtod(rest + 1, &end);
        assert_true(end > rest + 1);
        assert_int_equal(*end, '\0');
        samples++;
    }
    assert_true(samples > 5);
    free(copy);
}

static void test_empty(void **state)
{
    (void)state;
    struct metrics *m = metrics_new(&info);
    assert_non_null(m);
    struct metrics_gauges g = {.queue_depth = 3,
                               .queue_capacity = 64,
                               .queue_cost = 12345,
                               .queue_cost_capacity = 1000000,
                               .weights_pass_cost = 46,
                               .workers = 2,
                               .workers_busy = 1,
                               .ready = 1};
    char *text = render(m, &g);
    check_format(text);
    assert_non_null(strstr(text, "# TYPE bnn_requests_total counter\n"));
    assert_non_null(strstr(text, "# TYPE bnn_request_duration_seconds histogram\n"));
    assert_null(strstr(text, "bnn_requests_total{")); /* nothing observed yet */
    assert_true(sample(text, "bnn_queue_depth") == 3);
    assert_true(sample(text, "bnn_queue_capacity") == 64);
    assert_true(sample(text, "bnn_workers_busy") == 1);
    assert_true(sample(text, "bnn_workers") == 2);
    assert_true(sample(text, "bnn_ready") == 1);
    assert_true(sample(text, "bnn_queue_cost") == 12345);
    assert_true(sample(text, "bnn_queue_cost_capacity") == 1000000);
    assert_true(sample(text, "bnn_pass_cost{mode=\"lrt\"}") == 1);
    assert_true(sample(text, "bnn_pass_cost{mode=\"weights\"}") == 46);
    assert_true(sample(text, "bnn_samples_total{mode=\"lrt\"}") == 0);
    assert_true(sample(text, "bnn_samples_total{mode=\"weights\"}") == 0);
    assert_true(sample(text, "bnn_blocks_total{mode=\"lrt\"}") == 0);
    /* Label values escaped: quote and backslash. */
    assert_non_null(
        strstr(text, "bnn_model_info{architecture=\"784-784-256-256-10\",parameters=\"1769524\","
                     "path=\"model/w\\\"x\\\\.safetensors\",format=\"bnn-serve/1\",model_version=\"\"} 1\n"));
    assert_non_null(strstr(text, "bnn_build_info{version=\"0.1.0\",libmicrohttpd=\"0.9.75\""));
    free(text);
    text = render(m, NULL); /* no gauges: zeros */
    assert_true(sample(text, "bnn_queue_depth") == 0);
    free(text);
    metrics_free(m);
    metrics_free(NULL);
}

static void test_counters_and_histogram(void **state)
{
    (void)state;
    struct metrics *m = metrics_new(&info);
    metrics_observe_request(m, METRICS_ROUTE_PREDICT, 200, 0.0004); /* first bucket */
    metrics_observe_request(m, METRICS_ROUTE_PREDICT, 200, 0.003);  /* le 0.005 */
    metrics_observe_request(m, METRICS_ROUTE_PREDICT, 200, 0.005);  /* le 0.005: bounds are inclusive */
    metrics_observe_request(m, METRICS_ROUTE_PREDICT, 503, 42.0);   /* only +Inf */
    metrics_observe_request(m, METRICS_ROUTE_HEALTHZ, 200, 0.0001);
    metrics_observe_request(m, METRICS_ROUTE_OTHER, 404, 0.0001);
    metrics_observe_request(m, METRICS_ROUTE_COUNT, 999, 0.0001); /* clamped: route other, status 0 */
    metrics_add_block(m, BNN_MODE_LRT, 100);
    metrics_add_block(m, BNN_MODE_LRT, 23);
    metrics_add_block(m, BNN_MODE_WEIGHTS, 2);
    metrics_add_rejected(m);
    metrics_add_timed_out(m);
    metrics_add_timed_out(m);
    char *text = render(m, NULL);
    check_format(text);
    assert_true(sample(text, "bnn_requests_total{route=\"predict\",status=\"200\"}") == 3);
    assert_true(sample(text, "bnn_requests_total{route=\"predict\",status=\"503\"}") == 1);
    assert_true(sample(text, "bnn_requests_total{route=\"healthz\",status=\"200\"}") == 1);
    assert_true(sample(text, "bnn_requests_total{route=\"other\",status=\"404\"}") == 1);
    assert_true(sample(text, "bnn_requests_total{route=\"other\",status=\"0\"}") == 1);
    assert_true(sample(text, "bnn_request_duration_seconds_bucket{route=\"predict\",le=\"0.0005\"}") == 1);
    assert_true(sample(text, "bnn_request_duration_seconds_bucket{route=\"predict\",le=\"0.0025\"}") == 1);
    assert_true(sample(text, "bnn_request_duration_seconds_bucket{route=\"predict\",le=\"0.005\"}") == 3);
    assert_true(sample(text, "bnn_request_duration_seconds_bucket{route=\"predict\",le=\"10\"}") == 3);
    assert_true(sample(text, "bnn_request_duration_seconds_bucket{route=\"predict\",le=\"+Inf\"}") == 4);
    assert_true(sample(text, "bnn_request_duration_seconds_count{route=\"predict\"}") == 4);
    double sum = sample(text, "bnn_request_duration_seconds_sum{route=\"predict\"}");
    assert_true(sum > 42.00839 && sum < 42.00841);
    assert_true(sample(text, "bnn_samples_total{mode=\"lrt\"}") == 123);
    assert_true(sample(text, "bnn_samples_total{mode=\"weights\"}") == 2);
    assert_true(sample(text, "bnn_blocks_total{mode=\"lrt\"}") == 2);
    assert_true(sample(text, "bnn_blocks_total{mode=\"weights\"}") == 1);
    assert_true(sample(text, "bnn_jobs_rejected_total") == 1);
    assert_true(sample(text, "bnn_jobs_timed_out_total") == 2);
    /* Buckets are cumulative: never decreasing within a route. */
    double prev = -1;
    for (size_t b = 0; b < METRICS_N_BUCKETS; b++) {
        char prefix[128];
        snprintf(prefix, sizeof prefix, "bnn_request_duration_seconds_bucket{route=\"predict\",le=\"%g\"}",
                 metrics_buckets[b]);
        double v = sample(text, prefix);
        assert_true(v >= prev);
        prev = v;
    }
    assert_null(strstr(text, "route=\"metrics\"")); /* routes with no requests are left out */
    free(text);
    metrics_free(m);
}

static void test_route_names(void **state)
{
    (void)state;
    assert_string_equal(metrics_route_name(METRICS_ROUTE_PREDICT), "predict");
    assert_string_equal(metrics_route_name(METRICS_ROUTE_PREDICT_BATCH), "predict_batch");
    assert_string_equal(metrics_route_name(METRICS_ROUTE_COUNT), "other");
}

static void *hammer(void *arg)
{
    struct metrics *m = arg;
    for (int i = 0; i < 20000; i++) {
        metrics_observe_request(m, METRICS_ROUTE_PREDICT, 200, 0.001);
        metrics_add_block(m, BNN_MODE_WEIGHTS, 2);
    }
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    (void)state;
    struct metrics *m = metrics_new(&info);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, m);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    char *text = render(m, NULL);
    assert_true(sample(text, "bnn_requests_total{route=\"predict\",status=\"200\"}") == 80000);
    assert_true(sample(text, "bnn_request_duration_seconds_count{route=\"predict\"}") == 80000);
    assert_true(sample(text, "bnn_samples_total{mode=\"weights\"}") == 160000);
    assert_true(sample(text, "bnn_blocks_total{mode=\"weights\"}") == 80000);
    free(text);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_counters_and_histogram),
        cmocka_unit_test(test_route_names),
        cmocka_unit_test(test_concurrent_updates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

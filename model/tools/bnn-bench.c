/* bnn-bench - model speed on one core (BLAS single-threaded): CPU time per
 * prediction of one image for T = 10, 100, 1000 in both modes (median of
 * repeats), against the rate of a bare SGEMM of layer 1's shape measured in
 * the same run (the issue-11 target: lrt at T = 100 reaches >= 75 % of it)
 * and against our own packed GEMM's bare rate on the same shape (what the
 * AVX2 / AVX-512 paths' LRT layers run on, kernels.h), the speed-up of LRT
 * over weight sampling, and the cost of one normal draw.
 * Says which of our kernel paths (cpu.h) and which OpenBLAS core ran. Uses
 * the shipped model if present, else a random model of the same shape.
 *
 *   bnn-bench [--model PATH] [--data DIR] [--repeats N] [--max-seconds S] [--quick]
 *
 * --quick: only the SGEMM, lrt T = 100 and weights T = 10, ending with one
 * line "RESULT key=value ..." for scripts (tests/bench/run.sh).
 */
#include "bnn.h"
#include "cpu.h"
#include "idx.h"
#include "infer.h"
#include "kernels.h"
#include "preprocess.h"
#include "rng.h"
#include "weights.h"

#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void openblas_set_num_threads(int n);
char *openblas_get_config(void);
char *openblas_get_corename(void);

enum { N_IMAGES = 20 };

struct bench {
    struct bnn_model *m;
    struct bnn_workspace *ws;
    const char *model_note, *image_note;
    float images[N_IMAGES][BNN_MNIST_PIXELS];
    uint8_t pictures[N_IMAGES][BNN_MNIST_PIXELS]; /* the same as 8-bit pictures */
    int repeats;
    double max_seconds;
    double sgemm_gflops, sgemm_best_gflops; /* median and best of the bare SGEMM */
    double packed_gflops;                   /* median of our packed GEMM; 0 when the path has none */
};

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double clock_ms(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

/* CPU time of this thread: on a shared box it leaves out the time other
 * processes held the core (but not their effect on caches). */
static double cpu_ms(void)
{
    return clock_ms(CLOCK_THREAD_CPUTIME_ID);
}

static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void load_average(char *buf, size_t len)
{
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f)
        return;
    if (fgets(buf, (int)len, f))
        buf[strcspn(buf, "\n")] = '\0';
    fclose(f);
}

/* FLOPs of the LRT GEMMs/GEMVs for T passes: layer 0 two GEMVs once
 * (2 n_in n_out each), layers >= 1 two GEMMs of (T, n_in) x (n_in, n_out).
 * Dense counts: not reduced for skipped pixels or units, nor raised for the
 * GEMMs' padding rows. */
static double lrt_flops(const struct bnn_model *m, size_t T)
{
    double f = 2.0 * 2.0 * (double)m->layers[0].n_in * (double)m->layers[0].n_out;
    for (size_t l = 1; l < m->n_layers; l++)
        f += 2.0 * 2.0 * (double)T * (double)m->layers[l].n_in * (double)m->layers[l].n_out;
    return f;
}

/* Weight sampling: one GEMV per layer per pass (2 n_in n_out) plus the
 * mu + sigma * eps draw (2 per weight). */
static double weights_flops(const struct bnn_model *m, size_t T)
{
    double f = 0.0;
    for (size_t l = 0; l < m->n_layers; l++)
        f += 4.0 * (double)m->layers[l].n_in * (double)m->layers[l].n_out;
    return f * (double)T;
}

/* "model name" and family / model from /proc/cpuinfo (the VM hides the
 * marketing name; AMD family 25 = Zen 3 / Zen 4, 26 = Zen 5). */
static void cpu_info(char *out, size_t len)
{
    char name[128] = "unknown", line[8192];
    int family = -1, model_no = -1;
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *c = strchr(line, ':');
        if (!c)
            continue;
        if (strncmp(line, "model name", 10) == 0 && strcmp(name, "unknown") == 0)
            snprintf(name, sizeof name, "%.*s", (int)strcspn(c + 2, "\n"), c + 2);
        else if (strncmp(line, "cpu family", 10) == 0 && family < 0)
            family = atoi(c + 1);
        else if (strncmp(line, "model\t", 6) == 0 && model_no < 0)
            model_no = atoi(c + 1);
    }
    if (f)
        fclose(f);
    const char *zen = strstr(name, "AMD") && family == 25   ? (model_no >= 0x10 ? ": Zen 4" : ": Zen 3")
                      : strstr(name, "AMD") && family == 26 ? ": Zen 5"
                                                            : "";
    snprintf(out, len, "%s (family %d, model %d%s)", name, family, model_no, zen);
}

static void usage(FILE *to)
{
    fprintf(to, "usage: bnn-bench [--model PATH] [--data DIR] [--repeats N] [--max-seconds S] [--quick]\n");
}

/* The shipped model, or a random one of its shape: mu ~ N(0, 0.05^2),
 * sigma 0.01..0.05 (the speed is the same, the answers are not). */
static struct bnn_model *bench_model(const char *path, const char **note)
{
    char err[BNN_ERR_LEN];
    struct bnn_model *m = NULL;
    if (access(path, R_OK) == 0) {
        if (bnn_weights_load(&m, path, err) != BNN_OK)
            fprintf(stderr, "bnn-bench: error: %s\n", err);
        *note = path;
        return m;
    }
    size_t dims[] = {784, 784, 256, 256, 10};
    if (!(m = bnn_model_new(dims, 4, err))) {
        fprintf(stderr, "bnn-bench: error: %s\n", err);
        return NULL;
    }
    for (size_t l = 0; l < m->n_layers; l++) {
        struct bnn_layer *ly = &m->layers[l];
        size_t nw = ly->n_in * ly->n_out;
        rng_normals(ly->w_mu, nw, 1, 100 + (uint32_t)l, 0, 0);
        rng_uniforms(ly->w_sigma, nw, 1, 200 + (uint32_t)l, 0, 0);
        for (size_t i = 0; i < nw; i++)
            ly->w_mu[i] *= 0.05f, ly->w_sigma[i] = 0.01f + 0.04f * ly->w_sigma[i];
        for (size_t j = 0; j < ly->n_out; j++)
            ly->b_mu[j] = 0.0f, ly->b_sigma[j] = 0.01f;
    }
    bnn_model_update_var(m);
    *note = "random model of the shipped shape (no shipped weights found)";
    return m;
}

/* Repeats cycle through N_IMAGES test digits: the cost varies a little with
 * the image (layer 0 reads the weights of the lit pixels only). */
static void bench_images(struct bench *b, const char *data)
{
    char err[BNN_ERR_LEN];
    struct idx_images im;
    struct idx_labels lb;
    b->image_note = "a synthetic bar (MNIST not found)";
    if (idx_load_mnist(&im, &lb, data, "t10k", err) == BNN_OK) {
        for (size_t k = 0; k < N_IMAGES; k++)
            for (size_t i = 0; i < BNN_MNIST_PIXELS; i++) {
                b->pictures[k][i] = im.pixels[k * BNN_MNIST_PIXELS + i];
                b->images[k][i] = im.pixels[k * BNN_MNIST_PIXELS + i] / 255.0f;
            }
        idx_images_free(&im);
        idx_labels_free(&lb);
        b->image_note = "MNIST t10k images 0-19, cycled over the repeats";
        return;
    }
    for (size_t k = 0; k < N_IMAGES; k++)
        for (size_t i = 0; i < BNN_MNIST_PIXELS; i++) {
            int on = i / 28 > 6 && i / 28 < 22 && i % 28 > 10 && i % 28 < 16;
            b->images[k][i] = on ? 1.0f : 0.0f;
            b->pictures[k][i] = on ? 255 : 0;
        }
}

/* The bare SGEMM of layer 1's shape at BNN_BLOCK rows (what one block of
 * the LRT kernel multiplies), beta = 0, CPU time: median and best of 51. */
static void sgemm_rate(struct bench *b)
{
    const struct bnn_layer *l1 = &b->m->layers[b->m->n_layers > 1];
    size_t M = BNN_BLOCK, K = l1->n_in, N = l1->n_out;
    float *A = malloc(M * K * sizeof(float)), *C = malloc(M * N * sizeof(float));
    double t[51];
    b->sgemm_gflops = b->sgemm_best_gflops = 0.0;
    if (!A || !C) {
        free(A), free(C);
        return;
    }
    for (size_t i = 0; i < M * K; i++)
        A[i] = (float)(i % 7) * 0.1f;
    for (int r = 0; r < 51; r++) {
        double c0 = cpu_ms();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, A, (int)K,
                    l1->w_mu, (int)N, 0.0f, C, (int)N);
        t[r] = cpu_ms() - c0;
    }
    double flops = 2.0 * (double)(M * N * K);
    b->sgemm_gflops = flops / (median_of(t, 51) * 1e-3) * 1e-9;
    b->sgemm_best_gflops = flops / (t[0] * 1e-3) * 1e-9; /* t sorted by median_of */
    printf("sgemm %zux%zu . %zux%zu alone: %.1f GFLOP/s (median of 51, cpu time; best %.1f)\n", M, K, K, N,
           b->sgemm_gflops, b->sgemm_best_gflops);
    free(A), free(C);
}

/* Our packed GEMM (kernels.h, the path in use) on the same shape as
 * sgemm_rate, the weights packed once as the model's are: median of 51. */
static void packed_rate(struct bench *b)
{
    const struct bnn_kernels *kt = bnn_kernels();
    const struct bnn_layer *l1 = &b->m->layers[b->m->n_layers > 1];
    size_t M = BNN_BLOCK, K = l1->n_in, N = l1->n_out, ldc = (N + 15) / 16 * 16;
    b->packed_gflops = 0.0;
    if (!kt->gemm_packed) {
        printf("our packed GEMM: none on the %s path (its LRT layers run on OpenBLAS)\n", kt->name);
        return;
    }
    float *A = malloc(M * K * sizeof(float)), *C = malloc(M * ldc * sizeof(float));
    float *W = malloc(kt->packed_floats(K, N) * sizeof(float));
    double t[51];
    if (A && C && W) {
        for (size_t i = 0; i < M * K; i++)
            A[i] = (float)(i % 7) * 0.1f;
        kt->pack(W, l1->w_mu, NULL, K, N);
        for (int r = 0; r < 51; r++) {
            double c0 = cpu_ms();
            kt->gemm_packed(C, ldc, A, K, W, M, K, N);
            t[r] = cpu_ms() - c0;
        }
        b->packed_gflops = 2.0 * (double)(M * N * K) / (median_of(t, 51) * 1e-3) * 1e-9;
        printf("our packed GEMM (%s path), same shape: %.1f GFLOP/s (median of 51, cpu time)\n", kt->name,
               b->packed_gflops);
    }
    free(A), free(C), free(W);
}

/* Nanoseconds per normal draw, rows of layer 0's width (median of 15). */
static double normal_ns(const struct bench *b)
{
    size_t n = b->m->layers[0].n_out, rows = 2000;
    float *out = malloc(n * sizeof(float));
    double t[15];
    if (!out)
        return 0.0;
    for (int r = 0; r < 15; r++) {
        double c0 = cpu_ms();
        for (size_t p = 0; p < rows; p++)
            rng_normals(out, n, 42, 0, (uint32_t)p, 0);
        t[r] = (cpu_ms() - c0) * 1e6 / (double)(rows * n);
    }
    free(out);
    return median_of(t, 15);
}

/* CPU microseconds to canonicalise one 28x28 picture (preprocess.h, what
 * the daemon does to every decoded PNG before the passes): median of 15
 * rounds over the bench's pictures. */
static double canonical_us(const struct bench *b)
{
    float out[BNN_MNIST_PIXELS];
    struct prep_result r;
    double t[15];
    for (int round = 0; round < 15; round++) {
        double c0 = cpu_ms();
        for (int rep = 0; rep < 20; rep++)
            for (size_t k = 0; k < N_IMAGES; k++)
                prep_canonical(out, &r, b->pictures[k], BNN_MNIST_SIDE, BNN_MNIST_SIDE);
        t[round] = (cpu_ms() - c0) * 1e3 / (20.0 * N_IMAGES);
    }
    return median_of(t, 15);
}

/* The same for a 280x280 page (the pictures scaled up 10x, nearest), which
 * is area-averaged down to 64x64 first. */
static double canonical_page_us(const struct bench *b)
{
    enum { PAGE = 10 * BNN_MNIST_SIDE };
    static uint8_t pages[N_IMAGES][PAGE * PAGE];
    float out[BNN_MNIST_PIXELS];
    struct prep_result r;
    double t[15];
    for (size_t k = 0; k < N_IMAGES; k++)
        for (size_t i = 0; i < PAGE * PAGE; i++)
            pages[k][i] = b->pictures[k][i / PAGE / 10 * BNN_MNIST_SIDE + i % PAGE / 10];
    for (int round = 0; round < 15; round++) {
        double c0 = cpu_ms();
        for (size_t k = 0; k < N_IMAGES; k++)
            prep_canonical(out, &r, pages[k], PAGE, PAGE);
        t[round] = (cpu_ms() - c0) * 1e3 / N_IMAGES;
    }
    return median_of(t, 15);
}

struct cell {
    double wall_ms, cpu_ms, min_cpu_ms, gflops;
    int n, predicted;
};

/* Median over up to b->repeats predictions (fewer if they would pass
 * b->max_seconds) of one (mode, T), after one warm-up. */
static int measure(struct cell *c, struct bench *b, enum bnn_mode mode, size_t T)
{
    char err[BNN_ERR_LEN];
    struct bnn_prediction pred;
    double w0 = clock_ms(CLOCK_MONOTONIC);
    if (bnn_predict(&pred, b->ws, b->m, b->images[0], T, 42, 0.95, mode, err) != BNN_OK) {
        fprintf(stderr, "bnn-bench: error: %s\n", err);
        return -1;
    }
    double one = clock_ms(CLOCK_MONOTONIC) - w0;
    int n = b->repeats;
    if (one * n > b->max_seconds * 1e3)
        n = (int)(b->max_seconds * 1e3 / one) > 1 ? (int)(b->max_seconds * 1e3 / one) : 1;
    double *walls = malloc((size_t)n * sizeof(double)), *cpus = malloc((size_t)n * sizeof(double));
    if (!walls || !cpus) {
        free(walls), free(cpus);
        fprintf(stderr, "bnn-bench: error: out of memory\n");
        return -1;
    }
    for (int r = 0; r < n; r++) {
        double t0 = clock_ms(CLOCK_MONOTONIC), c0 = cpu_ms();
        bnn_predict(&pred, b->ws, b->m, b->images[r % N_IMAGES], T, 42 + (uint64_t)r, 0.95, mode, err);
        cpus[r] = cpu_ms() - c0;
        walls[r] = clock_ms(CLOCK_MONOTONIC) - t0;
    }
    c->wall_ms = median_of(walls, n);
    c->cpu_ms = median_of(cpus, n);
    c->min_cpu_ms = cpus[0];
    c->gflops =
        (mode == BNN_MODE_LRT ? lrt_flops(b->m, T) : weights_flops(b->m, T)) / (c->cpu_ms * 1e-3) * 1e-9;
    c->n = n;
    c->predicted = pred.predicted;
    free(walls), free(cpus);
    return 0;
}

static void print_header(struct bench *b)
{
    char cpu[256], arch[128], load[128];
    cpu_info(cpu, sizeof cpu);
    printf("model: %s (%s, %zu parameters)\n", b->model_note, bnn_model_arch(b->m, arch, sizeof arch),
           bnn_model_param_count(b->m));
    printf("input: %s\n", b->image_note);
    printf("cpu: %s\n", cpu);
    printf("our kernels: %s path (best here: %s%s)\n", bnn_cpu_path_name(),
           bnn_cpu_path_label(bnn_cpu_path_best()),
           getenv("BNN_CPU_PATH") && *getenv("BNN_CPU_PATH") ? "; capped by BNN_CPU_PATH" : "");
    printf("openblas: %s (core %s), 1 thread\n", openblas_get_config(), openblas_get_corename());
    load_average(load, sizeof load);
    printf("load average before the run: %s (%ld CPUs online; other processes inflate wall times)\n", load,
           sysconf(_SC_NPROCESSORS_ONLN));
    sgemm_rate(b);
    packed_rate(b);
}

/* The full table: both modes, T = 10, 100, 1000. */
static int run_full(struct bench *b)
{
    static const size_t Ts[] = {10, 100, 1000};
    struct cell c[2][3];
    printf("normal draws: %.3f ns each (rows of %zu, median of 15)\n", normal_ns(b), b->m->layers[0].n_out);
    printf("median of up to %d repeats (fewer if a cell would exceed %.0f s); wall = elapsed, cpu = this\n"
           "thread's CPU time; GFLOP/s from the median cpu time (dense GEMM FLOPs); %%sgemm = that\n"
           "rate against the bare SGEMM's median above\n\n",
           b->repeats, b->max_seconds);
    printf("%-8s %6s %10s %10s %10s %10s %8s\n", "mode", "T", "wall ms", "cpu ms", "min cpu", "GFLOP/s",
           "%sgemm");
    for (int mode = 0; mode < 2; mode++)
        for (int ti = 0; ti < 3; ti++) {
            struct cell *x = &c[mode][ti];
            if (measure(x, b, (enum bnn_mode)mode, Ts[ti]) != 0)
                return -1;
            printf("%-8s %6zu %10.3f %10.3f %10.3f %10.2f %7.1f%%   (n=%d, predicted %d)\n",
                   bnn_mode_name((enum bnn_mode)mode), Ts[ti], x->wall_ms, x->cpu_ms, x->min_cpu_ms,
                   x->gflops, 100.0 * x->gflops / b->sgemm_gflops, x->n, x->predicted);
            fflush(stdout);
        }
    double ratio = c[0][1].gflops / b->sgemm_gflops;
    printf("\nspeed-up lrt over weights (cpu time): T=10 %.0fx, T=100 %.0fx, T=1000 %.0fx\n",
           c[1][0].cpu_ms / c[0][0].cpu_ms, c[1][1].cpu_ms / c[0][1].cpu_ms, c[1][2].cpu_ms / c[0][2].cpu_ms);
    printf("lrt T=100: %.1f GFLOP/s = %.1f %% of the bare SGEMM rate (target >= 75 %%: %s)", c[0][1].gflops,
           100.0 * ratio, ratio >= 0.75 ? "met" : "MISSED");
    if (b->packed_gflops > 0.0)
        printf("; %.1f %% of our packed GEMM's", 100.0 * c[0][1].gflops / b->packed_gflops);
    printf("\n");
    double canon = canonical_us(b);
    printf("canonicalisation of a 28x28 picture: %.1f us cpu = %.1f %% of an lrt T=100 prediction "
           "(target < 5 %%: %s)\n",
           canon, 100.0 * canon / (1e3 * c[0][1].cpu_ms),
           canon < 0.05 * 1e3 * c[0][1].cpu_ms ? "met" : "MISSED");
    printf("canonicalisation of a 280x280 picture: %.1f us cpu\n", canonical_page_us(b));
    printf("targets: lrt T=100 < 2 ms cpu: %s (%.3f ms); >= 50x faster than weights at T=100: %s (%.0fx)\n",
           c[0][1].cpu_ms < 2.0 ? "met" : "MISSED", c[0][1].cpu_ms,
           c[1][1].cpu_ms / c[0][1].cpu_ms >= 50.0 ? "met" : "MISSED", c[1][1].cpu_ms / c[0][1].cpu_ms);
    return 0;
}

static int run_quick(struct bench *b)
{
    struct cell lrt, w;
    if (measure(&lrt, b, BNN_MODE_LRT, 100) != 0 || measure(&w, b, BNN_MODE_WEIGHTS, 10) != 0)
        return -1;
    printf("lrt T=100: %.3f ms cpu, %.1f GFLOP/s = %.1f %% of the bare SGEMM; weights T=10: %.3f ms cpu\n",
           lrt.cpu_ms, lrt.gflops, 100.0 * lrt.gflops / b->sgemm_gflops, w.cpu_ms);
    printf(
        "RESULT path=%s openblas=%s sgemm_gflops=%.2f packed_gflops=%.2f lrt100_ms=%.4f lrt100_gflops=%.2f "
        "ratio=%.4f weights10_ms=%.3f\n",
        bnn_cpu_path_name(), openblas_get_corename(), b->sgemm_gflops, b->packed_gflops, lrt.cpu_ms,
        lrt.gflops, lrt.gflops / b->sgemm_gflops, w.cpu_ms);
    return 0;
}

int main(int argc, char **argv)
{
    const char *model_path = "model/weights/mnist-bnn.safetensors", *data = "build/data/mnist";
    static struct bench b = {.repeats = 15, .max_seconds = 20.0};
    int quick = 0, c;
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"data", required_argument, 0, 'd'},
                                         {"repeats", required_argument, 0, 'r'},
                                         {"max-seconds", required_argument, 0, 's'},
                                         {"quick", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    while ((c = getopt_long(argc, argv, "m:d:r:s:qh", opts, NULL)) != -1) {
        if (c == 'm')
            model_path = optarg;
        else if (c == 'd')
            data = optarg;
        else if (c == 'r')
            b.repeats = atoi(optarg);
        else if (c == 's')
            b.max_seconds = atof(optarg);
        else if (c == 'q')
            quick = 1;
        else if (c == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            fprintf(stderr, "try 'bnn-bench --help'\n");
            return 2;
        }
    }
    if (optind < argc || b.repeats < 1 || !(b.max_seconds > 0.0)) {
        fprintf(stderr, "bnn-bench: error: %s\ntry 'bnn-bench --help'\n",
                optind < argc ? "unexpected argument" : "--repeats must be >= 1 and --max-seconds > 0");
        return 2;
    }
    char err[BNN_ERR_LEN];
    if (bnn_cpu_init(err) != BNN_OK) {
        fprintf(stderr, "bnn-bench: error: %s\n", err);
        return 2;
    }
    openblas_set_num_threads(1);
    if (!(b.m = bench_model(model_path, &b.model_note)))
        return 1;
    bench_images(&b, data);
    if (!(b.ws = bnn_workspace_new(b.m))) {
        fprintf(stderr, "bnn-bench: error: out of memory for the workspace\n");
        bnn_model_free(b.m);
        return 1;
    }
    print_header(&b);
    int rc = quick ? run_quick(&b) : run_full(&b);
    bnn_workspace_free(b.ws);
    bnn_model_free(b.m);
    return rc == 0 ? 0 : 1;
}

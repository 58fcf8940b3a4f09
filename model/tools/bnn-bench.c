/* bnn-bench - model speed: ms per prediction for T = 10, 100, 1000 in both
 * modes on one core (BLAS single-threaded), median of repeats, the speed-up
 * of LRT over weight sampling, and the GFLOP/s the GEMMs reach against an
 * assumed peak. Uses the shipped model if present, else a random model of the
 * same shape (and says so).
 *
 *   bnn-bench [--model PATH] [--data DIR] [--repeats N] [--max-seconds S]
 */
#include "bnn.h"
#include "idx.h"
#include "infer.h"
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

static double now_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
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
 * (2 n_in n_out each), layers >= 1 two GEMMs of (T, n_in) x (n_in, n_out). */
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

static void cpu_info(char *model, size_t mlen, double *mhz, int *avx512, int *avx2, int *fma)
{
    snprintf(model, mlen, "unknown");
    *mhz = 0.0;
    *avx512 = *avx2 = *fma = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[8192];
    int family = -1, model_no = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0 && strcmp(model, "unknown") == 0) {
            char *c = strchr(line, ':');
            if (c) {
                snprintf(model, mlen, "%s", c + 2);
                model[strcspn(model, "\n")] = '\0';
            }
        } else if (strncmp(line, "cpu family", 10) == 0 && family < 0) {
            char *c = strchr(line, ':');
            family = c ? atoi(c + 1) : -1;
        } else if (strncmp(line, "model\t", 6) == 0 && model_no < 0) {
            char *c = strchr(line, ':');
            model_no = c ? atoi(c + 1) : -1;
        } else if (strncmp(line, "cpu MHz", 7) == 0 && *mhz == 0.0) {
            char *c = strchr(line, ':');
            if (c)
                *mhz = atof(c + 1);
        } else if (strncmp(line, "flags", 5) == 0) {
            *avx512 = strstr(line, " avx512f") != NULL;
            *avx2 = strstr(line, " avx2") != NULL;
            *fma = strstr(line, " fma") != NULL;
        }
    }
    fclose(f);
    /* The VM hides the marketing name; family/model identify the core
     * (AMD family 25 = Zen 3 / Zen 4; model 0x10-0x1f = Zen 4 "Genoa"). */
    size_t used = strlen(model);
    if (family >= 0 && used < mlen)
        snprintf(model + used, mlen - used, " (family %d, model %d%s)", family, model_no,
                 family == 25 && model_no >= 0x10 && model_no <= 0x1f ? ": Zen 4" : "");
}

static void usage(FILE *to)
{
    fprintf(to, "usage: bnn-bench [--model PATH] [--data DIR] [--repeats N] [--max-seconds S]\n");
}

int main(int argc, char **argv)
{
    const char *model_path = "model/weights/mnist-bnn.safetensors", *data = "build/data/mnist";
    int repeats = 15;
    double max_seconds = 20.0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"data", required_argument, 0, 'd'},
        {"repeats", required_argument, 0, 'r'}, {"max-seconds", required_argument, 0, 's'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:d:r:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            model_path = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case 'r':
            repeats = atoi(optarg);
            break;
        case 's':
            max_seconds = atof(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            fprintf(stderr, "try 'bnn-bench --help'\n");
            return 2;
        }
    }
    if (repeats < 1) {
        fprintf(stderr, "bnn-bench: error: --repeats must be >= 1, got %d\n", repeats);
        return 2;
    }
    openblas_set_num_threads(1);
    char err[BNN_ERR_LEN];
    struct bnn_model *m = NULL;
    const char *which;
    if (access(model_path, R_OK) == 0) {
        if (bnn_weights_load(&m, model_path, err) != BNN_OK) {
            fprintf(stderr, "bnn-bench: error: %s\n", err);
            return 1;
        }
        which = model_path;
    } else {
        size_t dims[] = {784, 784, 256, 256, 10};
        if (!(m = bnn_model_new(dims, 4, err))) {
            fprintf(stderr, "bnn-bench: error: %s\n", err);
            return 1;
        }
        /* Random model of the shipped shape: mu ~ N(0, 0.05^2), sigma 0.01..0.05. */
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
        which = "random model of the shipped shape (no shipped weights found)";
    }
    /* Repeats cycle through N_IMAGES test digits: the cost varies a little
     * with the image (layer-0 units no draw can switch on are skipped). */
    enum { N_IMAGES = 20 };
    static float images[N_IMAGES][BNN_MNIST_PIXELS];
    struct idx_images im;
    struct idx_labels lb;
    const char *img_src = "a synthetic bar (MNIST not found)";
    if (idx_load_mnist(&im, &lb, data, "t10k", err) == BNN_OK) {
        for (size_t k = 0; k < N_IMAGES; k++)
            for (size_t i = 0; i < BNN_MNIST_PIXELS; i++)
                images[k][i] = im.pixels[k * BNN_MNIST_PIXELS + i] / 255.0f;
        idx_images_free(&im);
        idx_labels_free(&lb);
        img_src = "MNIST t10k images 0-19, cycled over the repeats";
    } else {
        for (size_t k = 0; k < N_IMAGES; k++)
            for (size_t i = 0; i < BNN_MNIST_PIXELS; i++)
                images[k][i] = (i / 28 > 6 && i / 28 < 22 && i % 28 > 10 && i % 28 < 16) ? 1.0f : 0.0f;
    }
    char cpu[256], arch[128];
    double mhz;
    int avx512, avx2, fma;
    cpu_info(cpu, sizeof cpu, &mhz, &avx512, &avx2, &fma);
    /* The assumption: Zen 3, AVX2 + FMA: 2 FMA pipes x 8 floats x 2 =
     * 32 FLOP/cycle/core. Zen 4 executes AVX-512 as two 256-bit halves, so the
     * figure is the same there; a core with two 512-bit FMA units would do 64. */
    double flop_per_cycle = 32.0, peak = flop_per_cycle * mhz * 1e-3;
    printf("model: %s (%s, %zu parameters)\n", which, bnn_model_arch(m, arch, sizeof arch),
           bnn_model_param_count(m));
    printf("input: %s\n", img_src);
    printf("cpu: %s, %.0f MHz as reported by /proc/cpuinfo; flags: avx512f=%s avx2=%s fma=%s\n", cpu, mhz,
           avx512 ? "yes" : "no", avx2 ? "yes" : "no", fma ? "yes" : "no");
    printf("openblas: %s (core %s), 1 thread\n", openblas_get_config(), openblas_get_corename());
    printf("peak assumed: %.0f FLOP/cycle/core (Zen 3 AVX2+FMA; Zen 4's AVX-512 is double-pumped, same rate) "
           "x %.0f MHz = %.1f GFLOP/s\n",
           flop_per_cycle, mhz, peak);
    /* What this core's SGEMM really reaches at the shape of layer 1's GEMM
     * (the VM reports the nominal clock; the core may boost above it). */
    {
        size_t M = BNN_BLOCK, K = m->layers[m->n_layers > 1].n_in, N = m->layers[m->n_layers > 1].n_out;
        float *A = calloc(M * K, sizeof(float)), *C = calloc(M * N, sizeof(float));
        const float *B = m->layers[m->n_layers > 1].w_mu;
        for (size_t i = 0; i < M * K; i++)
            A[i] = (float)(i % 7) * 0.1f;
        double best = 1e30;
        for (int r = 0; r < 30 && A && C; r++) {
            double c0 = cpu_ms();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, A, (int)K, B,
                        (int)N, 0.0f, C, (int)N);
            double dt = cpu_ms() - c0;
            best = dt < best ? dt : best;
        }
        printf("sgemm %zux%zu . %zux%zu alone: %.1f GFLOP/s (best of 30, cpu time) = %.0f%% of the assumed "
               "peak\n",
               M, K, K, N, 2.0 * (double)(M * N * K) / (best * 1e-3) * 1e-9,
               100.0 * 2.0 * (double)(M * N * K) / (best * 1e-3) * 1e-9 / peak);
        double gf = 2.0 * (double)(M * N * K) / (best * 1e-3) * 1e-9;
        if (gf > peak)
            printf("  (above the assumed peak: at 32 FLOP/cycle the core must run at >= %.2f GHz, above the\n"
                   "   %.0f MHz the VM reports - it boosts; %%peak below is against the nominal clock)\n",
                   gf / flop_per_cycle, mhz);
        free(A);
        free(C);
    }
    char load[128];
    load_average(load, sizeof load);
    printf("load average before the run: %s (%ld CPUs online; other processes inflate wall times)\n", load,
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("median of up to %d repeats (fewer if a cell would exceed %.0f s); wall = elapsed, cpu = this\n"
           "thread's CPU time; GFLOP/s and %%peak from the median cpu time (FLOPs of the dense\n"
           "GEMMs, not reduced for skipped units)\n",
           repeats, max_seconds);

    struct bnn_workspace *ws = bnn_workspace_new(m);
    if (!ws) {
        fprintf(stderr, "bnn-bench: error: out of memory for the workspace\n");
        bnn_model_free(m);
        return 1;
    }
    double live = 0.0;
    for (size_t k = 0; k < N_IMAGES; k++) {
        struct bnn_prediction pred;
        if (bnn_predict(&pred, ws, m, images[k], 1, 1, 0.95, BNN_MODE_LRT, err) != BNN_OK) {
            fprintf(stderr, "bnn-bench: error: %s\n", err);
            return 1;
        }
        live += (double)bnn_workspace_live_units(ws) / N_IMAGES;
    }
    printf("layer 1 runs on %.0f of layer 0's %zu units on average (the rest cannot be switched on by any "
           "draw)\n\n",
           live, m->layers[0].n_out);
    printf("%-8s %6s %10s %10s %10s %10s %8s\n", "mode", "T", "wall ms", "cpu ms", "min cpu", "GFLOP/s",
           "%peak");
    static const size_t Ts[] = {10, 100, 1000};
    double med[2][3];
    double *times = malloc((size_t)repeats * sizeof(double)),
           *cpus = malloc((size_t)repeats * sizeof(double));
    for (int mode = 0; mode < 2; mode++) {
        for (int ti = 0; ti < 3; ti++) {
            size_t T = Ts[ti];
            struct bnn_prediction pred;
            /* warm-up (also estimates the cost to cap the repeats) */
            double t0 = now_ms();
            if (bnn_predict(&pred, ws, m, images[0], T, 42, 0.95, (enum bnn_mode)mode, err) != BNN_OK) {
                fprintf(stderr, "bnn-bench: error: %s\n", err);
                return 1;
            }
            double one = now_ms() - t0;
            int n = repeats;
            if (one * n > max_seconds * 1e3)
                n = (int)(max_seconds * 1e3 / one) > 1 ? (int)(max_seconds * 1e3 / one) : 1;
            for (int r = 0; r < n; r++) {
                double w0 = now_ms(), c0 = cpu_ms();
                bnn_predict(&pred, ws, m, images[r % N_IMAGES], T, 42 + (uint64_t)r, 0.95,
                            (enum bnn_mode)mode, err);
                cpus[r] = cpu_ms() - c0;
                times[r] = now_ms() - w0;
            }
            double wall = median_of(times, n), cpu_med = median_of(cpus, n);
            med[mode][ti] = cpu_med;
            double fl = mode == 0 ? lrt_flops(m, T) : weights_flops(m, T);
            double gf = fl / (cpu_med * 1e-3) * 1e-9;
            printf("%-8s %6zu %10.3f %10.3f %10.3f %10.2f %7.1f%%   (n=%d, predicted %d)\n",
                   bnn_mode_name((enum bnn_mode)mode), T, wall, cpu_med, cpus[0], gf, 100.0 * gf / peak, n,
                   pred.predicted);
            fflush(stdout);
        }
    }
    printf("\nspeed-up lrt over weights (cpu time): T=10 %.0fx, T=100 %.0fx, T=1000 %.0fx\n",
           med[1][0] / med[0][0], med[1][1] / med[0][1], med[1][2] / med[0][2]);
    printf("targets: lrt T=100 < 2 ms cpu: %s (%.3f ms); >= 50x faster than weights at T=100: %s (%.0fx)\n",
           med[0][1] < 2.0 ? "met" : "MISSED", med[0][1], med[1][1] / med[0][1] >= 50.0 ? "met" : "MISSED",
           med[1][1] / med[0][1]);
    free(times);
    free(cpus);
    bnn_workspace_free(ws);
    bnn_model_free(m);
    return 0;
}

/* cpu.c - run-time choice of the kernel table (cpu.h, kernels.h).
 *
 * Detection follows the x86-64 psABI levels the paths are compiled for
 * (-march=x86-64-v3 / -v4 may emit any instruction of the level, not only
 * the vector ones), and the OS must save the wider registers: XCR0 bits 1-2
 * (SSE, AVX) for avx2, and 5-7 (opmask, ZMM) as well for avx512.
 */
#include "cpu.h"
#include "kernels.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

static const char *const path_names[BNN_CPU_N_PATHS] = {"baseline", "avx2", "avx512"};

/* The table in use; NULL until chosen. */
static _Atomic(const struct bnn_kernels *) active;

const char *bnn_cpu_path_label(enum bnn_cpu_path path)
{
    return (unsigned)path < BNN_CPU_N_PATHS ? path_names[path] : "unknown";
}

int bnn_cpu_path_parse(const char *name, enum bnn_cpu_path *out)
{
    for (int p = 0; p < BNN_CPU_N_PATHS; p++)
        if (strcmp(name, path_names[p]) == 0) {
            *out = (enum bnn_cpu_path)p;
            return 0;
        }
    return -1;
}

static const struct bnn_kernels *table_of(enum bnn_cpu_path path)
{
    switch (path) {
#if defined(__x86_64__)
    case BNN_CPU_AVX512:
        return &bnn_kernels_avx512;
    case BNN_CPU_AVX2:
        return &bnn_kernels_avx2;
#endif
    case BNN_CPU_BASELINE:
        return &bnn_kernels_baseline;
    default:
        return NULL;
    }
}

#if defined(__x86_64__)
static uint64_t xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

static enum bnn_cpu_path detect(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return BNN_CPU_BASELINE;
    int osxsave = c >> 27 & 1, avx = c >> 28 & 1, fma = c >> 12 & 1, movbe = c >> 22 & 1, f16c = c >> 29 & 1;
    if (!osxsave || !avx || (xcr0() & 0x6) != 0x6)
        return BNN_CPU_BASELINE;
    unsigned ea, eb, ec, ed;
    int lzcnt = __get_cpuid(0x80000001, &ea, &eb, &ec, &ed) && (ec >> 5 & 1);
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return BNN_CPU_BASELINE;
    int avx2 = b >> 5 & 1, bmi1 = b >> 3 & 1, bmi2 = b >> 8 & 1;
    if (!(avx2 && fma && bmi1 && bmi2 && lzcnt && movbe && f16c))
        return BNN_CPU_BASELINE;
    /* AVX-512 F (16), DQ (17), CD (28), BW (30), VL (31) */
    uint32_t v4 = 1u << 16 | 1u << 17 | 1u << 28 | 1u << 30 | 1u << 31;
    if ((b & v4) == v4 && (xcr0() & 0xe6) == 0xe6)
        return BNN_CPU_AVX512;
    return BNN_CPU_AVX2;
}
#else
static enum bnn_cpu_path detect(void)
{
    return BNN_CPU_BASELINE;
}
#endif

enum bnn_cpu_path bnn_cpu_path_best(void)
{
    static atomic_int best = -1; /* cpuid once; a race computes the same value twice */
    int b = atomic_load_explicit(&best, memory_order_relaxed);
    if (b < 0) {
        b = (int)detect();
        atomic_store_explicit(&best, b, memory_order_relaxed);
    }
    return (enum bnn_cpu_path)b;
}

int bnn_cpu_path_supported(enum bnn_cpu_path path)
{
    return (unsigned)path < BNN_CPU_N_PATHS && path <= bnn_cpu_path_best() && table_of(path) != NULL;
}

/* The best path capped by BNN_CPU_PATH; -1 (and the best path) when the
 * variable holds something else. */
static int choose(enum bnn_cpu_path *out)
{
    enum bnn_cpu_path best = bnn_cpu_path_best(), cap;
    const char *env = getenv("BNN_CPU_PATH");
    *out = best;
    if (!env || !*env)
        return 0;
    if (bnn_cpu_path_parse(env, &cap) != 0)
        return -1;
    *out = cap < best ? cap : best;
    return 0;
}

int bnn_cpu_init(char err[BNN_ERR_LEN])
{
    enum bnn_cpu_path p;
    int bad = choose(&p);
    atomic_store_explicit(&active, table_of(p), memory_order_relaxed);
    if (bad) {
        snprintf(err, BNN_ERR_LEN, "BNN_CPU_PATH: expected baseline, avx2 or avx512, got '%.64s'",
                 getenv("BNN_CPU_PATH"));
        return BNN_E_INVALID;
    }
    return BNN_OK;
}

const struct bnn_kernels *bnn_kernels(void)
{
    const struct bnn_kernels *k = atomic_load_explicit(&active, memory_order_relaxed);
    if (!k) {
        enum bnn_cpu_path p;
        choose(&p);
        k = table_of(p);
        /* first chooser wins, so concurrent first calls agree */
        const struct bnn_kernels *expected = NULL;
        if (!atomic_compare_exchange_strong(&active, &expected, k))
            k = expected;
    }
    return k;
}

int bnn_cpu_path_force(enum bnn_cpu_path path, char err[BNN_ERR_LEN])
{
    if (!bnn_cpu_path_supported(path)) {
        snprintf(err, BNN_ERR_LEN, "code path %s: not supported here (best: %s)", bnn_cpu_path_label(path),
                 bnn_cpu_path_label(bnn_cpu_path_best()));
        return BNN_E_INVALID;
    }
    atomic_store_explicit(&active, table_of(path), memory_order_relaxed);
    return BNN_OK;
}

enum bnn_cpu_path bnn_cpu_path(void)
{
    const struct bnn_kernels *k = bnn_kernels();
    for (int p = 0; p < BNN_CPU_N_PATHS; p++)
        if (table_of((enum bnn_cpu_path)p) == k)
            return (enum bnn_cpu_path)p;
    return BNN_CPU_BASELINE;
}

const char *bnn_cpu_path_name(void)
{
    return bnn_kernels()->name;
}

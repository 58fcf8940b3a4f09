/* cpu.h - the code path libbnn's own kernels run on (Philox normals, the
 * LRT draws, the layer-0 GEMV, the LRT layers' GEMMs from AVX2 on, weight
 * sampling's draws; kernels.h), chosen
 * at run time for the CPU, as OpenBLAS's DYNAMIC_ARCH does for its GEMMs:
 *
 *   baseline  the build's own target (x86-64-v2 by default: SSE4.2)
 *   avx2      x86-64-v3: AVX2, FMA, BMI1/2, LZCNT, MOVBE, F16C
 *   avx512    x86-64-v4: the above and AVX-512 F, BW, CD, DQ, VL
 *
 * The first kernel call (or bnn_cpu_init) picks the best path the CPU and
 * the operating system support (cpuid; xgetbv for the AVX / AVX-512 register
 * state), capped by the environment variable BNN_CPU_PATH (one of the names
 * above; unset or empty = no cap). Builds for other architectures have only
 * the baseline path. Answers agree across paths to float rounding (FMA);
 * for one build on one path they are bit-exact.
 *
 * The choice is process-wide (set once, read with an atomic load): the one
 * piece of global state in libbnn, as the CPU itself is.
 */
#ifndef BNN_CPU_H
#define BNN_CPU_H

#include "bnn.h"

enum bnn_cpu_path { BNN_CPU_BASELINE = 0, BNN_CPU_AVX2 = 1, BNN_CPU_AVX512 = 2, BNN_CPU_N_PATHS = 3 };

/* Name of the path in use ("baseline", "avx2", "avx512"), choosing it if no
 * kernel has run yet. Static storage. */
const char *bnn_cpu_path_name(void);

/* The path in use (chosen as above if none yet). */
enum bnn_cpu_path bnn_cpu_path(void);

/* Name of a path; "unknown" when out of range. */
const char *bnn_cpu_path_label(enum bnn_cpu_path path);

/* Parses a path name; -1 for anything else. */
int bnn_cpu_path_parse(const char *name, enum bnn_cpu_path *out);

/* The best path this build has and this CPU + OS can run (ignores
 * BNN_CPU_PATH); bnn_cpu_path_supported(p) is p <= that. */
enum bnn_cpu_path bnn_cpu_path_best(void);
int bnn_cpu_path_supported(enum bnn_cpu_path path);

/* Reads BNN_CPU_PATH and selects the path (the best supported, capped by
 * it). Returns BNN_OK, or BNN_E_INVALID with err naming the bad value (the
 * best supported path is then in use): call at start-up to fail fast, since
 * the lazy choice on the first kernel call ignores a bad value. */
int bnn_cpu_init(char err[BNN_ERR_LEN]);

/* Selects path (tests, benchmarks), whatever BNN_CPU_PATH says. BNN_E_INVALID
 * with err when the build or the machine cannot run it (nothing changes).
 * Calls already running finish on their path; a prediction reads the path
 * once, so it never mixes two. */
int bnn_cpu_path_force(enum bnn_cpu_path path, char err[BNN_ERR_LEN]);

#endif

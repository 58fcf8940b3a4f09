#!/bin/bash
# `make bench`: benchmarks, not tests (numbers, no pass/fail).
#   tests/bench/run.sh [BUILD_DIR]
# 1. the model: bnn-bench (ms per prediction, T = 10/100/1000, lrt and
#    weights, one core, GFLOP/s against the assumed peak);
# 2. HTTP throughput: tests/bench/http.sh BUILD_DIR, when it exists.
# Output is also saved to BUILD_DIR/bench/model.txt.
set -eu
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$build/bench"
if [ ! -x "$build/bnn-bench" ]; then
    echo "bench: error: $build/bnn-bench missing (run make first)" >&2
    exit 1
fi
echo "== model: $build/bnn-bench"
# BLAS single-threaded inside the process, as each daemon worker runs it.
OPENBLAS_NUM_THREADS=1 "$build/bnn-bench" --model "$root/model/weights/mnist-bnn.safetensors" \
    --data "$root/build/data/mnist" ${BENCH_ARGS:-} | tee "$build/bench/model.txt"
if [ -x "$here/http.sh" ] || [ -f "$here/http.sh" ]; then
    echo
    echo "== http: tests/bench/http.sh"
    bash "$here/http.sh" "$build"
    # HTTP overhead, both figures from this run: the daemon's rate against
    # the in-process rate (1000 / lrt cpu ms at T = 100, per core) times its
    # workers. The issue's target is >= 80 %.
    cpu_ms=$(awk '$1 == "lrt" && $2 == 100 {print $4}' "$build/bench/model.txt")
    rps=$(sed -n 's/^  requests\/s *//p' "$build/bench/http.txt")
    workers=$(sed -n 's/.*CPUs, \([0-9]*\) workers.*/\1/p' "$build/bench/http.txt")
    if [ -n "$cpu_ms" ] && [ -n "$rps" ] && [ -n "$workers" ] && [ "${SAMPLES:-100}" = 100 ]; then
        awk -v ms="$cpu_ms" -v rps="$rps" -v w="$workers" 'BEGIN {
            inproc = 1000 / ms
            printf "\nHTTP vs in-process (T = 100, same run): %.1f req/s over HTTP with %d workers;\n", rps, w
            printf "  in-process %.1f predictions/s per core x %d = %.1f/s; HTTP reaches %.0f %% of it (target >= 80 %%)\n",
                inproc, w, inproc * w, 100 * rps / (inproc * w) }' | tee -a "$build/bench/http.txt"
    fi
else
    echo
    echo "(tests/bench/http.sh not present: no HTTP benchmark run)"
fi

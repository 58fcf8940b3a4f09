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
else
    echo
    echo "(tests/bench/http.sh not present: no HTTP benchmark run)"
fi

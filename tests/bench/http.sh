#!/bin/bash
# HTTP benchmark of the real daemon (numbers, not pass/fail), called by
# tests/bench/run.sh:
#   tests/bench/http.sh [BUILD_DIR]
# wrk POSTs a real MNIST digit (tests/data/png/digit_gray8.png, t10k[0]) as
# image/png to /predict?samples=$SAMPLES over loopback with $CONNECTIONS
# connections for $SECONDS_RUN s, after a 2 s warm-up. Prints requests/s,
# p50/p99 latency and statuses, the time from exec to /readyz 200, and RSS
# idle and peak under load (VmRSS / VmHWM from /proc/PID/status).
# Environment: SAMPLES (100), CONNECTIONS (8), SECONDS_RUN (10), WORKERS
# (0 = CPUs). Uses the shipped weights, else a random model of the same
# shape (said so in the output: the speed is the same, the answers are not).
set -euo pipefail
build=${1:-build}
samples=${SAMPLES:-100}
conns=${CONNECTIONS:-8}
secs=${SECONDS_RUN:-10}
workers=${WORKERS:-0}
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$build/bench"
mkdir -p "$out"
command -v wrk >/dev/null || { echo "http.sh: error: wrk not installed (apt-get install wrk)" >&2; exit 1; }
# shellcheck source=tests/bench/lib.sh
. "$root/tests/bench/lib.sh"

bench_model "$build" "$out"
png="$root/tests/data/png/digit_gray8.png"
export BNN_PNG="$png"
start_bnn_serve "$build" "$out" "$workers"
pid=$BNN_PID
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
url="http://127.0.0.1:$BNN_PORT/predict?samples=$samples"
rss() { awk -v k="$1" '$1 == k":" {printf "%.1f", $2 / 1024}' "/proc/$pid/status"; }
rss_idle=$(rss VmRSS)

run_wrk "$url" "$secs" "$out/wrk.log" >/dev/null &
wrk_pid=$!
peak=0
while kill -0 $wrk_pid 2>/dev/null; do
    cur=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$pid/status")
    [ "$cur" -gt "$peak" ] && peak=$cur
    sleep 0.25
done
wait $wrk_pid
result=$(sed -n 's/^RESULT //p' "$out/wrk.log")
get() { result_get "$result" "$1"; }
threads=$(sed -n 's/.*, \([0-9]*\) workers,.*/\1/p' "$out/daemon.stdout")

{
    echo "bnn-serve HTTP benchmark ($(date -u +%FT%TZ), $(nproc) CPUs, $threads workers, $MODEL_NOTE)"
    echo "  POST /predict?samples=$samples, image/png $(stat -c %s "$png") bytes, $conns connections, ${secs} s"
    printf '  requests/s        %s\n' "$(get rps)"
    printf '  latency p50 / p90 / p99 / max   %s / %s / %s / %s ms\n' "$(get p50_ms)" "$(get p90_ms)" "$(get p99_ms)" "$(get max_ms)"
    printf '  requests %s, socket errors %s, statuses %s\n' "$(get requests)" "$(get errors)" "$(get statuses)"
    printf '  start to ready    %s ms\n' "$BNN_READY_MS"
    printf '  RSS idle          %s MiB\n' "$rss_idle"
    printf '  RSS under load    %s MiB (peak sampled), high-water mark %s MiB\n' \
        "$(awk -v k="$peak" 'BEGIN{printf "%.1f", k/1024}')" "$(rss VmHWM)"
} | tee "$out/http.txt"

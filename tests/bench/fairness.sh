#!/bin/bash
# Fair scheduling under load (numbers, not pass/fail), called by
# tests/bench/run.sh:
#   tests/bench/fairness.sh [BUILD_DIR]
# 1. idle: wrk POSTs T = 100 lrt requests (the same PNG as http.sh) on
#    $LIGHT_CONNECTIONS (2) connections for $SECONDS_RUN (10) s: p99;
# 2. loaded: the same while two callers (wrk -c2, one connection each, back
#    to back) keep the costliest accepted single-image request in flight,
#    mode=weights with samples = max_samples_weights: the light p99 against
#    the idle one (target <= 5x) and every light answer's status (target: all
#    200, none refused); the heavy requests' count and statuses;
# 3. a T = 10000 lrt request alone on 2 workers against 1 worker, median of
#    $REPEATS (7) sequential requests each (target: <= 0.6x the time).
# Rounds of 1 and 2 alternate $ROUNDS (3) times and report medians: the
# machine is shared. Prints the machine (lscpu) and the load average.
set -euo pipefail
build=${1:-build}
secs=${SECONDS_RUN:-10}
rounds=${ROUNDS:-3}
repeats=${REPEATS:-7}
light_conns=${LIGHT_CONNECTIONS:-2}
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$build/bench"
mkdir -p "$out"
command -v wrk >/dev/null || { echo "fairness.sh: error: wrk not installed (scripts/deps.sh)" >&2; exit 1; }
# shellcheck source=tests/bench/lib.sh
. "$root/tests/bench/lib.sh"

bench_model "$build" "$out"
png="$root/tests/data/png/digit_gray8.png"
export BNN_PNG="$png"
lua="$root/tests/bench/post-png.lua"
max_w=$("$build/bnn-serve" --check-config | sed -n 's/^max_samples_weights = //p')
pids=()
stop_daemon() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
    pids=()
}
trap stop_daemon EXIT

# light WRK_LOG: wrk on the light URL (2 s warm-up inside run_wrk), its RESULT line
light() { CONNECTIONS=$light_conns run_wrk "$light_url" "$secs" "$1"; }

start_bnn_serve "$build" "$out" 2
pids+=("$BNN_PID")
workers=$(sed -n 's/.*, \([0-9]*\) workers,.*/\1/p' "$out/daemon.stdout")
light_url="http://127.0.0.1:$BNN_PORT/predict?samples=100"
heavy_url="http://127.0.0.1:$BNN_PORT/predict?mode=weights&samples=$max_w"
model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
family=$(lscpu | sed -n 's/^CPU family: *//p' | head -1)
cpu_model=$(lscpu | sed -n 's/^Model: *//p' | head -1)
echo "fairness ($(date -u +%FT%TZ)): $model (family $family, model $cpu_model), $(nproc) CPUs, $workers workers,"
echo "  load average $(cut -d' ' -f1-3 /proc/loadavg) at the start; $MODEL_NOTE"
echo "  light: POST /predict?samples=100, wrk -t1 -c$light_conns ${secs} s; heavy: mode=weights&samples=$max_w"
echo "  (the costliest accepted single-image request), wrk -t2 -c2, back to back"
printf '  %-6s %13s %13s %9s %17s %15s\n' round "idle p99 ms" "loaded p99" ratio "light statuses" "heavy answers"
: >"$out/fairness-rounds.txt"
for r in $(seq 1 "$rounds"); do
    idle=$(light "$out/wrk-fair-idle.log")
    wrk -t2 -c2 -d"$((secs + 4))s" --timeout 60s -s "$lua" "$heavy_url" >"$out/wrk-fair-heavy.log" 2>&1 &
    heavy_pid=$!
    sleep 1 # both heavy requests in flight
    loaded=$(light "$out/wrk-fair-loaded.log")
    wait "$heavy_pid" || true
    heavy=$(sed -n 's/^RESULT //p' "$out/wrk-fair-heavy.log")
    ip99=$(result_get "$idle" p99_ms) lp99=$(result_get "$loaded" p99_ms)
    ratio=$(awk -v a="$lp99" -v b="$ip99" 'BEGIN { printf "%.2f", a / b }')
    lst=$(result_get "$loaded" statuses)
    echo "$ip99 $lp99 $ratio $lst $(result_get "$loaded" requests) $(result_get "$loaded" errors)" >>"$out/fairness-rounds.txt"
    printf '  %-6s %13s %13s %8sx %17s %15s\n' "$r" "$ip99" "$lp99" "$ratio" "$lst" \
        "$(result_get "$heavy" statuses)"
done
stop_daemon
{
    med() { awk -v c="$1" '{print $c}' "$out/fairness-rounds.txt" | median; }
    ip99=$(med 1) lp99=$(med 2) ratio=$(med 3)
    refused=$(awk '{ n = split($4, s, ","); for (i = 1; i <= n; i++) if (s[i] !~ /^200=/) bad++;
                     if ($6 + 0 > 0) bad++ } END { print bad + 0 }' "$out/fairness-rounds.txt")
    awk -v i="$ip99" -v l="$lp99" -v r="$ratio" -v bad="$refused" 'BEGIN {
        printf "  medians: light p99 idle %.2f ms, with the heavy callers %.2f ms: %.2fx (target <= 5x: %s)\n",
            i, l, r, (r <= 5 ? "met" : "MISSED")
        printf "  light answers other than 200 (refused, errors): %s (target none: %s)\n", (bad ? "some" : "none"),
            (bad ? "MISSED" : "met") }'
} | tee "$out/fairness.txt"

# 3. one T = 10000 request alone: 1 worker against 2
one_request() { # URL: seconds of one request, median of $repeats
    for _ in $(seq 1 "$repeats"); do
        curl -s -o /dev/null -w '%{time_total}\n' -H 'Content-Type: image/png' --data-binary "@$png" "$1"
    done | median
}
declare -A took=()
for w in 1 2; do
    start_bnn_serve "$build" "$out" "$w"
    pids+=("$BNN_PID")
    url="http://127.0.0.1:$BNN_PORT/predict?samples=10000&seed=1"
    curl -s -o /dev/null -H 'Content-Type: image/png' --data-binary "@$png" "$url" # warm-up
    took[$w]=$(one_request "$url")
    stop_daemon
done
awk -v a="${took[1]}" -v b="${took[2]}" -v n="$repeats" 'BEGIN {
    printf "  one T = 10000 lrt request alone (median of %d): 1 worker %.1f ms, 2 workers %.1f ms: %.2fx (target <= 0.6x: %s)\n",
        n, 1000 * a, 1000 * b, b / a, (b <= 0.6 * a ? "met" : "MISSED") }' | tee -a "$out/fairness.txt"
echo "  load average $(cut -d' ' -f1-3 /proc/loadavg) at the end" | tee -a "$out/fairness.txt"

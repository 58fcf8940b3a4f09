#!/bin/bash
# bnn-serve against the peer over HTTP, side by side in one invocation
# (numbers, not pass/fail), called by tests/bench/run.sh:
#   tests/bench/peer.sh [BUILD_DIR]
# The peer is a Flask + PyTorch service doing the same local-reparameterization
# maths (gunicorn, 2 worker processes, 1 torch thread each), kept outside this
# repository in ../shared/peer; when its setup.sh is not there the comparison
# is skipped (said so). Both servers load the shipped weights and stay up;
# wrk POSTs the same 28 x 28 PNG to POST /predict?samples=$SAMPLES&mode=lrt
# with the same settings (2 threads, $CONNECTIONS connections, $SECONDS_RUN s
# after a 2 s warm-up), alternating bnn-serve, peer, bnn-serve, ... for
# $ROUNDS rounds so that drift on a shared machine hits both; prints each
# round and the ratio of the medians (the target: >= 2.5x, floor 2.2x).
# Environment: SAMPLES (100), CONNECTIONS (8), SECONDS_RUN (10), ROUNDS (3),
# WORKERS (0 = CPUs), PEER_DIR (../shared/peer from the repository root).
set -euo pipefail
build=${1:-build}
samples=${SAMPLES:-100}
secs=${SECONDS_RUN:-10}
rounds=${ROUNDS:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
peer=${PEER_DIR:-$root/../shared/peer}
out="$build/bench"
mkdir -p "$out"
# shellcheck source=tests/bench/lib.sh
. "$root/tests/bench/lib.sh"

if [ ! -f "$peer/setup.sh" ] || [ ! -f "$peer/run_server.sh" ]; then
    echo "peer comparison skipped: $peer/setup.sh not found (the peer lives outside this repository)"
    exit 0
fi
if ! bash "$peer/setup.sh"; then
    echo "peer comparison skipped: $peer/setup.sh failed (it installs Debian packages: python3-torch, flask, gunicorn)"
    exit 0
fi
command -v wrk >/dev/null || { echo "peer.sh: error: wrk not installed (scripts/deps.sh)" >&2; exit 1; }

bench_model "$build" "$out"
export BNN_PNG="$root/tests/data/png/digit_gray8.png"
peer_port=$(free_port)
peer_pid=""
stop_all() {
    [ -n "${BNN_PID:-}" ] && { kill -TERM "$BNN_PID" 2>/dev/null; wait "$BNN_PID" 2>/dev/null || true; }
    if [ -n "$peer_pid" ]; then bash "$peer/run_server.sh" stop "$peer_port" >/dev/null 2>&1 || true; fi
}
trap stop_all EXIT
BNN_WEIGHTS="$MODEL" bash "$peer/run_server.sh" start "$peer_port" 2 1 1 >"$out/peer-start.log" 2>&1 || true
if ! curl -fs --max-time 2 "http://127.0.0.1:$peer_port/health" >/dev/null 2>&1; then
    echo "peer comparison skipped: the peer did not start (log: $out/peer-start.log, /tmp/peer_gunicorn_$peer_port.log)"
    exit 0
fi
peer_pid=$(cat "/tmp/peer_gunicorn_$peer_port.pid" 2>/dev/null || echo started)
start_bnn_serve "$build" "$out" "${WORKERS:-0}"
workers=$(sed -n 's/.*, \([0-9]*\) workers,.*/\1/p' "$out/daemon.stdout")

ours_url="http://127.0.0.1:$BNN_PORT/predict?samples=$samples&mode=lrt"
peer_url="http://127.0.0.1:$peer_port/predict?samples=$samples&mode=lrt"
echo "bnn-serve ($workers workers) vs peer (Flask + PyTorch, gunicorn 2 workers x 1 torch thread),"
echo "  both with $MODEL_NOTE; POST /predict?samples=$samples&mode=lrt, image/png, wrk -t2 -c${CONNECTIONS:-8} ${secs} s,"
echo "  alternating, $rounds rounds ($(date -u +%FT%TZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"
printf '  %-6s %12s %12s %10s %14s %14s\n' round "ours req/s" "peer req/s" ratio "ours p50/p99" "peer p50/p99"
: >"$out/peer-rounds.txt"
for r in $(seq 1 "$rounds"); do
    o=$(run_wrk "$ours_url" "$secs" "$out/wrk-ours.log")
    p=$(run_wrk "$peer_url" "$secs" "$out/wrk-peer.log")
    for res in "$o" "$p"; do
        if [ "$(result_get "$res" statuses)" != "200=$(result_get "$res" requests)" ]; then
            echo "  round $r: not every answer was 200 ($(result_get "$res" statuses)); see $out/wrk-*.log"
        fi
    done
    orps=$(result_get "$o" rps) prps=$(result_get "$p" rps)
    echo "$orps $prps" >>"$out/peer-rounds.txt"
    printf '  %-6s %12s %12s %9.2fx %14s %14s\n' "$r" "$orps" "$prps" "$(awk -v a="$orps" -v b="$prps" 'BEGIN{print a/b}')" \
        "$(result_get "$o" p50_ms)/$(result_get "$o" p99_ms)" "$(result_get "$p" p50_ms)/$(result_get "$p" p99_ms)"
done
ours=$(awk '{print $1}' "$out/peer-rounds.txt" | median)
theirs=$(awk '{print $2}' "$out/peer-rounds.txt" | median)
awk -v a="$ours" -v b="$theirs" 'BEGIN {
    r = a / b
    printf "  medians: bnn-serve %.1f req/s, peer %.1f req/s: %.2fx (target >= 2.5x: %s; floor 2.2x: %s)\n",
        a, b, r, (r >= 2.5 ? "met" : "MISSED"), (r >= 2.2 ? "met" : "MISSED") }' | tee "$out/peer.txt"

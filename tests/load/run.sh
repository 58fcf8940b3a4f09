#!/bin/bash
# `make load`: drives POST /predict?samples=100 on the real daemon over
# loopback with wrk at and beyond saturation, then soaks it, and checks that
# nothing but designed 503s went wrong and that RSS did not grow.
#   tests/load/run.sh BUILD_DIR
# Environment: LOAD_SECONDS (per level, default 15), SOAK_SECONDS (default
# 240), LOAD_CONNECTIONS (default "8 64 256"), WORKERS (default 2).
# Loopback only; every wrk run is bounded in time. Results also go to
# $BUILD/load/results.md.
set -euo pipefail
build=${1:-build}
load_s=${LOAD_SECONDS:-15}
soak_s=${SOAK_SECONDS:-240}
levels=${LOAD_CONNECTIONS:-8 64 256}
workers=${WORKERS:-2}
out_dir="$build/load"
mkdir -p "$out_dir"
results="$out_dir/results.md"
png="$out_dir/digit.png"
python3 scripts/mnist-png.py --index 0 --out "$png"
export BNN_PNG="$png"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"

"$build/bnn-serve" --port "$port" --workers "$workers" --access-log false \
    >"$out_dir/daemon.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -fs "$url/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fs "$url/readyz" >/dev/null || { echo "load: error: daemon not ready"; cat "$out_dir/daemon.log"; exit 1; }

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
# Warm-up so that the first level does not measure page faults.
wrk -t2 -c8 -d2s -s tests/bench/post-png.lua "$url/predict?samples=100" >/dev/null
bad=0
{
    echo "# Load results ($(date -u +%FT%TZ), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), workers=$workers)"
    echo
    echo "| connections | req/s | p50 ms | p99 ms | statuses | socket errors | RSS before MiB | RSS after MiB |"
    echo "|---|---|---|---|---|---|---|---|"
} >"$results"
for c in $levels; do
    before=$(rss_kib)
    log="$out_dir/wrk-c$c.log"
    wrk -t2 -c"$c" -d"${load_s}s" --timeout 10s -s tests/bench/post-png.lua "$url/predict?samples=100" >"$log" 2>&1
    after=$(rss_kib)
    sm=$(sed -n 's/^RESULT //p' "$log")
    st=$(echo "$sm" | tr ' ' '\n' | sed -n 's/^statuses=//p' | tr ',' ' ')
    get() { echo "$sm" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
    errs="connect $(get errors_connect), read $(get errors_read), timeout $(get errors_timeout)"
    printf '| %s | %s | %s | %s | %s | %s | %.1f | %.1f |\n' "$c" "$(get rps)" "$(get p50_ms)" "$(get p99_ms)" \
        "$st" "$errs" "$(awk -v k="$before" "BEGIN{print k/1024}")" "$(awk -v k="$after" "BEGIN{print k/1024}")" >>"$results"
    for kv in $st; do
        code=${kv%%=*}
        case $code in 200|503|429) ;; *) echo "load: unexpected status $kv at $c connections"; bad=1 ;; esac
    done
done

# Soak: sustained overload at 64 connections, RSS sampled every 5 s.
soak_csv="$out_dir/soak-rss.csv"
echo "seconds,rss_kib" >"$soak_csv"
wrk -t2 -c64 -d"${soak_s}s" --timeout 10s -s tests/bench/post-png.lua "$url/predict?samples=100" \
    >"$out_dir/wrk-soak.log" 2>&1 &
wrk_pid=$!
t=0
while kill -0 $wrk_pid 2>/dev/null; do
    echo "$t,$(rss_kib)" >>"$soak_csv"
    sleep 5
    t=$((t + 5))
done
wait $wrk_pid
sm=$(sed -n 's/^RESULT //p' "$out_dir/wrk-soak.log")
st=$(echo "$sm" | tr ' ' '\n' | sed -n 's/^statuses=//p' | tr ',' ' ')
# Growth: mean RSS of the last quarter of samples against the first quarter
# after a 30 s warm-up. Noise allowance: 2 MiB or 5 %, whichever is larger.
verdict=$(awk -F, -v warm=30 'NR > 1 && $1 >= warm { v[n++] = $2 }
    END { q = int(n / 4); if (q < 1) { print "too-short 0 0"; exit }
          for (i = 0; i < q; i++) { a += v[i]; b += v[n - 1 - i] }
          a /= q; b /= q; allow = (a * 0.05 > 2048) ? a * 0.05 : 2048
          printf "%s %.1f %.1f\n", (b - a > allow) ? "GROWTH" : "flat", a / 1024, b / 1024 }' "$soak_csv")
{
    echo
    echo "Soak: ${soak_s} s at 64 connections: $sm"
    echo "statuses: $st"
    echo "RSS (MiB) mean of first vs last quarter after 30 s warm-up: $(echo "$verdict" | cut -d' ' -f2) -> $(echo "$verdict" | cut -d' ' -f3) ($(echo "$verdict" | cut -d' ' -f1)); samples in $soak_csv"
} >>"$results"
for kv in $st; do
    code=${kv%%=*}
    case $code in 200|503|429) ;; *) echo "load: unexpected status $kv in soak"; bad=1 ;; esac
done
case $verdict in GROWTH*) echo "load: RSS grew during the soak"; bad=1 ;; esac
kill -TERM $pid
wait $pid && echo "daemon exited 0 after SIGTERM" >>"$results" || { echo "load: daemon exit status $?"; bad=1; }
trap - EXIT
cat "$results"
exit $bad

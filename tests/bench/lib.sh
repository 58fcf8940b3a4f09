# shellcheck shell=bash disable=SC2034  # (sets variables for the scripts that source it)
# Shared by tests/bench/*.sh (sourced, bash): start bnn-serve on a free
# port, run wrk against a URL and read its RESULT line (post-png.lua).

# bench_model BUILD OUTDIR: the shipped weights, else a random model of the
# same shape made by bnn-mkmodel; sets MODEL and MODEL_NOTE.
bench_model() {
    local build=$1 out=$2 root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    MODEL="$root/model/weights/mnist-bnn.safetensors"
    MODEL_NOTE="shipped weights"
    if [ ! -f "$MODEL" ]; then
        MODEL="$out/random.safetensors"
        "$build/bnn-mkmodel" "$MODEL" 7
        MODEL_NOTE="random model (shipped weights missing)"
    fi
}

# start_bnn_serve BUILD OUTDIR WORKERS: starts the daemon on a free port
# with $MODEL; sets BNN_PID, BNN_PORT, BNN_READY_MS (exec to /readyz 200).
# Returns 1 (with the log on stderr) if it does not come up in 3 s.
start_bnn_serve() {
    local build=$1 out=$2 workers=$3 t0 t1 ready="$2/daemon.stdout"
    : >"$ready"
    t0=$(date +%s%N)
    "$build/bnn-serve" --port 0 --model "$MODEL" --workers "$workers" --access-log false \
        >"$ready" 2>"$out/daemon.log" &
    BNN_PID=$!
    BNN_PORT=""
    for _ in $(seq 1 300); do
        BNN_PORT=$(sed -n 's/.*listening on http:\/\/[^ ]*:\([0-9]*\) .*/\1/p' "$ready" 2>/dev/null || true)
        if [ -n "$BNN_PORT" ] && curl -fs "http://127.0.0.1:$BNN_PORT/readyz" >/dev/null 2>&1; then break; fi
        sleep 0.01
    done
    t1=$(date +%s%N)
    BNN_READY_MS=$(((t1 - t0) / 1000000))
    if [ -z "$BNN_PORT" ] || ! curl -fs "http://127.0.0.1:$BNN_PORT/readyz" >/dev/null 2>&1; then
        echo "bench: error: bnn-serve did not start" >&2
        cat "$out/daemon.log" >&2
        return 1
    fi
}

# free_port: a TCP port nothing listens on now (the kernel's pick).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run_wrk URL SECONDS LOG: wrk -t2 -c$CONNECTIONS with post-png.lua POSTing
# $BNN_PNG, after a 2 s warm-up; the RESULT line goes to LOG and stdout.
run_wrk() {
    local url=$1 secs=$2 log=$3 lua
    lua="$(dirname "${BASH_SOURCE[0]}")/post-png.lua"
    wrk -t2 -c"${CONNECTIONS:-8}" -d2s -s "$lua" "$url" >/dev/null
    wrk -t2 -c"${CONNECTIONS:-8}" -d"${secs}s" --timeout 10s --latency -s "$lua" "$url" >"$log" 2>&1
    sed -n 's/^RESULT //p' "$log"
}

# result_get RESULT_LINE KEY: the value of key=value in a RESULT line.
result_get() {
    echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# median of the numbers on stdin
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2];
                                       else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

#!/bin/bash
# Runs every libFuzzer harness in BUILD (fuzz_*): first replays the crash
# inputs kept in tests/fuzz/regressions/NAME (each must now pass), then
# fuzzes for SECONDS from the committed seeds tests/fuzz/corpus/NAME (new
# inputs go to BUILD/corpus/NAME, findings to BUILD/artifacts/), with leak
# detection on. Prints one line per harness with execs and coverage, and
# "fuzz: N passed, N failed" last; exit status 0 only when nothing failed.
#   tests/fuzz/run.sh BUILD_DIR [SECONDS] [NAME...]
set -u
build=${1:-build/fuzz}
secs=${2:-60}
shift $(( $# >= 2 ? 2 : $# ))
src=$(cd "$(dirname "$0")" && pwd)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0 failed=0

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for bin in "$build"/fuzz_*; do
        [ -x "$bin" ] && [ -f "$bin" ] && names+=("$(basename "$bin")")
    done
fi
if [ ${#names[@]} -eq 0 ]; then
    echo "fuzz: no harnesses in $build (make fuzz-build)"
    echo "fuzz: 0 passed, 1 failed"
    exit 1
fi

for name in "${names[@]}"; do
    bin="$build/$name"
    log="$build/logs/$name.log"
    mkdir -p "$build/logs" "$build/corpus/$name" "$build/artifacts"
    ok=1
    : >"$log"
    reg=("$src/regressions/$name"/*)
    if [ -e "${reg[0]}" ]; then
        if ! "$bin" -timeout=30 "${reg[@]}" >>"$log" 2>&1; then
            ok=0
            echo "$name: a regression input fails again" >>"$log"
        fi
    fi
    args=(-max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
          -artifact_prefix="$build/artifacts/$name-")
    [ -f "$src/dict/$name.dict" ] && args+=(-dict="$src/dict/$name.dict")
    seeds=()
    [ -d "$src/corpus/$name" ] && seeds=("$src/corpus/$name")
    if [ "$ok" -eq 1 ]; then
        "$bin" "${args[@]}" "$build/corpus/$name" "${seeds[@]}" >>"$log" 2>&1 || ok=0
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    corpus=$(find "$build/corpus/$name" -type f | wc -l)
    if [ "$ok" -eq 1 ]; then
        passed=$((passed + 1))
        printf '%-22s ok      %9s execs  cov %5s  ft %6s  corpus %5s  (%ss)\n' \
            "$name" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "$secs"
    else
        failed=$((failed + 1))
        printf '%-22s FAILED  %9s execs  cov %5s  ft %6s  (log %s)\n' "$name" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$log"
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written|regression' "$log" | head -20 | sed 's/^/    /'
        grep -E '^ *#[0-9]+ 0x' "$log" | head -15 | sed 's/^/    /'
    fi
done
echo "fuzz: $passed passed, $failed failed"
if [ -n "${TEST_TALLY:-}" ]; then
    echo "fuzz-smoke $passed $failed" >>"$TEST_TALLY"
fi
[ "$failed" -eq 0 ]

#!/bin/bash
# Runs bnn-serve's test suites and prints "N passed, N failed" as its last
# line. Exit status 0 only when nothing failed and something ran.
#   tests/run.sh BUILD_DIR [unit|integration|concurrency|all]
# unit:         every $BUILD/tests/test_* binary (cmocka)
# integration:  every tests/integration/test_*.py (unittest, real daemon)
# concurrency:  the subset that exercises threads (for the TSan build)
set -u
build=${1:-build}
what=${2:-all}
export BNN_BUILD="$build"
export CMOCKA_MESSAGE_OUTPUT=STDOUT
passed=0 failed=0 failures=()
log_dir="$build/test-logs"
mkdir -p "$log_dir"

run_cmocka() { # binary
    local bin=$1 name out rc p f
    name=$(basename "$bin")
    out="$log_dir/$name.log"
    "$bin" >"$out" 2>&1
    rc=$?
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
    p=${p:-0} f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)) failed=$((failed + f))
    printf '%-32s %4d passed %4d failed\n' "$name" "$p" "$f"
    if [ "$f" -ne 0 ]; then failures+=("$name"); sed 's/^/    /' "$out" | tail -40; fi
}

run_python() { # script
    local script=$1 name out rc n f e
    name=$(basename "$script" .py)
    out="$log_dir/$name.log"
    timeout 1200 python3 "$script" -v >"$out" 2>&1
    rc=$?
    n=$(sed -n 's/^Ran \([0-9]*\) test.*/\1/p' "$out" | tail -1)
    f=$(sed -n 's/^FAILED (.*failures=\([0-9]*\).*/\1/p' "$out" | tail -1)
    e=$(sed -n 's/^FAILED (.*errors=\([0-9]*\).*/\1/p' "$out" | tail -1)
    n=${n:-0} f=${f:-0} e=${e:-0}
    f=$((f + e))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + n - (f > n ? n : f))) failed=$((failed + f))
    printf '%-32s %4d passed %4d failed\n' "$name" "$((n - (f > n ? n : f)))" "$f"
    if [ "$f" -ne 0 ]; then failures+=("$name"); grep -E '^(FAIL|ERROR|AssertionError|Traceback)|Error' "$out" | head -40 | sed 's/^/    /'; fi
}

if [ "$what" = unit ] || [ "$what" = all ]; then
    for bin in "$build"/tests/test_*; do
        [ -x "$bin" ] && [ -f "$bin" ] && run_cmocka "$bin"
    done
fi
if [ "$what" = concurrency ]; then
    for bin in "$build"/tests/test_pool "$build"/tests/test_infer "$build"/tests/test_train; do
        [ -x "$bin" ] && run_cmocka "$bin"
    done
    for script in tests/integration/test_concurrency*.py; do
        [ -f "$script" ] && run_python "$script"
    done
fi
if [ "$what" = integration ] || [ "$what" = all ]; then
    for script in tests/integration/test_*.py; do
        [ -f "$script" ] && run_python "$script"
    done
fi
if [ "${#failures[@]}" -gt 0 ]; then
    echo "failing suites: ${failures[*]} (logs in $log_dir)"
fi
echo "$passed passed, $failed failed"
# `make test` runs several stages (this suite, fuzz smoke, ASan, TSan) and
# ends with their total; each stage appends its counts to TEST_TALLY.
if [ -n "${TEST_TALLY:-}" ]; then
    echo "suites($build,$what) $passed $failed" >>"$TEST_TALLY"
fi
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]

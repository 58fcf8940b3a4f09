#!/bin/bash
# Runs bnn-serve's test suites and prints "N passed, N failed, N skipped" as
# its last line. Exit status 0 only when nothing failed, something passed and
# every skip is listed, with its reason, in tests/allowed-skips.txt.
#   tests/run.sh BUILD_DIR [unit|integration|concurrency|all]
# unit:         every $BUILD/tests/test_* binary (cmocka)
# integration:  every tests/integration/test_*.py (unittest, real daemon)
# concurrency:  the subset that exercises threads (for the TSan build): the
#               pool, prediction jobs, inference and training threads, and
#               the daemon under overload, drain and fair scheduling
#
# Every suite leaves one record per test in $BUILD/test-logs/NAME.results:
# "pass|fail|skip<TAB>id<TAB>detail". Ids are SUITE.TEST for cmocka
# (test_infer.test_lrt_matches_weights_shipped_model) and
# SCRIPT.Class.method for Python (test_cli.CliTest.test_ipv6). A cmocka test
# gives its skip reason in a line "skipped: REASON" before skip(); Python
# scripts end with daemon.main(), which writes their records (skips and
# expected failures are skips, unexpected successes failures).
set -u
build=${1:-build}
what=${2:-all}
allowed_skips=${BNN_ALLOWED_SKIPS:-tests/allowed-skips.txt}
export BNN_BUILD="$build"
export CMOCKA_MESSAGE_OUTPUT=STDOUT
passed=0 failed=0 skipped=0 failures=()
log_dir="$build/test-logs"
mkdir -p "$log_dir"

# Records of a cmocka run's stdout; a test that started and never ended
# (a crash) is a failure.
cmocka_records() { # suite log
    awk -v suite="$1" '
        function id(line) { return suite "." substr(line, 14) }
        /^\[ RUN      \] / { cur = substr($0, 14); reason = ""; why = ""; next }
        cur != "" && /^skipped: / { reason = substr($0, 10); next }
        cur != "" && /^ERROR: / { why = why substr($0, 8) " "; next }
        cur != "" && /^\[  ERROR   \] --- / { why = why substr($0, 18) " "; next }
        cur != "" && /^\[       OK \] / && substr($0, 14) == cur { print "pass\t" id($0) "\t"; cur = ""; next }
        cur != "" && /^\[  FAILED  \] / && substr($0, 14) == cur { print "fail\t" id($0) "\t" why; cur = ""; next }
        cur != "" && /^\[  SKIPPED \] / && substr($0, 14) == cur { print "skip\t" id($0) "\t" reason; cur = ""; next }
        END { if (cur != "") print "fail\t" suite "." cur "\tdid not finish" }
    ' "$2"
}

# Counts a suite's records into the totals and prints its line, and its
# failing tests; rc is the suite's exit status (non-zero with no failing
# record is one failure). Returns 1 when something failed.
tally_suite() { # name results rc
    local name=$1 res=$2 rc=$3 p f s
    if [ "$rc" -ne 0 ] && ! grep -q '^fail' "$res"; then
        printf 'fail\t%s\texit status %d\n' "$name" "$rc" >>"$res"
    fi
    p=$(grep -c '^pass' "$res") f=$(grep -c '^fail' "$res") s=$(grep -c '^skip' "$res")
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
    printf '%-32s %4d passed %4d failed %4d skipped\n' "$name" "$p" "$f" "$s"
    cat "$res" >>"$all_results"
    [ "$f" -eq 0 ] && return 0
    failures+=("$name")
    grep '^fail' "$res" | cut -f2,3 | cut -c1-300 | sed 's/^/    FAILED /; s/\t/: /' | head -20
    return 1
}

run_cmocka() { # binary
    local bin=$1 name out res rc
    name=$(basename "$bin")
    out="$log_dir/$name.log" res="$log_dir/$name.results"
    "$bin" >"$out" 2>&1
    rc=$?
    cmocka_records "$name" "$out" >"$res"
    tally_suite "$name" "$res" "$rc" || tail -40 "$out" | sed 's/^/    /'
}

run_python() { # script
    local script=$1 name out res rc
    name=$(basename "$script" .py)
    out="$log_dir/$name.log" res="$log_dir/$name.results"
    rm -f "$res"
    BNN_TEST_RESULTS="$res" timeout 1200 python3 "$script" -v >"$out" 2>&1
    rc=$?
    if [ ! -f "$res" ]; then
        printf 'fail\t%s\tno results (exit status %d; killed, or the script does not end with daemon.main())\n' \
            "$name" "$rc" >"$res"
    fi
    tally_suite "$name" "$res" "$rc" ||
        grep -E '^(FAIL|ERROR|AssertionError|Traceback)|Error' "$out" | head -40 | sed 's/^/    /'
}

all_results="$log_dir/results"
: >"$all_results"
if [ "$what" = unit ] || [ "$what" = all ]; then
    for bin in "$build"/tests/test_*; do
        [ -x "$bin" ] && [ -f "$bin" ] && run_cmocka "$bin"
    done
fi
if [ "$what" = concurrency ]; then
    for bin in "$build"/tests/test_pool "$build"/tests/test_predict "$build"/tests/test_infer "$build"/tests/test_train "$build"/tests/test_served_model; do
        [ -x "$bin" ] && run_cmocka "$bin"
    done
    for script in tests/integration/test_concurrency*.py tests/integration/test_fairness.py; do
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

# Every skip must be listed in $allowed_skips: "ID REASON" per line, the
# exact id, then why skipping it is acceptable; # starts a comment.
declare -A allowed=()
bad_list=0
if [ -f "$allowed_skips" ]; then
    n=0
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        case "$line" in '' | '#'*) continue ;; esac
        read -r id reason <<<"$line"
        if [ -z "$reason" ]; then
            echo "$allowed_skips:$n: '$id' has no reason (expected: ID REASON); not allowed to skip"
            bad_list=1
            continue
        fi
        allowed[$id]=$reason
    done <"$allowed_skips"
else
    echo "$allowed_skips missing: every skip counts as unlisted"
fi
unlisted=()
while IFS=$'\t' read -r outcome id detail; do
    [ "$outcome" = skip ] || continue
    if [ -n "${allowed[$id]+x}" ]; then
        echo "skipped, listed: $id - ${allowed[$id]} (the test: ${detail:-no reason given})"
    else
        unlisted+=("  UNLISTED SKIP $id - ${detail:-the test gave no reason}")
    fi
done <"$all_results"
if [ "${#unlisted[@]}" -ne 0 ]; then
    echo "skips not listed in $allowed_skips (a skipped test is not a pass):"
    printf '%s\n' "${unlisted[@]}"
    echo "${#unlisted[@]} unlisted skip(s): fix the cause, or list the id with its reason in $allowed_skips"
fi

echo "$passed passed, $failed failed, $skipped skipped"
# `make test` runs several stages (this suite, fuzz smoke, ASan, TSan) and
# ends with their total; each stage appends its counts to TEST_TALLY:
# "STAGE PASSED FAILED SKIPPED UNLISTED".
if [ -n "${TEST_TALLY:-}" ]; then
    echo "suites($build,$what) $passed $failed $skipped $((${#unlisted[@]} + bad_list))" >>"$TEST_TALLY"
fi
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ] && [ "${#unlisted[@]}" -eq 0 ] && [ "$bad_list" -eq 0 ]

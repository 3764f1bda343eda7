#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-16, ASan + UBSan, in build-fuzz/) and
# runs each for a bounded time, from the seeds in tests/fuzz/seeds/NAME plus
# what earlier runs found (build-fuzz/corpus/NAME).
#
#   tests/fuzz/run_fuzzers.sh [SECONDS]    each target for SECONDS (30)
#
# Prints each target's executions; exits 1 if any target finds a crash, a
# leak or a hang (the input is kept as build-fuzz/crash-NAME-*).
set -euo pipefail

cd "$(dirname "$0")/../.."
seconds=${1:-30}
build=build-fuzz
CC=clang-16 CXX=clang++-16 cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPEERGRID_FUZZ=ON -DPEERGRID_BUILD_TESTS=OFF -DPEERGRID_BUILD_BENCH=OFF \
  >/dev/null
cmake --build "$build" -j2 --target fuzzers

export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
failed=0
for fuzzer in "$build"/tests/fuzz/*_fuzz; do
  name=$(basename "$fuzzer" _fuzz)
  corpus=$build/corpus/$name
  mkdir -p "$corpus"
  seeds=()
  [ -d "tests/fuzz/seeds/$name" ] && seeds=("tests/fuzz/seeds/$name")
  log=$build/fuzz-$name.log
  # -timeout: one input running 10 s is a hang; -rss_limit_mb: memory.
  if "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$build/crash-$name-" -print_final_stats=1 \
      "$corpus" "${seeds[@]}" >"$log" 2>&1; then
    runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
    echo "fuzz $name: ${runs:-?} executions in ${seconds}s, no crash"
  else
    echo "fuzz $name: FAILED (see $log)" >&2
    grep -E 'ERROR|SUMMARY|Test unit written' "$log" >&2 || tail -20 "$log" >&2
    failed=1
  fi
done
exit "$failed"

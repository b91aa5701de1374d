#!/usr/bin/env bash
# Build genrec and run the whole test suite:
#   1. Release build + every CTest case,
#   2. the same tests under AddressSanitizer + UndefinedBehaviorSanitizer,
#   3. a short libFuzzer run of every fuzz target on its seed corpus.
# Tests that need ../shared skip with a message when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test
jobs=$(nproc)
fuzz_seconds=${GENREC_FUZZ_SECONDS:-20}

echo "== release build and tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

echo "== ASan + UBSan build and tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGENREC_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 GENREC_SANITIZED=1 \
   ctest --output-on-failure -j"$jobs")

echo "== fuzz (libFuzzer, ${fuzz_seconds}s per target)"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGENREC_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$jobs"
for f in build-fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f"); corpus=fuzz/corpus/${name#fuzz_}
  work=$(mktemp -d)
  [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
  echo "-- $name"
  "$f" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 -print_final_stats=0 "$work" 2>&1 | tail -n 3
  rm -rf "$work"
done
echo "fuzz: all targets ran ${fuzz_seconds}s without a crash"

#!/usr/bin/env bash
# Builds sturdy's libFuzzer targets (tests/fuzz/*_fuzz.cpp) with clang, ASan and UBSan, and runs
# each for a bounded time on a copy of its seed corpus (tests/fuzz/corpus/<target>/; the repository
# is never written). Prints each target's executions, exec/s, coverage and corpus size, and exits
# non-zero when any target finds a crash, a sanitizer report, a timeout or a broken invariant; the
# input that did it is kept under $FUZZ_OUT/<target>/ (crash-*, timeout-*, leak-*...). To keep a
# finding, copy that input into tests/fuzz/regressions/<target>/: the unit tests then run it.
#
#   .ci/fuzz.sh                          # every target, 60 s each
#   FUZZ_SECONDS=600 .ci/fuzz.sh sse     # some targets, longer
#
# Knobs: FUZZ_SECONDS (per target, default 60), FUZZ_JOBS (targets at once, default 2),
# FUZZ_BUILD_DIR (default build-fuzz), FUZZ_OUT (default a fresh temporary directory),
# FUZZ_NICE (nice level of the runs, default 0), FUZZ_KEEP_GOING=1 (libFuzzer's fork mode: a finding
# is saved and the run goes on for its whole time, to collect every finding of a long run).
set -Eeuo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-2}
build=$(realpath -m "${FUZZ_BUILD_DIR:-$repo/build-fuzz}")
out=$(realpath -m "${FUZZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/sturdy-fuzz.XXXXXX")}")
nice_level=${FUZZ_NICE:-0}
keep_going=()
[ "${FUZZ_KEEP_GOING:-0}" = 1 ] && keep_going=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
mkdir -p "$out"

# ---- a clang that links -fsanitize=fuzzer (Debian: clang + libclang-rt-14-dev) -----------------
fuzzer_links() {
  printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' |
    clang++ -x c++ -fsanitize=fuzzer,address,undefined - -o "$out/.probe" >/dev/null 2>&1
}
if ! command -v clang++ >/dev/null 2>&1 || ! fuzzer_links; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing clang and libFuzzer's runtime (libclang-rt-14-dev)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev >/dev/null
  fi
  fuzzer_links || { echo "clang++ cannot link -fsanitize=fuzzer: install clang and libclang-rt-14-dev" >&2; exit 2; }
fi

# ---- build -------------------------------------------------------------------------------------
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
[ -f "$build/CMakeCache.txt" ] && generator=()  # keep the generator the directory was made with
CC=clang CXX=clang++ cmake -S "$repo" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Debug \
  -DSTURDY_BUILD_FUZZERS=ON -DSTURDY_SANITIZE= -DSTURDY_WERROR=ON -DSTURDY_PRECOMPILE_HEADERS=OFF \
  -DSTURDY_BUILD_EXAMPLES=OFF -DSTURDY_BUILD_BENCHMARKS=OFF >"$out/configure.log" ||
  { cat "$out/configure.log" >&2; exit 2; }
cmake --build "$build" -j "${FUZZ_BUILD_JOBS:-2}" --target sturdy_fuzzers

# ---- targets -----------------------------------------------------------------------------------
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in "$repo"/tests/fuzz/*_fuzz.cpp; do t=${f##*/}; targets+=("${t%_fuzz.cpp}"); done
fi

# One target: fuzz a copy of its corpus for $seconds; the log and any finding stay in $out/<target>.
run_target() {
  local t=$1 dir=$out/$1 bin=$build/tests/fuzz/sturdy_fuzz_$1
  mkdir -p "$dir/corpus"
  [ -x "$bin" ] || { echo "no fuzz target $bin" >"$dir/log"; echo 2 >"$dir/status"; return; }
  if [ -d "$repo/tests/fuzz/corpus/$t" ]; then cp -R "$repo/tests/fuzz/corpus/$t/." "$dir/corpus/"; fi
  local dict=()
  [ -f "$repo/tests/fuzz/$t.dict" ] && dict=(-dict="$repo/tests/fuzz/$t.dict")
  local status=0
  (cd "$dir" && ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    nice -n "$nice_level" "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=30 -rss_limit_mb=2048 \
    -artifact_prefix="$dir/" "${dict[@]}" "${keep_going[@]}" "$dir/corpus" >"$dir/log" 2>&1) || status=$?
  echo "$status" >"$dir/status"
}

echo "fuzzing ${targets[*]} for ${seconds}s each, $jobs at a time; logs and findings in $out"
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_target "$t" &
done
wait

failed=0
printf '\n%-14s %12s %8s %7s %8s %16s  %s\n' target executions exec/s cov ft corpus:files/KB result
for t in "${targets[@]}"; do
  status=$(cat "$out/$t/status" 2>/dev/null || echo 2)
  log=$out/$t/log
  # The last status line: "#N DONE cov: C ft: F corp: ..." (or "#N: cov: ..." in fork mode).
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  [ -n "$rate" ] || rate=$(sed -n 's/.* exec\/s:* \([0-9]*\).*/\1/p' <<<"$last")
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp="$(find "$out/$t/corpus" -type f | wc -l)/$(find "$out/$t/corpus" -type f -printf '%s\n' | awk '{n += $1} END {printf "%dKB", n / 1024}')"
  findings=$(find "$out/$t" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'leak-*' -o -name 'oom-*' \) | wc -l)
  result=ok
  if [ "$status" -ne 0 ] || [ "$findings" -gt 0 ]; then
    result="FINDING (exit $status, $findings saved)"
    failed=1
  fi
  printf '%-14s %12s %8s %7s %8s %16s  %s\n' "$t" "${execs:--}" "${rate:--}" "${cov:--}" "${ft:--}" "${corp:--}" "$result"
done

if [ "$failed" -ne 0 ]; then
  for t in "${targets[@]}"; do
    findings=$(find "$out/$t" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'leak-*' -o -name 'oom-*' -o -name 'slow-unit-*' \) 2>/dev/null)
    [ -n "$findings" ] || grep -qE 'ERROR:|invariant broken|unexpected exception' "$out/$t/log" || continue
    printf '\n==== %s: finding\n' "$t"
    grep -E -A3 'invariant broken|unexpected exception|runtime error|ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)' "$out/$t/log" | head -20 || true
    printf '%s\n' "$findings"
  done
  echo "fuzzing found something: keep each input in tests/fuzz/regressions/<target>/" >&2
  exit 1
fi
echo "no findings"

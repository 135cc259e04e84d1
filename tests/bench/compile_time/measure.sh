#!/usr/bin/env bash
# What including sturdy costs a user's build: CPU seconds to compile user.cpp (the umbrella header
# and one sturdy::client call) against baseline.cpp (nlohmann/json and curl only), at -O0, with
# each compiler. Prints the median of N runs of each and their ratio. A benchmark, not a test.
#
#   tests/bench/compile_time/measure.sh [RUNS=5] [COMPILERS="g++ clang++"]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
include=$here/../../../include
runs=${1:-5}
compilers=${2:-g++ clang++}

cpu_seconds() {  # compiler file: user+system CPU seconds of one compile
  local out
  out=$( { /usr/bin/time -f '%U %S' "$1" -std=c++17 -O0 -I"$include" -c "$here/$2" -o /dev/null; } 2>&1 | tail -1)
  awk '{printf "%.2f\n", $1 + $2}' <<<"$out"
}
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

printf '%-9s %12s %12s %7s\n' compiler baseline.cpp user.cpp ratio
for cxx in $compilers; do
  base=$(for _ in $(seq "$runs"); do cpu_seconds "$cxx" baseline.cpp; done | median)
  user=$(for _ in $(seq "$runs"); do cpu_seconds "$cxx" user.cpp; done | median)
  printf '%-9s %11.2fs %11.2fs %6.2fx\n' "$cxx" "$base" "$user" "$(awk -v u="$user" -v b="$base" 'BEGIN {print u / b}')"
done

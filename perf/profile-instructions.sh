#!/usr/bin/env bash
# Instructions per operation, counted by valgrind callgrind on fully optimized (NativeAOT) code.
# Usage: perf/profile-instructions.sh [CACHE=offheap] [ENTRIES=50000] [mixed]
#   CACHEKIT_BENCH_POLICY=Sieve perf/profile-instructions.sh offheap 1000000
# Runs the loop twice (100,000 and 300,000 operations after the same fill) and divides the difference
# of the instruction totals by 200,000, so the fill and start-up cancel out. The hash seed is fixed
# (CACHEKIT_BENCH_SEED, default 12345) so the policy's work repeats exactly.
set -euo pipefail
cache=${1:-offheap}; entries=${2:-50000}; mode=${3:-}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${PROFILE_OUT:-/tmp/cachekit-profile-aot}
export CACHEKIT_BENCH_SEED=${CACHEKIT_BENCH_SEED:-12345}
dotnet publish "$root/perf/CacheKit.ProfileAot" -c Release -r linux-x64 -o "$out" -nologo -v q >/dev/null
# Valgrind gives up on the separate debug-symbol file the publish writes ("possibly corrupted debuginfo").
rm -f "$out/CacheKit.ProfileAot.dbg"
total() {
  local f; f=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$f" "$out/CacheKit.ProfileAot" "$cache" "$entries" "$1" $mode >/dev/null 2>&1
  callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }'
  rm -f "$f"
}
a=$(total 100000); b=$(total 300000)
echo "$cache ${CACHEKIT_BENCH_POLICY:-default policy} entries=$entries ${mode:-gets}: $(( (b - a) / 200000 )) instructions per operation ($a -> $b)"

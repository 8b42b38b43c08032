#!/usr/bin/env bash
# Instructions per operation, counted by valgrind callgrind on fully optimized (NativeAOT) code.
# Usage: perf/profile-instructions.sh [CACHE=offheap] [ENTRIES=50000] [mixed]
#   CACHEKIT_BENCH_POLICY=Sieve perf/profile-instructions.sh offheap 1000000
#   PROFILE_OPS="1300000 2300000" PROFILE_CACHE_SIM=2097152 perf/profile-instructions.sh offheap 1000000
# Runs the loop twice (100,000 and 300,000 operations after the same fill, or the two counts in PROFILE_OPS)
# and divides the difference of the totals by the difference of the counts, so the fill and start-up cancel
# out. The hash seed is fixed (CACHEKIT_BENCH_SEED, default 12345) so the policy's work repeats exactly.
# The process is pinned to one CPU (taskset, where present): the read buffer and the operation counters pick
# their stripe by processor id, so a thread that migrated between runs appended to other stripes, drained at
# other moments and counted up to half as many instructions again in one of the two runs (measured
# 2026-11-29: 487 against 1,062 per get for the same build).
# PROFILE_CACHE_SIM=BYTES also simulates the caches (callgrind --cache-sim: a 48 KiB 12-way L1 data cache, as
# this host's, and a last level of BYTES, 16-way; 2097152 models this host's 2 MiB L2) and prints the data
# cache read and write misses per operation beside the instructions. Simulated misses, not time.
# PROFILE_FUNCTIONS=N also prints the N functions whose instructions grew most between the two runs, per operation
# (each function's own instructions, callees apart: what the difference of callgrind_annotate's two listings gives).
# The binary then keeps its symbol table (valgrind cannot read the DWARF 5 debug information NativeAOT writes, so that
# is stripped from it; the symbols are enough to name functions).
set -euo pipefail
cache=${1:-offheap}; entries=${2:-50000}; mode=${3:-}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${PROFILE_OUT:-/tmp/cachekit-profile-aot}
export CACHEKIT_BENCH_SEED=${CACHEKIT_BENCH_SEED:-12345}
read -r ops_a ops_b <<< "${PROFILE_OPS:-100000 300000}"
pin=()
if command -v taskset >/dev/null; then pin=(taskset -c 0); fi
sim=()
if [ -n "${PROFILE_CACHE_SIM:-}" ]; then sim=(--cache-sim=yes --D1=49152,12,64 "--LL=${PROFILE_CACHE_SIM},16,64"); fi
functions=${PROFILE_FUNCTIONS:-0}
if ! [[ "$functions" =~ ^[0-9]+$ ]]; then echo "PROFILE_FUNCTIONS must be a count of functions (got '$functions')" >&2; exit 2; fi
if [ "$functions" -gt 0 ] && ! command -v strip >/dev/null; then
  echo "PROFILE_FUNCTIONS needs binutils' strip (valgrind cannot read the binary's DWARF 5 debug information)" >&2; exit 2
fi
publish=()
if [ "$functions" -gt 0 ]; then
  publish=(-p:StripSymbols=false)
  # The link step is incremental: without this a stripped binary of an earlier publish would be reused.
  rm -rf "$root/perf/CacheKit.ProfileAot/obj/Release/net10.0/linux-x64/native"
fi
dotnet publish "$root/perf/CacheKit.ProfileAot" -c Release -r linux-x64 -o "$out" -nologo -v q "${publish[@]}" >/dev/null
# Valgrind gives up on the separate debug-symbol file the publish writes ("possibly corrupted debuginfo"), and on
# the same information inside the binary (a link reused from a PROFILE_FUNCTIONS publish): keep only the symbols.
rm -f "$out/CacheKit.ProfileAot.dbg"
if command -v strip >/dev/null; then strip --strip-debug "$out/CacheKit.ProfileAot"; fi
listings=$(mktemp -d)
trap 'rm -rf "$listings"' EXIT
# Prints the program totals: Ir, or with the cache simulation Ir D1mr D1mw DLmr DLmw.
totals() {
  local f; f=$(mktemp)
  "${pin[@]}" valgrind --tool=callgrind "${sim[@]}" --callgrind-out-file="$f" "$out/CacheKit.ProfileAot" "$cache" "$entries" "$1" $mode >/dev/null 2>&1
  callgrind_annotate --threshold=100 "$f" 2>/dev/null > "$listings/$1.txt"
  awk -v sim="${#sim[@]}" '/PROGRAM TOTALS/ { gsub(",", ""); if (sim > 0) print $1, $9, $11, $15, $17; else print $1; exit }' "$listings/$1.txt"
  rm -f "$f"
}
a=$(totals "$ops_a"); b=$(totals "$ops_b")
label="$cache ${CACHEKIT_BENCH_POLICY:-default policy} entries=$entries ${mode:-gets}"
if [ ${#sim[@]} -eq 0 ]; then
  echo "$label: $(( (b - a) / (ops_b - ops_a) )) instructions per operation ($a -> $b)"
else
  echo "$a $b" | awk -v n=$(( ops_b - ops_a )) -v label="$label" -v ll="$PROFILE_CACHE_SIM" '{
    printf "%s: per operation %.0f instructions, L1d misses %.2f read / %.2f write, last-level (%d B) misses %.2f read / %.2f write\n",
      label, ($6-$1)/n, ($7-$2)/n, ($8-$3)/n, ll, ($9-$4)/n, ($10-$5)/n }'
fi
if [ "$functions" -gt 0 ]; then
  # A listing line: "COUNT (PCT%) [more events' COUNT (PCT%), or . for none]  FILE:FUNCTION [OBJECT]"; the first
  # count is the instructions, and the first field with a colon is FILE:FUNCTION (counts and percentages have none).
  # A function's name is taken up to its first blank (C++ names with arguments are cut, alike in both runs).
  per_function() { awk '$1 ~ /^[0-9,]+$/ && $2 ~ /^\(/ { for (i = 3; i <= NF && $i !~ /:/; i++) ; if (i > NF) next;
    n = $1; gsub(",", "", n); f = $i; sub(/^[^:]*:/, "", f); c[f] += n }
    END { for (f in c) print f "\t" c[f] }' "$1" | LC_ALL=C sort; }
  echo "functions whose own instructions grew most per operation ($ops_a -> $ops_b operations):"
  LC_ALL=C join -t $'\t' -a 2 -e 0 -o 0,1.2,2.2 <(per_function "$listings/$ops_a.txt") <(per_function "$listings/$ops_b.txt") |
    awk -F '\t' -v n=$(( ops_b - ops_a )) '{ printf "%9.1f  %s\n", ($3 - $2) / n, $1 }' | sort -rn | awk -v n="$functions" 'NR <= n'
fi

#!/usr/bin/env bash
# Long concurrent stress: one process per policy and mode (plain and poison), all started at once,
# each running StressTests for SECONDS (default 600). Logs and a summary go to results/stress/.
# Usage (from the repository root): tests/CacheKit.Hardening.Tests/long-stress.sh [SECONDS] [plain|poison|both]
set -euo pipefail
SECONDS_PER_RUN=${1:-600}
MODES=${2:-both}
OUT=results/stress
mkdir -p "$OUT"
rm -f "$OUT"/*.log "$OUT"/summary.txt
dotnet build tests/CacheKit.Hardening.Tests -c Release -v quiet -nologo
# Every CachePolicy member (the enum is the list of policies the engine accepts).
POLICIES=$(grep -oP '^\s+\K[A-Z][A-Za-z0-9]+(?=,|\s*=\s*\d+,?)' src/OffHeap/CachePolicy.cs | sort -u)
SUFFIXES=()
[[ $MODES == plain || $MODES == both ]] && SUFFIXES+=("")
[[ $MODES == poison || $MODES == both ]] && SUFFIXES+=("_Poison")
pids=()
for p in $POLICIES; do
  for s in "${SUFFIXES[@]}"; do
    CACHEKIT_STRESS_SECONDS=$SECONDS_PER_RUN dotnet test tests/CacheKit.Hardening.Tests -c Release --no-build \
      --filter "Name=Stress_$p$s" --logger "console;verbosity=detailed" > "$OUT/Stress_$p$s.log" 2>&1 &
    pids+=($!)
  done
done
echo "started ${#pids[@]} runs of $SECONDS_PER_RUN s at $(date -u +%H:%M:%S) UTC"
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
grep -h "STRESS " "$OUT"/*.log | sed 's/^ *STRESS //' | sort -u > "$OUT/summary.txt"
echo "finished at $(date -u +%H:%M:%S) UTC: $(wc -l < "$OUT/summary.txt") results, $failed failed runs"
cat "$OUT/summary.txt"
sed -E 's/^[^:]*: ([0-9,]+) ops.* ([0-9]+) mismatches.* ([0-9]+) overruns.*evictions, ([0-9]+) B leaked.*/\1 \2 \3 \4/' "$OUT/summary.txt" | tr -d , |
  awk '{ops += $1; mis += $2; over += $3; leak += $4} END {printf "total: %d operations, %d mismatches, %d budget overruns, %d bytes leaked\n", ops, mis, over, leak}' | tee -a "$OUT/summary.txt"
exit $((failed > 0))

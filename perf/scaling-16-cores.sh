#!/usr/bin/env bash
# The 16-core throughput runs (docs/benchmarks/scaling-16-cores.md), for a machine without the .NET SDK.
#
#   perf/scaling-16-cores.sh pack [VARIANT_DIR...]   here: a self-contained build of the headline benchmark into
#                                                    .devcarry/ (git ignores it; the device tool's carry names it),
#                                                    plus each VARIANT_DIR (a folder holding a changed
#                                                    CacheKit.OffHeap.dll / CacheKit.Policies.dll) copied beside it
#   perf/scaling-16-cores.sh run                     there (OUT set): alternated A/B rounds of the 90/10 mix, ours
#                                                    per build and ConcurrentLfu / MemoryCache, then the full
#                                                    `throughput` verb of the base build; results under $OUT
#
# There: the device tool's run with carry [".devcarry"] and the command `bash perf/scaling-16-cores.sh run`.
# Knobs for `run`: T (thread counts, default 1,2,4,8,16), S (seconds per point, 1), R (rounds, 3), FULL (1: the full
# run too), FULLT (its time limit in seconds, 330). The 2026-11-30 lease ran `run` in one call of 388 s.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
carry="$root/.devcarry"
case "${1:-}" in
pack)
    shift
    rm -rf "$carry" /tmp/cachekit-hlpub && mkdir -p "$carry"
    dotnet publish "$root/perf/CacheKit.Headline" -c Release -r linux-x64 --self-contained true \
        -p:ErrorOnDuplicatePublishOutputFiles=false -o /tmp/cachekit-hlpub/base -nologo -v q
    rm -f /tmp/cachekit-hlpub/base/*.pdb /tmp/cachekit-hlpub/base/*.xml
    tar -C /tmp/cachekit-hlpub -cf - base | xz -T2 -6 > "$carry/base.tar.xz"   # ~32 MB (the tree travels up to 64 MiB)
    for dir in "$@"; do
        cp -r "$dir" "$carry/variant-$(basename "$dir")"
    done
    ls -la "$carry"
    ;;
run)
    : "${OUT:?OUT must name the results folder}"
    export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1   # no ICU there
    T=${T:-1,2,4,8,16}; S=${S:-1}; R=${R:-3}; FULL=${FULL:-1}; FULLT=${FULLT:-330}
    work=/tmp/cachekit-scaling; rm -rf "$work"; mkdir -p "$work"
    tar -xJf "$carry/base.tar.xz" -C "$work"
    builds=(base)
    for v in "$carry"/variant-*; do
        [ -d "$v" ] || continue
        name=$(basename "$v"); cp -r "$work/base" "$work/$name"; cp "$v"/*.dll "$work/$name/"; builds+=("$name")
    done
    { date -u; nproc; lscpu; free -g; head -3 /etc/os-release; } > "$OUT/machine.txt" 2>&1
    for r in $(seq 1 "$R"); do
        for b in "${builds[@]}"; do
            echo "round $r $b $(date -u +%T)"
            timeout 90 "$work/$b/CacheKit.Headline" points --cache offheap --mix 90-10 --threads "$T" --seconds "$S" --repeats 1 || true
        done
        for c in lfu mc; do
            echo "round $r $c $(date -u +%T)"
            timeout 90 "$work/base/CacheKit.Headline" points --cache $c --mix 90-10 --threads "$T" --seconds "$S" --repeats 1 || true
        done
    done 2>&1 | tee "$OUT/ab-rounds.txt"
    if [ "$FULL" = 1 ]; then
        (cd "$work" && timeout "$FULLT" "$work/base/CacheKit.Headline" throughput --no-redis --seconds "$S" --repeats 3 --out "$work/full") > "$OUT/full.log" 2>&1 || true
        tar -C "$work" -czf "$OUT/full.tar.gz" full
        tail -3 "$OUT/full.log"
    fi
    ;;
*)
    awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"
    exit 2
    ;;
esac

using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using CacheKit.Perf;
using CacheKit.Simulator;

namespace CacheKit.Headline;

/// <summary>One line of the ratio table: ours against a peer, with the issue's target.</summary>
/// <param name="Loose">A throughput ratio whose target lies within the ratio's range over the rounds (ours' slowest round
/// against the peer's fastest, and the reverse): this run cannot decide the verdict.</param>
public sealed record TargetRow(string Metric, string Ours, string Peer, string PeerValue, double Ratio, string Target, bool? Met, bool Loose = false);

/// <summary>Turns results into the ratio table, a markdown report and PNG charts.</summary>
public static class HeadlineReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The ratio rows (each a same-run comparison).</summary>
    public static List<TargetRow> Targets(Results r, Settings s)
    {
        var rows = new List<TargetRow>();
        const string Ours = Caches.OffHeapSpan;
        ThroughputPoint? Point(string cache, Mix mix, int threads) => r.Points.FirstOrDefault(p => p.Cache == cache && p.Mix == mix && p.Threads == threads);
        double Ops(ThroughputPoint? point) => point?.OpsPerSecond ?? double.NaN;
        string F(double v, string unit) => double.IsFinite(v) ? v.ToString(v >= 100 ? "F0" : v >= 10 ? "F1" : "F2", Inv) + unit : "not measured";
        void Time(string metric, string ours, string peer, double o, double p, string unit, double? limit, bool loose = false)
        {
            double ratio = o / p;
            rows.Add(new TargetRow(metric, F(o, unit), peer, F(p, unit), ratio, limit is { } l ? $"≤ {l:0.0#}×" : "", limit is { } lim && double.IsFinite(ratio) ? ratio <= lim : null, loose));
        }
        // A 1-thread get-hit time against a peer's; the time ratio is the peer's throughput over ours, so its range over
        // the rounds is the peer's point's over ours.
        void GetTime(string metric, string oursCache, string peerCache, double? limit)
        {
            ThroughputPoint? ours = Point(oursCache, Mix.GetOnly, 1), peer = Point(peerCache, Mix.GetOnly, 1);
            Time(metric, oursCache, peerCache, 1e9 / Ops(ours), 1e9 / Ops(peer), "", limit, limit is { } target && LimitWithinRounds(peer, ours, target));
        }
        // A throughput ratio, ours over the peer's point, shown in ops/s divided by scale (1 or 1e6).
        void More(string metric, string peerLabel, ThroughputPoint? ours, ThroughputPoint? peer, double scale, double? limit)
        {
            double o = Ops(ours) / scale, p = Ops(peer) / scale, ratio = o / p;
            bool loose = limit is { } target && LimitWithinRounds(ours, peer, target);
            rows.Add(new TargetRow(metric, F(o, ""), peerLabel, F(p, ""), ratio, limit is { } l ? $"≥ {l:0.0#}×" : "", limit is { } lim && double.IsFinite(ratio) ? ratio >= lim : null, loose));
        }
        void Mix9010(int threads, string peerCache, double? limit)
            => More($"90/10 get/set with eviction, {threads} thread{(threads == 1 ? "" : "s")} (Mops/s)", peerCache,
                Point(Ours, Mix.GetSet90_10, threads), Point(peerCache, Mix.GetSet90_10, threads), 1e6, limit);
        if (r.Points.Count > 0)
        {
            GetTime("get hit, 1 thread (ns/op)", Ours, Caches.ConcurrentDictionary, 0.9);
            GetTime("get hit, 1 thread (ns/op)", Ours, Caches.ConcurrentLfu, 0.6);
            GetTime("get hit, 1 thread (ns/op)", Ours, Caches.ConcurrentLfuForeground, 0.6);
            GetTime("get hit, 1 thread (ns/op)", Ours, Caches.FastConcurrentLru, null);
            GetTime("get hit, typed facade, 1 thread (ns/op)", Caches.OffHeapTyped, Caches.ConcurrentDictionary, null);
            if (s.MaxThreads >= 2)
            {
                More("get hit, 2 threads vs 1 (ops/s)", Ours + " @1", Point(Ours, Mix.GetOnly, 2), Point(Ours, Mix.GetOnly, 1), 1, 1.8);
                More("get hit, 2 threads vs 1, for reference (ops/s)", Caches.ConcurrentDictionary + " @1",
                    Point(Caches.ConcurrentDictionary, Mix.GetOnly, 2), Point(Caches.ConcurrentDictionary, Mix.GetOnly, 1), 1, null);
            }
            Mix9010(1, Caches.ConcurrentLfu, 1.5);
            Mix9010(1, Caches.ConcurrentLfuForeground, 1.5);
            Mix9010(1, Caches.MemoryCache, 2.5);
            Mix9010(1, s.Caches.Contains(Caches.ConcurrentLru) ? Caches.ConcurrentLru : Caches.FastConcurrentLru, null);   // a reference row (the headline runs FastConcurrentLru only)
            int n = s.MaxThreads;
            if (n > 1)
            {
                Mix9010(n, Caches.ConcurrentLfu, 1.5);
                Mix9010(n, Caches.ConcurrentLfuForeground, 1.5);
                Mix9010(n, Caches.MemoryCache, 2.5);
            }
            double allocGet = Point(Ours, Mix.GetOnly, 1)?.AllocatedBytesPerOp ?? double.NaN;
            double allocSet = Point(Ours, Mix.GetSet90_10, 1)?.AllocatedBytesPerOp ?? double.NaN;
            // A figure that was not measured (NaN: a run without our cache or without the throughput part) has no verdict.
            void Allocation(string metric, double bytesPerOp)
                => rows.Add(new TargetRow(metric, F(bytesPerOp, ""), "", "", double.NaN, "0 B", double.IsFinite(bytesPerOp) ? bytesPerOp < 0.01 : null));
            Allocation("allocated per span get (B/op)", allocGet);
            Allocation("allocated per span 90/10 op with eviction (B/op)", allocSet);
            Allocation("allocated per typed <long,Guid> get/set (B/op)", r.TypedUnmanagedBytesPerOp);
        }
        foreach (long n in r.Memory.Select(m => m.Entries).Distinct().Order())
        {
            MemoryResult? ours = r.Memory.FirstOrDefault(m => m.Cache == Ours && m.Entries == n);
            MemoryResult? cd = r.Memory.FirstOrDefault(m => m.Cache == Caches.ConcurrentDictionary && m.Entries == n);
            if (ours is null || cd is null)
            {
                continue;
            }
            string size = n >= 1_000_000 ? $"{n / 1_000_000}M" : n.ToString("N0", Inv);
            Time($"process bytes per entry, {size}", Ours, Caches.ConcurrentDictionary, ours.ProcessBytesPerEntry, cd.ProcessBytesPerEntry, " B", 0.6);   // the goal holds at every size measured (1M and 10M)
            rows.Add(new TargetRow($"full blocking GC, {size} entries (median of 5)", F(ours.GcMedianMs, " ms"), Caches.ConcurrentDictionary, F(cd.GcMedianMs, " ms"), ours.GcMedianMs / cd.GcMedianMs,
                n >= 10_000_000 ? "≤ 2 ms" : "", n >= 10_000_000 ? ours.GcMedianMs <= 2 : null));
            Time($"get p99.9 under an allocating thread, {size} (µs)", Ours, Caches.ConcurrentDictionary, ours.P999Us, cd.P999Us, "", 0.1);
            Time($"… the same, corrected for coordinated omission (µs)", Ours, Caches.ConcurrentDictionary, ours.P999CorrectedUs, cd.P999CorrectedUs, "", 0.1);
        }
        if (r.RedisLatency is { } rl && r.Memory.FirstOrDefault(m => m.Cache == Ours && m.Entries == s.MemoryEntries.FirstOrDefault()) is { } o1)
        {
            Time("get p50 (µs), in-process vs Redis", Ours, RedisAdapter.RowName, o1.P50Us, rl.P50Us, "", null);
        }
        if (r.Points.Any(p => p.Cache == RedisAdapter.RowName))
        {
            More("get hit, 1 thread (ops/s), vs Redis", RedisAdapter.RowName, Point(Ours, Mix.GetOnly, 1), Point(RedisAdapter.RowName, Mix.GetOnly, 1), 1, null);
        }
        foreach (TraceResults t in r.HitRatios)
        {
            foreach (Capacity c in t.Capacities)
            {
                double ours = t.Get(HitRatios.OursName, c)?.HitRatio ?? double.NaN;
                foreach (string peer in new[] { Catalog.BitFasterLfu, Catalog.BitFasterLru })
                {
                    double p = t.Get(peer, c)?.HitRatio ?? double.NaN;
                    rows.Add(new TargetRow($"hit ratio {t.TraceName} @{c.Label} (%)", F(ours, ""), peer, F(p, ""), ours / p, "", null));
                }
            }
        }
        return rows;
    }

    /// <summary>
    /// Whether <paramref name="target"/> lies strictly inside the range of the throughput ratio <paramref name="numerator"/>
    /// / <paramref name="denominator"/> over the rounds (slowest numerator round against fastest denominator round, and
    /// the reverse): then the rounds disagree on the verdict and the run cannot decide it. False when either point has
    /// fewer than two rounds.
    /// </summary>
    public static bool LimitWithinRounds(ThroughputPoint? numerator, ThroughputPoint? denominator, double target)
    {
        if (numerator?.Runs is not { Length: > 1 } top || denominator?.Runs is not { Length: > 1 } bottom)
        {
            return false;
        }
        double lowest = top.Min() / bottom.Max();
        double highest = top.Max() / bottom.Min();
        return lowest < target && target < highest;
    }

    /// <summary>Millions of operations per second, with the range of the runs when there were several: "2.12 (1.90–2.30)".</summary>
    private static string MopsWithRange(ThroughputPoint p)
        => (p.OpsPerSecond / 1e6).ToString("F2", Inv)
            + (p.Runs is { Length: > 1 } runs ? FormattableString.Invariant($" ({runs.Min() / 1e6:F2}–{runs.Max() / 1e6:F2})") : "");

    /// <summary>The ratio table as markdown.</summary>
    public static string RatioTable(List<TargetRow> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| measure | OffHeap | peer | peer's | ratio | target | |");
        sb.AppendLine("| --- | ---: | --- | ---: | ---: | --- | --- |");
        foreach (TargetRow row in rows)
        {
            string ratio = double.IsFinite(row.Ratio) ? row.Ratio.ToString("F2", Inv) + "×" : "";
            string verdict = row.Met switch { true => "met", false => "**missed**", null => "" } + (row.Met is not null && row.Loose ? " (undecided)" : "");
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {row.Metric} | {row.Ours} | {row.Peer} | {row.PeerValue} | {ratio} | {row.Target} | {verdict} |");
        }
        if (rows.Any(row => row.Met is not null && row.Loose))
        {
            sb.AppendLine();
            sb.AppendLine("(undecided): the rounds of this run disagree on the verdict: the target lies between the ratio of our slowest round to the peer's fastest and that of our fastest to the peer's slowest. The verdict stated is the medians'; decide it over several runs.");
        }
        return sb.ToString();
    }

    /// <summary>Writes report.md, results.json and the charts; returns the report's path.</summary>
    public static string Write(Results r, Settings s, List<TargetRow> rows)
    {
        string dir = Path.GetFullPath(s.OutputDirectory);
        Directory.CreateDirectory(dir);
        var md = new StringBuilder();
        md.AppendLine("# CacheKit.OffHeap: the headline comparison");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Command: `{s.CommandLine}`  ");
        md.AppendLine(CultureInfo.InvariantCulture, $"Machine: {Machine()}  ");
        md.AppendLine(CultureInfo.InvariantCulture, $"Date (UTC): {DateTime.UtcNow:yyyy-MM-dd HH:mm}; run time {r.Elapsed.TotalSeconds:F0} s  ");
        md.AppendLine(CultureInfo.InvariantCulture, $"Workload: {s.Entries:N0} keys of 16 B, values {s.Values}{(s.RunMemory && s.Values == ValueMix.Twitter ? $" ({Suite.MemoryValueBytes(s.Values)} B in the memory children)" : "")}, Zipf(0.99); {s.Seconds} s per point, median of {s.Repeats}; 90/10 bound {s.EvictionCapacity:N0} entries; latency {s.LatencySeconds} s per cache.");
        if (CacheAdapter.PeersReadValues)
        {
            md.AppendLine("**Peers read values** (CACHEKIT_BENCH_READ_VALUES=1): each object cache's get also copies the value it returns into the caller's buffer, as the span API's get does; the targets' figures are for gets that leave the value untouched.");
        }
        if (Caches.OptionOverrides() is string overrides)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"**Our options overridden** ({overrides}): our caches did not run with the defaults.");
        }
        md.AppendLine();
        md.AppendLine("Ratios are measured in the same run (other processes may share the machine, so absolute times move; ratios move less, except against caches that do work on another core: BitFaster ConcurrentLfu's maintenance and MemoryCache's compaction run on pool threads, so on a busy 2-core machine their throughput, and our ratio against it, can swing 2-3x between runs).");
        md.AppendLine();
        md.AppendLine("## Ratios against the peers");
        md.AppendLine();
        md.AppendLine(RatioTable(rows));
        if (r.Points.Count > 0)
        {
            md.AppendLine("## Throughput (operations per second)");
            md.AppendLine();
            md.AppendLine("Each cache runs with its defaults. BitFaster's ConcurrentLfu drains its buffers and evicts on a thread-pool thread "
                + "(its default ThreadPoolScheduler), so its 1-thread figures use a second core and, with as many workers as cores, its maintenance "
                + "has no core of its own; the row BitFaster.ConcurrentLfu (foreground) is the same cache with its ForegroundScheduler (maintenance "
                + "on the calling thread), and the targets against ConcurrentLfu are held against both. Ours replays reads and evicts on the calling "
                + "thread (`BackgroundReadReplay` off). Every get looks up a key instance of its own (not the one stored), read in stream order, for every cache alike. In the 90/10 mix every tenth operation sets a key drawn from the Zipf stream at its own "
                + "stride, after a warm-up that fills the bound, so sets insert and evict (the hit ratio column shows what each policy kept). "
                + "Redis is filled with MSET batches of keys drawn from the same Zipf(0.99) distribution (its own seed, not the measured stream) until it evicts (maxmemory sized for the bound, allkeys-lru), then gets "
                + "20,000 warm-up operations of the mix (round trips are slow); the Redis section says whether it reached maxmemory.");
            md.AppendLine();
            md.AppendLine(s.Isolated
                ? "Each cache's points run in a child process of its own (`--isolated`: its own heap, GC and thread pool), the caches one after another. Each cell is the median of its runs (the slower middle one for an even count), with the slowest and fastest run in parentheses (one run per round, the rounds consecutive inside the cache's process; this host's speed moves between runs: a wide range means the ratios built on that point are loose)."
                : "Each cell is the median of its runs (the slower middle one for an even count), with the slowest and fastest run in parentheses (one run per round, the rounds interleaved over the caches, every cache in this one process (`--isolated` runs each in a process of its own); this host's speed moves between runs: a wide range means the ratios built on that point are loose).");
            md.AppendLine();
            foreach (Mix mix in new[] { Mix.GetOnly, Mix.GetSet90_10 })
            {
                int[] threads = [.. r.Points.Where(p => p.Mix == mix).Select(p => p.Threads).Distinct().Order()];
                md.AppendLine(CultureInfo.InvariantCulture, $"**{(mix == Mix.GetOnly ? "get hit (all keys cached)" : $"90 % get / 10 % set, bound {s.EvictionCapacity:N0} entries over {s.Entries:N0} keys")}**");
                md.AppendLine();
                md.AppendLine("| cache | " + string.Join(" | ", threads.Select(t => $"{t} thr (Mops/s)")) + " | ns/op @1 | B/op @1 | hit ratio |");
                md.AppendLine("| --- |" + string.Concat(threads.Select(_ => " ---: |")) + " ---: | ---: | ---: |");
                foreach (string cache in r.Points.Where(p => p.Mix == mix).Select(p => p.Cache).Distinct())
                {
                    var ps = r.Points.Where(p => p.Mix == mix && p.Cache == cache).ToDictionary(p => p.Threads);
                    ThroughputPoint? one = ps.GetValueOrDefault(1);
                    string cells = string.Join(" | ", threads.Select(t => ps.TryGetValue(t, out var p) ? MopsWithRange(p) : ""));
                    string ns = one is null ? "" : (1e9 / one.OpsPerSecond).ToString("F0", Inv);
                    md.AppendLine("| " + cache + " | " + cells + " | " + ns + " | " + one?.AllocatedBytesPerOp.ToString("F1", Inv) + " | " + one?.HitRatio.ToString("P1", Inv) + " |");
                }
                md.AppendLine();
                string png = mix == Mix.GetOnly ? "throughput-get.png" : "throughput-90-10.png";
                Charts.Lines(Path.Combine(dir, png), mix == Mix.GetOnly ? "get hit: operations per second" : "90/10 get/set with eviction: operations per second", "Mops/s",
                    r.Points.Where(p => p.Mix == mix).GroupBy(p => p.Cache).Select(g => (g.Key, g.Select(p => (double)p.Threads).ToArray(), g.Select(p => p.OpsPerSecond / 1e6).ToArray())).ToList());
                md.AppendLine(CultureInfo.InvariantCulture, $"![{png}]({png})");
                md.AppendLine();
            }
            Charts.Bars(Path.Combine(dir, "get-ns.png"), "get hit, 1 thread: ns per operation (lower is better)", "ns/op",
                r.Points.Where(p => p.Mix == Mix.GetOnly && p.Threads == 1).Select(p => (p.Cache, 1e9 / p.OpsPerSecond)).ToList());
            md.AppendLine("![get-ns.png](get-ns.png)");
            md.AppendLine();
        }
        md.AppendLine("## Redis");
        md.AppendLine();
        md.AppendLine(r.RedisMessage + ".");
        if (r.RedisBytesPerEntry is { } rb)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $" Server memory per entry at {s.Entries:N0} keys (growth over the empty server): used_memory {rb.Used:F0} B, RSS {rb.Rss:F0} B.");
        }
        if (r.RedisLatency is { } rl)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $" Client-side get latency (1 thread, allocating thread beside it): p50 {rl.P50Us:F1} µs, p99 {rl.P99Us:F1} µs, p99.9 {rl.P999Us:F1} µs, max {rl.MaxUs:F0} µs.");
        }
        md.AppendLine();
        if (r.Memory.Count > 0)
        {
            md.AppendLine("## Memory, GC and latency (one child process per cache and size)");
            md.AppendLine();
            md.AppendLine(FormattableString.Invariant($"Values: {string.Join(", ", r.Memory.Select(m => m.ValueBytes).Distinct())} B per entry in every child{(s.Values == ValueMix.Twitter ? " (a child stores one value size: the Twitter mix of the other parts is not replayed here)" : "")}. Each child fills its cache, then, up to 1.1M entries, does {Memory.SettleGets / 1e6:0.#}M gets, split over the cores (so that structures first written on use, such as a frequency sketch, are resident: at 1M entries our sketch has aged once; at 10M it would take 100M gets, so the 10M children skip it and much of our doorkeeper and sketch is allocated but not yet resident), forces a compacting full GC, then reads its managed heap, native bytes and RSS. Process B/entry is the larger of the RSS growth over the empty process and managed + native bytes, for every cache, so that memory allocated but not yet written counts; the RSS growth alone is in its own column. Latency: one thread times each get while another allocates 100 MiB/s of garbage; the corrected p99.9 back-fills the gets that a client issuing one every 2 µs would have seen delayed by each long sample (coordinated omission), a sample there running from the end of the previous get to the end of this one, so that a stall counts whether the runtime stopped the reader inside a get or between two (the stalls column says where each stall over 1 ms fell)."));
            string[] noChild = [.. s.NoMemoryChild.Where(s.Caches.Contains)];
            if (noChild.Length > 0)
            {
                md.AppendLine();
                md.AppendLine($"No child here for {string.Join(", ", noChild)}, to keep the headline under 3 minutes (the typed facade's entries are the span API's bytes, and ConcurrentLfu stands for BitFaster's managed entries); the `memory` verb measures every cache.");
            }
            md.AppendLine();
            md.AppendLine("| cache | entries | fill s | managed B/entry | native B/entry | RSS growth B/entry | process B/entry | full GC ms (median of 5) | get p50 µs | p99 µs | p99.9 µs | max µs | p99.9 µs corrected | stalls > 1 ms in / between gets | gen0/1/2 during | GC pause ms during |");
            md.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |");
            foreach (MemoryResult m in r.Memory)
            {
                md.AppendLine(m.Error is not null
                    ? $"| {m.Cache} | {m.Entries:N0} | failed: {m.Error} | | | | | | | | | | | | | |"
                    : FormattableString.Invariant($"| {m.Cache} | {m.Entries:N0} | {m.FillSeconds:F1} | {m.ManagedBytesPerEntry:F0} | {m.NativeBytesPerEntry:F0} | {m.RssGrowthBytesPerEntry:F0} | {m.ProcessBytesPerEntry:F0} | {m.GcMedianMs:F2} | {m.P50Us:F2} | {m.P99Us:F1} | {m.P999Us:F1} | {m.MaxUs:F0} | {m.P999CorrectedUs:F0} | {(m.StallsInGet < 0 ? "–" : $"{m.StallsInGet} / {m.StallsBetweenGets}")} | {m.Gen0}/{m.Gen1}/{m.Gen2} | {m.PauseMsDuringLatency:F0} |"));
            }
            md.AppendLine();
            long first = r.Memory[0].Entries;
            var ok = r.Memory.Where(m => m.Error is null).ToList();
            Charts.Bars(Path.Combine(dir, "memory-per-entry.png"), $"process bytes per entry, {first:N0} entries (lower is better)", "bytes",
                ok.Where(m => m.Entries == first).Select(m => (m.Cache, m.ProcessBytesPerEntry)).ToList());
            Charts.Bars(Path.Combine(dir, "full-gc.png"), "forced full blocking GC, median of 5 (lower is better)", "ms",
                ok.Select(m => ($"{m.Cache} × {m.Entries / 1_000_000.0:0.#}M", m.GcMedianMs)).ToList(), logScale: true);
            Charts.Bars(Path.Combine(dir, "latency-p999.png"), "get p99.9 while another thread allocates (lower is better)", "µs",
                ok.Select(m => ($"{m.Cache} × {m.Entries / 1_000_000.0:0.#}M", m.P999Us)).ToList(), logScale: true);
            md.AppendLine("![memory-per-entry.png](memory-per-entry.png)");
            md.AppendLine();
            md.AppendLine("![full-gc.png](full-gc.png)");
            md.AppendLine();
            md.AppendLine("![latency-p999.png](latency-p999.png)");
            md.AppendLine();
        }
        if (r.HitRatios.Count > 0)
        {
            md.AppendLine("## Hit ratios (the simulator's replay, same code as perf/CacheKit.Simulator)");
            md.AppendLine();
            md.AppendLine(CultureInfo.InvariantCulture, $"Ours is the engine's default policy ({HitRatios.OursName}) replayed alone; the engine stays within 0.02 points of it with one shard and 0.32 with four on the traces HitRatioTests checks (docs/engine.md).");
            md.AppendLine();
            if (r.HitRatiosSkipped is not null)
            {
                md.AppendLine("Traces: " + r.HitRatiosSkipped + ".");
                md.AppendLine();
            }
            foreach (TraceResults t in r.HitRatios)
            {
                md.AppendLine(Report.Markdown(t));
                string png = "hit-" + Report.Stem(t.TraceName) + ".png";
                Report.Chart(t, Path.Combine(dir, png));
                md.AppendLine(CultureInfo.InvariantCulture, $"![{png}]({png})");
                md.AppendLine();
            }
        }
        string path = Path.Combine(dir, "report.md");
        File.WriteAllText(path, md.ToString());
        File.WriteAllText(Path.Combine(dir, "results.json"), JsonSerializer.Serialize(new
        {
            r.Points,
            r.Memory,
            r.RedisLatency,
            RedisBytesPerEntry = r.RedisBytesPerEntry is { } b ? new[] { b.Used, b.Rss } : null,
            r.RedisMessage,
            r.TypedUnmanagedBytesPerOp,
            Targets = rows,
        }, new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }));
        return path;
    }

    /// <summary>The machine in one line.</summary>
    public static string Machine()
    {
        string cpu = "";
        if (File.Exists("/proc/cpuinfo"))
        {
            cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "";
        }
        return $"{cpu} ({Environment.ProcessorCount} logical cores), {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}, GC: {(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")}, {(System.Runtime.GCSettings.LatencyMode == System.Runtime.GCLatencyMode.Batch ? "non-concurrent" : "concurrent")}";
    }
}

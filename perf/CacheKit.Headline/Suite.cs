using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using CacheKit.OffHeap;
using CacheKit.Perf;
using CacheKit.Simulator;
using Trace = CacheKit.Simulator.Trace;

namespace CacheKit.Headline;

/// <summary>What to run; the headline uses the compact defaults, the verbs override them.</summary>
public sealed class Settings
{
    /// <summary>Keys in the throughput workload (all cached for the get runs).</summary>
    public int Entries { get; set; } = 1_000_000;

    /// <summary>Value sizes.</summary>
    public ValueMix Values { get; set; } = ValueMix.Bytes100;

    /// <summary>Seconds per throughput point.</summary>
    public double Seconds { get; set; } = 0.3;

    /// <summary>Runs per point (the median is kept).</summary>
    public int Repeats { get; set; } = 3;

    /// <summary>Largest thread count (1, 2, 4, … up to it).</summary>
    public int MaxThreads { get; set; } = Environment.ProcessorCount;

    /// <summary>Entry bound of the 90/10 runs (over <see cref="Entries"/> keys).</summary>
    public int EvictionCapacity { get; set; } = 100_000;

    /// <summary>The in-process caches: the headline's by default (the verbs measure <see cref="Perf.Caches.All"/>).</summary>
    public IReadOnlyList<string> Caches { get; set; } = HeadlineCaches;

    /// <summary>
    /// The headline's caches: every one but BitFaster's plain ConcurrentLru, which no target names (FastConcurrentLru
    /// stands for BitFaster's LRUs), left to the verbs since ConcurrentLfu's foreground configuration joined (2026-11-29),
    /// for margin under 3 minutes: one cache's points and fill are ~8 s of the run, but this host's noise hid that in the
    /// session's runs (175, 147, 150 s with eight caches; 169, 162 s with seven).
    /// </summary>
    public static readonly IReadOnlyList<string> HeadlineCaches = [.. Perf.Caches.All.Where(c => c != Perf.Caches.ConcurrentLru)];

    /// <summary>
    /// Each cache's throughput points in a child process of its own (<c>--isolated</c>; <see cref="Suite"/>'s
    /// MeasureIsolated); false (the default): every cache in this process, their rounds interleaved. A cross-check of
    /// the interleaved harness (2026-11-29, docs/benchmarks/README.md, nineteenth session): ConcurrentLfu's 90/10
    /// throughput moved with the arrangement more than ours (medians, 1 thread: 1.9-2.4 Mops/s in a fresh process,
    /// 2.1-2.9 interleaved with every cache, 2.3-5.0 with two, 2.8-3.9 after its own get-only points in the same process;
    /// ours 2.6-4.7), so no mode is the neutral one;
    /// the default stays the one every earlier run used.
    /// </summary>
    public bool Isolated { get; set; }

    /// <summary>Sizes for the memory children of every cache.</summary>
    public IReadOnlyList<long> MemoryEntries { get; set; } = [1_000_000];

    /// <summary>Extra sizes for only <see cref="BigCaches"/> (the headline runs 10M for the two that the GC target compares).</summary>
    public IReadOnlyList<long> BigEntries { get; set; } = [10_000_000];

    /// <summary>The caches measured at <see cref="BigEntries"/>.</summary>
    public IReadOnlyList<string> BigCaches { get; set; } = [Perf.Caches.ConcurrentDictionary, Perf.Caches.OffHeapSpan];

    /// <summary>
    /// The caches without a memory child (the memory verb runs every cache). The headline leaves out the typed facade,
    /// whose entries are the span API's bytes (3 B per entry apart in every run so far; its child took ~20 s of the 3
    /// minutes), and BitFaster's two LRUs (~10 s each): BitFaster's managed entries are represented by ConcurrentLfu, the
    /// peer our policy is held against (the LRUs measured 305 B of managed heap per entry against its 326 at 1M), whose
    /// foreground-scheduler configuration stores the same entries.
    /// </summary>
    public IReadOnlyList<string> NoMemoryChild { get; set; } = [Perf.Caches.OffHeapTyped, Perf.Caches.ConcurrentLru, Perf.Caches.FastConcurrentLru, Perf.Caches.ConcurrentLfuForeground];

    /// <summary>Seconds of the latency measurement per child.</summary>
    public double LatencySeconds { get; set; } = 1;

    /// <summary>Which parts run.</summary>
    public bool RunThroughput { get; set; } = true;

    /// <summary>Which parts run.</summary>
    public bool RunMemory { get; set; } = true;

    /// <summary>Which parts run.</summary>
    public bool RunRedis { get; set; } = true;

    /// <summary>Which parts run.</summary>
    public bool RunHitRatios { get; set; } = true;

    /// <summary>Try apt-get when redis-server is missing.</summary>
    public bool InstallRedis { get; set; }

    /// <summary>Output folder.</summary>
    public string OutputDirectory { get; set; } = Path.Combine("results", "headline");

    /// <summary>The command line, for the report.</summary>
    public string CommandLine { get; set; } = "";
}

/// <summary>Everything one run measured.</summary>
public sealed class Results
{
    /// <summary>Throughput points of every cache, thread count and mix.</summary>
    public List<ThroughputPoint> Points { get; } = [];

    /// <summary>Memory children.</summary>
    public List<MemoryResult> Memory { get; } = [];

    /// <summary>Redis: get latency under the allocating thread (client side).</summary>
    public LatencyResult? RedisLatency { get; set; }

    /// <summary>Redis: growth of used_memory and used_memory_rss over the empty server, per entry at <see cref="Settings.Entries"/>.</summary>
    public (double Used, double Rss)? RedisBytesPerEntry { get; set; }

    /// <summary>Why Redis did or did not run.</summary>
    public string RedisMessage { get; set; } = "not run";

    /// <summary>Hit-ratio tables.</summary>
    public List<TraceResults> HitRatios { get; } = [];

    /// <summary>Which trace comparisons were skipped and why (null: none).</summary>
    public string? HitRatiosSkipped { get; set; }

    /// <summary>Bytes allocated per get/set of OffHeapCache&lt;long, Guid&gt; (typed facade, unmanaged types).</summary>
    public double TypedUnmanagedBytesPerOp { get; set; } = double.NaN;

    /// <summary>Wall time of the run.</summary>
    public TimeSpan Elapsed { get; set; }
}

/// <summary>Runs the parts in order with a progress display.</summary>
public static class Suite
{
    private const string PThroughput = "get, 1..N threads";
    private const string PEviction = "90/10 with eviction";
    private const string PRedis = "Redis";
    private const string PMemory = "memory & GC (child processes)";
    private const string PHit = "hit ratios (simulator)";

    /// <summary>Runs what <paramref name="settings"/> selects.</summary>
    public static Results Run(Settings settings)
    {
        var results = new Results();
        var clock = Stopwatch.StartNew();
        int[] threads = Throughput.ThreadCounts(settings.MaxThreads);
        string? skippedTraces = null;
        var hitCases = settings.RunHitRatios ? HitRatios.Cases(Workload.FindShared("traces"), out skippedTraces) : [];
        results.HitRatiosSkipped = skippedTraces;
        int memorySteps = MemoryJobs(settings).Count;
        var phases = new List<(string, int)>();
        if (settings.RunThroughput)
        {
            phases.Add((PThroughput, settings.Caches.Count * (1 + settings.Repeats)));   // fills, then rounds
            phases.Add((PEviction, settings.Caches.Count * (1 + settings.Repeats)));
        }
        if (settings.RunRedis)
        {
            phases.Add((PRedis, 4));
        }
        if (settings.RunMemory)
        {
            phases.Add((PMemory, memorySteps));
        }
        if (settings.RunHitRatios)
        {
            phases.Add((PHit, hitCases.Count));
        }
        Workload? workload = null;
        Steps.Run(phases, steps =>
        {
            if ((settings.RunThroughput && !settings.Isolated) || settings.RunRedis)
            {
                steps.Note($"workload: {settings.Entries:N0} keys of 16 B, values {settings.Values}, Zipf(0.99) stream");
                workload = Workload.Create(settings.Entries, settings.Values);
            }
            if (settings.RunThroughput)
            {
                RunThroughput(settings, workload, threads, results, steps);
                results.TypedUnmanagedBytesPerOp = TypedUnmanagedAllocation();
            }
            if (settings.RunRedis)
            {
                RunRedis(settings, workload!, threads, results, steps);
            }
            workload = null;
            GC.Collect();
            if (settings.RunMemory)
            {
                RunMemory(settings, results, steps);
            }
            if (settings.RunHitRatios)
            {
                steps.Begin(PHit, "replaying");
                if (skippedTraces is not null)
                {
                    steps.Note("hit ratios: " + skippedTraces);
                }
                foreach ((Func<Trace> load, long[] sizes, string label) in hitCases)
                {
                    steps.Begin(PHit, label);
                    results.HitRatios.Add(HitRatios.Run(load(), sizes));
                    steps.Advance(PHit);
                }
                steps.End(PHit);
            }
        });
        results.Elapsed = clock.Elapsed;
        return results;
    }

    private static void RunThroughput(Settings settings, Workload? w, int[] threads, Results results, Steps steps)
    {
        if (settings.Isolated)
        {
            MeasureIsolated(PThroughput, Mix.GetOnly, settings, threads, results, steps);
            MeasureIsolated(PEviction, Mix.GetSet90_10, settings, threads, results, steps);
            return;
        }
        ArgumentNullException.ThrowIfNull(w);   // the interleaved points share this process's workload
        MeasureInterleaved(PThroughput, Mix.GetOnly, GetOnlyCapacity(w.KeyCount), settings, w, threads, results, steps);
        MeasureInterleaved(PEviction, Mix.GetSet90_10, settings.EvictionCapacity, settings, w, threads, results, steps);
    }

    /// <summary>The get-only mix's capacity: every key, with room to spare (the caches that split capacity over shards must hold them all).</summary>
    public static int GetOnlyCapacity(int keys) => keys + (keys / 20);

    /// <summary>
    /// The points of one mix, one child process per cache (<see cref="PointsChild"/>): each child builds the workload,
    /// prepares its one cache as <see cref="MeasureInterleaved"/> does, then runs the rounds (every thread count per
    /// round) and reports every run; each point is the median of its rounds. No cache shares a heap, a GC or the pool
    /// with another, so a peer that allocates, or works on the pool, pays for its own garbage and threads only. The
    /// caches are measured one after another (not interleaved), so a ratio compares points taken up to ~20 s apart.
    /// </summary>
    private static void MeasureIsolated(string phase, Mix mix, Settings settings, int[] threads, Results results, Steps steps)
    {
        foreach (string name in settings.Caches)
        {
            steps.Begin(phase, $"{name}: in a child process");
            string[] args =
            [
                "points", "--cache", Caches.ShortName(name), "--mix", mix == Mix.GetOnly ? "get" : "90-10",
                "--threads", string.Join(',', threads), "--seconds", settings.Seconds.ToString(CultureInfo.InvariantCulture),
                "--repeats", settings.Repeats.ToString(CultureInfo.InvariantCulture),
                "--entries", settings.Entries.ToString(CultureInfo.InvariantCulture),
                "--bound", settings.EvictionCapacity.ToString(CultureInfo.InvariantCulture), "--values", ValuesOption(settings.Values),
            ];
            string result = Memory.RunChildProcess(args, TimeSpan.FromMinutes(10), out string? error);
            ThroughputPoint[]? points = error is null ? JsonSerializer.Deserialize<ThroughputPoint[]>(result) : null;
            if (points is null)
            {
                throw new InvalidOperationException($"the points child of {name} failed: {error ?? "unreadable result"}");
            }
            results.Points.AddRange(points);
            for (int k = 0; k < 1 + settings.Repeats; k++)
            {
                steps.Advance(phase);   // the phase counts a preparation and the rounds per cache
            }
        }
        steps.End(phase);
    }

    private static string ValuesOption(ValueMix values) => values switch
    {
        ValueMix.Bytes100 => "100",
        ValueMix.Bytes1K => "1k",
        _ => "twitter",
    };

    /// <summary>
    /// A cache's state before its points: get-only, filled with every key; 90/10, run until it holds its bound's worth of
    /// entries (unbounded ConcurrentDictionary likewise), then 1M more operations, so that its sets insert and evict.
    /// </summary>
    private static void Prepare(CacheAdapter cache, Workload w, Mix mix, int capacity)
    {
        if (mix == Mix.GetOnly)
        {
            Throughput.Fill(cache, w);
        }
        else
        {
            Throughput.Warm(cache, w, mix, 1_000_000, untilCount: capacity);
        }
    }

    /// <summary>
    /// A <see cref="MeasureIsolated"/> child: one cache, one mix; prints <c>RESULT [points]</c> (each the median of the
    /// rounds, with every run).
    /// </summary>
    public static int PointsChild(string cacheShortName, Mix mix, int[] threads, double seconds, int repeats, int entries, int bound, ValueMix values)
    {
        var w = Workload.Create(entries, values);
        string name = Caches.FromShortName(cacheShortName);
        int capacity = mix == Mix.GetOnly ? GetOnlyCapacity(w.KeyCount) : bound;
        using CacheAdapter cache = Caches.Create(name, w, capacity);
        Prepare(cache, w, mix, capacity);
        Throughput.Run(cache, w, mix, 1, Math.Min(0.3, seconds));   // warm-up (tiered JIT), not kept
        GC.Collect();   // the preparation's garbage, before any point
        var runs = threads.ToDictionary(t => t, _ => new List<ThroughputPoint>());
        for (int round = 0; round < repeats; round++)
        {
            foreach (int t in threads)
            {
                runs[t].Add(Throughput.Run(cache, w, mix, t, seconds));
            }
        }
        ThroughputPoint[] points = [.. threads.Select(t => Median([.. runs[t]]))];
        Console.WriteLine("RESULT " + JsonSerializer.Serialize(points));
        return 0;
    }

    /// <summary>
    /// The points of one mix, interleaved: every cache is prepared first (get-only: filled with every key; 90/10: warmed
    /// until it holds its bound, then 1M more operations), then each round measures every cache (at each thread count,
    /// one after the other), the caches' order rotating from round to round, and each point is the median of its
    /// rounds. Measured one cache after another, a ratio compared points taken up to a minute apart on a shared host
    /// whose speed moves in that time: the get-hit ratio to ConcurrentDictionary ranged 0.83-2.7x between runs of the
    /// same code (interleaved, in three runs at 17:45 UTC: 1.54, 2.13, 1.69x; with the rounds' ranges shown, at 18:08
    /// and 18:11: 2.23 and 2.45x), and the 90/10 ratio to ConcurrentLfu 0.82-1.91x. After a cache whose points
    /// allocated (the peers' 90/10 sets, the typed facade's gets, which return a new array), a blocking collection
    /// (full when a full one started in its turn, else ephemeral) ends whatever its garbage started, and the pool's
    /// queued work is waited for, so neither runs into the next cache's point (a collection a point started is
    /// finished outside it: conservative for the allocating caches). All caches of a mix are alive at once
    /// (~2.2 GB for the get-only mix at the default 1M keys of 100 B; more with --entries or --values 1k).
    /// </summary>
    private static void MeasureInterleaved(string phase, Mix mix, int capacity, Settings settings, Workload w, int[] threads, Results results, Steps steps)
    {
        var caches = new List<CacheAdapter>();
        try
        {
            foreach (string name in settings.Caches)
            {
                CacheAdapter cache = Caches.Create(name, w, capacity);
                caches.Add(cache);
                steps.Begin(phase, mix == Mix.GetOnly ? $"{name}: fill {w.KeyCount:N0}" : $"{name}: warm (bound {capacity:N0})");
                Prepare(cache, w, mix, capacity);
                using (steps.Quiet())
                {
                    Throughput.Run(cache, w, mix, 1, Math.Min(0.3, settings.Seconds));   // warm-up (tiered JIT), not kept
                }
                steps.Advance(phase);
            }
            GC.Collect();   // the preparations' garbage, before any point (a background collection would share the second core)
            var runs = new Dictionary<(string Cache, int Threads), List<ThroughputPoint>>();
            for (int round = 0; round < settings.Repeats; round++)
            {
                for (int k = 0; k < caches.Count; k++)
                {
                    // Rotated each round, and with three caches or more reversed every other round, so that a cache changes
                    // both its place and the cache before it (with two, reversing a rotation by one gives the first order back).
                    int at = (k + round) % caches.Count;
                    CacheAdapter cache = caches[round % 2 == 0 || caches.Count < 3 ? at : caches.Count - 1 - at];
                    steps.Begin(phase, $"round {round + 1} of {settings.Repeats}: {cache.Name}");
                    int gen0 = GC.CollectionCount(0), gen2 = GC.CollectionCount(2);
                    bool allocated = false;
                    using (steps.Quiet())   // the points count the process's allocations: no redraws meanwhile
                    {
                        foreach (int t in threads)
                        {
                            ThroughputPoint p = Throughput.Run(cache, w, mix, t, settings.Seconds);
                            (runs.TryGetValue((cache.Name, t), out List<ThroughputPoint>? list) ? list : runs[(cache.Name, t)] = []).Add(p);
                            allocated |= p.AllocatedBytesPerOp > 0.05;
                        }
                    }
                    if (GC.CollectionCount(2) != gen2)
                    {
                        GC.Collect();   // a full collection started in its turn (maybe a background one): blocking, it ends here
                    }
                    else if (allocated || GC.CollectionCount(0) != gen0)
                    {
                        // Its leftover garbage is collected here, not by the next cache's allocations. Ephemeral only: a full
                        // blocking collection of the get-only mix's ~2 GB of live caches took seconds per turn.
                        GC.Collect(1, GCCollectionMode.Forced, blocking: true);
                    }
                    WaitForPoolWork();   // the cache's own pool work (ConcurrentLfu's maintenance, MemoryCache's compaction) too
                    steps.Advance(phase);
                }
            }
            foreach (CacheAdapter cache in caches)
            {
                foreach (int t in threads)
                {
                    results.Points.Add(Median([.. runs[(cache.Name, t)]]));
                }
            }
        }
        finally
        {
            foreach (CacheAdapter cache in caches)
            {
                cache.Dispose();
            }
        }
        GC.Collect();
        steps.End(phase);
    }

    private static void Measure(CacheAdapter cache, Workload w, Mix mix, int[] threads, Settings settings, Results results, Steps steps)
    {
        using Steps.QuietScope quiet = steps.Quiet();   // the points count the process's allocations: no redraws meanwhile
        Throughput.Run(cache, w, mix, 1, Math.Min(0.3, settings.Seconds));   // warm-up (tiered JIT), not kept
        foreach (int t in threads)
        {
            results.Points.Add(Median([.. Enumerable.Range(0, settings.Repeats).Select(_ => Throughput.Run(cache, w, mix, t, settings.Seconds))]));
        }
    }

    /// <summary>
    /// Waits (up to 1 s) until the thread pool has no queued work item, then 20 ms for the ones running: a cache's pool
    /// work that its points started (ConcurrentLfu drains its buffers and MemoryCache compacts on the pool) ends in its
    /// turn, not in the next cache's point.
    /// </summary>
    private static void WaitForPoolWork()
    {
        var waited = Stopwatch.StartNew();
        while (ThreadPool.PendingWorkItemCount > 0 && waited.ElapsedMilliseconds < 1000)
        {
            Thread.Sleep(1);
        }
        Thread.Sleep(20);
    }

    /// <summary>The run with the median throughput (the slower middle one for an even count), carrying every run's throughput (the report shows their range).</summary>
    private static ThroughputPoint Median(ThroughputPoint[] runs)
    {
        ThroughputPoint[] sorted = [.. runs.OrderBy(p => p.OpsPerSecond)];
        return sorted[(sorted.Length - 1) / 2] with { Runs = [.. sorted.Select(p => p.OpsPerSecond)] };
    }

    /// <summary>Bytes allocated per operation by the typed facade with unmanaged key and value types (expected 0).</summary>
    public static double TypedUnmanagedAllocation()
    {
        using var typed = new OffHeapCache<long, Guid>(new OffHeapCacheOptions { CapacityBytes = 64L << 20, MaxEntries = 10_000 });
        var value = Guid.NewGuid();
        for (long i = 0; i < 20_000; i++)
        {
            typed.Set(i, value);
            typed.TryGetValue(i / 2, out _);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        const int ops = 200_000;
        for (long i = 0; i < ops / 2; i++)
        {
            typed.Set(i % 30_000, value);          // sets that update, insert and evict
            typed.TryGetValue(i % 20_000, out _);  // hits and misses
        }
        return (double)(GC.GetAllocatedBytesForCurrentThread() - before) / ops;
    }

    private static void RunRedis(Settings settings, Workload w, int[] threads, Results results, Steps steps)
    {
        steps.Begin(PRedis, "starting redis-server");
        if (RedisServer.Find() is null && settings.InstallRedis)
        {
            steps.Note(RedisServer.TryInstall());
        }
        using RedisServer? server = RedisServer.TryStart(out string message);
        results.RedisMessage = message;
        steps.Note("Redis: " + message);
        if (server is null)
        {
            steps.End(PRedis);
            return;
        }
        steps.Advance(PRedis);
        using var redis = new RedisAdapter(w, server);
        server.Reset(0);
        // Both figures are growth over the empty server, as our process B/entry is RSS growth over the empty
        // process (RSS used to be the whole server's, its empty footprint included, divided by the keys).
        (long used0, long rss0) = server.MemoryInfo();
        steps.Begin(PRedis, $"MSET {w.KeyCount:N0} keys");
        redis.FillBatched();
        (long used, long rss) = server.MemoryInfo();
        results.RedisBytesPerEntry = ((double)(used - used0) / w.KeyCount, (double)(rss - rss0) / w.KeyCount);
        steps.Advance(PRedis);
        steps.Begin(PRedis, "gets, 1..N threads");
        Measure(redis, w, Mix.GetOnly, threads, new Settings { Seconds = settings.Seconds, Repeats = 1 }, results, steps);
        int[] stream = w.Stream;
        var scratch = new byte[w.MaxValueLength];
        results.RedisLatency = Memory.MeasureLatency(k => redis.Get(stream[k], scratch), settings.LatencySeconds);
        steps.Advance(PRedis);
        steps.Begin(PRedis, $"90/10 with eviction (maxmemory for ~{settings.EvictionCapacity:N0} entries, allkeys-lru)");
        double perEntry = (double)(used - used0) / w.KeyCount;
        server.Reset(used0 + (long)(perEntry * settings.EvictionCapacity));
        // Full and evicting before the measurement, as the in-process caches are (their warm-up runs until they hold
        // the bound): 20,000 warm-up operations alone left Redis with ~3K keys under a 100K-entry maxmemory.
        // Over draws of the same Zipf(0.99) distribution with a seed of their own (hot keys often, as the mix's sets).
        bool evicting = redis.FillUntilEvicting(Workload.ZipfStream(w.KeyCount, w.Stream.Length, 0.99, seed: 0x7ED15));
        string fill = evicting
            ? $"90/10: filled to maxmemory ({redis.Count:N0} keys, evicting) before the warm-up"
            : $"90/10: maxmemory not reached after one pass over the stream ({redis.Count:N0} keys), so that row does not evict";
        results.RedisMessage += "; " + fill;
        steps.Note("Redis: " + fill);
        Throughput.Warm(redis, w, Mix.GetSet90_10, 20_000);   // ~7k round trips a second: keep it short
        Measure(redis, w, Mix.GetSet90_10, threads, new Settings { Seconds = settings.Seconds, Repeats = 1 }, results, steps);
        steps.Advance(PRedis);
        steps.End(PRedis);
    }

    /// <summary>The memory children to run: every cache (but <see cref="Settings.NoMemoryChild"/>) at each memory size, the big caches at the big sizes.</summary>
    private static List<(string Cache, long Entries)> MemoryJobs(Settings settings)
    {
        var jobs = new List<(string Cache, long Entries)>();
        foreach (long n in settings.MemoryEntries)
        {
            jobs.AddRange(settings.Caches.Except(settings.NoMemoryChild).Select(c => (c, n)));
        }
        foreach (long n in settings.BigEntries)
        {
            jobs.AddRange(settings.BigCaches.Where(settings.Caches.Contains).Select(c => (c, n)));
        }
        return jobs;
    }

    /// <summary>The value size the memory children store: the mix's size, or 100 B for a mix of sizes (Twitter).</summary>
    public static int MemoryValueBytes(ValueMix values) => values == ValueMix.Bytes1K ? 1024 : 100;

    private static void RunMemory(Settings settings, Results results, Steps steps)
    {
        int valueBytes = MemoryValueBytes(settings.Values);
        if (settings.Values == ValueMix.Twitter)
        {
            steps.Note($"memory children: every value {valueBytes} B (the children store one value size; the Twitter mix is for the throughput parts)");
        }
        foreach ((string cache, long n) in MemoryJobs(settings))
        {
            steps.Begin(PMemory, $"{cache} × {n:N0}");
            MemoryResult r = Memory.RunInChild(cache, n, valueBytes, settings.LatencySeconds, TimeSpan.FromMinutes(10));
            if (r.Error is not null)
            {
                steps.Note($"{cache} × {n:N0}: {r.Error}");
            }
            results.Memory.Add(r);
            steps.Advance(PMemory);
        }
        steps.End(PMemory);
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using BitFaster.Caching.Lfu;
using BitFaster.Caching.Lru;
using CacheKit.OffHeap;
using CacheKit.Perf;
using HdrHistogram;
using Microsoft.Extensions.Caching.Memory;

namespace CacheKit.Headline;

/// <summary>What one child process measured for one cache and size.</summary>
public sealed record MemoryResult(
    string Cache, long Entries, int ValueBytes, double FillSeconds,
    double ManagedBytesPerEntry, double NativeBytesPerEntry, double ProcessBytesPerEntry,
    double GcMedianMs, double[] GcMs,
    double P50Us, double P99Us, double P999Us, double MaxUs, long Gets, double LatencySeconds,
    int Gen0, int Gen1, int Gen2, double PauseMsDuringLatency, string? Error = null, double P999CorrectedUs = double.NaN,
    double RssGrowthBytesPerEntry = double.NaN, int StallsInGet = -1, int StallsBetweenGets = -1);

/// <summary>Get latency percentiles (microseconds) and the collections that happened meanwhile.</summary>
/// <remarks>
/// <see cref="P999CorrectedUs"/> corrects for coordinated omission: the reader is closed-loop, so a pause
/// delays only the one get that straddles it; the corrected histogram back-fills the gets a steady
/// client issuing one every 2 µs would have seen delayed (HdrHistogram's RecordValueWithExpectedInterval).
/// Its samples run from the end of the previous get to the end of this one, so that a stall counts
/// wherever the runtime stopped the reader's thread for a collection: inside the timed get or between two
/// gets (where it stops a thread depends on the code's shape: in a 10 s diagnostic run 9 of
/// ConcurrentDictionary's 12 stalls over 1 ms fell between its gets, none of ours; timed from the get's start
/// the corrected figure was a lottery over where they fell). <see cref="StallsInGet"/> and
/// <see cref="StallsBetweenGets"/> count the stalls over <see cref="Memory.StallMicroseconds"/> µs of each kind.
/// </remarks>
public sealed record LatencyResult(double P50Us, double P99Us, double P999Us, double MaxUs, long Gets, int Gen0, int Gen1, int Gen2, double PauseMs, double P999CorrectedUs,
    int StallsInGet, int StallsBetweenGets);

/// <summary>
/// Memory, full-GC time and get latency under an allocating thread, for one cache and one size, in a
/// process of its own (so nothing one cache leaves behind changes another's numbers).
/// </summary>
public static class Memory
{
    /// <summary>Length of the latency key stream (a power of two).</summary>
    public const int LatencyStream = 1 << 16;

    /// <summary>Runs in the parent: starts a child of this program and parses its result line.</summary>
    public static MemoryResult RunInChild(string cache, long entries, int valueBytes, double latencySeconds, TimeSpan timeout)
    {
        string[] args = ["child", "--cache", Caches.ShortName(cache), "--entries", entries.ToString(CultureInfo.InvariantCulture),
            "--value", valueBytes.ToString(CultureInfo.InvariantCulture), "--latency-seconds", latencySeconds.ToString(CultureInfo.InvariantCulture)];
        string result = RunChildProcess(args, timeout, out string? error);
        if (error is not null)
        {
            return Failed(cache, entries, valueBytes, error);
        }
        return JsonSerializer.Deserialize<MemoryResult>(result) ?? Failed(cache, entries, valueBytes, "unreadable result");
    }

    /// <summary>
    /// Runs this program again with <paramref name="args"/> (a harness verb) and returns what follows <c>RESULT </c> on the
    /// last such line of its output; null and an <paramref name="error"/> when it timed out, failed or printed none.
    /// </summary>
    public static string RunChildProcess(IEnumerable<string> args, TimeSpan timeout, out string? error)
    {
        string? exe = Environment.ProcessPath;
        var psi = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (exe is null || Path.GetFileNameWithoutExtension(exe).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
        {
            psi.FileName = exe ?? "dotnet";
            psi.ArgumentList.Add(typeof(Memory).Assembly.Location);
        }
        else
        {
            psi.FileName = exe;
        }
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using Process p = Process.Start(psi) ?? throw new InvalidOperationException("could not start the child process");
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            error = $"timed out after {timeout.TotalSeconds:F0} s";
            return "";
        }
        string line = stdout.Result.Split('\n').LastOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal)) ?? "";
        if (p.ExitCode != 0 || line.Length == 0)
        {
            string err = stderr.Result.Trim();
            error = $"exit {p.ExitCode}: {(err.Length > 300 ? err[..300] : err)}";
            return "";
        }
        error = null;
        return line["RESULT ".Length..];
    }

    private static MemoryResult Failed(string cache, long entries, int valueBytes, string error)
        => new(cache, entries, valueBytes, 0, double.NaN, double.NaN, double.NaN, double.NaN, [], double.NaN, double.NaN, double.NaN, double.NaN, 0, 0, 0, 0, 0, 0, error);

    /// <summary>The child's work: prints one <c>RESULT {json}</c> line.</summary>
    public static int ChildMain(string cacheShortName, long entries, int valueBytes, double latencySeconds)
    {
        string cache = Caches.FromShortName(cacheShortName);
        // The latency stream (keys built before the baseline, so they are not counted per entry).
        int[] ids = Workload.ZipfStream((int)entries, LatencyStream, 0.99, 7);
        var keyStrings = new string[LatencyStream];
        var keyBytes = new byte[LatencyStream * Workload.KeyLength];
        for (int i = 0; i < LatencyStream; i++)
        {
            keyStrings[i] = Workload.KeyString(ids[i]);
            Workload.FormatKey(ids[i], keyBytes.AsSpan(i * Workload.KeyLength, Workload.KeyLength));
        }
        ids = [];
        var value = new byte[valueBytes];
        new Random(1).NextBytes(value);
        var scratch = new byte[64 * 1024];
        // The settle below runs on every core: this thread and one dedicated thread per other core, started now so that
        // their stacks are in the baseline. Not pool threads: with the pool's workers busy for seconds, the pool added
        // threads after the baseline for ConcurrentLfu's maintenance work items (16 threads at the reading against 14).
        // The threads a cache starts itself are counted per entry, as they were with a one-thread settle: ConcurrentLfu's
        // pool grows to 14-18 threads during its fill and settle (every other cache: 8-9 at the baseline, 10 at the reading).
        int settleThreads = Environment.ProcessorCount;
        IMemoryTarget? settleTarget = null;
        long settleGets = 0;
        using var settleStart = new ManualResetEventSlim(false);
        using var settleRelease = new ManualResetEventSlim(false);   // the helpers live until after the reading, as at the baseline
        using var settleDone = new CountdownEvent(settleThreads - 1);
        var settleHelpers = new Thread[settleThreads - 1];
        for (int i = 0; i < settleHelpers.Length; i++)
        {
            int part = i + 1;
            settleHelpers[i] = new Thread(() =>
            {
                settleStart.Wait();
                Settle(Volatile.Read(ref settleTarget)!, part, settleThreads, Volatile.Read(ref settleGets), keyStrings, keyBytes, scratch.Length);
                settleDone.Signal();
                settleRelease.Wait();
            })
            { IsBackground = true, Name = $"settle-{part}" };
            settleHelpers[i].Start();
        }

        FullGc();
        long managed0 = GC.GetTotalMemory(forceFullCollection: false);
        long process0 = Rss();
        int threads0 = ThreadCount();

        var sw = Stopwatch.StartNew();
        using IMemoryTarget target = Create(cache, entries, valueBytes);
        Span<byte> key = stackalloc byte[Workload.KeyLength];
        for (long id = 0; id < entries; id++)
        {
            Workload.FormatKey(id, key);
            target.Insert(id, key, value);
        }
        double fillSeconds = sw.Elapsed.TotalSeconds;
        Console.Error.WriteLine($"fill {fillSeconds:F1} s");

        // Settle (every cache alike): memory is read in the steady state, not right after the fill. Only where the
        // settle ages the sketch once (up to 1.1M entries): at 10M it would take 100M gets, 11M wrote only part of it
        // and cost ~10 s per child, and the process figure takes managed + native bytes there anyway (below).
        // On every core (nothing is timed here; each cache's gets are thread-safe), each thread its own part of the
        // stream positions and its own buffer: the same gets as one thread made, in about half the time on 2 cores.
        Volatile.Write(ref settleGets, entries * SketchAccessesPerEntry <= SettleGets ? SettleGets : 0);
        Volatile.Write(ref settleTarget, target);
        settleStart.Set();
        Settle(target, 0, settleThreads, settleGets, keyStrings, keyBytes, scratch.Length);
        settleDone.Wait();
        Console.Error.WriteLine($"settled at {sw.Elapsed.TotalSeconds:F1} s");

        FullGc();
        long managed = GC.GetTotalMemory(forceFullCollection: false) - managed0;
        long rssGrowth = Rss() - process0;
        Console.Error.WriteLine($"threads at the baseline {threads0}, at the reading {ThreadCount()}");
        settleRelease.Set();
        foreach (Thread helper in settleHelpers)
        {
            helper.Join();
        }
        long native = target.NativeBytes;
        // Allocated but not yet written memory is not resident. At 10M entries the settle neither ages our sketch
        // nor writes all of it, so RSS left out ~12 B per entry of policy arrays that managed + native count (203
        // against 191): the process figure is the larger of the two, for every cache alike (RSS growth is kept too).
        long process = Math.Max(rssGrowth, managed + native);

        var gcMs = new double[5];
        for (int i = 0; i < gcMs.Length; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: false);
            gcMs[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        double[] sorted = [.. gcMs.Order()];
        Console.Error.WriteLine($"gc done at {sw.Elapsed.TotalSeconds:F1} s");

        LatencyResult l = MeasureLatency(k => target.Get(keyStrings[k], keyBytes.AsSpan(k * Workload.KeyLength, Workload.KeyLength), scratch), latencySeconds);
        var result = new MemoryResult(cache, entries, valueBytes, fillSeconds,
            (double)managed / entries, (double)native / entries, (double)process / entries,
            sorted[sorted.Length / 2], gcMs,
            l.P50Us, l.P99Us, l.P999Us, l.MaxUs, l.Gets, latencySeconds, l.Gen0, l.Gen1, l.Gen2, l.PauseMs, null, l.P999CorrectedUs,
            (double)rssGrowth / entries, l.StallsInGet, l.StallsBetweenGets);
        GC.KeepAlive(keyStrings);
        Console.WriteLine("RESULT " + JsonSerializer.Serialize(result));
        return 0;
    }

    /// <summary>
    /// Seconds of gets (with the allocating thread running) before the measured window, for every cache alike.
    /// Right after a 1M-entry fill our first second had a p99.9 of 37 µs against 6 µs in the second that
    /// followed (ConcurrentDictionary 2.4 against 1.6-1.9 µs); it was not the JIT (the same with
    /// DOTNET_TieredCompilation=0). A server lives in the steady state, so that is what the window measures.
    /// </summary>
    public const double WarmupSeconds = 1;

    /// <summary>
    /// Gets (from the latency stream, so nothing is allocated, except the arrays the typed facade's get returns) between the fill and the memory reading, for
    /// every cache alike. Some structures become resident only when the cache is used: a frequency sketch's
    /// counters are first written on a key's second access (ours and ConcurrentLfu's), and until 2026-11-29 our
    /// doorkeeper's second generation at the sketch's first aging (10 accesses per entry; since then both generations
    /// share each 64-byte line, so a key's first write makes its line of both resident). Read right after the fill, our
    /// 1M-entry cache showed 188 B per entry of process memory against 211 B once it had aged (the managed
    /// caches did not move). 11M gets age it once at 1M entries; at 10M they do not (an aging needs 100M),
    /// and the stream's ~34K distinct keys write only part of a 10M cache's sketch, so the settle is skipped
    /// there (it took ~10 s per 10M child) and the process figure takes managed + native bytes, which count
    /// the whole doorkeeper (13.4 B per entry) and sketch, written or not (see <see cref="ChildMain"/>).
    /// </summary>
    public const long SettleGets = 11_000_000;

    /// <summary>Accesses per entry in our sketch's sample period: the settle ages it once when entries times this fits in <see cref="SettleGets"/>.</summary>
    private const long SketchAccessesPerEntry = 10;

    /// <summary>
    /// The allocating thread's rate, for every child alike: a busy server's (10,000 requests per second at 10 KB of
    /// garbage each). Steady, not flat out: the target compares the caches' tails under the same GC pressure.
    /// </summary>
    public const long GarbageBytesPerSecond = 100L << 20;

    /// <summary>A gap in the reader's loop longer than this (µs) counts as a stall (a get takes well under 100 µs).</summary>
    public const int StallMicroseconds = 1000;

    private const int ArrayHeaderBytes = 24;   // a byte[]'s object header, method table and length on 64-bit

    /// <summary>
    /// Times each call of <paramref name="get"/> (given a stream index) on one thread for
    /// <paramref name="seconds"/> while another thread allocates garbage steadily (<see cref="GarbageBytesPerSecond"/>), after
    /// <paramref name="warmupSeconds"/> of the same untimed.
    /// </summary>
    public static LatencyResult MeasureLatency(Func<int, bool> get, double seconds, double warmupSeconds = WarmupSeconds)
    {
        long highest = TimeSpan.FromSeconds(10).Ticks * Stopwatch.Frequency / TimeSpan.TicksPerSecond;
        var histogram = new LongHistogram(highest, 3);
        var corrected = new LongHistogram(highest, 3);
        long expectedInterval = Math.Max(1, Stopwatch.Frequency / 500_000);   // one get every 2 µs
        long stallTicks = Stopwatch.Frequency * StallMicroseconds / 1_000_000;
        bool stop = false;
        bool measuring = false;
        long gets = 0;
        int stallsInGet = 0, stallsBetweenGets = 0;
        // The garbage maker: steady allocation of short- and mid-lived arrays (a ring of 100 000
        // keeps ~30 MB alive, so some survive into gen1 and gen2, as in a real server), paced at
        // GarbageBytesPerSecond: every child allocates the same volume whatever its speed (unpaced, the thread took
        // a whole core of the two and its volume varied per child: 1,655 to 2,367 gen0 collections in 30 s).
        var garbage = new Thread(() =>
        {
            var ring = new byte[100_000][];
            long i = 0;
            long allocated = 0;
            var clock = Stopwatch.StartNew();
            while (!Volatile.Read(ref stop))
            {
                long due = (long)(clock.Elapsed.TotalSeconds * GarbageBytesPerSecond);
                while (allocated < due)
                {
                    int length = 64 + (int)(i & 511);
                    ring[i % ring.Length] = new byte[length];
                    allocated += length + ArrayHeaderBytes;
                    i++;
                }
                Thread.Sleep(1);
            }
        })
        { IsBackground = true, Name = "garbage" };
        var reader = new Thread(() =>
        {
            int i = 0;
            long n = 0;
            int inGet = 0, betweenGets = 0;
            long previousEnd = Stopwatch.GetTimestamp();
            while (!Volatile.Read(ref stop))
            {
                int k = i++ & (LatencyStream - 1);
                long t0 = Stopwatch.GetTimestamp();
                get(k);
                long t1 = Stopwatch.GetTimestamp();
                long sincePreviousEnd = t1 - previousEnd;
                previousEnd = t1;
                if (!Volatile.Read(ref measuring))
                {
                    continue;   // warm-up: the same gets, untimed
                }
                long ticks = Math.Min(highest, Math.Max(1, t1 - t0));
                histogram.RecordValue(ticks);
                corrected.RecordValueWithExpectedInterval(Math.Min(highest, Math.Max(1, sincePreviousEnd)), expectedInterval);
                if (t1 - t0 > stallTicks)
                {
                    inGet++;
                }
                else if (sincePreviousEnd > stallTicks)
                {
                    betweenGets++;
                }
                n++;
            }
            gets = n;
            stallsInGet = inGet;
            stallsBetweenGets = betweenGets;
        })
        { IsBackground = true, Name = "reader" };
        garbage.Start();
        reader.Start();
        Thread.Sleep(TimeSpan.FromSeconds(warmupSeconds));
        int g0 = GC.CollectionCount(0), g1 = GC.CollectionCount(1), g2 = GC.CollectionCount(2);
        TimeSpan pause0 = GC.GetTotalPauseDuration();
        Volatile.Write(ref measuring, true);
        Thread.Sleep(TimeSpan.FromSeconds(seconds));
        Volatile.Write(ref stop, true);
        reader.Join();
        garbage.Join();
        double Us(long ticks) => ticks * 1e6 / Stopwatch.Frequency;
        return new LatencyResult(Us(histogram.GetValueAtPercentile(50)), Us(histogram.GetValueAtPercentile(99)), Us(histogram.GetValueAtPercentile(99.9)),
            Us(histogram.GetMaxValue()), gets, GC.CollectionCount(0) - g0, GC.CollectionCount(1) - g1, GC.CollectionCount(2) - g2,
            (GC.GetTotalPauseDuration() - pause0).TotalMilliseconds, Us(corrected.GetValueAtPercentile(99.9)), stallsInGet, stallsBetweenGets);
    }

    /// <summary>Part <paramref name="part"/> of <paramref name="parts"/> of the settle gets: its own stretch of the stream positions, its own buffer.</summary>
    private static void Settle(IMemoryTarget target, int part, int parts, long gets, string[] keyStrings, byte[] keyBytes, int bufferLength)
    {
        var buffer = new byte[bufferLength];
        for (long n = gets * part / parts; n < gets * (part + 1) / parts; n++)
        {
            int k = (int)(n & (LatencyStream - 1));
            target.Get(keyStrings[k], keyBytes.AsSpan(k * Workload.KeyLength, Workload.KeyLength), buffer);
        }
    }

    /// <summary>Threads of this process (the settle's and the caches' own; printed at both memory readings).</summary>
    private static int ThreadCount()
    {
        using Process self = Process.GetCurrentProcess();
        return self.Threads.Count;
    }

    private static void FullGc()
    {
        // One full blocking collection (with 10M entries each one costs seconds for the managed caches), compacting,
        // for every cache alike: the memory is read without the holes that the fill's garbage (the harness's or the
        // cache's own) left in the small-object heap. Not the large-object heap: compacting it
        // copies our policy arrays, and the space they leave stays committed for a while, so RSS counted both
        // copies (ours at 1M: process 229 B per entry against managed + native 216). The five timed collections
        // stay non-compacting.
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
    }

    /// <summary>Resident set size of this process (Linux: VmRSS; elsewhere the working set).</summary>
    public static long Rss()
    {
        if (OperatingSystem.IsLinux())
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        using var p = Process.GetCurrentProcess();
        return p.WorkingSet64;
    }

    private static IMemoryTarget Create(string cache, long entries, int valueBytes)
    {
        int capacity = (int)Math.Min(int.MaxValue, entries + entries / 20 + 16);
        return cache switch
        {
            Caches.ConcurrentDictionary => new CdTarget(capacity, valueBytes),
            Caches.MemoryCache => new McTarget(capacity, valueBytes),
            Caches.ConcurrentLru => new BitFasterTarget(new ConcurrentLru<string, byte[]>(capacity), valueBytes),
            Caches.FastConcurrentLru => new BitFasterTarget(new FastConcurrentLru<string, byte[]>(capacity), valueBytes),
            Caches.ConcurrentLfu => new BitFasterTarget(new ConcurrentLfu<string, byte[]>(capacity), valueBytes),
            Caches.ConcurrentLfuForeground => new BitFasterTarget(Caches.NewConcurrentLfuForeground(capacity), valueBytes),
            Caches.OffHeapSpan => new SpanTarget(Caches.OffHeapOptions(capacity, valueBytes)),
            Caches.OffHeapTyped => new TypedTarget(Caches.OffHeapOptions(capacity, valueBytes)),
            _ => throw new ArgumentException($"unknown cache {cache}", nameof(cache)),
        };
    }

    private interface IMemoryTarget : IDisposable
    {
        long NativeBytes { get; }

        void Insert(long id, ReadOnlySpan<byte> key, byte[] value);

        bool Get(string key, ReadOnlySpan<byte> keyBytes, byte[] scratch);
    }

    // Managed caches store their own copy of each key (a string) and value (a byte[]), as users' do.
    private sealed class CdTarget(int capacity, int valueBytes) : IMemoryTarget
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte[]> _map = new(Environment.ProcessorCount, capacity);

        public long NativeBytes => 0;

        public void Insert(long id, ReadOnlySpan<byte> key, byte[] value) => _map[Workload.KeyString(id)] = Copy(value, valueBytes);

        public bool Get(string key, ReadOnlySpan<byte> keyBytes, byte[] scratch) => _map.TryGetValue(key, out _);

        public void Dispose()
        {
        }
    }

    private sealed class McTarget(int capacity, int valueBytes) : IMemoryTarget
    {
        private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = capacity });

        public long NativeBytes => 0;

        public void Insert(long id, ReadOnlySpan<byte> key, byte[] value)
        {
            using ICacheEntry entry = _cache.CreateEntry(Workload.KeyString(id));
            entry.Size = 1;
            entry.Value = Copy(value, valueBytes);
        }

        public bool Get(string key, ReadOnlySpan<byte> keyBytes, byte[] scratch) => _cache.TryGetValue(key, out _);

        public void Dispose() => _cache.Dispose();
    }

    private sealed class BitFasterTarget(BitFaster.Caching.ICache<string, byte[]> cache, int valueBytes) : IMemoryTarget
    {
        public long NativeBytes => 0;

        public void Insert(long id, ReadOnlySpan<byte> key, byte[] value) => cache.AddOrUpdate(Workload.KeyString(id), Copy(value, valueBytes));

        public bool Get(string key, ReadOnlySpan<byte> keyBytes, byte[] scratch) => cache.TryGet(key, out _);

        public void Dispose() => (cache as IDisposable)?.Dispose();
    }

    private sealed class SpanTarget(OffHeapCacheOptions options) : IMemoryTarget
    {
        private readonly OffHeapCache _cache = new(options);

        public long NativeBytes => _cache.GetStatistics().NativeBytes;

        public void Insert(long id, ReadOnlySpan<byte> key, byte[] value) => _cache.Set(key, value);

        public bool Get(string key, ReadOnlySpan<byte> keyBytes, byte[] scratch) => _cache.TryGet(keyBytes, scratch, out _);

        public void Dispose() => _cache.Dispose();
    }

    private sealed class TypedTarget(OffHeapCacheOptions options) : IMemoryTarget
    {
        private readonly OffHeapCache<string, byte[]> _cache = new(options);

        public long NativeBytes => _cache.GetStatistics().NativeBytes;

        public void Insert(long id, ReadOnlySpan<byte> key, byte[] value) => _cache.Set(Workload.KeyString(id), value);

        public bool Get(string key, ReadOnlySpan<byte> keyBytes, byte[] scratch) => _cache.TryGetValue(key, out _);

        public void Dispose() => _cache.Dispose();
    }

    private static byte[] Copy(byte[] value, int length)
    {
        var copy = new byte[length];
        value.AsSpan(0, length).CopyTo(copy);
        return copy;
    }
}

using System.Diagnostics;
using System.Runtime.CompilerServices;
using CacheKit.Perf;

namespace CacheKit.Headline;

/// <summary>Get-only, or 90 % gets and 10 % sets of the same Zipf stream.</summary>
public enum Mix
{
    /// <summary>Only gets (on a cache holding every key).</summary>
    GetOnly,

    /// <summary>9 gets then 1 set, repeating (on a bounded cache smaller than the key space: sets evict).</summary>
    GetSet90_10,
}

/// <summary>One measured point.</summary>
/// <remarks><see cref="Runs"/>: the operations per second of every run this point is the median of (null: one run).</remarks>
public sealed record ThroughputPoint(string Cache, Mix Mix, int Threads, double OpsPerSecond, double AllocatedBytesPerOp, double HitRatio, double[]? Runs = null);

/// <summary>Runs a cache from 1..N threads over the workload's Zipf stream for a fixed time.</summary>
public static class Throughput
{
    private const int Batch = 1024;

    // The measured loops (Warm, Step, Run's worker) are compiled with AggressiveOptimization: straight to
    // optimized code, never tiered or instrumented. With tiered PGO they were compiled once, from the class
    // profile of the first cache measured (ConcurrentDictionary, the baseline): Step's tier-1 code carried a
    // guarded devirtualization for ConcurrentDictionaryAdapter with its Get and Set inlined into the loop,
    // and every later cache took the failed type check plus the virtual call (seen with DOTNET_JitDisasm=Step).
    // Without a profile every cache pays the same virtual call; the caches' own code still tiers up with PGO.

    /// <summary>Stores every key of the workload (for the get-only runs).</summary>
    public static void Fill(CacheAdapter cache, Workload w, Action<int>? progress = null)
    {
        for (int id = 0; id < w.KeyCount; id++)
        {
            cache.Set(id);
            if ((id & 0xFFFF) == 0)
            {
                progress?.Invoke(id);
            }
        }
    }

    /// <summary>
    /// Stride of the 90/10 mix's set positions in the stream: odd, so over one cycle of the stream every position
    /// gives one set. The sets used to take every tenth position of each 1,024-operation batch, the same ~104K
    /// positions (~65K distinct keys) in every run: once those were cached every set was an update, so the
    /// "with eviction" runs neither inserted nor evicted after the warm-up.
    /// </summary>
    private const uint SetStride = 0x9E3779B1;

    private static int s_setSequences;

    /// <summary>Where a 90/10 thread's sets start: a different place in every run and thread, so no two runs replay one set sequence.</summary>
    private static uint NextSetStart() => (uint)Interlocked.Increment(ref s_setSequences) * 0x85EBCA6Bu;

    /// <summary>Runs the 90/10 mix for <paramref name="operations"/> operations on one thread (warms a bounded cache to its steady state).</summary>
    public static void Warm(CacheAdapter cache, Workload w, Mix mix, long operations) => Warm(cache, w, mix, operations, untilCount: 0);

    /// <summary>
    /// Runs the mix on one thread until the cache holds <paramref name="untilCount"/> entries (checked every 64K
    /// operations; at most 20M operations), then <paramref name="operations"/> more: a bounded cache starts
    /// its measurement full and evicting.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Warm(CacheAdapter cache, Workload w, Mix mix, long operations, long untilCount)
    {
        var scratch = new byte[w.MaxValueLength];
        int[] stream = w.Stream;
        int mask = stream.Length - 1;
        uint setPosition = NextSetStart();
        long filled = 0;
        while (untilCount > 0 && cache.Count < untilCount && filled < 20_000_000)
        {
            for (int i = 0; i < 65_536; i++, filled++)
            {
                Step(cache, stream, mask, mix, filled, ref setPosition, scratch);
            }
        }
        for (long i = 0; i < operations; i++)
        {
            Step(cache, stream, mask, mix, filled + i, ref setPosition, scratch);
        }
    }

    /// <summary>Operation <paramref name="n"/> of a thread: in the 90/10 mix every tenth is a set of the key at the
    /// next set position, the others gets of the key at position <paramref name="n"/>. Returns whether a get hit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool Step(CacheAdapter cache, int[] stream, int mask, Mix mix, long n, ref uint setPosition, byte[] scratch)
    {
        if (mix == Mix.GetSet90_10 && n % 10 == 9)
        {
            cache.Set(stream[(int)(setPosition & (uint)mask)]);
            setPosition += SetStride;
            return false;
        }
        return cache.GetAt((int)(n & mask), scratch);
    }

    /// <summary>
    /// Measures operations per second with <paramref name="threads"/> threads for <paramref name="seconds"/>
    /// (each thread starts at its own offset of the stream). Allocated bytes per operation come from the
    /// process-wide allocation counter, so they include anything the cache's own threads allocated; the caller
    /// keeps everything else from allocating meanwhile (the progress display: <see cref="Steps.Quiet"/>).
    /// </summary>
    public static ThroughputPoint Run(CacheAdapter cache, Workload w, Mix mix, int threads, double seconds)
    {
        var counts = new long[threads * 16];   // padded: one cache line per thread
        var hits = new long[threads * 16];
        using var start = new Barrier(threads + 1);
        bool stop = false;
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            int index = t;
            uint setPosition = NextSetStart();
            workers[t] = new Thread([MethodImpl(MethodImplOptions.AggressiveOptimization)] () =>
            {
                var scratch = new byte[w.MaxValueLength];
                int[] stream = w.Stream;
                int mask = stream.Length - 1;
                long position = (long)stream.Length * index / threads;   // gets: this thread's own stretch of the stream
                long ops = 0, hit = 0;
                start.SignalAndWait();
                while (!Volatile.Read(ref stop))
                {
                    for (int k = 0; k < Batch; k++)
                    {
                        if (Step(cache, stream, mask, mix, position++, ref setPosition, scratch))
                        {
                            hit++;
                        }
                    }
                    ops += Batch;
                }
                counts[index * 16] = ops;
                hits[index * 16] = hit;
            })
            { IsBackground = true, Name = $"bench-{index}" };
            workers[t].Start();
        }
        start.SignalAndWait();
        long allocated0 = GC.GetTotalAllocatedBytes(precise: true);
        var sw = Stopwatch.StartNew();
        Thread.Sleep(TimeSpan.FromSeconds(seconds));
        Volatile.Write(ref stop, true);
        foreach (Thread worker in workers)
        {
            worker.Join();
        }
        double elapsed = sw.Elapsed.TotalSeconds;
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - allocated0;
        long total = 0, totalHits = 0;
        for (int t = 0; t < threads; t++)
        {
            total += counts[t * 16];
            totalHits += hits[t * 16];
        }
        long gets = mix == Mix.GetOnly ? total : total - total / 10;
        return new ThroughputPoint(cache.Name, mix, threads, total / elapsed, total == 0 ? 0 : (double)allocated / total,
            gets == 0 ? 0 : (double)totalHits / gets);
    }

    /// <summary>Thread counts 1, 2, 4, … up to and including <paramref name="max"/>.</summary>
    public static int[] ThreadCounts(int max)
    {
        var list = new List<int>();
        for (int t = 1; t < max; t *= 2)
        {
            list.Add(t);
        }
        list.Add(max);
        return [.. list.Distinct()];
    }
}

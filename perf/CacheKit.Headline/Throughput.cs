using System.Diagnostics;
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
public sealed record ThroughputPoint(string Cache, Mix Mix, int Threads, double OpsPerSecond, double AllocatedBytesPerOp, double HitRatio);

/// <summary>Runs a cache from 1..N threads over the workload's Zipf stream for a fixed time.</summary>
public static class Throughput
{
    private const int Batch = 1024;

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

    /// <summary>Runs the 90/10 mix for <paramref name="operations"/> operations on one thread (warms a bounded cache to its steady state).</summary>
    public static void Warm(CacheAdapter cache, Workload w, Mix mix, long operations)
    {
        var scratch = new byte[w.MaxValueLength];
        int mask = w.Stream.Length - 1;
        for (long i = 0; i < operations; i++)
        {
            int id = w.Stream[(int)(i & mask)];
            if (mix == Mix.GetSet90_10 && i % 10 == 9)
            {
                cache.Set(id);
            }
            else
            {
                cache.Get(id, scratch);
            }
        }
    }

    /// <summary>
    /// Measures operations per second with <paramref name="threads"/> threads for <paramref name="seconds"/>
    /// (each thread starts at its own offset of the stream). Allocated bytes per operation come from the
    /// process-wide allocation counter, so they include anything the cache's own threads allocated.
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
            workers[t] = new Thread(() =>
            {
                var scratch = new byte[w.MaxValueLength];
                int[] stream = w.Stream;
                int mask = stream.Length - 1;
                int position = (int)((long)stream.Length * index / threads);
                long ops = 0, hit = 0;
                start.SignalAndWait();
                while (!Volatile.Read(ref stop))
                {
                    for (int k = 0; k < Batch; k++)
                    {
                        int id = stream[position++ & mask];
                        if (mix == Mix.GetSet90_10 && k % 10 == 9)
                        {
                            cache.Set(id);
                        }
                        else if (cache.Get(id, scratch))
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

using System.Buffers.Binary;
using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using CacheKit.OffHeap;

namespace CacheKit.Benchmarks.Adversarial;

/// <summary>
/// Keys crafted to collide under a known hash seed (the attacker's best case: the seed leaked, here fixed with
/// the internal HashSeed): all share home bucket 0 of the only shard. Lookups must stay flat as the number of
/// colliding keys inserted grows, because probing is bounded to 8 buckets and a full window evicts inside it.
/// Baseline: the same lookups with no colliding key inserted. <c>RandomSeed</c> = the same keys into a cache
/// with its own random seed (what a real attacker faces).
/// </summary>
[MemoryDiagnoser]
public class AdversarialKeyBenchmarks
{
    private const int Lookups = 256;
    private OffHeapCache _cache = null!;
    private byte[][] _probe = null!;
    private readonly byte[] _buffer = new byte[64];

    /// <summary>Colliding keys inserted before measuring.</summary>
    [Params(0, 56, 1_000, 20_000)]
    public int CollidingKeys { get; set; }

    /// <summary>Whether the cache uses the seed the keys were crafted for (false: its own random seed).</summary>
    [Params(true, false)]
    public bool KnownSeed { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        using var attackerView = new OffHeapCache(Options(42));
        byte[][] crafted = Craft(attackerView, Math.Max(CollidingKeys, Lookups));
        _cache = new OffHeapCache(Options(KnownSeed ? 42 : null));
        for (int i = 0; i < CollidingKeys; i++)
        {
            _cache.Set(crafted[i], BitConverter.GetBytes(i));
        }
        _probe = crafted[^Lookups..];   // the last ones inserted (hits while they survive) and beyond (misses)
    }

    internal OffHeapCache Cache => _cache;

    [GlobalCleanup]
    public void Cleanup() => _cache.Dispose();

    /// <summary>256 lookups of crafted keys.</summary>
    [Benchmark(OperationsPerInvoke = Lookups)]
    public int LookupCraftedKeys()
    {
        int hits = 0;
        foreach (byte[] key in _probe)
        {
            hits += _cache.TryGet(key, _buffer, out _) ? 1 : 0;
        }
        return hits;
    }

    internal static OffHeapCacheOptions Options(long? seed) => new()
    {
        // AverageEntrySizeHint 4096 keeps the index at 3 901 buckets, so crafting needs ~4 096 hashes per key.
        CapacityBytes = 64 << 20, PageSize = 1 << 20, ShardCount = 1, HashSeed = seed, AverageEntrySizeHint = 4096,
    };

    /// <summary>Keys whose hash under <paramref name="cache"/>'s seed has low 32 bits below 2^32 / 4096: home bucket 0 for any index up to 4 096 buckets.</summary>
    internal static byte[][] Craft(OffHeapCache cache, int count)
    {
        var keys = new byte[count][];
        var key = new byte[12];
        "adv:"u8.CopyTo(key);
        int found = 0;
        for (long i = 0; found < count; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(key.AsSpan(4), i);
            if ((uint)cache.Hash(key) < (1u << 20))
            {
                keys[found++] = (byte[])key.Clone();
            }
        }
        return keys;
    }
}

/// <summary>A quick Stopwatch version (no BenchmarkDotNet run): <c>dotnet run -c Release --project perf/CacheKit.Benchmarks -- adversarial</c>.</summary>
public static class AdversarialReport
{
    /// <summary>Prints ns per lookup of crafted keys against the number inserted, known and random seed, and the counters.</summary>
    public static int Run(string[] args)
    {
        int rounds = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 2000;
        Console.WriteLine("| colliding keys inserted | seed | ns / lookup | entries kept | longest probe | full-window evictions |");
        Console.WriteLine("| ---: | --- | ---: | ---: | ---: | ---: |");
        foreach (int n in new[] { 0, 56, 1_000, 20_000 })
        {
            foreach (bool known in new[] { true, false })
            {
                var bench = new AdversarialKeyBenchmarks { CollidingKeys = n, KnownSeed = known };
                bench.Setup();
                bench.LookupCraftedKeys();
                var clock = Stopwatch.StartNew();
                for (int r = 0; r < rounds; r++)
                {
                    bench.LookupCraftedKeys();
                }
                double ns = clock.Elapsed.TotalNanoseconds / rounds / 256;
                OffHeapCache cache = bench.Cache;
                Console.WriteLine($"| {n:N0} | {(known ? "known (42)" : "random")} | {ns:F1} | {cache.Count:N0} | {cache.LongestProbe} | {cache.FullWindowEvictions:N0} |");
                bench.Cleanup();
            }
        }
        return 0;
    }
}

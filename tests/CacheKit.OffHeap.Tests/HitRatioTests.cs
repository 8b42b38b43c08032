using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using CacheKit.Policies;

namespace CacheKit.OffHeap.Tests;

/// <summary>
/// The engine (index, shards, slab, read buffer) must not cost hit ratio: at a given MaxEntries its
/// hit ratio on the shared traces stays within 1 percentage point of its policy driven directly.
/// Traces are read from ../shared/traces (the test is skipped when the folder is absent).
/// </summary>
public class HitRatioTests
{
    private const long Seed = 0x0C0FFEE;

    private static string? TraceFolder()
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "..", "shared", "traces");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
            candidate = Path.Combine(dir.FullName, "shared", "traces");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    private static long[] ReadTrace(string folder, string name)
    {
        string path = Path.Combine(folder, name);
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        var keys = new List<long>();
        if (name.StartsWith("web07", StringComparison.Ordinal))
        {
            Span<byte> four = stackalloc byte[4];
            while (gz.ReadAtLeast(four, 4, throwOnEndOfStream: false) == 4)
            {
                keys.Add(BinaryPrimitives.ReadInt32BigEndian(four));
            }
            return [.. keys];
        }
        using var reader = new StreamReader(gz);
        while (reader.ReadLine() is { } line)
        {
            line = line.Trim();
            if (line.Length == 0 || line == "*")
            {
                continue;
            }
            keys.Add(long.Parse(line, System.Globalization.CultureInfo.InvariantCulture));
        }
        return [.. keys];
    }

    /// <summary>The policy alone, driven with the simulator's protocol (direct hits).</summary>
    private static double PolicyHitRatio(CachePolicy kind, long[] trace, int capacity)
    {
        IEvictionPolicy policy = PolicyFactory.Create(kind.ToPolicyKind(), new PolicyOptions { MaxHandles = capacity + 1, Capacity = capacity });
        var handleOf = new Dictionary<long, int>();
        var keyOf = new long[capacity + 1];
        var free = new Stack<int>(Enumerable.Range(0, capacity + 1).Reverse());
        long hits = 0;
        Span<byte> keyBytes = stackalloc byte[8];
        foreach (long key in trace)
        {
            // The same hash the engine computes (same seed), so the policies see the same inputs and
            // the comparison measures the engine, not hash noise in the sketch.
            BinaryPrimitives.WriteInt64LittleEndian(keyBytes, key);
            ulong hash = XxHash3.HashToUInt64(keyBytes, Seed);
            if (handleOf.TryGetValue(key, out int h))
            {
                policy.OnHit(h, hash);
                hits++;
                continue;
            }
            policy.OnMiss(hash);
            if (policy.Weight + 1 > capacity && !policy.ShouldAdmit(hash, 1))
            {
                continue;
            }
            h = free.Pop();
            handleOf[key] = h;
            keyOf[h] = key;
            policy.OnAdd(h, hash, 1);
            while (policy.Weight > capacity)
            {
                int victim = policy.SelectVictim();
                policy.OnRemove(victim);
                handleOf.Remove(keyOf[victim]);
                free.Push(victim);
            }
        }
        return (double)hits / trace.Length;
    }

    private static double EngineHitRatio(CachePolicy kind, long[] trace, int capacity, int shards = 0)
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 32 << 20,
            MaxEntries = capacity,
            Policy = kind,
            ShardCount = shards,
            HashSeed = Seed,
            ReadBufferStripes = 1,   // one stripe: the same order of reads whichever core the test thread is on
        });
        Span<byte> key = stackalloc byte[8];
        Span<byte> buffer = stackalloc byte[8];
        foreach (long k in trace)
        {
            BinaryPrimitives.WriteInt64LittleEndian(key, k);
            if (!cache.TryGet(key, buffer, out _))
            {
                cache.Set(key, key);
            }
        }
        CacheStatistics stats = cache.GetStatistics();
        Assert.That(stats.Count, Is.LessThanOrEqualTo(capacity));
        return stats.HitRatio;
    }

    public static IEnumerable<TestCaseData> Cases()
    {
        (string Trace, int Size)[] runs = [("gli.trace.gz", 500), ("gli.trace.gz", 1000), ("multi1.trace.gz", 500), ("multi1.trace.gz", 2000),
            ("sprite.trace.gz", 1000), ("2_pools.trace.gz", 500), ("web07.trace.gz", 4000), ("loop.trace.gz", 500)];
        foreach (CachePolicy policy in new[] { CachePolicy.WTinyLfu, CachePolicy.Lru, CachePolicy.Clock, CachePolicy.Sieve })
        {
            foreach ((string trace, int size) in runs)
            {
                yield return new TestCaseData(policy, trace, size).SetName($"HitRatio_{policy}_{trace.Replace(".trace.gz", "", StringComparison.Ordinal)}_{size}");
            }
        }
    }

    public static IEnumerable<TestCaseData> ShardedCases()
    {
        (string Trace, int Size)[] runs = [("sprite.trace.gz", 5000), ("multi3.trace.gz", 5000), ("web07.trace.gz", 8000)];
        foreach (CachePolicy policy in new[] { CachePolicy.WTinyLfu, CachePolicy.Lru })
        {
            foreach ((string trace, int size) in runs)
            {
                yield return new TestCaseData(policy, trace, size, 4).SetName($"HitRatio4Shards_{policy}_{trace.Replace(".trace.gz", "", StringComparison.Ordinal)}_{size}");
            }
        }
    }

    [TestCaseSource(nameof(ShardedCases))]
    [TestCaseSource(nameof(Cases))]
    public void EngineHitRatioIsWithinOnePointOfThePolicyAlone(CachePolicy policy, string traceName, int size, int shards = 0)
    {
        string? folder = TraceFolder();
        if (folder is null || !File.Exists(Path.Combine(folder, traceName)))
        {
            Assert.Ignore($"trace {traceName} not found (expected in ../shared/traces)");
            return;
        }
        long[] trace = ReadTrace(folder, traceName);
        double simulated = PolicyHitRatio(policy, trace, size);
        double engine = EngineHitRatio(policy, trace, size, shards);
        TestContext.Out.WriteLine($"{policy} {traceName} @{size} shards={shards}: policy {simulated:P2}, engine {engine:P2}, diff {(engine - simulated) * 100:+0.00;-0.00} pp");
        Assert.That(Math.Abs(engine - simulated), Is.LessThanOrEqualTo(0.01));
    }
}

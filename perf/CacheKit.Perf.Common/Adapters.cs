using System.Collections.Concurrent;
using BitFaster.Caching.Lfu;
using BitFaster.Caching.Scheduler;
using BitFaster.Caching.Lru;
using CacheKit.OffHeap;
using Microsoft.Extensions.Caching.Memory;

namespace CacheKit.Perf;

/// <summary>
/// One cache behind a common surface, for the console benchmarks (the BenchmarkDotNet suite calls
/// each cache directly). The virtual call costs every cache the same: the headline's measured loops are compiled without PGO
/// (Throughput.cs), which had devirtualized and inlined the first-measured cache's calls only.
/// </summary>
public abstract class CacheAdapter(Workload workload) : IDisposable
{
    /// <summary>The keys and values.</summary>
    protected Workload W { get; } = workload;

    /// <summary>Row name in tables.</summary>
    public abstract string Name { get; }

    /// <summary>Whether the cache bounds its size (ConcurrentDictionary does not).</summary>
    public virtual bool Bounded => true;

    /// <summary>Looks key <paramref name="id"/> up; byte caches copy the value into <paramref name="scratch"/>, object caches return their reference
    /// (and copy its bytes into <paramref name="scratch"/> too when <see cref="PeersReadValues"/> is set).</summary>
    public abstract bool Get(int id, byte[] scratch);

    /// <summary>Looks up the key of stream position <paramref name="position"/> through the workload's lookup keys
    /// (<see cref="Workload.LookupKey"/>, <see cref="Workload.LookupKeyBytes"/>); the measured loops call this.</summary>
    public virtual bool GetAt(int position, byte[] scratch) => Get(W.Stream[position], scratch);

    /// <summary>
    /// Whether the object caches also read the value they return (copy it into the caller's buffer, as the span API does), set by
    /// the environment variable CACHEKIT_BENCH_READ_VALUES=1. Off by default: the targets' figures are for a get that returns the
    /// reference untouched. On, a get costs every cache the value's cache lines, which a caller that uses the value pays anyway.
    /// </summary>
    public static bool PeersReadValues { get; } = Environment.GetEnvironmentVariable("CACHEKIT_BENCH_READ_VALUES") == "1";

    /// <summary>An object cache's get result: found, and with <see cref="PeersReadValues"/> the value copied into <paramref name="scratch"/>.</summary>
    protected static bool Deliver(bool found, byte[]? value, byte[] scratch)
    {
        if (found && PeersReadValues)
        {
            value.AsSpan().CopyTo(scratch);
        }
        return found;
    }

    /// <summary>Stores key <paramref name="id"/> with its workload value.</summary>
    public abstract void Set(int id);

    /// <summary>Native bytes the cache owns (0 for managed caches).</summary>
    public virtual long NativeBytes => 0;

    /// <summary>Entries stored now.</summary>
    public abstract long Count { get; }

    /// <inheritdoc/>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees the cache.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>The caches every console benchmark compares, by name.</summary>
public static class Caches
{
    /// <summary>ConcurrentDictionary&lt;string, byte[]&gt;, the baseline.</summary>
    public const string ConcurrentDictionary = "ConcurrentDictionary";

    /// <summary>MemoryCache with SizeLimit (each entry Size 1).</summary>
    public const string MemoryCache = "MemoryCache";

    /// <summary>BitFaster ConcurrentLru.</summary>
    public const string ConcurrentLru = "BitFaster.ConcurrentLru";

    /// <summary>BitFaster FastConcurrentLru.</summary>
    public const string FastConcurrentLru = "BitFaster.FastConcurrentLru";

    /// <summary>BitFaster ConcurrentLfu.</summary>
    public const string ConcurrentLfu = "BitFaster.ConcurrentLfu";

    /// <summary>BitFaster ConcurrentLfu with its ForegroundScheduler: the buffers drained and entries evicted on the calling
    /// thread, as ours by default; on a machine with as many workers as cores the default pool-thread maintenance has no
    /// core of its own, so the targets against ConcurrentLfu are held against both configurations.</summary>
    public const string ConcurrentLfuForeground = "BitFaster.ConcurrentLfu (foreground)";

    /// <summary>OffHeapCache, span API.</summary>
    public const string OffHeapSpan = "OffHeap (span)";

    /// <summary>OffHeapCache&lt;string, byte[]&gt;, the typed facade.</summary>
    public const string OffHeapTyped = "OffHeap (typed)";

    /// <summary>Every in-process cache, baseline first.</summary>
    public static readonly string[] All = [ConcurrentDictionary, MemoryCache, ConcurrentLru, FastConcurrentLru, ConcurrentLfu, ConcurrentLfuForeground, OffHeapSpan, OffHeapTyped];

    /// <summary>Short command-line names.</summary>
    public static string FromShortName(string s) => s.ToLowerInvariant() switch
    {
        "cd" or "concurrentdictionary" => ConcurrentDictionary,
        "mc" or "memorycache" => MemoryCache,
        "lru" or "concurrentlru" => ConcurrentLru,
        "fastlru" or "fastconcurrentlru" => FastConcurrentLru,
        "lfu" or "concurrentlfu" => ConcurrentLfu,
        "lfufg" => ConcurrentLfuForeground,
        "offheap" or "span" => OffHeapSpan,
        "typed" => OffHeapTyped,
        _ => All.FirstOrDefault(n => n.Equals(s, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"unknown cache '{s}'; known: cd, mc, lru, fastlru, lfu, lfufg, offheap, typed", nameof(s)),
    };

    /// <summary>Short name of a cache (for child-process arguments and file names).</summary>
    public static string ShortName(string name) => name switch
    {
        ConcurrentDictionary => "cd",
        MemoryCache => "mc",
        ConcurrentLru => "lru",
        FastConcurrentLru => "fastlru",
        ConcurrentLfu => "lfu",
        ConcurrentLfuForeground => "lfufg",
        OffHeapSpan => "offheap",
        OffHeapTyped => "typed",
        _ => name,
    };

    /// <summary>BitFaster ConcurrentLfu with its ForegroundScheduler (see <see cref="ConcurrentLfuForeground"/>); the default
    /// constructor's concurrency level and comparer.</summary>
    public static ConcurrentLfu<string, byte[]> NewConcurrentLfuForeground(int capacity)
        => new(Environment.ProcessorCount, capacity, new ForegroundScheduler(), EqualityComparer<string>.Default);

    /// <summary>Creates cache <paramref name="name"/> holding at most <paramref name="capacity"/> entries (ConcurrentDictionary: unbounded).</summary>
    public static CacheAdapter Create(string name, Workload workload, int capacity) => name switch
    {
        ConcurrentDictionary => new ConcurrentDictionaryAdapter(workload, capacity),
        MemoryCache => new MemoryCacheAdapter(workload, capacity),
        ConcurrentLru => new BitFasterAdapter(name, workload, new ConcurrentLru<string, byte[]>(capacity)),
        FastConcurrentLru => new BitFasterAdapter(name, workload, new FastConcurrentLru<string, byte[]>(capacity)),
        ConcurrentLfu => new BitFasterAdapter(name, workload, new ConcurrentLfu<string, byte[]>(capacity)),
        ConcurrentLfuForeground => new BitFasterAdapter(name, workload, NewConcurrentLfuForeground(capacity)),
        OffHeapSpan => new OffHeapSpanAdapter(workload, OffHeapOptions(capacity, workload.AverageValueLength, workload.Mix != ValueMix.Bytes100 && workload.Mix != ValueMix.Bytes1K)),
        OffHeapTyped => new OffHeapTypedAdapter(workload, OffHeapOptions(capacity, workload.AverageValueLength, workload.Mix != ValueMix.Bytes100 && workload.Mix != ValueMix.Bytes1K)),
        _ => throw new ArgumentException($"unknown cache '{name}'", nameof(name)),
    };

    // The environment variables OffHeapOptions reads (one name each, so that OptionOverrides reports what is read).
    private const string PolicyVariable = "CACHEKIT_BENCH_POLICY";
    private const string SeedVariable = "CACHEKIT_BENCH_SEED";
    private const string ShardsVariable = "CACHEKIT_BENCH_SHARDS";
    private const string BackgroundReplayVariable = "CACHEKIT_BENCH_BACKGROUND_REPLAY";

    /// <summary>The CACHEKIT_BENCH_* variables that change our caches' options (policy, seed, shards, background replay)
    /// and are set in this process, as "NAME=value" joined by ", "; null when none is (the default run).</summary>
    public static string? OptionOverrides()
    {
        string[] set = [.. new[] { PolicyVariable, SeedVariable, ShardsVariable, BackgroundReplayVariable }
            .Where(n => n == BackgroundReplayVariable ? BackgroundReplayRequested : !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(n)))
            .Select(n => n + "=" + Environment.GetEnvironmentVariable(n))];
        return set.Length == 0 ? null : string.Join(", ", set);
    }

    // Only "1" turns background replay on (any other value leaves the default, so it is no override).
    private static bool BackgroundReplayRequested => Environment.GetEnvironmentVariable(BackgroundReplayVariable) == "1";

    /// <summary>
    /// Options for an OffHeapCache of <paramref name="capacity"/> entries of 16-byte keys and values of
    /// <paramref name="averageValue"/> bytes: MaxEntries = capacity (the entry bound the peers get),
    /// and a byte budget with room for size-class rounding and one page per class per shard
    /// (pages are taken on demand, so an unused budget costs nothing). The policy is the default
    /// (W-TinyLFU) unless the environment variable CACHEKIT_BENCH_POLICY names another (profiling);
    /// CACHEKIT_BENCH_SEED fixes the hash seed (repeatable instruction counts); CACHEKIT_BENCH_SHARDS and
    /// CACHEKIT_BENCH_BACKGROUND_REPLAY=1 set those options (scaling studies, docs/benchmarks/scaling-16-cores.md).
    /// </summary>
    public static OffHeapCacheOptions OffHeapOptions(long capacity, double averageValue, bool mixedSizes = false)
    {
        string? policy = Environment.GetEnvironmentVariable(PolicyVariable);
        double entry = 16 + Workload.KeyLength + averageValue;
        long slack = mixedSizes ? 256L << 20 : 64L << 20;
        // CACHEKIT_BENCH_SEED fixes the hash seed (instruction counts: which keys the window shadows
        // sample depends on it, so an unseeded profile moves by ~10 % between runs).
        string? seed = Environment.GetEnvironmentVariable(SeedVariable);
        string? shards = Environment.GetEnvironmentVariable(ShardsVariable);
        return new OffHeapCacheOptions
        {
            MaxEntries = capacity,
            Policy = string.IsNullOrEmpty(policy) ? CachePolicy.WTinyLfu : Enum.Parse<CachePolicy>(policy, ignoreCase: true),
            CapacityBytes = (long)(capacity * entry * 1.4) + capacity * 16 + slack,
            HashSeed = string.IsNullOrEmpty(seed) ? null : long.Parse(seed, System.Globalization.CultureInfo.InvariantCulture),
            // CACHEKIT_BENCH_BACKGROUND_REPLAY=1 measures OffHeapCacheOptions.BackgroundReadReplay.
            BackgroundReadReplay = BackgroundReplayRequested,
            // CACHEKIT_BENCH_SHARDS=N (a power of two) overrides the automatic shard count of every OffHeap cache the
            // process builds; a value that is not a number throws, as the seed's does (a typo must not run the default).
            ShardCount = string.IsNullOrEmpty(shards) ? 0
                : int.TryParse(shards, System.Globalization.CultureInfo.InvariantCulture, out int n) ? n
                : throw new ArgumentException($"{ShardsVariable} must be a power of two in [1, 256] (got '{shards}')."),
        };
    }
}

internal sealed class ConcurrentDictionaryAdapter(Workload w, int capacity) : CacheAdapter(w)
{
    private readonly ConcurrentDictionary<string, byte[]> _map = new(Environment.ProcessorCount, Math.Min(capacity, w.KeyCount));

    public override string Name => Caches.ConcurrentDictionary;

    public override bool Bounded => false;

    public override long Count => _map.Count;

    public override bool Get(int id, byte[] scratch) => Deliver(_map.TryGetValue(W.Keys[id], out byte[]? value), value, scratch);

    public override bool GetAt(int position, byte[] scratch) => Deliver(_map.TryGetValue(W.LookupKey(position), out byte[]? value), value, scratch);

    public override void Set(int id) => _map[W.Keys[id]] = W.Values[id];
}

internal sealed class MemoryCacheAdapter(Workload w, int capacity) : CacheAdapter(w)
{
    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = capacity });

    public override string Name => Caches.MemoryCache;

    public override long Count => _cache.Count;

    public override bool Get(int id, byte[] scratch) => Deliver(_cache.TryGetValue(W.Keys[id], out byte[]? value), value, scratch);

    public override bool GetAt(int position, byte[] scratch) => Deliver(_cache.TryGetValue(W.LookupKey(position), out byte[]? value), value, scratch);

    public override void Set(int id)
    {
        using ICacheEntry entry = _cache.CreateEntry(W.Keys[id]);
        entry.Size = 1;
        entry.Value = W.Values[id];
    }

    protected override void Dispose(bool disposing) => _cache.Dispose();
}

internal sealed class BitFasterAdapter(string name, Workload w, BitFaster.Caching.ICache<string, byte[]> cache) : CacheAdapter(w)
{
    public override string Name => name;

    public override long Count => cache.Count;

    public override bool Get(int id, byte[] scratch) => Deliver(cache.TryGet(W.Keys[id], out byte[]? value), value, scratch);

    public override bool GetAt(int position, byte[] scratch) => Deliver(cache.TryGet(W.LookupKey(position), out byte[]? value), value, scratch);

    public override void Set(int id) => cache.AddOrUpdate(W.Keys[id], W.Values[id]);

    protected override void Dispose(bool disposing) => (cache as IDisposable)?.Dispose();
}

internal sealed class OffHeapSpanAdapter(Workload w, OffHeapCacheOptions options) : CacheAdapter(w)
{
    private readonly OffHeapCache _cache = new(options);

    public override string Name => Caches.OffHeapSpan;

    public override long Count => _cache.Count;

    public override long NativeBytes => _cache.GetStatistics().NativeBytes;

    public override bool Get(int id, byte[] scratch) => _cache.TryGet(W.KeyBytes(id), scratch, out _);

    public override bool GetAt(int position, byte[] scratch) => _cache.TryGet(W.LookupKeyBytes(position), scratch, out _);

    public override void Set(int id) => _cache.Set(W.KeyBytes(id), W.Values[id]);

    protected override void Dispose(bool disposing) => _cache.Dispose();
}

internal sealed class OffHeapTypedAdapter(Workload w, OffHeapCacheOptions options) : CacheAdapter(w)
{
    private readonly OffHeapCache<string, byte[]> _cache = new(options);

    public override string Name => Caches.OffHeapTyped;

    public override long Count => _cache.Count;

    public override long NativeBytes => _cache.GetStatistics().NativeBytes;

    public override bool Get(int id, byte[] scratch) => _cache.TryGetValue(W.Keys[id], out _);   // the facade has read the value already (it builds the byte[])

    public override bool GetAt(int position, byte[] scratch) => _cache.TryGetValue(W.LookupKey(position), out _);

    public override void Set(int id) => _cache.Set(W.Keys[id], W.Values[id]);

    protected override void Dispose(bool disposing) => _cache.Dispose();
}

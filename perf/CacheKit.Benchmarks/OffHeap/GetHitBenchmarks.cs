using BenchmarkDotNet.Attributes;
using CacheKit.Perf;

namespace CacheKit.Benchmarks.OffHeap;

/// <summary>Get hit: 1M entries cached, Zipf(0.99) lookups, 100-byte values.</summary>
[Config(typeof(ShortConfig))]
public class GetHitBenchmarks : CacheBenchmarkBase
{
    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(ConcurrentDictionary))]
    public void A() => SetupDictionary();

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(MemoryCacheSized))]
    public void B() => SetupMemoryCache();

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(ConcurrentLru))]
    public void C() => SetupLru();

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(FastConcurrentLru))]
    public void D() => SetupFastLru();

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(ConcurrentLfu))]
    public void E() => SetupLfu();

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(OffHeapSpan))]
    public void F() => SetupSpan();

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(OffHeapTyped))]
    public void G() => SetupTyped();

    /// <summary>ConcurrentDictionary&lt;string, byte[]&gt;.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    public int ConcurrentDictionary()
    {
        int hits = 0;
        for (int i = 0; i < Ops; i++)
        {
            hits += Dictionary.TryGetValue(W.LookupKey(NextPosition()), out _) ? 1 : 0;
        }
        return hits;
    }

    /// <summary>MemoryCache with SizeLimit.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public int MemoryCacheSized()
    {
        int hits = 0;
        for (int i = 0; i < Ops; i++)
        {
            hits += MemoryCache.TryGetValue(W.LookupKey(NextPosition()), out _) ? 1 : 0;
        }
        return hits;
    }

    /// <summary>BitFaster ConcurrentLru.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public int ConcurrentLru()
    {
        int hits = 0;
        for (int i = 0; i < Ops; i++)
        {
            hits += Lru.TryGet(W.LookupKey(NextPosition()), out _) ? 1 : 0;
        }
        return hits;
    }

    /// <summary>BitFaster FastConcurrentLru.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public int FastConcurrentLru()
    {
        int hits = 0;
        for (int i = 0; i < Ops; i++)
        {
            hits += FastLru.TryGet(W.LookupKey(NextPosition()), out _) ? 1 : 0;
        }
        return hits;
    }

    /// <summary>BitFaster ConcurrentLfu.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public int ConcurrentLfu()
    {
        int hits = 0;
        for (int i = 0; i < Ops; i++)
        {
            hits += Lfu.TryGet(W.LookupKey(NextPosition()), out _) ? 1 : 0;
        }
        return hits;
    }

    /// <summary>OffHeapCache.TryGet(key span, destination span).</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public int OffHeapSpan()
    {
        int hits = 0;
        for (int i = 0; i < Ops; i++)
        {
            hits += Span.TryGet(W.LookupKeyBytes(NextPosition()), Scratch, out _) ? 1 : 0;
        }
        return hits;
    }

    /// <summary>OffHeapCache&lt;string, byte[]&gt;.TryGetValue (allocates the returned array).</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public int OffHeapTyped()
    {
        int hits = 0;
        for (int i = 0; i < Ops; i++)
        {
            hits += Typed.TryGetValue(W.LookupKey(NextPosition()), out _) ? 1 : 0;
        }
        return hits;
    }
}

/// <summary>Get hit with 1 KiB values and with the Twitter-like size mix (same methods as <see cref="GetHitBenchmarks"/>).</summary>
[Config(typeof(ShortConfig))]
public class GetHitValueSizeBenchmarks : GetHitBenchmarks
{
    /// <summary>Value sizes.</summary>
    [Params(ValueMix.Bytes1K, ValueMix.Twitter)]
    public ValueMix Values { get; set; }

    /// <inheritdoc/>
    protected override ValueMix Mix => Values;
}

using BenchmarkDotNet.Attributes;
using CacheKit.Perf;

namespace CacheKit.Benchmarks.OffHeap;

/// <summary>Set (update): 1M entries cached, Zipf(0.99) sets of keys already stored; values 100 B and 1 KiB.</summary>
[Config(typeof(ShortConfig))]
public class SetUpdateBenchmarks : CacheBenchmarkBase
{
    /// <summary>Value sizes.</summary>
    [Params(ValueMix.Bytes100, ValueMix.Bytes1K)]
    public ValueMix Values { get; set; }

    /// <inheritdoc/>
    protected override ValueMix Mix => Values;

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(ConcurrentDictionary))]
    public void A()
    {
        SetupDictionary();
    }

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(MemoryCacheSized))]
    public void B()
    {
        SetupMemoryCache();
    }

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(ConcurrentLru))]
    public void C()
    {
        SetupLru();
    }

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(FastConcurrentLru))]
    public void D()
    {
        SetupFastLru();
    }

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(ConcurrentLfu))]
    public void E()
    {
        SetupLfu();
    }

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(OffHeapSpan))]
    public void F()
    {
        SetupSpan();
    }

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(OffHeapTyped))]
    public void G()
    {
        SetupTyped();
    }

    /// <summary>ConcurrentDictionary&lt;string, byte[]&gt;.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    public int ConcurrentDictionary()
    {
        int hits = 0;
        for (int i = 0; i < Ops; i++)
        {
            int id = Next();
            Dictionary[W.Keys[id]] = W.Values[id];
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
            MemoryCacheSet(Next());
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
            int id = Next();
            Lru.AddOrUpdate(W.Keys[id], W.Values[id]);
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
            int id = Next();
            FastLru.AddOrUpdate(W.Keys[id], W.Values[id]);
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
            int id = Next();
            Lfu.AddOrUpdate(W.Keys[id], W.Values[id]);
        }
        return hits;
    }

    /// <summary>OffHeapCache, span API.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public int OffHeapSpan()
    {
        int hits = 0;
        for (int i = 0; i < Ops; i++)
        {
            int id = Next();
            hits += Span.Set(W.KeyBytes(id), W.Values[id]) ? 1 : 0;
        }
        return hits;
    }

    /// <summary>OffHeapCache&lt;string, byte[]&gt;.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public int OffHeapTyped()
    {
        int hits = 0;
        for (int i = 0; i < Ops; i++)
        {
            int id = Next();
            hits += Typed.Set(W.Keys[id], W.Values[id]) ? 1 : 0;
        }
        return hits;
    }
}

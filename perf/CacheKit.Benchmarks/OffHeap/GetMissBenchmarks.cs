using BenchmarkDotNet.Attributes;
using CacheKit.Perf;

namespace CacheKit.Benchmarks.OffHeap;

/// <summary>Get miss: 1M entries cached, lookups of 1024 keys that were never stored (16 B, same format).</summary>
[Config(typeof(ShortConfig))]
public class GetMissBenchmarks : CacheBenchmarkBase
{
    private string[] _missKeys = [];
    private byte[] _missBytes = [];

    private void MissKeys()
    {
        _missKeys = new string[Ops];
        _missBytes = new byte[Ops * Workload.KeyLength];
        for (int i = 0; i < Ops; i++)
        {
            long id = 1_000_000_000_000L - 1 - W.Stream[i];
            _missKeys[i] = Workload.KeyString(id);
            Workload.FormatKey(id, _missBytes.AsSpan(i * Workload.KeyLength, Workload.KeyLength));
        }
    }

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(ConcurrentDictionary))]
    public void A()
    {
        SetupDictionary();
        MissKeys();
    }

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(MemoryCacheSized))]
    public void B()
    {
        SetupMemoryCache();
        MissKeys();
    }

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(ConcurrentLru))]
    public void C()
    {
        SetupLru();
        MissKeys();
    }

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(FastConcurrentLru))]
    public void D()
    {
        SetupFastLru();
        MissKeys();
    }

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(ConcurrentLfu))]
    public void E()
    {
        SetupLfu();
        MissKeys();
    }

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(OffHeapSpan))]
    public void F()
    {
        SetupSpan();
        MissKeys();
    }

    /// <summary>Setup.</summary>
    [GlobalSetup(Target = nameof(OffHeapTyped))]
    public void G()
    {
        SetupTyped();
        MissKeys();
    }

    /// <summary>ConcurrentDictionary&lt;string, byte[]&gt;.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    public int ConcurrentDictionary()
    {
        int hits = 0;
        for (int i = 0; i < Ops; i++)
        {
            hits += Dictionary.TryGetValue(_missKeys[i], out _) ? 1 : 0;
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
            hits += MemoryCache.TryGetValue(_missKeys[i], out _) ? 1 : 0;
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
            hits += Lru.TryGet(_missKeys[i], out _) ? 1 : 0;
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
            hits += FastLru.TryGet(_missKeys[i], out _) ? 1 : 0;
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
            hits += Lfu.TryGet(_missKeys[i], out _) ? 1 : 0;
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
            hits += Span.TryGet(_missBytes.AsSpan(i * Workload.KeyLength, Workload.KeyLength), Scratch, out _) ? 1 : 0;
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
            hits += Typed.TryGetValue(_missKeys[i], out _) ? 1 : 0;
        }
        return hits;
    }
}

using System.Buffers;
using BenchmarkDotNet.Attributes;
using CacheKit.Perf;
using Microsoft.Extensions.Caching.Memory;

namespace CacheKit.Benchmarks.OffHeap;

/// <summary>GetOrAdd hit: 1M entries cached, Zipf(0.99) GetOrAdd calls that all hit (the factory never runs).</summary>
[Config(typeof(ShortConfig))]
public class GetOrAddHitBenchmarks : CacheBenchmarkBase
{
    // MemoryCache.GetOrCreate has no state overload. Its factory used to be a lambda capturing the loop's id,
    // so every call allocated a closure and a delegate (the 96 B/op in the results) that the cache never
    // asked for; the other caches' factories are static lambdas with a state argument. The factory is now
    // built once and reads the id from a field (the benchmark is single-threaded).
    private int _factoryId;
    private Func<ICacheEntry, byte[]> _memoryCacheFactory = null!;

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
        _memoryCacheFactory = e =>
        {
            e.Size = 1;
            return W.Values[_factoryId];
        };
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
            int position = NextPosition();
            int id = W.Stream[position];
            hits += Dictionary.GetOrAdd(W.LookupKey(position), static (_, v) => v, W.Values[id]).Length;
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
            int position = NextPosition();
            int id = W.Stream[position];
            _factoryId = id;
            hits += MemoryCache.GetOrCreate(W.LookupKey(position), _memoryCacheFactory)!.Length;
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
            int position = NextPosition();
            int id = W.Stream[position];
            hits += Lru.GetOrAdd(W.LookupKey(position), static (_, v) => v, W.Values[id]).Length;
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
            int position = NextPosition();
            int id = W.Stream[position];
            hits += FastLru.GetOrAdd(W.LookupKey(position), static (_, v) => v, W.Values[id]).Length;
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
            int position = NextPosition();
            int id = W.Stream[position];
            hits += Lfu.GetOrAdd(W.LookupKey(position), static (_, v) => v, W.Values[id]).Length;
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
            int position = NextPosition();
            int id = W.Stream[position];
            Writer.ResetWrittenCount();
            Span.GetOrAdd(W.LookupKeyBytes(position), W.Values[id], static (_, v, w) => w.Write(v), Writer);
            hits += Writer.WrittenCount;
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
            int position = NextPosition();
            int id = W.Stream[position];
            hits += Typed.GetOrAdd(W.LookupKey(position), static (_, v) => v, W.Values[id]).Length;
        }
        return hits;
    }
}

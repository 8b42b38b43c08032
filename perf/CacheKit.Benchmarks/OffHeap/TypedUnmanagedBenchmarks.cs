using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using CacheKit.OffHeap;
using CacheKit.Perf;

namespace CacheKit.Benchmarks.OffHeap;

/// <summary>A 96-byte unmanaged value (close to the 100-byte values of the other benchmarks).</summary>
[InlineArray(12)]
public struct Payload96
{
    private long _element;
}

/// <summary>
/// The typed facade with unmanaged types, <c>OffHeapCache&lt;long, Payload96&gt;</c>: get hit and set
/// (update) over 1M entries, Zipf(0.99). Expected 0 B allocated. Baseline: ConcurrentDictionary&lt;long, Payload96&gt;,
/// its get for the gets and its set for the sets (one category each, so each Ratio is against the same operation).
/// </summary>
[Config(typeof(ShortConfig))]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
public class TypedUnmanagedBenchmarks : CacheBenchmarkBase
{
    private System.Collections.Concurrent.ConcurrentDictionary<long, Payload96> _map = null!;
    private OffHeapCache<long, Payload96> _typed = null!;
    private Payload96 _value;

    /// <summary>Setup.</summary>
    [GlobalSetup(Targets = [nameof(DictionaryGet), nameof(DictionarySet)])]
    public void A()
    {
        SetupDictionary();
        Dictionary.Clear();
        _map = new System.Collections.Concurrent.ConcurrentDictionary<long, Payload96>(Environment.ProcessorCount, KeyCount);
        for (long id = 0; id < KeyCount; id++)
        {
            _map[id] = _value;
        }
    }

    /// <summary>Setup.</summary>
    [GlobalSetup(Targets = [nameof(TypedGet), nameof(TypedSet)])]
    public void B()
    {
        SetupDictionary();
        Dictionary.Clear();
        _value[0] = 42;
        _typed = new OffHeapCache<long, Payload96>(Caches.OffHeapOptions(Capacity, 96));
        for (long id = 0; id < KeyCount; id++)
        {
            _typed.Set(id, _value);
        }
    }

    /// <summary>Cleanup.</summary>
    [GlobalCleanup(Targets = [nameof(TypedGet), nameof(TypedSet)])]
    public void CleanupTyped() => _typed.Dispose();

    /// <summary>ConcurrentDictionary&lt;long, Payload96&gt; get.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    [BenchmarkCategory("get")]
    public long DictionaryGet()
    {
        long sum = 0;
        for (int i = 0; i < Ops; i++)
        {
            sum += _map.TryGetValue(Next(), out Payload96 v) ? v[0] : 0;
        }
        return sum;
    }

    /// <summary>OffHeapCache&lt;long, Payload96&gt; get.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    [BenchmarkCategory("get")]
    public long TypedGet()
    {
        long sum = 0;
        for (int i = 0; i < Ops; i++)
        {
            sum += _typed.TryGetValue(Next(), out Payload96 v) ? v[0] : 0;
        }
        return sum;
    }

    /// <summary>ConcurrentDictionary&lt;long, Payload96&gt; set (update).</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    [BenchmarkCategory("set")]
    public int DictionarySet()
    {
        for (int i = 0; i < Ops; i++)
        {
            _map[Next()] = _value;
        }
        return Ops;
    }

    /// <summary>OffHeapCache&lt;long, Payload96&gt; set (update).</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    [BenchmarkCategory("set")]
    public int TypedSet()
    {
        int stored = 0;
        for (int i = 0; i < Ops; i++)
        {
            stored += _typed.Set(Next(), _value) ? 1 : 0;
        }
        return stored;
    }
}

using System.Buffers;
using System.Collections.Concurrent;
using BitFaster.Caching.Lfu;
using BitFaster.Caching.Lru;
using CacheKit.OffHeap;
using CacheKit.Perf;
using Microsoft.Extensions.Caching.Memory;

namespace CacheKit.Benchmarks.OffHeap;

/// <summary>
/// The caches under comparison, built and filled in a GlobalSetup per benchmark method (BenchmarkDotNet
/// runs each case in its own process, so only the measured cache exists). Every method performs
/// <see cref="Ops"/> operations over the workload's Zipf(0.99) stream (OperationsPerInvoke), so the
/// reported time is per operation.
/// </summary>
public abstract class CacheBenchmarkBase
{
    /// <summary>Operations per invocation.</summary>
    protected const int Ops = 1024;

    private static readonly Dictionary<(int, ValueMix), Workload> Workloads = [];

    /// <summary>Keys in the workload.</summary>
    protected virtual int KeyCount => 1_000_000;

    /// <summary>Entry bound of the bounded caches (default: every key fits).</summary>
    protected virtual int Capacity => KeyCount + KeyCount / 20;

    /// <summary>Whether setup stores every key.</summary>
    protected virtual bool Fill => true;

    /// <summary>Value sizes (a parameter in derived classes that vary it).</summary>
    protected virtual ValueMix Mix => ValueMix.Bytes100;

    /// <summary>The workload.</summary>
    protected Workload W { get; private set; } = null!;

    /// <summary>Stream position.</summary>
    protected int Position { get; set; }

    /// <summary>Value buffer for span gets.</summary>
    protected byte[] Scratch { get; private set; } = [];

    /// <summary>Buffer writer for GetOrAdd / batch gets.</summary>
    protected ArrayBufferWriter<byte> Writer { get; } = new(64 * 1024);

    /// <summary>Peers and ours (only the one being measured is built).</summary>
    protected ConcurrentDictionary<string, byte[]> Dictionary { get; private set; } = null!;

    /// <summary>MemoryCache with SizeLimit.</summary>
    protected MemoryCache MemoryCache { get; private set; } = null!;

    /// <summary>BitFaster ConcurrentLru.</summary>
    protected ConcurrentLru<string, byte[]> Lru { get; private set; } = null!;

    /// <summary>BitFaster FastConcurrentLru.</summary>
    protected FastConcurrentLru<string, byte[]> FastLru { get; private set; } = null!;

    /// <summary>BitFaster ConcurrentLfu.</summary>
    protected ConcurrentLfu<string, byte[]> Lfu { get; private set; } = null!;

    /// <summary>OffHeapCache (span API).</summary>
    protected OffHeapCache Span { get; private set; } = null!;

    /// <summary>OffHeapCache&lt;string, byte[]&gt;.</summary>
    protected OffHeapCache<string, byte[]> Typed { get; private set; } = null!;

    private void Common()
    {
        if (!Workloads.TryGetValue((KeyCount, Mix), out Workload? w))
        {
            w = Workload.Create(KeyCount, Mix);
            Workloads[(KeyCount, Mix)] = w;
        }
        W = w;
        Scratch = new byte[w.MaxValueLength];
    }

    private void FillWith(Action<int> set)
    {
        if (Fill)
        {
            for (int id = 0; id < W.KeyCount; id++)
            {
                set(id);
            }
        }
    }

    /// <summary>Builds the ConcurrentDictionary.</summary>
    protected void SetupDictionary()
    {
        Common();
        Dictionary = new ConcurrentDictionary<string, byte[]>(Environment.ProcessorCount, KeyCount);
        FillWith(id => Dictionary[W.Keys[id]] = W.Values[id]);
    }

    /// <summary>Builds the MemoryCache.</summary>
    protected void SetupMemoryCache()
    {
        Common();
        MemoryCache = new MemoryCache(new MemoryCacheOptions { SizeLimit = Capacity });
        FillWith(id => MemoryCacheSet(id));
    }

    /// <summary>Builds ConcurrentLru.</summary>
    protected void SetupLru()
    {
        Common();
        Lru = new ConcurrentLru<string, byte[]>(Capacity);
        FillWith(id => Lru.AddOrUpdate(W.Keys[id], W.Values[id]));
    }

    /// <summary>Builds FastConcurrentLru.</summary>
    protected void SetupFastLru()
    {
        Common();
        FastLru = new FastConcurrentLru<string, byte[]>(Capacity);
        FillWith(id => FastLru.AddOrUpdate(W.Keys[id], W.Values[id]));
    }

    /// <summary>Builds ConcurrentLfu.</summary>
    protected void SetupLfu()
    {
        Common();
        Lfu = new ConcurrentLfu<string, byte[]>(Capacity);
        FillWith(id => Lfu.AddOrUpdate(W.Keys[id], W.Values[id]));
    }

    /// <summary>Builds the span cache.</summary>
    protected void SetupSpan()
    {
        Common();
        Span = new OffHeapCache(Caches.OffHeapOptions(Capacity, W.AverageValueLength, Mix == ValueMix.Twitter));
        FillWith(id => Span.Set(W.KeyBytes(id), W.Values[id]));
    }

    /// <summary>Builds the typed cache.</summary>
    protected void SetupTyped()
    {
        Common();
        Typed = new OffHeapCache<string, byte[]>(Caches.OffHeapOptions(Capacity, W.AverageValueLength, Mix == ValueMix.Twitter));
        FillWith(id => Typed.Set(W.Keys[id], W.Values[id]));
    }

    /// <summary>Sets one key in the MemoryCache (Size 1).</summary>
    protected void MemoryCacheSet(int id)
    {
        using ICacheEntry entry = MemoryCache.CreateEntry(W.Keys[id]);
        entry.Size = 1;
        entry.Value = W.Values[id];
    }

    /// <summary>The next key id of the stream (sets: the peers store the workload's own key instances).</summary>
    protected int Next() => W.Stream[NextPosition()];

    /// <summary>The next stream position, for lookups through <see cref="Workload.LookupKey"/> and
    /// <see cref="Workload.LookupKeyBytes"/>: a key instance of its own per position (not the one stored, as a server's
    /// request key), laid out in stream order for every cache alike.</summary>
    protected int NextPosition() => Position++ & (W.Stream.Length - 1);

    /// <summary>Frees whatever was built.</summary>
    [BenchmarkDotNet.Attributes.GlobalCleanup]
    public void Cleanup()
    {
        MemoryCache?.Dispose();
        Span?.Dispose();
        Typed?.Dispose();
    }
}

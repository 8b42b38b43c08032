using System.Diagnostics.Metrics;
using CacheKit.OffHeap.Extensions;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace CacheKit.OffHeap.Extensions.Tests;

public sealed class MetricsTests
{
    private static ServiceProvider BuildProvider(string name, long capacity, bool latency = false)
    {
        var services = new ServiceCollection();
        services.AddMetrics();
        services.AddOffHeapCache(name, s =>
        {
            s.CapacityBytes = capacity;
            s.ShardCount = 1;
            s.EnableLatencyHistogram = latency;
        });
        return services.BuildServiceProvider();
    }

    private static long Last(MetricCollector<long> collector, string cacheName, string? tag = null, string? tagValue = null)
    {
        collector.RecordObservableInstruments();
        CollectedMeasurement<long>? found = collector.GetMeasurementSnapshot().LastOrDefault(m =>
            Equals(m.Tags[OffHeapCacheMetrics.CacheNameTag], cacheName) && (tag is null || Equals(m.Tags[tag], tagValue)));
        Assert.That(found, Is.Not.Null, $"no measurement for {cacheName} {tag}={tagValue}");
        return found!.Value;
    }

    [Test]
    public void Requests_are_counted_by_result_and_tagged_with_the_cache_name()
    {
        using ServiceProvider provider = BuildProvider("catalog", 4 << 20);
        var factory = provider.GetRequiredService<IMeterFactory>();
        OffHeapCache cache = provider.GetRequiredKeyedService<OffHeapCache>("catalog");
        using var requests = new MetricCollector<long>(factory, OffHeapCacheMetrics.MeterName, "cachekit.offheap.requests");

        cache.Set("a"u8, "1"u8);
        cache.Set("b"u8, "2"u8);
        Span<byte> buffer = stackalloc byte[8];
        Assert.That(cache.TryGet("a"u8, buffer, out _), Is.True);
        Assert.That(cache.TryGet("b"u8, buffer, out _), Is.True);
        Assert.That(cache.TryGet("zz"u8, buffer, out _), Is.False);

        Assert.That(Last(requests, "catalog", "result", "hit"), Is.EqualTo(2));
        Assert.That(Last(requests, "catalog", "result", "miss"), Is.EqualTo(1));
        Assert.That(requests.Instrument!.Unit, Is.EqualTo("{request}"));
    }

    [Test]
    public void Two_caches_of_one_container_report_separate_series()
    {
        var services = new ServiceCollection();
        services.AddMetrics();
        services.AddOffHeapCache("a", s => { s.CapacityBytes = 1 << 20; s.ShardCount = 1; });
        services.AddOffHeapCache("b", s => { s.CapacityBytes = 2 << 20; s.ShardCount = 1; });
        using ServiceProvider provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<IMeterFactory>();
        OffHeapCache a = provider.GetRequiredKeyedService<OffHeapCache>("a");
        OffHeapCache b = provider.GetRequiredKeyedService<OffHeapCache>("b");
        using var capacity = new MetricCollector<long>(factory, OffHeapCacheMetrics.MeterName, "cachekit.offheap.capacity_bytes");
        using var entries = new MetricCollector<long>(factory, OffHeapCacheMetrics.MeterName, "cachekit.offheap.entries");
        using var entryBound = new MetricCollector<long>(factory, OffHeapCacheMetrics.MeterName, "cachekit.offheap.entry_bound");

        a.Set("k"u8, "v"u8);
        a.Set("k2"u8, "v"u8);
        b.Set("k"u8, "v"u8);

        Assert.That(Last(capacity, "a"), Is.EqualTo(1 << 20));
        Assert.That(Last(capacity, "b"), Is.EqualTo(2 << 20));
        Assert.That(Last(entries, "a"), Is.EqualTo(2));
        Assert.That(Last(entries, "b"), Is.EqualTo(1));
        Assert.That(Last(entryBound, "a"), Is.EqualTo(a.GetStatistics().EntryBound).And.GreaterThan(0));
        Assert.That(Last(entryBound, "b"), Is.EqualTo(b.GetStatistics().EntryBound).And.GreaterThan(Last(entryBound, "a")));
        Assert.That(capacity.LastMeasurement!.Tags.Count(t => t.Key == OffHeapCacheMetrics.CacheNameTag), Is.EqualTo(1));
    }

    [Test]
    public void Gauges_follow_the_statistics_and_evictions_carry_a_reason()
    {
        using ServiceProvider provider = BuildProvider("small", 1 << 20);
        var factory = provider.GetRequiredService<IMeterFactory>();
        OffHeapCache cache = provider.GetRequiredKeyedService<OffHeapCache>("small");
        using var entries = new MetricCollector<long>(factory, OffHeapCacheMetrics.MeterName, "cachekit.offheap.entries");
        using var payload = new MetricCollector<long>(factory, OffHeapCacheMetrics.MeterName, "cachekit.offheap.payload_bytes");
        using var native = new MetricCollector<long>(factory, OffHeapCacheMetrics.MeterName, "cachekit.offheap.native_bytes");
        using var capacity = new MetricCollector<long>(factory, OffHeapCacheMetrics.MeterName, "cachekit.offheap.capacity_bytes");
        using var evictions = new MetricCollector<long>(factory, OffHeapCacheMetrics.MeterName, "cachekit.offheap.evictions");
        using var rejections = new MetricCollector<long>(factory, OffHeapCacheMetrics.MeterName, "cachekit.offheap.admission_rejections");

        // 4 MiB of values into a 1 MiB budget: the policy must evict (or admission refuse).
        byte[] value = new byte[1000];
        Span<byte> key = stackalloc byte[8];
        for (int i = 0; i < 4096; i++)
        {
            BitConverter.TryWriteBytes(key, (long)i);
            cache.Set(key, value);
        }
        CacheStatistics stats = cache.GetStatistics();
        Assert.That(stats.Evictions + stats.Rejections, Is.GreaterThan(0));

        Assert.That(Last(entries, "small"), Is.EqualTo(stats.Count));
        Assert.That(Last(payload, "small"), Is.EqualTo(stats.PayloadBytes));
        Assert.That(Last(native, "small"), Is.EqualTo(stats.NativeBytes));
        Assert.That(Last(capacity, "small"), Is.EqualTo(1 << 20));
        Assert.That(Last(evictions, "small", "reason", "capacity") + Last(evictions, "small", "reason", "page_reclaimed"),
            Is.EqualTo(stats.Evictions));
        Assert.That(Last(rejections, "small"), Is.EqualTo(stats.Rejections));
        Assert.That(native.Instrument!.Unit, Is.EqualTo("By"));
    }

    [Test]
    public void Page_reclaims_are_a_reason_of_their_own()
    {
        int reclaimedSeen = 0, capacitySeen = 0;
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 1 << 20,
            ShardCount = 1,
            PageSize = 64 * 1024,
            AverageEntrySizeHint = 64,   // enough index slots for the small values to take every page
            EvictionListener = (_, reason) =>
            {
                if (reason == EvictionReason.PageReclaimed)
                {
                    reclaimedSeen++;
                }
                else if (reason == EvictionReason.Capacity)
                {
                    capacitySeen++;
                }
            },
        });
        string name = "reclaim-" + Guid.NewGuid().ToString("N");
        using var metrics = new OffHeapCacheMetrics(cache, name);
        using var evictions = new MetricCollector<long>(null, OffHeapCacheMetrics.MeterName, "cachekit.offheap.evictions");

        // Small values take every page; then large values need pages of another size class.
        Span<byte> key = stackalloc byte[8];
        for (int i = 0; i < 20_000; i++)
        {
            BitConverter.TryWriteBytes(key, (long)i);
            cache.Set(key, new byte[100]);
        }
        for (int i = 0; i < 2_000; i++)
        {
            BitConverter.TryWriteBytes(key, (long)(1_000_000 + i));
            cache.Set(key, new byte[4000]);
        }

        CacheStatistics stats = cache.GetStatistics();
        Assert.That(stats.PageReclaims, Is.GreaterThan(0), "the size mix shift must reclaim pages");
        Assert.That(stats.PageReclaims, Is.EqualTo(reclaimedSeen));
        Assert.That(stats.Evictions - stats.PageReclaims, Is.EqualTo(capacitySeen));
        Assert.That(Last(evictions, name, "reason", "page_reclaimed"), Is.EqualTo(reclaimedSeen));
        Assert.That(Last(evictions, name, "reason", "capacity"), Is.EqualTo(capacitySeen));
    }

    [Test]
    public void Expirations_are_counted()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 1 << 20, ShardCount = 1, MaxEntries = 1, TimeProvider = time });
        string name = "expiring-" + Guid.NewGuid().ToString("N");
        using var metrics = new OffHeapCacheMetrics(cache, name);
        using var expirations = new MetricCollector<long>(null, OffHeapCacheMetrics.MeterName, "cachekit.offheap.expirations");

        cache.Set("k"u8, "v"u8, TimeSpan.FromSeconds(1));
        time.Advance(TimeSpan.FromSeconds(2));
        cache.Set("other"u8, "v"u8);   // at the entry bound, the insert reclaims the expired entry first
        long expected = cache.GetStatistics().Expirations;
        Assert.That(expected, Is.EqualTo(1));
        Assert.That(Last(expirations, name), Is.EqualTo(expected));
    }

    [Test]
    public void Instruments_report_nothing_once_the_cache_is_disposed()
    {
        var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 1 << 20, ShardCount = 1 });
        string name = "gone-" + Guid.NewGuid().ToString("N");
        using var metrics = new OffHeapCacheMetrics(cache, name);
        using var entries = new MetricCollector<long>(null, OffHeapCacheMetrics.MeterName, "cachekit.offheap.entries");
        cache.Set("k"u8, "v"u8);
        Assert.That(Last(entries, name), Is.EqualTo(1));

        cache.Dispose();
        entries.Clear();
        entries.RecordObservableInstruments();
        Assert.That(entries.GetMeasurementSnapshot().Where(m => Equals(m.Tags[OffHeapCacheMetrics.CacheNameTag], name)), Is.Empty);
    }

    [Test]
    public void The_latency_histogram_is_opt_in()
    {
        using ServiceProvider off = BuildProvider("plain", 1 << 20, latency: false);
        Assert.That(off.GetRequiredService<IOffHeapCacheProvider>().GetMetrics("plain").LatencyHistogramEnabled, Is.False);

        var services = new ServiceCollection();
        services.AddMetrics();
        services.AddOffHeapCache(s => { s.CapacityBytes = 1 << 20; s.ShardCount = 1; s.EnableLatencyHistogram = true; });
        services.AddOffHeapDistributedCache();
        using ServiceProvider provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<IMeterFactory>();
        IDistributedCache cache = provider.GetRequiredService<IDistributedCache>();
        using var durations = new MetricCollector<double>(factory, OffHeapCacheMetrics.MeterName, "cachekit.offheap.operation.duration");

        cache.Set("k", [1, 2, 3], new DistributedCacheEntryOptions());
        Assert.That(cache.Get("k"), Is.EqualTo(new byte[] { 1, 2, 3 }));
        cache.Remove("k");

        string[] operations = durations.GetMeasurementSnapshot().Select(m => (string)m.Tags["operation"]!).ToArray();
        Assert.That(operations, Is.EqualTo(new[] { "set", "get", "remove" }));
        Assert.That(durations.GetMeasurementSnapshot().All(m => m.Value >= 0 && Equals(m.Tags[OffHeapCacheMetrics.CacheNameTag], "Default")));
        Assert.That(durations.Instrument!.Unit, Is.EqualTo("s"));
    }

    [Test]
    public void Bad_arguments_name_the_parameter()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 1 << 20, ShardCount = 1 });
        Assert.That(() => new OffHeapCacheMetrics(null!, "x"), Throws.ArgumentNullException.With.Property("ParamName").EqualTo("cache"));
        Assert.That(() => new OffHeapCacheMetrics(cache, " "), Throws.ArgumentException.With.Property("ParamName").EqualTo("cacheName"));
    }
}

using System.Diagnostics.Metrics;
using CacheKit.OffHeap.Extensions;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.DependencyInjection;

namespace CacheKit.OffHeap.Extensions.Tests;

/// <summary>OffHeapCacheMetrics at its edges: a monotonic capacity-evictions counter, unique cache names, Dispose.</summary>
public sealed class MetricsEdgeTests
{
    [Test]
    public void The_capacity_evictions_counter_never_goes_backwards()
    {
        // cachekit.offheap.evictions{reason=capacity} is an ObservableCounter: it publishes the engine's own
        // CacheStatistics.CapacityEvictions, never a difference of two counters read one after the other while a
        // writer bumps both (an old Evictions paired with a new PageReclaims would step back: exporters see a reset).
        const string name = "capacity-monotonic";
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 1 << 20, ShardCount = 1, PageSize = 64 * 1024, AverageEntrySizeHint = 64 });
        using var metrics = new OffHeapCacheMetrics(cache, name);
        long capacity = -1;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == OffHeapCacheMetrics.MeterName && instrument.Name == "cachekit.offheap.evictions")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            bool ours = false, isCapacity = false;
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                ours |= tag.Key == OffHeapCacheMetrics.CacheNameTag && Equals(tag.Value, name);
                isCapacity |= tag.Key == "reason" && Equals(tag.Value, "capacity");
            }
            if (ours && isCapacity)
            {
                capacity = value;
            }
        });
        listener.Start();

        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(8));
        Task writer = Task.Run(() =>
        {
            var key = new byte[8];
            byte[] small = new byte[100], big = new byte[4000];
            long i = 0;
            while (!stop.IsCancellationRequested)
            {
                for (int j = 0; j < 8000; j++)
                {
                    BitConverter.TryWriteBytes(key, i++);
                    cache.Set(key, small);
                }
                for (int j = 0; j < 300; j++)
                {
                    BitConverter.TryWriteBytes(key, i++);
                    cache.Set(key, big);
                }
            }
        });
        long last = 0, steps = 0, worst = 0;
        while (!writer.IsCompleted)
        {
            listener.RecordObservableInstruments();
            if (capacity < last)
            {
                steps++;
                worst = Math.Max(worst, last - capacity);
            }
            last = capacity;
        }
        writer.Wait();
        Assert.That(cache.GetStatistics().PageReclaims, Is.GreaterThan(0), "the workload must reclaim pages");
        Assert.That(last, Is.GreaterThan(0), "the counter was observed");
        Assert.That(steps, Is.Zero, $"the capacity counter stepped back {steps} times (by up to {worst})");
    }

    [Test]
    public void Two_metrics_with_one_cache_name_on_one_meter_factory_are_refused()
    {
        // cacheName is "unique among the caches of one meter factory": a second live OffHeapCacheMetrics with the
        // same name (e.g. a hand-made one next to the DI one) would publish identical series that exporters merge.
        var services = new ServiceCollection();
        services.AddMetrics();
        services.AddOffHeapCache(s => { s.CapacityBytes = 1 << 20; s.ShardCount = 1; });
        using ServiceProvider provider = services.BuildServiceProvider();
        provider.GetRequiredService<OffHeapCache>();
        var factory = provider.GetRequiredService<IMeterFactory>();
        using var other = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 1 << 20, ShardCount = 1 });
        OffHeapCacheMetrics? second = null;
        try
        {
            Assert.That(() => second = new OffHeapCacheMetrics(other, OffHeapCacheServiceCollectionExtensions.DefaultCacheName, factory),
                Throws.ArgumentException.With.Property(nameof(ArgumentException.ParamName)).EqualTo("cacheName"));
        }
        finally
        {
            second?.Dispose();
        }
    }

    [Test]
    public void A_cache_name_is_free_again_once_its_metrics_are_disposed()
    {
        var services = new ServiceCollection();
        services.AddMetrics();
        using ServiceProvider provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<IMeterFactory>();
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 1 << 20, ShardCount = 1 });
        new OffHeapCacheMetrics(cache, "reused", factory).Dispose();
        Assert.That(() => new OffHeapCacheMetrics(cache, "reused", factory).Dispose(), Throws.Nothing);
    }

    [Test]
    public void A_disposed_metrics_object_records_no_more_durations()
    {
        // "after either is disposed the instruments report nothing": that includes the shared (factory-owned)
        // histogram, which RecordDuration stops writing to once Dispose has run.
        var services = new ServiceCollection();
        services.AddMetrics();
        using ServiceProvider provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<IMeterFactory>();
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1 });
        var metrics = new OffHeapCacheMetrics(cache, "timed", factory, enableLatencyHistogram: true);
        var distributed = new OffHeapDistributedCache(cache, metrics: metrics);
        using var durations = new Microsoft.Extensions.Diagnostics.Metrics.Testing.MetricCollector<double>(factory, OffHeapCacheMetrics.MeterName, "cachekit.offheap.operation.duration");
        metrics.Dispose();
        distributed.Set("k", [1], new DistributedCacheEntryOptions());
        Assert.That(durations.GetMeasurementSnapshot(), Is.Empty);
    }
}

using CacheKit.OffHeap.Extensions;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace CacheKit.OffHeap.Extensions.Tests;

/// <summary>
/// The library has no OpenTelemetry code: its meter is a plain System.Diagnostics.Metrics meter.
/// This shows an OpenTelemetry MeterProvider that only names the meter picks up its instruments.
/// </summary>
public sealed class OpenTelemetryTests
{
    [Test]
    public void An_OpenTelemetry_meter_provider_exports_the_cache_instruments_by_meter_name()
    {
        var exported = new List<Metric>();
        using MeterProvider meterProvider = Sdk.CreateMeterProviderBuilder()
            .AddMeter(OffHeapCacheMetrics.MeterName)
            .AddInMemoryExporter(exported)
            .Build()!;

        var services = new ServiceCollection();
        services.AddMetrics();
        services.AddOffHeapCache("otel", s => { s.CapacityBytes = 4 << 20; s.ShardCount = 1; });
        using ServiceProvider provider = services.BuildServiceProvider();
        OffHeapCache cache = provider.GetRequiredKeyedService<OffHeapCache>("otel");

        cache.Set("a"u8, "1"u8);
        Span<byte> buffer = stackalloc byte[8];
        Assert.That(cache.TryGet("a"u8, buffer, out _), Is.True);
        Assert.That(cache.TryGet("missing"u8, buffer, out _), Is.False);

        Assert.That(meterProvider.ForceFlush(), Is.True);

        Metric requests = exported.Last(m => m.Name == "cachekit.offheap.requests");
        var byResult = new Dictionary<string, long>();
        foreach (ref readonly MetricPoint point in requests.GetMetricPoints())
        {
            string? cacheName = null, result = null;
            foreach (KeyValuePair<string, object?> tag in point.Tags)
            {
                if (tag.Key == OffHeapCacheMetrics.CacheNameTag) cacheName = tag.Value as string;
                if (tag.Key == "result") result = tag.Value as string;
            }
            if (cacheName == "otel" && result is not null)
            {
                byResult[result] = point.GetSumLong();
            }
        }
        Assert.That(byResult, Does.ContainKey("hit").WithValue(1L));
        Assert.That(byResult, Does.ContainKey("miss").WithValue(1L));
        Assert.That(exported.Select(m => m.Name), Does.Contain("cachekit.offheap.native_bytes"));
        Assert.That(exported.Select(m => m.Name), Does.Contain("cachekit.offheap.capacity_bytes"));
    }
}

using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using CacheKit.OffHeap.Extensions;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CacheKit.OffHeap.Extensions.Tests;

/// <summary>Review rev6: each test states the expected behaviour; those that fail on the current code prove a finding.</summary>
public sealed class ReviewFindingsTests
{
    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "StripeOf")]
    private static extern Lock StripeOf(OffHeapDistributedCache cache, ReadOnlySpan<byte> key);

    [Test]
    public void Review_a_key_longer_than_MaxKeyBytes_reads_as_a_miss_like_MemoryDistributedCache()
    {
        // Set refuses such a key, so nothing can be stored under it: Get/TryGet should report a miss and
        // Refresh/Remove do nothing, as MemoryDistributedCache (no key limit) does for an absent key.
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1, MaxKeyBytes = 16 });
        var distributed = new OffHeapDistributedCache(cache);
        IDistributedCache reference = new MemoryDistributedCache(Options.Create(new MemoryDistributedCacheOptions()));
        string key = new('x', 17);

        Assert.That(reference.Get(key), Is.Null);
        Assert.Multiple(() =>
        {
            Assert.That(() => distributed.Get(key), Throws.Nothing, "Get");
            Assert.That(() => distributed.TryGet(key, new ArrayBufferWriter<byte>()), Throws.Nothing, "TryGet");
            Assert.That(() => distributed.Refresh(key), Throws.Nothing, "Refresh");
            Assert.That(() => distributed.Remove(key), Throws.Nothing, "Remove");
        });
    }

    [Test]
    public void Review_Get_copies_the_value_into_one_array_only()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 8 << 20, ShardCount = 1 });
        var distributed = new OffHeapDistributedCache(cache);
        const int size = 32 * 1024;
        distributed.Set("k", new byte[size], new DistributedCacheEntryOptions());
        for (int i = 0; i < 3; i++)
        {
            distributed.Get("k");   // warm the pool and the JIT
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        byte[]? value = distributed.Get("k");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(value!.Length, Is.EqualTo(size));
        Assert.That(allocated, Is.LessThan(size + 4096), "Get should allocate the returned array and little else");
    }

    [Test]
    public void Review_Refresh_does_not_copy_the_value_to_the_managed_heap()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 8 << 20, ShardCount = 1 });
        var distributed = new OffHeapDistributedCache(cache);
        const int size = 32 * 1024;
        distributed.Set("k", new byte[size], new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.FromHours(1) });
        for (int i = 0; i < 3; i++)
        {
            distributed.Refresh("k");
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        distributed.Refresh("k");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(allocated, Is.LessThan(4096), "Refresh returns nothing; it should not allocate a value-sized buffer");
    }

    [Test]
    public void Review_keys_that_share_a_64_byte_prefix_spread_over_the_stripes()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1 });
        var distributed = new OffHeapDistributedCache(cache);
        string prefix = "MyCompany.Catalog.ProductService.GetProductById:tenant=contoso-eu"; // 65 chars
        var stripes = new HashSet<Lock>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < 1000; i++)
        {
            byte[] key = Encoding.UTF8.GetBytes($"{prefix}:{i:D6}");
            stripes.Add(StripeOf(distributed, key));
        }
        Assert.That(stripes.Count, Is.GreaterThan(32), "1000 distinct keys of one length and one long prefix should use most of the 64 stripes");
    }

    [Test]
    public async Task Review_a_distributed_cache_over_an_unregistered_name_stops_the_host_at_start()
    {
        // A typo in AddOffHeapDistributedCache's cache name (or no AddOffHeapCache for "Default") passes the
        // host start and fails on the first request that resolves IDistributedCache / HybridCache.
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddOffHeapCache("sessions", s => { s.CapacityBytes = 4 << 20; s.ShardCount = 1; });
        builder.Services.AddOffHeapDistributedCache("session");   // typo
        using IHost host = builder.Build();
        Exception? atStart = null;
        try
        {
            await host.StartAsync();
        }
        catch (Exception e)
        {
            atStart = e;
        }
        Exception? atFirstUse = null;
        try
        {
            host.Services.GetRequiredService<IDistributedCache>();
        }
        catch (Exception e)
        {
            atFirstUse = e;
        }
        Assert.That(atFirstUse, Is.Not.Null, "the registration is broken");
        Assert.That(atStart, Is.Not.Null, $"the host started; the error came only at first use: {atFirstUse?.GetType().Name}: {atFirstUse?.Message}");
    }

    [Test]
    public void Review_a_GC_heap_hard_limit_does_not_trigger_the_native_budget_warning()
    {
        // Run with DOTNET_GCHeapHardLimit=0x20000000 (512 MiB) in the environment. The provider means to skip the
        // check under a heap hard limit, but looks for AppContext data "GCHeapHardLimit", which the runtime does not
        // publish (the env var and runtimeconfig's System.GC.HeapHardLimit both leave it null), while
        // TotalAvailableMemoryBytes then reports the GC heap limit: a native budget above it draws the warning.
        if (Environment.GetEnvironmentVariable("DOTNET_GCHeapHardLimit") is null)
        {
            Assert.Ignore("set DOTNET_GCHeapHardLimit=0x20000000 to run");
        }
        Assert.That(GC.GetConfigurationVariables()["GCHeapHardLimit"], Is.Not.EqualTo(0UL), "the GC does see the limit");
        var logs = new Microsoft.Extensions.Logging.Testing.FakeLogCollector();
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(new Microsoft.Extensions.Logging.Testing.FakeLoggerProvider(logs)));
        services.AddOffHeapCache(s => { s.CapacityBytes = 768L << 20; s.ShardCount = 1; });
        using ServiceProvider provider = services.BuildServiceProvider();
        provider.GetRequiredService<OffHeapCache>();
        Assert.That(logs.GetSnapshot().Select(r => r.Message), Has.None.Contains("bytes of memory available to this process"),
            $"TotalAvailableMemoryBytes={GC.GetGCMemoryInfo().TotalAvailableMemoryBytes} is the GC heap limit, not the memory a native cache may use");
    }

    [Test]
    public void Review_the_capacity_evictions_counter_never_goes_backwards()
    {
        // cachekit.offheap.evictions{reason=capacity} is an ObservableCounter computed as Evictions - PageReclaims,
        // two counters read one after the other while a writer bumps both: a snapshot can pair an old Evictions
        // with a new PageReclaims, and the "monotonic" counter steps back (exporters see a reset / negative delta).
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 1 << 20, ShardCount = 1, PageSize = 64 * 1024, AverageEntrySizeHint = 64 });
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
            CacheStatistics s = cache.GetStatistics();
            long capacity = s.Evictions - s.PageReclaims;
            if (capacity < last)
            {
                steps++;
                worst = Math.Max(worst, last - capacity);
            }
            last = capacity;
        }
        writer.Wait();
        Assert.That(cache.GetStatistics().PageReclaims, Is.GreaterThan(0), "the workload must reclaim pages");
        Assert.That(steps, Is.Zero, $"the capacity counter stepped back {steps} times (by up to {worst})");
    }

    [Test]
    public void Review_two_metrics_with_one_cache_name_on_one_meter_factory_are_refused()
    {
        // The constructor documents cacheName as "unique among the caches of one meter factory" but does not
        // check it: two caches then publish identical series (same instrument, same tags) that exporters merge
        // or overwrite, e.g. a hand-made OffHeapCacheMetrics(cache, "Default", factory) next to the DI one.
        var services = new ServiceCollection();
        services.AddMetrics();
        services.AddOffHeapCache(s => { s.CapacityBytes = 1 << 20; s.ShardCount = 1; });
        using ServiceProvider provider = services.BuildServiceProvider();
        provider.GetRequiredService<OffHeapCache>();
        var factory = provider.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        using var other = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 1 << 20, ShardCount = 1 });
        OffHeapCacheMetrics? second = null;
        try
        {
            Assert.That(() => second = new OffHeapCacheMetrics(other, OffHeapCacheServiceCollectionExtensions.DefaultCacheName, factory),
                Throws.ArgumentException);
        }
        finally
        {
            second?.Dispose();
        }
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Review_a_read_of_a_sliding_entry_counts_one_access_in_the_policy(bool aIsSliding)
    {
        // ReadLive's re-read is uncounted "because the policy saw this Get's lookup above", but the renewal is a
        // Set of an existing key, i.e. IEvictionPolicy.OnUpdate, which "counts as an access": every Get/Refresh of
        // a sliding entry is two accesses. Here A is read 2x and B 3x; LFU must evict A (less used), not B.
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1, MaxEntries = 2, Policy = CachePolicy.Lfu });
        var distributed = new OffHeapDistributedCache(cache);
        var optionsA = aIsSliding
            ? new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromHours(1) }
            : new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.FromHours(1) };
        distributed.Set("A", [1], optionsA);
        distributed.Set("B", [2], new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.FromHours(1) });
        for (int i = 0; i < 2; i++)
        {
            distributed.Get("A");
        }
        for (int i = 0; i < 3; i++)
        {
            distributed.Get("B");
        }
        distributed.Set("C", [3], new DistributedCacheEntryOptions());   // at the entry bound: one of A, B leaves
        Assert.That(cache.ContainsKey("B"u8), Is.True, $"B (3 reads) was evicted in favour of A (2 reads, sliding={aIsSliding})");
    }

    [Test]
    public void Review_a_disposed_metrics_object_records_no_more_durations()
    {
        // "after either is disposed the instruments report nothing": the observable instruments stop, but
        // RecordDuration keeps writing to the shared (factory-owned) histogram after Dispose.
        var services = new ServiceCollection();
        services.AddMetrics();
        using ServiceProvider provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1 });
        var metrics = new OffHeapCacheMetrics(cache, "timed", factory, enableLatencyHistogram: true);
        var distributed = new OffHeapDistributedCache(cache, metrics: metrics);
        using var durations = new Microsoft.Extensions.Diagnostics.Metrics.Testing.MetricCollector<double>(factory, OffHeapCacheMetrics.MeterName, "cachekit.offheap.operation.duration");
        metrics.Dispose();
        distributed.Set("k", [1], new DistributedCacheEntryOptions());
        Assert.That(durations.GetMeasurementSnapshot(), Is.Empty);
    }
}

using CacheKit.OffHeap.Extensions;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CacheKit.OffHeap.Extensions.Tests;

/// <summary>What the host start checks, and the start-up warnings that must not be false alarms.</summary>
public sealed class HostingEdgeTests
{
    private static async Task<(Exception? AtStart, Exception? AtFirstUse)> StartAndResolve(HostApplicationBuilder builder)
    {
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
        return (atStart, atFirstUse);
    }

    [Test]
    public async Task A_distributed_cache_over_an_unregistered_name_stops_the_host_at_start()
    {
        // A typo in AddOffHeapDistributedCache's cache name stops the host start, not the first request that
        // resolves IDistributedCache / HybridCache.
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddOffHeapCache("sessions", s => { s.CapacityBytes = 4 << 20; s.ShardCount = 1; });
        builder.Services.AddOffHeapDistributedCache("session");   // typo
        (Exception? atStart, Exception? atFirstUse) = await StartAndResolve(builder);
        Assert.That(atFirstUse, Is.Not.Null, "the registration is broken");
        Assert.That(atStart, Is.Not.Null, $"the host started; the error came only at first use: {atFirstUse?.GetType().Name}: {atFirstUse?.Message}");
        Assert.That(atStart!.Message, Does.Contain("'session'"));
    }

    [Test]
    public async Task A_distributed_cache_without_any_off_heap_cache_stops_the_host_at_start_naming_the_fix()
    {
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddOffHeapDistributedCache();   // no AddOffHeapCache at all
        (Exception? atStart, _) = await StartAndResolve(builder);
        Assert.That(atStart, Is.TypeOf<InvalidOperationException>());
        Assert.That(atStart!.Message, Does.Contain("AddOffHeapCache(\"Default\""));
    }

    [Test]
    public async Task A_distributed_cache_over_a_registered_name_starts_and_resolves()
    {
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddOffHeapDistributedCache("sessions");   // before AddOffHeapCache: the order does not matter
        builder.Services.AddOffHeapCache("sessions", s => { s.CapacityBytes = 4 << 20; s.ShardCount = 1; });
        (Exception? atStart, Exception? atFirstUse) = await StartAndResolve(builder);
        Assert.That(atStart, Is.Null);
        Assert.That(atFirstUse, Is.Null);
    }

    [Test]
    public void A_GC_heap_hard_limit_does_not_trigger_the_native_budget_warning()
    {
        // Run with DOTNET_GCHeapHardLimit=0x20000000 (512 MiB) in the environment. Under a heap hard limit the
        // GC's TotalAvailableMemoryBytes reports that limit, which says nothing about native memory: the provider
        // skips the check, seeing the limit in GC.GetConfigurationVariables() (AppContext data stays null for the
        // environment variable and for runtimeconfig's System.GC.HeapHardLimit).
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
}

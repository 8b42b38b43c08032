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

    [TestCase("GCHeapHardLimit", 0x20000000UL, 0L)]
    [TestCase("GCHeapHardLimitPercent", 50UL, 0L)]
    [TestCase("GCHeapHardLimit", 0UL, 22_000_000_000L)]
    [TestCase("GCServer", 1UL, 22_000_000_000L)]
    public void A_GC_heap_hard_limit_turns_the_native_budget_check_off(string variable, ulong value, long expected)
    {
        // Under a heap hard limit the GC's TotalAvailableMemoryBytes reports that limit, which says nothing about
        // native memory; the provider then skips its check (a 768 MiB cache logged a false warning under a 512 MiB
        // DOTNET_GCHeapHardLimit: AppContext data, which it used to read, stays null for the environment variable).
        // The GC reports its variables as ulong; other integer types are read the same way.
        var gc = new Dictionary<string, object> { [variable] = value, ["GCHeapAffinitizeMask"] = 0L };
        Assert.That(OffHeapCacheProvider.AvailableMemoryBytes(gc, 22_000_000_000L), Is.EqualTo(expected));
        gc[variable] = (long)value;
        Assert.That(OffHeapCacheProvider.AvailableMemoryBytes(gc, 22_000_000_000L), Is.EqualTo(expected));
        Assert.That(OffHeapCacheProvider.AvailableMemoryBytes(new Dictionary<string, object>(), 5L), Is.EqualTo(5L), "no variable: no limit");
    }
}

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

    [TestCase("env", "DOTNET_GCHeapHardLimit", "0x20000000", 0L)]
    [TestCase("env", "COMPlus_GCHeapHardLimitPercent", "50", 0L)]
    [TestCase("env", "DOTNET_GCHeapHardLimitSOH", "0x10000000", 0L)]
    [TestCase("env", "DOTNET_GCHeapHardLimit", "0x0", 22_000_000_000L)]
    [TestCase("env", "DOTNET_GCServer", "1", 22_000_000_000L)]
    [TestCase("appContext", "System.GC.HeapHardLimit", "1610612736", 0L)]
    [TestCase("appContext", "System.GC.HeapHardLimitPercent", "0", 22_000_000_000L)]
    [TestCase("none", "", "", 22_000_000_000L)]
    public void Only_an_explicit_GC_heap_hard_limit_turns_the_native_budget_check_off(string source, string name, string value, long expected)
    {
        // Under an explicit heap hard limit the GC's TotalAvailableMemoryBytes reports that limit, which says nothing
        // about native memory, so the provider skips its check (it used to read AppContext's "GCHeapHardLimit", null for
        // every real setting: a 768 MiB cache logged a false warning under a 512 MiB DOTNET_GCHeapHardLimit). In a
        // container with a memory limit and no explicit setting, the GC sets a heap limit of its own (75 % of the
        // container's; GC.GetConfigurationVariables shows it), and the check must still run: so only the user's
        // settings count (a review of a first fix that read GC.GetConfigurationVariables found it off in every container).
        Func<string, string?> environment = v => source == "env" && v == name ? value : null;
        Func<string, object?> appContext = k => source == "appContext" && k == name ? long.Parse(value, System.Globalization.CultureInfo.InvariantCulture) : null;
        Assert.That(OffHeapCacheProvider.AvailableMemoryBytes(environment, appContext, 22_000_000_000L), Is.EqualTo(expected));
    }
}

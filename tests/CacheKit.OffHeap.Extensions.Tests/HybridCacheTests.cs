using CacheKit.OffHeap.Extensions;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.DependencyInjection;

namespace CacheKit.OffHeap.Extensions.Tests;

public sealed class HybridCacheTests
{
    [Test]
    public async Task HybridCache_uses_the_off_heap_cache_as_its_L2()
    {
        var services = new ServiceCollection();
        services.AddOffHeapCache(s => { s.CapacityBytes = 8 << 20; s.ShardCount = 1; });
        services.AddOffHeapDistributedCache();
        services.AddHybridCache();
        await using ServiceProvider provider = services.BuildServiceProvider();
        Assert.That(provider.GetRequiredService<IDistributedCache>(), Is.InstanceOf<OffHeapDistributedCache>());

        HybridCache hybrid = provider.GetRequiredService<HybridCache>();
        int calls = 0;
        string first = await hybrid.GetOrCreateAsync("user:42", _ => { calls++; return ValueTask.FromResult("Ada Lovelace"); });
        string second = await hybrid.GetOrCreateAsync("user:42", _ => { calls++; return ValueTask.FromResult("someone else"); });
        Assert.That((first, second, calls), Is.EqualTo(("Ada Lovelace", "Ada Lovelace", 1)));

        OffHeapCache offHeap = provider.GetRequiredService<OffHeapCache>();
        Assert.That(offHeap.Count, Is.EqualTo(1), "HybridCache wrote its L2 entry off heap");

        // A second HybridCache (another process, say) with an empty L1 over the same L2: served from off heap.
        var other = new ServiceCollection();
        other.AddSingleton<IDistributedCache>(provider.GetRequiredService<OffHeapDistributedCache>());
        other.AddHybridCache();
        await using ServiceProvider otherProvider = other.BuildServiceProvider();
        string third = await otherProvider.GetRequiredService<HybridCache>().GetOrCreateAsync("user:42",
            _ => { calls++; return ValueTask.FromResult("from the database"); });
        Assert.That((third, calls), Is.EqualTo(("Ada Lovelace", 1)));
        Assert.That(offHeap.GetStatistics().Hits, Is.GreaterThan(0));

        await hybrid.RemoveAsync("user:42");
        Assert.That(offHeap.Count, Is.Zero, "remove reaches L2");
    }

    [Test]
    public async Task A_value_too_large_for_L2_is_still_served_and_nothing_is_stored_off_heap()
    {
        var services = new ServiceCollection();
        services.AddOffHeapCache(s => { s.CapacityBytes = 8 << 20; s.ShardCount = 1; s.PageSize = 64 * 1024; });
        services.AddOffHeapDistributedCache();
        services.AddHybridCache();
        await using ServiceProvider provider = services.BuildServiceProvider();
        HybridCache hybrid = provider.GetRequiredService<HybridCache>();
        var distributed = provider.GetRequiredService<OffHeapDistributedCache>();
        string big = new('x', distributed.MaxValueBytes + 1000);

        string value = await hybrid.GetOrCreateAsync("big", _ => ValueTask.FromResult(big));

        Assert.That(value, Is.EqualTo(big), "HybridCache serves the value even though its L2 refused it");
        Assert.That(provider.GetRequiredService<OffHeapCache>().Count, Is.Zero);
    }
}

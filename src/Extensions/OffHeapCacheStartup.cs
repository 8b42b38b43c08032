using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CacheKit.OffHeap.Extensions;

/// <summary>
/// Creates every registered cache when the host starts, so a bad setting stops the start with a
/// message naming it instead of failing on the first request; logs a summary when the host stops.
/// </summary>
internal sealed class OffHeapCacheStartup(OffHeapCacheProvider provider) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (string name in provider.CacheNames)
        {
            cancellationToken.ThrowIfCancellationRequested();
            provider.GetCache(name);
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        provider.LogSummaries();
        return Task.CompletedTask;
    }
}

/// <summary>
/// Resolves the <see cref="OffHeapDistributedCache"/> that AddOffHeapDistributedCache registered when the host
/// starts, so a cache name no AddOffHeapCache registered (a typo, or no default cache) stops the start instead of
/// failing on the first request that resolves IDistributedCache or HybridCache.
/// </summary>
internal sealed class OffHeapDistributedCacheStartup(IServiceProvider services) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        services.GetRequiredService<OffHeapDistributedCache>();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

namespace CacheKit.OffHeap.Extensions;

/// <summary>
/// The named off-heap caches of a container. Each is created on first use (or when the host starts),
/// lives as long as the container, and is disposed with it.
/// </summary>
public interface IOffHeapCacheProvider
{
    /// <summary>The names registered with <c>AddOffHeapCache</c>.</summary>
    IReadOnlyCollection<string> CacheNames { get; }

    /// <summary>The cache registered under <paramref name="name"/>, created on first call.</summary>
    /// <exception cref="ArgumentException">No cache of that name was registered.</exception>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">Its settings are invalid; the message names the setting.</exception>
    /// <exception cref="ObjectDisposedException">The container was disposed.</exception>
    OffHeapCache GetCache(string name);

    /// <summary>The metrics of the cache registered under <paramref name="name"/> (created with it: the first call creates both).</summary>
    /// <exception cref="ArgumentException">No cache of that name was registered.</exception>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">Its settings are invalid; the message names the setting.</exception>
    /// <exception cref="ObjectDisposedException">The container was disposed.</exception>
    OffHeapCacheMetrics GetMetrics(string name);
}

using Microsoft.Extensions.DependencyInjection;

namespace CacheKit.OffHeap.Extensions;

/// <summary>Returned by <c>AddOffHeapCache</c> to configure one named cache further.</summary>
public sealed class OffHeapCacheBuilder
{
    private readonly CacheRegistration _registration;

    internal OffHeapCacheBuilder(IServiceCollection services, CacheRegistration registration)
    {
        Services = services;
        _registration = registration;
    }

    /// <summary>The service collection the cache is registered in.</summary>
    public IServiceCollection Services { get; }

    /// <summary>The cache's name (also its service key).</summary>
    public string Name => _registration.Name;

    /// <summary>
    /// Adjusts the engine options after the settings were applied, for what configuration cannot
    /// carry (an <see cref="OffHeapCacheOptions.EvictionListener"/>, say). Runs once, when the cache is created.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="configure"/> is null.</exception>
    public OffHeapCacheBuilder ConfigureCacheOptions(Action<OffHeapCacheOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        _registration.ConfigureCacheOptions += configure;
        return this;
    }
}

/// <summary>What AddOffHeapCache recorded about one name: where its settings come from, extra engine setup.</summary>
internal sealed class CacheRegistration(string name)
{
    public string Name { get; } = name;

    /// <summary>The configuration path the settings were bound from (for error messages), or null.</summary>
    public string? ConfigurationPath { get; set; }

    public Action<OffHeapCacheOptions>? ConfigureCacheOptions { get; set; }
}

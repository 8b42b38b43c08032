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

    /// <summary>
    /// Registers a typed view of this cache, <see cref="OffHeapCache{TKey, TValue}"/>: a keyed singleton under the cache's
    /// name (<c>[FromKeyedServices("products")] OffHeapCache&lt;int, Product&gt; products</c>), and for the default cache
    /// also without a key. It reads and writes this cache (its budget, policy, metrics) and leaves the cache's disposal to
    /// the container; after that every call of the view throws <see cref="ObjectDisposedException"/>.
    /// </summary>
    /// <remarks>One typed view per cache: views of one cache would share its key space, and a key written through one
    /// would be read back through the other's value serializer. For a second value type, register a second named cache
    /// (each with its own budget), or build views yourself over <see cref="IOffHeapCacheProvider.GetCache"/> with key
    /// serializers that cannot collide.</remarks>
    /// <param name="keySerializer">Key serializer; null = <see cref="CacheSerializers.GetDefault{T}"/>.</param>
    /// <param name="valueSerializer">Value serializer; null = <see cref="CacheSerializers.GetDefault{T}"/>. For classes and
    /// records: <c>new JsonCacheSerializer&lt;Product&gt;(AppJsonContext.Default.Product)</c>.</param>
    /// <exception cref="ArgumentException">A serializer was not given and no built-in one fits its type (checked now, not at
    /// the first resolve), or this cache already has a typed view.</exception>
    public OffHeapCacheBuilder AddTypedCache<TKey, TValue>(ICacheSerializer<TKey>? keySerializer = null, ICacheSerializer<TValue>? valueSerializer = null)
    {
        if (_registration.TypedView is { } existing)
        {
            throw new ArgumentException(
                $"The off-heap cache '{Name}' already has a typed view ({existing}); views of one cache share its keys. Register another named cache for another typed view.",
                nameof(TKey));
        }
        ICacheSerializer<TKey> keys = keySerializer ?? CacheSerializers.GetDefault<TKey>();
        ICacheSerializer<TValue> values = valueSerializer ?? CacheSerializers.GetDefault<TValue>();
        _registration.TypedView = $"OffHeapCache<{typeof(TKey).Name}, {typeof(TValue).Name}>";

        string name = Name;
        // ownsCache: false: the provider owns (and the container disposes) the byte cache; disposing the view does nothing.
        Services.AddKeyedSingleton(name, (sp, _) => new OffHeapCache<TKey, TValue>(
            sp.GetRequiredService<IOffHeapCacheProvider>().GetCache(name), keys, values, ownsCache: false));
        if (name == OffHeapCacheServiceCollectionExtensions.DefaultCacheName)
        {
            Services.AddSingleton(sp => sp.GetRequiredKeyedService<OffHeapCache<TKey, TValue>>(name));
        }
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

    /// <summary>The typed view registered with AddTypedCache (its type, for messages), or null.</summary>
    public string? TypedView { get; set; }
}

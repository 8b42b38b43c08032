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
    /// <remarks>One typed view per cache, and not on the cache that <c>AddOffHeapDistributedCache</c> serves: views of one
    /// cache would share its key space, and a key written through one would be read back through the other's value
    /// serializer (the distributed cache keeps an expiration header in front of every value). For a second value type,
    /// register a second named cache (each with its own budget), or build views yourself over
    /// <see cref="IOffHeapCacheProvider.GetCache"/> with key serializers that cannot collide. A typed view of the cache that
    /// the distributed cache serves is refused when either is first resolved (the distributed cache is resolved when the
    /// host starts, so the start fails).</remarks>
    /// <param name="keySerializer">Key serializer; null = <see cref="CacheSerializers.GetDefault{T}"/>.</param>
    /// <param name="valueSerializer">Value serializer; null = <see cref="CacheSerializers.GetDefault{T}"/>. For classes and
    /// records: <c>new SystemTextJsonSerializer&lt;Product&gt;(AppJsonContext.Default.Product)</c>.</param>
    /// <exception cref="ArgumentException">A serializer was not given and no built-in one fits its type (checked now, not at
    /// the first resolve).</exception>
    /// <exception cref="InvalidOperationException">This cache already has a typed view.</exception>
    public OffHeapCacheBuilder AddTypedCache<TKey, TValue>(ICacheSerializer<TKey>? keySerializer = null, ICacheSerializer<TValue>? valueSerializer = null)
    {
        ThrowIfTypedViewExists();
        ICacheSerializer<TKey> keys = keySerializer ?? CacheSerializers.GetDefault<TKey>();
        ICacheSerializer<TValue> values = valueSerializer ?? CacheSerializers.GetDefault<TValue>();
        return AddTypedView(_ => keys, _ => values);
    }

    /// <summary>
    /// <see cref="AddTypedCache{TKey, TValue}(ICacheSerializer{TKey}, ICacheSerializer{TValue})"/> with a value serializer
    /// built from the container when the view is first resolved, e.g. with the application's JSON metadata:
    /// <c>AddTypedCache&lt;int, Product&gt;(sp =&gt; new SystemTextJsonSerializer&lt;Product&gt;(sp.GetRequiredService&lt;AppJsonContext&gt;().Product))</c>.
    /// </summary>
    /// <param name="valueSerializerFactory">Builds the value serializer (called once, at the first resolve).</param>
    /// <param name="keySerializerFactory">Builds the key serializer; null = <see cref="CacheSerializers.GetDefault{T}"/>
    /// (checked now).</param>
    /// <exception cref="ArgumentNullException"><paramref name="valueSerializerFactory"/> is null.</exception>
    /// <exception cref="ArgumentException">No key serializer factory was given and no built-in serializer fits
    /// <typeparamref name="TKey"/>.</exception>
    /// <exception cref="InvalidOperationException">This cache already has a typed view. At the first resolve: a factory
    /// returned null.</exception>
    public OffHeapCacheBuilder AddTypedCache<TKey, TValue>(
        Func<IServiceProvider, ICacheSerializer<TValue>> valueSerializerFactory,
        Func<IServiceProvider, ICacheSerializer<TKey>>? keySerializerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(valueSerializerFactory);
        ThrowIfTypedViewExists();
        if (keySerializerFactory is null)
        {
            ICacheSerializer<TKey> keys = CacheSerializers.GetDefault<TKey>();
            keySerializerFactory = _ => keys;
        }
        return AddTypedView(keySerializerFactory, valueSerializerFactory);
    }

    private void ThrowIfTypedViewExists()
    {
        if (_registration.TypedView is { } existing)
        {
            throw new InvalidOperationException(
                $"The off-heap cache '{Name}' already has a typed view ({existing}); views of one cache share its keys. Register another named cache for another typed view.");
        }
    }

    private OffHeapCacheBuilder AddTypedView<TKey, TValue>(
        Func<IServiceProvider, ICacheSerializer<TKey>> keySerializer, Func<IServiceProvider, ICacheSerializer<TValue>> valueSerializer)
    {
        string view = $"OffHeapCache<{TypeNames.Of(typeof(TKey))}, {TypeNames.Of(typeof(TValue))}>";
        _registration.TypedView = view;
        string name = Name;
        // ownsCache: false: the provider owns (and the container disposes) the byte cache; disposing the view does nothing.
        Services.AddKeyedSingleton(name, (sp, _) =>
        {
            DistributedCacheRegistration.ThrowIfServedByADistributedCache(sp, name, view);
            ICacheSerializer<TKey> keys = keySerializer(sp)
                ?? throw new InvalidOperationException($"The key serializer factory of {view} on the off-heap cache '{name}' returned null.");
            ICacheSerializer<TValue> values = valueSerializer(sp)
                ?? throw new InvalidOperationException($"The value serializer factory of {view} on the off-heap cache '{name}' returned null.");
            return new OffHeapCache<TKey, TValue>(sp.GetRequiredService<IOffHeapCacheProvider>().GetCache(name), keys, values, ownsCache: false);
        });
        if (name == OffHeapCacheServiceCollectionExtensions.DefaultCacheName)
        {
            // Add, not TryAdd: a cache has one typed view, so this is the only unkeyed view of these types from here.
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

/// <summary>A cache that <c>AddOffHeapDistributedCache</c> named (one per call).</summary>
internal sealed class DistributedCacheRegistration(string cacheName)
{
    public string CacheName { get; } = cacheName;

    /// <summary>For the distributed cache over <paramref name="cacheName"/>: throws when that cache has a typed view.</summary>
    public static void ThrowIfItsCacheHasATypedView(IServiceProvider services, string cacheName)
    {
        CacheRegistration? cache = services.GetServices<CacheRegistration>().FirstOrDefault(r => r.Name == cacheName);
        if (cache?.TypedView is { } view)
        {
            ThrowShared(cacheName, view);
        }
    }

    /// <summary>For the typed view <paramref name="view"/> of <paramref name="cacheName"/>: throws when a distributed cache
    /// was registered over that cache (any call, not only the last, which the host builds: all can be resolved).</summary>
    public static void ThrowIfServedByADistributedCache(IServiceProvider services, string cacheName, string view)
    {
        if (services.GetServices<DistributedCacheRegistration>().Any(r => r.CacheName == cacheName))
        {
            ThrowShared(cacheName, view);
        }
    }

    // Each would read the other's entries as garbage: the distributed cache's values start with its expiration header.
    private static void ThrowShared(string cacheName, string view) => throw new InvalidOperationException(
        $"The off-heap cache '{cacheName}' serves both the distributed cache and a typed view ({view}): they share its keys, and each would read the other's values as garbage (the distributed cache keeps an expiration header in every value). Give the distributed cache a cache of its own: AddOffHeapCache(\"distributed\", ...) and AddOffHeapDistributedCache(\"distributed\").");
}

/// <summary>C#-like names of types for messages (<c>List&lt;Int32&gt;</c>, not <c>List`1</c>).</summary>
internal static class TypeNames
{
    public static string Of(Type type)
    {
        if (type.IsArray && type.GetElementType() is { } element)
        {
            return $"{Of(element)}[{new string(',', type.GetArrayRank() - 1)}]";
        }
        if (!type.IsGenericType)
        {
            return type.Name;
        }
        string name = type.Name;
        int tick = name.IndexOf('`', StringComparison.Ordinal);
        return $"{(tick < 0 ? name : name[..tick])}<{string.Join(", ", type.GetGenericArguments().Select(Of))}>";
    }
}

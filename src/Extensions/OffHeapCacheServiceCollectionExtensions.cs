using System.Diagnostics.Metrics;
using CacheKit.OffHeap;
using CacheKit.OffHeap.Extensions;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Registers off-heap caches in a container: <c>services.AddOffHeapCache(configuration.GetSection("OffHeapCache"))</c>
/// for the default cache (injected as <see cref="OffHeapCache"/>), <c>services.AddOffHeapCache("sessions", ...)</c>
/// for a named one (injected with <c>[FromKeyedServices("sessions")]</c> or through <see cref="IOffHeapCacheProvider"/>).
/// </summary>
/// <remarks>
/// Each cache is a singleton created when the host starts (or on first use without a host), with its
/// <see cref="OffHeapCacheMetrics"/>, and disposed with the container. Its clock is the container's
/// <see cref="TimeProvider"/> when one is registered, else <see cref="TimeProvider.System"/>.
/// </remarks>
public static class OffHeapCacheServiceCollectionExtensions
{
    /// <summary>The name of the default cache.</summary>
    public const string DefaultCacheName = "Default";

    /// <summary>Registers the default cache, configured in code.</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The default cache is already registered.</exception>
    public static OffHeapCacheBuilder AddOffHeapCache(this IServiceCollection services, Action<OffHeapCacheSettings> configure)
        => AddOffHeapCache(services, DefaultCacheName, configure);

    /// <summary>Registers the cache <paramref name="name"/>, configured in code.</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty or already registered.</exception>
    public static OffHeapCacheBuilder AddOffHeapCache(this IServiceCollection services, string name, Action<OffHeapCacheSettings> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        OffHeapCacheBuilder builder = AddCore(services, name, configurationPath: null);
        services.Configure(name, configure);
        return builder;
    }

    /// <summary>Registers the default cache with settings bound from <paramref name="configuration"/> (e.g. the section "OffHeapCache").</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The default cache is already registered.</exception>
    public static OffHeapCacheBuilder AddOffHeapCache(this IServiceCollection services, IConfiguration configuration)
        => AddOffHeapCache(services, DefaultCacheName, configuration);

    /// <summary>
    /// Registers the cache <paramref name="name"/> with settings bound from <paramref name="configuration"/>.
    /// An unknown key or a value of the wrong type fails at start, naming the key.
    /// </summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty or already registered.</exception>
    public static OffHeapCacheBuilder AddOffHeapCache(this IServiceCollection services, string name, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        OffHeapCacheBuilder builder = AddCore(services, name, (configuration as IConfigurationSection)?.Path);
        services.AddOptions<OffHeapCacheSettings>(name)
            .Bind(configuration, binder => binder.ErrorOnUnknownConfiguration = true);
        return builder;
    }

    /// <summary>
    /// Registers <see cref="IDistributedCache"/> and <see cref="IBufferDistributedCache"/> (one
    /// <see cref="OffHeapDistributedCache"/>) over the registered cache <paramref name="cacheName"/>,
    /// replacing any earlier registration, e.g. AddDistributedMemoryCache. HybridCache picks it up as its L2.
    /// </summary>
    /// <remarks>
    /// <para>All writes to that cache should go through the distributed cache: it keeps its own expiration header in each value.
    /// A typed view of it (<c>AddTypedCache</c>) is refused when either is resolved.</para>
    /// <para>The distributed cache is created when the host starts, so a <paramref name="cacheName"/> that no
    /// <c>AddOffHeapCache</c> registered stops the start (without a host: the first resolve throws).</para>
    /// </remarks>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="cacheName"/> is empty or white space.</exception>
    public static IServiceCollection AddOffHeapDistributedCache(this IServiceCollection services, string cacheName = DefaultCacheName)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(cacheName);
        services.AddSingleton(new DistributedCacheRegistration(cacheName));
        services.AddSingleton(sp =>
        {
            DistributedCacheRegistration.ThrowIfItsCacheHasATypedView(sp, cacheName);
            IOffHeapCacheProvider provider = sp.GetService<IOffHeapCacheProvider>()
                ?? throw new InvalidOperationException(
                    $"AddOffHeapDistributedCache(\"{cacheName}\") needs the off-heap cache '{cacheName}', but no off-heap cache is registered. Register it with services.AddOffHeapCache(\"{cacheName}\", ...).");
            // The cache's own clock (null): a TimeProvider set by ConfigureCacheOptions may differ from the container's.
            return new OffHeapDistributedCache(provider.GetCache(cacheName), timeProvider: null, provider.GetMetrics(cacheName));
        });
        services.AddSingleton<IDistributedCache>(sp => sp.GetRequiredService<OffHeapDistributedCache>());
        services.AddSingleton<IBufferDistributedCache>(sp => sp.GetRequiredService<OffHeapDistributedCache>());
        // Resolve it at host start: an unregistered cache name then stops the start, not the first request.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, OffHeapDistributedCacheStartup>(
            sp => new OffHeapDistributedCacheStartup(sp)));
        return services;
    }

    private static OffHeapCacheBuilder AddCore(IServiceCollection services, string name, string? configurationPath)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        foreach (ServiceDescriptor descriptor in services)
        {
            if (descriptor.ServiceType == typeof(CacheRegistration) && descriptor.ImplementationInstance is CacheRegistration existing
                && existing.Name == name)
            {
                throw new ArgumentException($"An off-heap cache named '{name}' is already registered; each name is registered once.", nameof(name));
            }
        }

        var registration = new CacheRegistration(name) { ConfigurationPath = configurationPath };
        services.AddOptions();
        services.AddSingleton(registration);
        services.TryAddSingleton(sp => new OffHeapCacheProvider(
            sp.GetServices<CacheRegistration>(),
            sp.GetRequiredService<IOptionsMonitor<OffHeapCacheSettings>>(),
            sp.GetService<TimeProvider>() ?? TimeProvider.System,
            sp.GetService<IMeterFactory>(),
            sp.GetService<ILoggerFactory>()));
        services.TryAddSingleton<IOffHeapCacheProvider>(sp => sp.GetRequiredService<OffHeapCacheProvider>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, OffHeapCacheStartup>(
            sp => new OffHeapCacheStartup(sp.GetRequiredService<OffHeapCacheProvider>())));

        // The container disposes what a factory returns; the provider disposes it too (Dispose is idempotent).
        services.AddKeyedSingleton(name, (sp, _) => sp.GetRequiredService<IOffHeapCacheProvider>().GetCache(name));
        if (name == DefaultCacheName)
        {
            services.TryAddSingleton(sp => sp.GetRequiredService<IOffHeapCacheProvider>().GetCache(DefaultCacheName));
        }
        return new OffHeapCacheBuilder(services, registration);
    }
}

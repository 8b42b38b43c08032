using System.Text;
using CacheKit.OffHeap.Extensions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace CacheKit.OffHeap.Extensions.Tests;

public sealed class DependencyInjectionTests
{
    private static IConfiguration Json(string json)
        => new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build();

    private static IHost BuildHost(string json, Action<IServiceCollection>? more = null)
    {
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddConfiguration(Json(json));
        builder.Services.AddOffHeapCache(builder.Configuration.GetSection("OffHeapCache"));
        more?.Invoke(builder.Services);
        return builder.Build();
    }

    [Test]
    public void The_default_cache_binds_from_appsettings_json()
    {
        IConfiguration configuration = Json("""
            { "OffHeapCache": { "CapacityBytes": 8388608, "Policy": "S3Fifo", "ShardCount": 2, "MaxKeyBytes": 100, "DefaultTimeToLive": "00:01:00" } }
            """);
        var services = new ServiceCollection();
        services.AddOffHeapCache(configuration.GetSection("OffHeapCache"));
        using ServiceProvider provider = services.BuildServiceProvider();

        OffHeapCache cache = provider.GetRequiredService<OffHeapCache>();
        Assert.That(cache.ShardCount, Is.EqualTo(2));
        Assert.That(cache.MaxKeyBytes, Is.EqualTo(100));
        Assert.That(cache.GetStatistics().CapacityBytes, Is.EqualTo(8388608));
        Assert.That(provider.GetRequiredKeyedService<OffHeapCache>(OffHeapCacheServiceCollectionExtensions.DefaultCacheName), Is.SameAs(cache));
        OffHeapCacheSettings settings = provider.GetRequiredService<IOptionsMonitor<OffHeapCacheSettings>>().Get("Default");
        Assert.That(settings.Policy, Is.EqualTo(CachePolicy.S3Fifo));
        Assert.That(settings.DefaultTimeToLive, Is.EqualTo(TimeSpan.FromMinutes(1)));
    }

    [Test]
    public void Every_engine_setting_reaches_the_cache_options()
    {
        IConfiguration configuration = Json("""
            { "OffHeapCache": { "CapacityBytes": 8388608, "MaxEntries": 1000, "Policy": "Lru", "ShardCount": 2, "MaxKeyBytes": 100,
              "MaxValueBytes": 4000, "PageSize": 65536, "AverageEntrySizeHint": 300, "MaxEvictionsPerInsert": 7,
              "DefaultTimeToLive": "00:01:00", "BackgroundReadReplay": true, "TinyLfuAdmission": true } }
            """);
        var settings = new OffHeapCacheSettings();
        configuration.GetSection("OffHeapCache").Bind(settings);
        OffHeapCacheOptions options = settings.ToCacheOptions(TimeProvider.System);
        Assert.Multiple(() =>
        {
            Assert.That(options.CapacityBytes, Is.EqualTo(8388608));
            Assert.That(options.MaxEntries, Is.EqualTo(1000));
            Assert.That(options.Policy, Is.EqualTo(CachePolicy.Lru));
            Assert.That(options.ShardCount, Is.EqualTo(2));
            Assert.That(options.MaxKeyBytes, Is.EqualTo(100));
            Assert.That(options.MaxValueBytes, Is.EqualTo(4000));
            Assert.That(options.PageSize, Is.EqualTo(65536));
            Assert.That(options.AverageEntrySizeHint, Is.EqualTo(300));
            Assert.That(options.MaxEvictionsPerInsert, Is.EqualTo(7));
            Assert.That(options.DefaultTimeToLive, Is.EqualTo(TimeSpan.FromMinutes(1)));
            Assert.That(options.BackgroundReadReplay, Is.True);
            Assert.That(options.TinyLfuAdmission, Is.True);
        });
        Assert.That(new OffHeapCacheSettings().ToCacheOptions(TimeProvider.System).BackgroundReadReplay, Is.False, "off unless asked for");
    }

    [Test]
    public void Named_caches_are_distinct_keyed_singletons()
    {
        var services = new ServiceCollection();
        services.AddOffHeapCache("sessions", s => { s.CapacityBytes = 2 << 20; s.ShardCount = 1; });
        services.AddOffHeapCache("pages", s => { s.CapacityBytes = 4 << 20; s.ShardCount = 4; });
        using ServiceProvider provider = services.BuildServiceProvider();

        OffHeapCache sessions = provider.GetRequiredKeyedService<OffHeapCache>("sessions");
        OffHeapCache pages = provider.GetRequiredKeyedService<OffHeapCache>("pages");
        Assert.That(sessions, Is.Not.SameAs(pages));
        Assert.That(provider.GetRequiredKeyedService<OffHeapCache>("sessions"), Is.SameAs(sessions));
        Assert.That(sessions.ShardCount, Is.EqualTo(1));
        Assert.That(pages.ShardCount, Is.EqualTo(4));
        var cacheProvider = provider.GetRequiredService<IOffHeapCacheProvider>();
        Assert.That(cacheProvider.CacheNames, Is.EquivalentTo(new[] { "sessions", "pages" }));
        Assert.That(cacheProvider.GetCache("pages"), Is.SameAs(pages));
        Assert.That(provider.GetService<OffHeapCache>(), Is.Null, "no default cache was registered");

        sessions.Set("k"u8, "v"u8);
        Assert.That(pages.ContainsKey("k"u8), Is.False);
    }

    [Test]
    public void A_registered_cache_serves_typed_callers_through_a_view()
    {
        var services = new ServiceCollection();
        services.AddOffHeapCache("products", s => { s.CapacityBytes = 8 << 20; });
        using ServiceProvider provider = services.BuildServiceProvider();
        OffHeapCache bytes = provider.GetRequiredService<IOffHeapCacheProvider>().GetCache("products");

        using (var products = new OffHeapCache<string, string>(bytes))
        {
            Assert.That(products.Set("sku-1", "kettle"), Is.True);
            Assert.That(products.TryGetValue("sku-1", out string? name), Is.True);
            Assert.That(name, Is.EqualTo("kettle"));
        }
        Assert.That(bytes.Count, Is.EqualTo(1), "the view's Dispose leaves the host's cache to the host");
    }

    [Test]
    public void An_unknown_name_or_a_second_registration_is_refused()
    {
        var services = new ServiceCollection();
        services.AddOffHeapCache("a", s => s.CapacityBytes = 1 << 20);
        Assert.That(() => services.AddOffHeapCache("a", s => s.CapacityBytes = 1 << 20),
            Throws.ArgumentException.With.Message.Contains("'a' is already registered"));
        Assert.That(() => services.AddOffHeapCache(" ", s => { }), Throws.ArgumentException.With.Property("ParamName").EqualTo("name"));
        using ServiceProvider provider = services.BuildServiceProvider();
        Assert.That(() => provider.GetRequiredService<IOffHeapCacheProvider>().GetCache("b"),
            Throws.ArgumentException.With.Message.Contains("No off-heap cache named 'b'").And.Message.Contains("'a'"));
    }

    [Test]
    public async Task A_bad_value_stops_the_host_at_start_naming_the_setting()
    {
        using IHost host = BuildHost("""{ "OffHeapCache": { "CapacityBytes": 1000 } }""");
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.That(e!.Message, Does.Contain("OffHeapCache:CapacityBytes").And.Contain("at least"));
        Assert.That(e.OptionsName, Is.EqualTo("Default"));
    }

    [TestCase("""{ "OffHeapCache": { "CapacityBytes": 8388608, "ShardCount": 3 } }""", "OffHeapCache:ShardCount")]
    [TestCase("""{ "OffHeapCache": { "CapacityBytes": 8388608, "MaxKeyBytes": 0 } }""", "OffHeapCache:MaxKeyBytes")]
    [TestCase("""{ "OffHeapCache": { "CapacityBytes": 8388608, "DefaultTimeToLive": "-00:00:01" } }""", "OffHeapCache:DefaultTimeToLive")]
    public async Task Range_errors_name_the_configuration_key(string json, string key)
    {
        using IHost host = BuildHost(json);
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.That(e!.Message, Does.Contain(key));
    }

    [Test]
    public async Task A_misspelt_key_or_a_wrong_type_fails_at_start_naming_it()
    {
        using (IHost host = BuildHost("""{ "OffHeapCache": { "CapacityBytes": 8388608, "CapacityByte": 5 } }"""))
        {
            var e = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync());
            Assert.That(e!.Message, Does.Contain("CapacityByte").And.Contain("section 'OffHeapCache'"), "the key and the section it is in");
        }
        using (IHost host = BuildHost("""{ "OffHeapCache": { "CapacityBytes": 8388608, "Policy": "Nope" } }"""))
        {
            var e = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync());
            Assert.That(e!.Message, Does.Contain("OffHeapCache:Policy"));
        }
    }

    [Test]
    public async Task Caches_are_created_at_start_logged_and_disposed_with_the_container()
    {
        var logs = new FakeLogCollector();
        IHost host = BuildHost("""{ "OffHeapCache": { "CapacityBytes": 8388608, "Policy": "Mru" } }""",
            s => s.AddLogging(b => b.AddProvider(new FakeLoggerProvider(logs))));
        await host.StartAsync();
        string[] started = logs.GetSnapshot().Select(r => r.Message).ToArray();
        Assert.That(started, Has.Some.Contains("'Default' started: budget 8388608 bytes, policy Mru"));
        Assert.That(started, Has.Some.Contains("kept for study"), "a study-only policy is worth a warning");

        OffHeapCache cache = host.Services.GetRequiredService<OffHeapCache>();
        Span<byte> buffer = stackalloc byte[4];
        for (int i = 0; i < 1000; i++)
        {
            cache.Set("k"u8, "v"u8);
            cache.TryGet("k"u8, buffer, out _);
        }
        Assert.That(logs.Count, Is.EqualTo(started.Length), "nothing is logged per operation");

        await host.StopAsync();
        Assert.That(logs.LatestRecord.Message, Does.Contain("1000 hits"));
        host.Dispose();
        Assert.That(() => cache.Set("k"u8, "v"u8), Throws.TypeOf<ObjectDisposedException>());
        Assert.That(() => host.Services.GetRequiredService<IOffHeapCacheProvider>().GetCache("Default"), Throws.TypeOf<ObjectDisposedException>());
    }

    [Test]
    public void The_container_clock_drives_time_to_live_and_code_can_add_a_listener()
    {
        var time = new FakeTimeProvider();
        var evicted = new List<string>();
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(time);
        services.AddOffHeapCache(s => { s.CapacityBytes = 1 << 20; s.ShardCount = 1; s.MaxEntries = 1; s.DefaultTimeToLive = TimeSpan.FromSeconds(30); })
            .ConfigureCacheOptions(o => o.EvictionListener = (key, reason) => evicted.Add($"{Encoding.UTF8.GetString(key)}:{reason}"));
        using ServiceProvider provider = services.BuildServiceProvider();
        OffHeapCache cache = provider.GetRequiredService<OffHeapCache>();

        cache.Set("a"u8, "1"u8);
        time.Advance(TimeSpan.FromSeconds(29));
        Assert.That(cache.ContainsKey("a"u8), Is.True);
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.That(cache.ContainsKey("a"u8), Is.False);
        cache.Set("b"u8, "2"u8);
        Assert.That(evicted, Is.EqualTo(new[] { "a:Expired" }));
    }

    [Test]
    public void A_configure_callback_that_asks_for_its_own_cache_gets_an_exception_not_a_stack_overflow()
    {
        // The provider's lock is re-entrant, so the callback's GetCache started another Create of the same cache, and so
        // on until the stack overflowed (a process crash; found by review). Another cache may still be asked for.
        ServiceProvider? provider = null;
        Exception? fromCallback = null;
        var services = new ServiceCollection();
        services.AddOffHeapCache("other", s => s.CapacityBytes = 1 << 20);
        services.AddOffHeapCache("self", s => s.CapacityBytes = 1 << 20)
            .ConfigureCacheOptions(o =>
            {
                var caches = provider!.GetRequiredService<IOffHeapCacheProvider>();
                Assert.That(caches.GetCache("other"), Is.Not.Null);
                try
                {
                    caches.GetCache("self");
                }
                catch (Exception e)
                {
                    fromCallback = e;
                    throw;
                }
            });
        using (provider = services.BuildServiceProvider())
        {
            var caches = provider.GetRequiredService<IOffHeapCacheProvider>();
            Assert.That(() => caches.GetCache("self"), Throws.InvalidOperationException.With.Message.Contains("being created"));
            Assert.That(fromCallback, Is.TypeOf<InvalidOperationException>());
            Assert.That(() => caches.GetCache("self"), Throws.InvalidOperationException, "refused again, not left half-created");
        }
    }

    [Test]
    public void An_expiration_scan_interval_sweeps_expired_entries_on_the_container_clock()
    {
        var time = new FakeTimeProvider();
        var logs = new FakeLogCollector();
        int listenerCalls = 0;
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(time);
        services.AddLogging(b => b.AddProvider(new FakeLoggerProvider(logs)));
        services.AddOffHeapCache(s => { s.CapacityBytes = 4 << 20; s.ExpirationScanInterval = TimeSpan.FromMinutes(1); })
            .ConfigureCacheOptions(o => o.EvictionListener = (_, _) =>
            {
                if (++listenerCalls == 1)
                {
                    throw new InvalidOperationException("listener failed once");
                }
            });
        using (ServiceProvider provider = services.BuildServiceProvider())
        {
            OffHeapCache cache = provider.GetRequiredService<OffHeapCache>();
            for (int i = 0; i < 10; i++)
            {
                cache.Set(Encoding.UTF8.GetBytes($"k{i}"), "v"u8, TimeSpan.FromSeconds(30));
            }
            time.Advance(TimeSpan.FromSeconds(31));
            Assert.That(cache.Count, Is.EqualTo(10), "expired, not yet swept");
            time.Advance(TimeSpan.FromSeconds(29));   // the first scan: its listener throws after one removal, logged
            Assert.That(cache.Count, Is.EqualTo(9));
            Assert.That(logs.GetSnapshot().Select(r => r.Message), Has.Some.Contains("periodic expiration scan failed"));
            time.Advance(TimeSpan.FromMinutes(1));    // the next one runs on time
            Assert.That(cache.Count, Is.Zero);
            Assert.That(cache.GetStatistics().Expirations, Is.EqualTo(10));
        }
        // That the container disposes the timer: ExpirationScanAndEdgeTests.The_container_disposes_the_scan_timer.

        var bad = new ServiceCollection();
        bad.AddOffHeapCache(s => { s.CapacityBytes = 4 << 20; s.ExpirationScanInterval = TimeSpan.Zero; });
        using ServiceProvider badProvider = bad.BuildServiceProvider();
        Assert.That(() => badProvider.GetRequiredService<OffHeapCache>(),
            Throws.TypeOf<OptionsValidationException>().With.Message.Contains("ExpirationScanInterval must be positive"));
    }

    [Test]
    public void A_logger_that_throws_while_a_cache_starts_leaves_no_cache_or_metrics_behind()
    {
        // The cache and its metrics were created before the start-up log lines; a throwing logger left both alive and
        // undisposed, and the orphaned metrics kept the cache name, so the next GetCache failed with "already publishes".
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(new ThrowingLoggerProvider()));
        services.AddMetrics();
        services.AddOffHeapCache(s => { s.CapacityBytes = 1 << 20; s.ShardCount = 1; });
        using ServiceProvider provider = services.BuildServiceProvider();
        var caches = provider.GetRequiredService<IOffHeapCacheProvider>();
        Exception first = Assert.Catch(() => caches.GetCache(OffHeapCacheServiceCollectionExtensions.DefaultCacheName))!;
        Exception second = Assert.Catch(() => caches.GetCache(OffHeapCacheServiceCollectionExtensions.DefaultCacheName))!;
        Assert.That(second.GetType(), Is.EqualTo(first.GetType()), $"the same failure again, not {second.Message}");
        Assert.That(second.ToString(), Does.Contain("logger fails"));
    }

    private sealed class ThrowingLoggerProvider : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new ThrowingLogger();

        public void Dispose()
        {
        }

        private sealed class ThrowingLogger : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
                => throw new InvalidOperationException("the logger fails");
        }
    }
}

using System.Text;
using CacheKit.OffHeap.Extensions;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace CacheKit.OffHeap.Extensions.Tests;

/// <summary>The DI expiration scan and distributed-cache edges: found by the review of the sixteenth session's own diff
/// (2026-11-29, /work/wt/review16-diff.md at the time); each failed on 2c3259b unless it says otherwise.</summary>
public sealed class ExpirationScanAndEdgeTests
{
    [Test]
    public void A_key_short_in_chars_but_too_long_in_UTF8_still_reports_a_disposed_cache()
    {
        // 10 chars (<= MaxKeyBytes 16) but 20 UTF-8 bytes: WithReadKey encodes it, finds it too long and returns "absent"
        // without the disposed check that the fix added to the > MaxKeyBytes chars path only.
        var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1, MaxKeyBytes = 16 });
        var distributed = new OffHeapDistributedCache(cache);
        string key = new('\u00E9', 10);
        cache.Dispose();
        Assert.Multiple(() =>
        {
            Assert.That(() => distributed.Get(key), Throws.TypeOf<ObjectDisposedException>(), "Get");
            Assert.That(() => distributed.TryGet(key, new System.Buffers.ArrayBufferWriter<byte>()), Throws.TypeOf<ObjectDisposedException>(), "TryGet");
            Assert.That(() => distributed.Refresh(key), Throws.TypeOf<ObjectDisposedException>(), "Refresh");
            Assert.That(() => distributed.Remove(key), Throws.TypeOf<ObjectDisposedException>(), "Remove");
        });
    }

    [Test]
    public void An_expiration_scan_interval_the_timer_refuses_is_a_validation_error_and_leaks_nothing()
    {
        // TimeProvider.System's CreateTimer refuses more than 0xFFFFFFFE ms (~49.7 days). The timer is created last,
        // "nothing after it can fail", so the cache and its metrics are already made and are never disposed.
        var services = new ServiceCollection();
        services.AddMetrics();
        services.AddOffHeapCache(s => { s.CapacityBytes = 1 << 20; s.ShardCount = 1; s.ExpirationScanInterval = TimeSpan.FromDays(60); });
        using ServiceProvider provider = services.BuildServiceProvider();
        var caches = provider.GetRequiredService<IOffHeapCacheProvider>();
        Exception first = Assert.Catch(() => caches.GetCache(OffHeapCacheServiceCollectionExtensions.DefaultCacheName))!;
        Exception second = Assert.Catch(() => caches.GetCache(OffHeapCacheServiceCollectionExtensions.DefaultCacheName))!;
        Assert.Multiple(() =>
        {
            Assert.That(first, Is.TypeOf<OptionsValidationException>(), first.ToString());
            Assert.That(second.GetType(), Is.EqualTo(first.GetType()), $"the same failure again, not: {second.Message}");
        });
    }

    [Test]
    public void A_positive_expiration_scan_interval_under_a_millisecond_keeps_scanning()
    {
        // TimeProvider.System truncates the period to whole milliseconds: 0.5 ms becomes period 0, a one-shot timer that
        // fires once at creation (before anything is stored) and never again.
        var services = new ServiceCollection();
        services.AddOffHeapCache(s => { s.CapacityBytes = 1 << 20; s.ShardCount = 1; s.ExpirationScanInterval = TimeSpan.FromTicks(5_000); });
        using ServiceProvider provider = services.BuildServiceProvider();
        OffHeapCache cache;
        try
        {
            cache = provider.GetRequiredService<OffHeapCache>();
        }
        catch (OptionsValidationException e) when (e.Message.Contains("ExpirationScanInterval"))
        {
            return;   // refused up front: also a fix
        }
        cache.Set("k"u8, "v"u8, TimeSpan.FromMilliseconds(20));
        Thread.Sleep(1_000);
        Assert.That(cache.Count, Is.Zero, "the expired entry was swept");
    }

    [Test]
    public void A_listener_that_throws_ObjectDisposedException_during_a_scan_is_logged()
    {
        // ExpirationScan.Run catches every ObjectDisposedException as "the cache was disposed", so a listener's own (a
        // disposed downstream channel, say) is swallowed, though the setting's doc says a sweep that throws is logged.
        var time = new FakeTimeProvider();
        var logs = new FakeLogCollector();
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(time);
        services.AddLogging(b => b.AddProvider(new FakeLoggerProvider(logs)));
        services.AddOffHeapCache(s => { s.CapacityBytes = 4 << 20; s.ExpirationScanInterval = TimeSpan.FromMinutes(1); })
            .ConfigureCacheOptions(o => o.EvictionListener = (_, _) => throw new ObjectDisposedException("downstream"));
        using ServiceProvider provider = services.BuildServiceProvider();
        OffHeapCache cache = provider.GetRequiredService<OffHeapCache>();
        cache.Set("k"u8, "v"u8, TimeSpan.FromSeconds(30));
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.That(cache.Count, Is.Zero, "the scan ran");
        Assert.That(logs.GetSnapshot().Select(r => r.Message), Has.Some.Contains("periodic expiration scan failed"));
    }

    [Test]
    public void A_logger_that_throws_while_a_scan_failure_is_logged_does_not_escape_the_timer_callback()
    {
        // With TimeProvider.System the callback runs on a pool thread, where an escaping exception ends the process;
        // the fake clock runs it inside Advance, which shows it escaping.
        var time = new FakeTimeProvider();
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(time);
        services.AddLogging(b => b.AddProvider(new ThrowsOnEventProvider(5)));
        services.AddOffHeapCache(s => { s.CapacityBytes = 4 << 20; s.ExpirationScanInterval = TimeSpan.FromMinutes(1); })
            .ConfigureCacheOptions(o => o.EvictionListener = (_, _) => throw new InvalidOperationException("listener"));
        using ServiceProvider provider = services.BuildServiceProvider();
        OffHeapCache cache = provider.GetRequiredService<OffHeapCache>();
        cache.Set("k"u8, "v"u8, TimeSpan.FromSeconds(30));
        Assert.That(() => time.Advance(TimeSpan.FromMinutes(1)), Throws.Nothing);
    }

    [Test]
    public async Task The_README_configuration_lets_the_L2_take_a_value_just_under_HybridCaches_limit()
    {
        // The README's MaxValueBytes, 1,052,696: HybridCache's largest payload (its MaximumPayloadBytes, 1 MiB), 4 KiB for
        // HybridCache's own L2 header (version, flags, times, the key) and our 24-byte one. 1,048,600 (no room for
        // HybridCache's header) kept such a value out of the L2 with an error log (the review of 2c3259b).
        var services = new ServiceCollection();
        services.AddOffHeapCache(s => { s.CapacityBytes = 32 << 20; s.Policy = CachePolicy.WTinyLfu; s.MaxValueBytes = 1_052_696; });
        services.AddOffHeapDistributedCache();
        services.AddHybridCache();
        await using ServiceProvider provider = services.BuildServiceProvider();
        HybridCache hybrid = provider.GetRequiredService<HybridCache>();
        var value = new byte[(1 << 20) - 16];
        _ = await hybrid.GetOrCreateAsync("big", _ => ValueTask.FromResult(value));
        Assert.That(provider.GetRequiredService<OffHeapCache>().Count, Is.EqualTo(1), "the value reached the L2");
    }

    [Test]
    public async Task The_scan_timer_does_not_capture_the_execution_context_of_the_first_resolver()
    {
        // TimeProvider.System.CreateTimer flows the ExecutionContext: the timer is created lazily inside whatever flow
        // first resolves the cache (an HTTP request, with its Activity and logging scopes), and every scan, listener
        // included, runs with that flow's AsyncLocals for the container's lifetime.
        var flow = new AsyncLocal<string?>();
        string? seenByListener = "listener not called";
        var services = new ServiceCollection();
        services.AddOffHeapCache(s => { s.CapacityBytes = 1 << 20; s.ShardCount = 1; s.ExpirationScanInterval = TimeSpan.FromMilliseconds(20); })
            .ConfigureCacheOptions(o => o.EvictionListener = (_, _) => seenByListener = flow.Value);
        using ServiceProvider provider = services.BuildServiceProvider();
        OffHeapCache cache = await Task.Run(() =>
        {
            flow.Value = "request-42";
            return provider.GetRequiredService<OffHeapCache>();
        });
        Assert.That(flow.Value, Is.Null);
        cache.Set("k"u8, "v"u8, TimeSpan.FromMilliseconds(10));
        for (int i = 0; i < 100 && cache.Count != 0; i++)
        {
            await Task.Delay(20);
        }
        Assert.That(cache.Count, Is.Zero, "the scan ran");
        Assert.That(seenByListener, Is.Null, "the scan ran in the first resolver's execution context");
    }

    [Test]
    public void The_container_disposes_the_scan_timer()
    {
        // The existing test's "the timer is gone, nothing throws" cannot fail: with the timer left running, each later
        // scan meets ObjectDisposedException, which ExpirationScan.Run swallows (checked by deleting the Dispose call).
        var time = new RecordingTimeProvider();
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(time);
        services.AddOffHeapCache(s => { s.CapacityBytes = 1 << 20; s.ExpirationScanInterval = TimeSpan.FromMinutes(1); });
        using (ServiceProvider provider = services.BuildServiceProvider())
        {
            _ = provider.GetRequiredService<OffHeapCache>();
            Assert.That(time.Timers, Has.Count.EqualTo(1));
            Assert.That(time.Timers[0].Disposed, Is.False);
        }
        Assert.That(time.Timers[0].Disposed, Is.True);
    }

    private sealed class RecordingTimeProvider : FakeTimeProvider
    {
        public List<RecordingTimer> Timers { get; } = [];

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = new RecordingTimer(base.CreateTimer(callback, state, dueTime, period));
            Timers.Add(timer);
            return timer;
        }
    }

    private sealed class RecordingTimer(ITimer inner) : ITimer
    {
        public bool Disposed { get; private set; }

        public bool Change(TimeSpan dueTime, TimeSpan period) => inner.Change(dueTime, period);

        public void Dispose()
        {
            Disposed = true;
            inner.Dispose();
        }

        public ValueTask DisposeAsync()
        {
            Disposed = true;
            return inner.DisposeAsync();
        }
    }

    private sealed class ThrowsOnEventProvider(int eventId) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(eventId);

        public void Dispose()
        {
        }

        private sealed class Logger(int eventId) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId id, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (id.Id == eventId)
                {
                    throw new InvalidOperationException("the logger fails");
                }
            }
        }
    }
}

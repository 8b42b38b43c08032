using System.Buffers;
using CacheKit.OffHeap.Extensions;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Internal;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace CacheKit.OffHeap.Extensions.Tests;

/// <summary>
/// The same scenarios against MemoryDistributedCache (the reference) and OffHeapDistributedCache, both
/// on one fake clock; every expectation written here holds for both.
/// </summary>
[TestFixture("memory")]
[TestFixture("offheap")]
public sealed class DistributedCacheTests(string implementation)
{
    private FakeTimeProvider _time = null!;
    private IDistributedCache _cache = null!;
    private IDisposable? _owned;

    [SetUp]
    public void SetUp()
    {
        _time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        (_cache, _owned) = Create(implementation, _time);
    }

    [TearDown]
    public void TearDown() => _owned?.Dispose();

    internal static (IDistributedCache Cache, IDisposable Owner) Create(string implementation, FakeTimeProvider time)
    {
        if (implementation == "memory")
        {
            // No background expiration scan: it runs on a pool thread and reads the fake clock whenever it gets to
            // run, racing the test's own reads (a scan at a later fake time removed an entry a Get had just renewed,
            // and the reference said "absent" where ours, correctly, still held it: a flaky differential run). An
            // expired entry is still removed when it is read, which is all the comparisons need.
            var memory = new MemoryDistributedCache(Options.Create(new MemoryDistributedCacheOptions
            {
                Clock = new FakeClock(time),
                ExpirationScanFrequency = TimeSpan.FromDays(3650),
            }));
            return (memory, new NoOp());
        }
        var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 2, TimeProvider = time });
        return (new OffHeapDistributedCache(cache, time), cache);
    }

    private static DistributedCacheEntryOptions Relative(int seconds) => new() { AbsoluteExpirationRelativeToNow = TimeSpan.FromSeconds(seconds) };

    private static DistributedCacheEntryOptions Sliding(int seconds) => new() { SlidingExpiration = TimeSpan.FromSeconds(seconds) };

    private void Advance(double seconds) => _time.Advance(TimeSpan.FromSeconds(seconds));

    [Test]
    public void Set_get_overwrite_remove()
    {
        Assert.That(_cache.Get("k"), Is.Null);
        _cache.Set("k", [1, 2, 3], new DistributedCacheEntryOptions());
        Assert.That(_cache.Get("k"), Is.EqualTo(new byte[] { 1, 2, 3 }));
        _cache.Set("k", [9], new DistributedCacheEntryOptions());
        Assert.That(_cache.Get("k"), Is.EqualTo(new byte[] { 9 }));
        _cache.Set("empty", [], new DistributedCacheEntryOptions());
        Assert.That(_cache.Get("empty"), Is.EqualTo(Array.Empty<byte>()));
        _cache.Remove("k");
        Assert.That(_cache.Get("k"), Is.Null);
        _cache.Remove("never-there");
    }

    [Test]
    public void Without_options_entries_do_not_expire()
    {
        _cache.Set("k", [1], new DistributedCacheEntryOptions());
        Advance(TimeSpan.FromDays(3650).TotalSeconds);
        Assert.That(_cache.Get("k"), Is.EqualTo(new byte[] { 1 }));
    }

    [Test]
    public void Relative_expiration()
    {
        _cache.Set("k", [1], Relative(10));
        Advance(9.5);
        Assert.That(_cache.Get("k"), Is.Not.Null);
        Advance(1);
        Assert.That(_cache.Get("k"), Is.Null);
    }

    [Test]
    public void Absolute_expiration()
    {
        _cache.Set("k", [1], new DistributedCacheEntryOptions { AbsoluteExpiration = _time.GetUtcNow().AddSeconds(10) });
        Advance(9.5);
        Assert.That(_cache.Get("k"), Is.Not.Null);
        Advance(1);
        Assert.That(_cache.Get("k"), Is.Null);
    }

    [Test]
    public void Absolute_expiration_in_the_past_stores_nothing_and_drops_the_old_value()
    {
        _cache.Set("k", [1], new DistributedCacheEntryOptions());
        _cache.Set("k", [2], new DistributedCacheEntryOptions { AbsoluteExpiration = _time.GetUtcNow().AddSeconds(-1) });
        Assert.That(_cache.Get("k"), Is.Null);
    }

    [Test]
    public void The_nearer_of_absolute_and_relative_expiration_wins()
    {
        _cache.Set("k", [1], new DistributedCacheEntryOptions
        {
            AbsoluteExpiration = _time.GetUtcNow().AddSeconds(100),
            AbsoluteExpirationRelativeToNow = TimeSpan.FromSeconds(5),
        });
        _cache.Set("a", [2], new DistributedCacheEntryOptions
        {
            AbsoluteExpiration = _time.GetUtcNow().AddSeconds(5),   // a first version let the relative one win here
            AbsoluteExpirationRelativeToNow = TimeSpan.FromSeconds(100),
        });
        Advance(5.5);
        Assert.That(_cache.Get("k"), Is.Null);
        Assert.That(_cache.Get("a"), Is.Null);
    }

    [Test]
    public void Sliding_expiration_is_renewed_by_each_read()
    {
        _cache.Set("k", [1], Sliding(10));
        for (int i = 0; i < 5; i++)
        {
            Advance(7);
            Assert.That(_cache.Get("k"), Is.EqualTo(new byte[] { 1 }), $"read {i}");
        }
        Advance(10.5);
        Assert.That(_cache.Get("k"), Is.Null);
    }

    [Test]
    public void Refresh_renews_a_sliding_entry()
    {
        _cache.Set("k", [1], Sliding(10));
        Advance(7);
        _cache.Refresh("k");
        Advance(7);
        _cache.Refresh("k");
        Advance(7);
        Assert.That(_cache.Get("k"), Is.EqualTo(new byte[] { 1 }));
        _cache.Refresh("absent");
        Assert.That(_cache.Get("absent"), Is.Null);
    }

    [Test]
    public void Sliding_never_outlives_the_absolute_expiration()
    {
        _cache.Set("k", [1], new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromSeconds(10), AbsoluteExpirationRelativeToNow = TimeSpan.FromSeconds(15) });
        Advance(6);
        Assert.That(_cache.Get("k"), Is.Not.Null);
        Advance(6);
        Assert.That(_cache.Get("k"), Is.Not.Null);
        Advance(3.5);   // 15.5 s after the set: within the sliding window, past the absolute one
        Assert.That(_cache.Get("k"), Is.Null);
    }

    [Test]
    public void Refresh_does_not_extend_an_absolute_expiration()
    {
        _cache.Set("k", [1], Relative(10));
        Advance(6);
        _cache.Refresh("k");
        Advance(6);
        Assert.That(_cache.Get("k"), Is.Null);
    }

    [Test]
    public async Task Async_methods_behave_like_the_sync_ones()
    {
        await _cache.SetAsync("k", [4, 5], Sliding(10));
        Advance(7);
        await _cache.RefreshAsync("k");
        Advance(7);
        Assert.That(await _cache.GetAsync("k"), Is.EqualTo(new byte[] { 4, 5 }));
        await _cache.RemoveAsync("k");
        Assert.That(await _cache.GetAsync("k"), Is.Null);
        if (implementation == "offheap")
        {
            // MemoryDistributedCache ignores the token; ours checks it before starting, and (as the task-based pattern
            // asks) reports it through the task, not by throwing from the call: a caller may start several before awaiting.
            using var cancelled = new CancellationTokenSource();
            await cancelled.CancelAsync();
            var buffers = (IBufferDistributedCache)_cache;
            var destination = new ArrayBufferWriter<byte>();
            Task[] calls =
            [
                _cache.GetAsync("k", cancelled.Token), _cache.SetAsync("k", [1], Sliding(10), cancelled.Token),
                _cache.RefreshAsync("k", cancelled.Token), _cache.RemoveAsync("k", cancelled.Token),
                buffers.TryGetAsync("k", destination, cancelled.Token).AsTask(),
                buffers.SetAsync("k", new ReadOnlySequence<byte>([1]), Sliding(10), cancelled.Token).AsTask(),
            ];
            Assert.That(calls.Select(t => t.IsCanceled), Is.All.True);
            Assert.That(async () => await calls[0], Throws.InstanceOf<OperationCanceledException>());
            Assert.That(await _cache.GetAsync("k"), Is.Null, "the cancelled set stored nothing");
        }
    }

    [Test]
    public void Null_arguments_are_refused()
    {
        Assert.That(() => _cache.Get(null!), Throws.ArgumentNullException);
        Assert.That(() => _cache.Set(null!, [1], new DistributedCacheEntryOptions()), Throws.ArgumentNullException);
        Assert.That(() => _cache.Set("k", null!, new DistributedCacheEntryOptions()), Throws.ArgumentNullException);
        Assert.That(() => _cache.Remove(null!), Throws.ArgumentNullException);
        Assert.That(() => _cache.Refresh(null!), Throws.ArgumentNullException);
    }

    [Test]
    public void Long_and_non_ascii_keys_round_trip()
    {
        string longKey = new('é', 400);   // 800 UTF-8 bytes: past the stack buffer
        _cache.Set(longKey, [7], new DistributedCacheEntryOptions());
        _cache.Set("clé-ü-日本", [8], new DistributedCacheEntryOptions());
        Assert.That(_cache.Get(longKey), Is.EqualTo(new byte[] { 7 }));
        Assert.That(_cache.Get("clé-ü-日本"), Is.EqualTo(new byte[] { 8 }));
        Assert.That(_cache.Get(new string('é', 399)), Is.Null);
    }

    private sealed class FakeClock(TimeProvider time) : ISystemClock
    {
        public DateTimeOffset UtcNow => time.GetUtcNow();
    }

    private sealed class NoOp : IDisposable
    {
        public void Dispose()
        {
        }
    }
}

/// <summary>What only the off-heap implementation has (buffer API, limits, header), and the differential run.</summary>
public sealed class OffHeapDistributedCacheTests
{
    private FakeTimeProvider _time = null!;

    [Test]
    public void Buffer_api_reads_and_writes_sequences()
    {
        var time = new FakeTimeProvider();
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1, TimeProvider = time });
        IBufferDistributedCache buffers = new OffHeapDistributedCache(cache, time);   // MemoryDistributedCache does not implement it
        byte[] big = Enumerable.Range(0, 5000).Select(i => (byte)i).ToArray();   // past the first read buffer
        buffers.Set("big", new ReadOnlySequence<byte>(big), new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromSeconds(10) });
        var writer = new ArrayBufferWriter<byte>();
        Assert.That(buffers.TryGet("big", writer), Is.True);
        Assert.That(writer.WrittenSpan.ToArray(), Is.EqualTo(big));
        Assert.That(buffers.TryGet("nope", writer), Is.False);
        Assert.That(writer.WrittenCount, Is.EqualTo(big.Length), "a miss writes nothing");
        time.Advance(TimeSpan.FromSeconds(11));
        Assert.That(buffers.TryGet("big", new ArrayBufferWriter<byte>()), Is.False);
    }

    /// <summary>
    /// A random mix of sets (every kind of expiration), gets, refreshes, removes and clock steps, run on
    /// both caches in lock step: every read must agree. Steps are whole seconds + 7 ms and options whole
    /// seconds, so no check lands exactly on an expiry instant (where "expired at" conventions differ).
    /// </summary>
    [Test]
    public void Random_operations_agree_with_MemoryDistributedCache([Values(1, 2, 3)] int seed)
    {
        var random = new Random(seed);
        _time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        (IDistributedCache reference, IDisposable referenceOwner) = DistributedCacheTests.Create("memory", _time);
        (IDistributedCache ours, IDisposable oursOwner) = DistributedCacheTests.Create("offheap", _time);
        using (referenceOwner)
        using (oursOwner)
        {
            for (int step = 0; step < 3000; step++)
            {
                string key = "key" + random.Next(20);
                int op = random.Next(10);
                if (op < 3)
                {
                    byte[] value = new byte[random.Next(0, 64)];
                    random.NextBytes(value);
                    DistributedCacheEntryOptions options = RandomOptions(random);
                    reference.Set(key, value, options);
                    ours.Set(key, value, options);
                }
                else if (op < 7)
                {
                    Assert.That(ours.Get(key), Is.EqualTo(reference.Get(key)), $"step {step}: get {key}");
                }
                else if (op == 7)
                {
                    reference.Refresh(key);
                    ours.Refresh(key);
                }
                else if (op == 8)
                {
                    reference.Remove(key);
                    ours.Remove(key);
                }
                else
                {
                    _time.Advance(TimeSpan.FromMilliseconds(random.Next(0, 8) * 1000 + 7));
                }
            }
        }
    }

    private DistributedCacheEntryOptions RandomOptions(Random random)
    {
        var options = new DistributedCacheEntryOptions();
        switch (random.Next(5))
        {
            case 0:
                break;
            case 1:
                options.AbsoluteExpirationRelativeToNow = TimeSpan.FromSeconds(random.Next(1, 30));
                break;
            case 2:
                options.AbsoluteExpiration = _time.GetUtcNow().AddSeconds(random.Next(-5, 30));
                break;
            case 3:
                options.SlidingExpiration = TimeSpan.FromSeconds(random.Next(1, 15));
                break;
            default:
                options.SlidingExpiration = TimeSpan.FromSeconds(random.Next(1, 15));
                options.AbsoluteExpirationRelativeToNow = TimeSpan.FromSeconds(random.Next(1, 40));
                break;
        }
        return options;
    }

    [Test]
    public void Too_large_values_and_keys_are_refused_and_nothing_changes()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1, MaxKeyBytes = 16, MaxValueBytes = 1000 });
        var distributed = new OffHeapDistributedCache(cache);
        Assert.That(distributed.MaxValueBytes, Is.EqualTo(1000 - OffHeapDistributedCache.HeaderBytes));
        distributed.Set("k", [1], new DistributedCacheEntryOptions());

        Assert.That(() => distributed.Set("k", new byte[distributed.MaxValueBytes + 1], new DistributedCacheEntryOptions()),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("value").And.Message.Contains("limit is 976"));
        Assert.That(() => distributed.Set(new string('x', 17), [1], new DistributedCacheEntryOptions()),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("key"));
        Assert.That(distributed.Get("k"), Is.EqualTo(new byte[] { 1 }));
        distributed.Set("k", new byte[distributed.MaxValueBytes], new DistributedCacheEntryOptions());
        Assert.That(distributed.Get("k")!.Length, Is.EqualTo(distributed.MaxValueBytes));
    }

    [Test]
    public void One_get_of_a_large_or_sliding_entry_counts_one_hit()
    {
        // The first read uses a 1 KiB pooled buffer; a larger value is read again with the length the first
        // read reported, and a sliding entry is re-read under a lock to renew it. Each used to count as a hit.
        var time = new FakeTimeProvider();
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1, TimeProvider = time });
        var distributed = new OffHeapDistributedCache(cache, time);
        distributed.Set("large", new byte[2000], new DistributedCacheEntryOptions());
        distributed.Set("sliding", new byte[2000], new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromSeconds(10) });

        Assert.That(distributed.Get("large")!.Length, Is.EqualTo(2000));
        Assert.That(cache.GetStatistics().Hits, Is.EqualTo(1));
        Assert.That(distributed.Get("sliding")!.Length, Is.EqualTo(2000));
        Assert.That(cache.GetStatistics().Hits, Is.EqualTo(2));
        Assert.That(distributed.Get("absent"), Is.Null);
        Assert.That(cache.GetStatistics().Misses, Is.EqualTo(1));
    }

    [Test]
    public void A_key_that_is_not_valid_utf16_is_refused_not_merged_with_another()
    {
        // UTF-8 cannot hold a lone surrogate; replacing it (Encoding.UTF8's default) made "a\uD800" and
        // "a\uDBFF" one key.
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1 });
        var distributed = new OffHeapDistributedCache(cache);
        Assert.That(() => distributed.Set("a\uD800", [1], new DistributedCacheEntryOptions()),
            Throws.ArgumentException.With.Property("ParamName").EqualTo("key").And.Message.Contains("lone surrogate at index 1"));
        Assert.That(() => distributed.Get("a\uDBFF"), Throws.ArgumentException.With.Property("ParamName").EqualTo("key"));
        Assert.That(cache.Count, Is.Zero);
        distributed.Set("a\uD83D\uDE00", [2], new DistributedCacheEntryOptions());   // a valid pair is fine
        Assert.That(distributed.Get("a\uD83D\uDE00"), Is.EqualTo(new byte[] { 2 }));
    }

    [Test]
    public void The_engine_frees_expired_entries_without_a_read()
    {
        var time = new FakeTimeProvider();
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1, MaxEntries = 1, TimeProvider = time });
        var distributed = new OffHeapDistributedCache(cache, time);
        distributed.Set("a", [1], new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromSeconds(5) });
        time.Advance(TimeSpan.FromSeconds(6));
        distributed.Set("b", [2], new DistributedCacheEntryOptions());   // at the entry bound: reclaims the expired "a"
        Assert.That(cache.GetStatistics().Expirations, Is.EqualTo(1));
        Assert.That(cache.GetStatistics().Rejections, Is.Zero);
    }

    [Test]
    public void A_value_written_around_it_is_reported_not_misread()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1 });
        var distributed = new OffHeapDistributedCache(cache);
        cache.Set("raw"u8, "short"u8);
        Assert.That(() => distributed.Get("raw"), Throws.InvalidOperationException.With.Message.Contains("24-byte expiration header"));
        // Longer than the header: its first bytes used to be read as an expiry header and the rest returned as the
        // value (a new user's review: {"Id":5,"Name":"P5"} stored through the cache came back as the 4 bytes P5"}).
        cache.Set("json"u8, """{"Id":5,"Name":"Product 5"}"""u8);
        Assert.That(() => distributed.Get("json"), Throws.InvalidOperationException.With.Message.Contains("written to the cache around OffHeapDistributedCache"));
        Assert.That(() => distributed.Refresh("json"), Throws.InvalidOperationException);
        Assert.That(() => distributed.TryGet("json", new System.Buffers.ArrayBufferWriter<byte>()), Throws.InvalidOperationException);
        // A stored entry with its header changed by one bit, or cut short, is refused too (the check covers the length).
        distributed.Set("mine", [1, 2, 3, 4, 5, 6, 7, 8], new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromMinutes(5) });
        var stored = new byte[64];
        Assert.That(cache.TryGet("mine"u8, stored, out int length), Is.True);
        stored[9] ^= 1;
        cache.Set("flipped"u8, stored.AsSpan(0, length));
        Assert.That(() => distributed.Get("flipped"), Throws.InvalidOperationException);
        stored[9] ^= 1;
        cache.Set("cut"u8, stored.AsSpan(0, length - 1));
        Assert.That(() => distributed.Get("cut"), Throws.InvalidOperationException);
        cache.Set("copy"u8, stored.AsSpan(0, length));
        Assert.That(distributed.Get("copy"), Is.EqualTo(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }), "an exact copy of an entry it wrote is its own");
    }

    [Test]
    public void Concurrent_refreshes_never_resurrect_a_replaced_value()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1 });
        var distributed = new OffHeapDistributedCache(cache);
        var sliding = new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromMinutes(5) };
        distributed.Set("k", BitConverter.GetBytes(0), sliding);
        int last = 0;
        long readerIterations = 0;
        using var readerStarted = new ManualResetEventSlim();
        using var stop = new CancellationTokenSource();
        Task reader = Task.Factory.StartNew(() =>
        {
            readerStarted.Set();
            while (!stop.IsCancellationRequested)
            {
                int before = Volatile.Read(ref last);
                distributed.Refresh("k");
                byte[]? seen = distributed.Get("k");
                Assert.That(seen, Is.Not.Null);
                Assert.That(BitConverter.ToInt32(seen!), Is.GreaterThanOrEqualTo(before), "a refresh brought back an older value");
                Interlocked.Increment(ref readerIterations);
            }
        }, TaskCreationOptions.LongRunning);

        // The refreshes must overlap the writes: start writing once the reader runs, and keep writing (past the
        // 5000 writes) until the reader has made MinConcurrentReads refreshes during the writes.
        const int MinConcurrentReads = 2000;
        int written = 0;
        long concurrentReads = 0;
        try
        {
            Assert.That(readerStarted.Wait(TimeSpan.FromSeconds(10)), Is.True, "the reader started");
            long readsBefore = Interlocked.Read(ref readerIterations);
            var elapsed = System.Diagnostics.Stopwatch.StartNew();
            while ((written < 5000 || concurrentReads < MinConcurrentReads) && !reader.IsCompleted && elapsed.Elapsed < TimeSpan.FromSeconds(10))
            {
                written++;
                distributed.Set("k", BitConverter.GetBytes(written), sliding);
                Volatile.Write(ref last, written);
                // Only this thread writes: a value older than the one just written was brought back by a refresh.
                int now = BitConverter.ToInt32(distributed.Get("k")!);
                Assert.That(now, Is.EqualTo(written), "a refresh brought back an older value");
                concurrentReads = Interlocked.Read(ref readerIterations) - readsBefore;
            }
        }
        finally
        {
            stop.Cancel();
            Assert.That(reader.Wait(TimeSpan.FromSeconds(10)), Is.True, "the reader stopped");
        }
        Assert.That(concurrentReads, Is.GreaterThanOrEqualTo(MinConcurrentReads), $"refreshes made while the {written} writes ran");
        Assert.That(BitConverter.ToInt32(distributed.Get("k")!), Is.EqualTo(written));
    }

    [Test]
    public void An_entry_set_without_expiration_never_expires_whatever_the_caches_default_time_to_live()
    {
        // As MemoryDistributedCache: no expiration option means none. The engine's DefaultTimeToLive is for the
        // byte and typed APIs; it used to apply here too (an entry set "forever" was gone after 10 minutes).
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1, TimeProvider = time, DefaultTimeToLive = TimeSpan.FromMinutes(10) });
        var distributed = new OffHeapDistributedCache(cache, time);
        distributed.Set("forever", [1], new DistributedCacheEntryOptions());
        distributed.Set("max-sliding", [2], new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.MaxValue });
        distributed.Set("hour", [3], new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.FromHours(1) });
        cache.Set("bytes-api"u8, [4]);
        time.Advance(TimeSpan.FromMinutes(11));
        Assert.That(distributed.Get("forever"), Is.EqualTo(new byte[] { 1 }));
        Assert.That(distributed.Get("max-sliding"), Is.EqualTo(new byte[] { 2 }));
        Assert.That(distributed.Get("hour"), Is.EqualTo(new byte[] { 3 }), "its own expiration, not the default");
        Assert.That(cache.ContainsKey("bytes-api"u8), Is.False, "the byte API keeps the default");
        time.Advance(TimeSpan.FromDays(400));
        Assert.That(distributed.Get("forever"), Is.EqualTo(new byte[] { 1 }));
        Assert.That(distributed.Get("hour"), Is.Null);
    }

    [Test]
    public void A_key_longer_than_the_limit_is_still_checked_for_lone_surrogates_and_a_disposed_cache()
    {
        // Reads skip encoding a key with more characters than MaxKeyBytes (it cannot fit): they used to skip the UTF-16
        // check and the disposed check with it (review, 2026-11-29).
        var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1, MaxKeyBytes = 16 });
        var distributed = new OffHeapDistributedCache(cache);
        string lone = new string('x', 16) + "\uD800";
        Assert.Multiple(() =>
        {
            Assert.That(() => distributed.Set(lone, [1], new DistributedCacheEntryOptions()), Throws.ArgumentException.With.Property("ParamName").EqualTo("key"), "Set");
            Assert.That(() => distributed.Get(lone), Throws.ArgumentException.With.Property("ParamName").EqualTo("key").And.Message.Contains("index 16"), "Get");
            Assert.That(() => distributed.TryGet(lone, new System.Buffers.ArrayBufferWriter<byte>()), Throws.ArgumentException, "TryGet");
            Assert.That(() => distributed.Refresh(lone), Throws.ArgumentException, "Refresh");
            Assert.That(() => distributed.Remove(lone), Throws.ArgumentException, "Remove");
        });
        string longValid = new string('x', 16) + "\uD83D\uDE00";   // a surrogate pair is valid UTF-16: just too long
        Assert.That(distributed.Get(longValid), Is.Null);
        cache.Dispose();
        string longKey = new('x', 17);
        Assert.Multiple(() =>
        {
            Assert.That(() => distributed.Get("short"), Throws.TypeOf<ObjectDisposedException>(), "Get, short key");
            Assert.That(() => distributed.Get(longKey), Throws.TypeOf<ObjectDisposedException>(), "Get, long key");
            Assert.That(() => distributed.TryGet(longKey, new System.Buffers.ArrayBufferWriter<byte>()), Throws.TypeOf<ObjectDisposedException>(), "TryGet, long key");
            Assert.That(() => distributed.Refresh(longKey), Throws.TypeOf<ObjectDisposedException>(), "Refresh, long key");
            Assert.That(() => distributed.Remove(longKey), Throws.TypeOf<ObjectDisposedException>(), "Remove, long key");
        });
    }

    [Test]
    public void A_null_key_is_named_before_a_null_value_as_MemoryDistributedCache_does()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1 });
        var distributed = new OffHeapDistributedCache(cache);
        Assert.That(() => distributed.Set(null!, null!, new DistributedCacheEntryOptions()), Throws.ArgumentNullException.With.Property("ParamName").EqualTo("key"));
        Assert.That(() => distributed.SetAsync(null!, null!, new DistributedCacheEntryOptions()), Throws.ArgumentNullException.With.Property("ParamName").EqualTo("key"));
    }
}

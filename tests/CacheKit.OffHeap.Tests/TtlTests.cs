using Microsoft.Extensions.Time.Testing;

namespace CacheKit.OffHeap.Tests;

public class TtlTests
{
    /// <summary>One shard, 64 KiB pages, a fixed hash seed (also TouchTests').</summary>
    internal static OffHeapCache Create(TimeProvider time, long capacity = 4 << 20, long? maxEntries = null, TimeSpan? defaultTtl = null, int hint = 256,
                                        CachePolicy policy = CachePolicy.WTinyLfu, EvictionListener? listener = null)
        => new(new OffHeapCacheOptions
        {
            CapacityBytes = capacity,
            PageSize = 64 * 1024,
            ShardCount = 1,
            MaxEntries = maxEntries,
            TimeProvider = time,
            DefaultTimeToLive = defaultTtl,
            AverageEntrySizeHint = hint,
            Policy = policy,
            EvictionListener = listener,
            HashSeed = 5,
        });

    [Test]
    public void EntryIsReturnedUntilItsTimeToLiveAndNeverAfter()
    {
        var time = new FakeTimeProvider();
        using OffHeapCache cache = Create(time);
        byte[] key = TestKeys.Key(1), value = TestKeys.Value(1, 1, 50);
        Assert.That(cache.Set(key, value, TimeSpan.FromSeconds(10)), Is.True);
        var buffer = new byte[64];
        time.Advance(TimeSpan.FromSeconds(10) - TimeSpan.FromTicks(1));
        Assert.That(cache.TryGet(key, buffer, out _), Is.True, "one tick before expiry");
        time.Advance(TimeSpan.FromTicks(1));
        Assert.That(cache.TryGet(key, buffer, out int written), Is.False, "at expiry");
        Assert.That(written, Is.Zero);
        Assert.That(cache.ContainsKey(key), Is.False);
        Assert.That(cache.Count, Is.EqualTo(1), "expired but not yet reclaimed");
        cache.ValidateInvariants();
    }

    [Test]
    public void InfiniteTimeToLiveOverridesTheDefaultAndOtherNonPositiveValuesAreRefused()
    {
        var time = new FakeTimeProvider();
        using OffHeapCache cache = Create(time, defaultTtl: TimeSpan.FromSeconds(10));
        byte[] forever = TestKeys.Key(1), defaulted = TestKeys.Key(2), value = TestKeys.Value(1, 1, 50);
        Assert.That(cache.Set(forever, value, Timeout.InfiniteTimeSpan), Is.True);
        Assert.That(cache.Set(defaulted, value), Is.True);
        Assert.That(cache.SetMany([new(TestKeys.Key(3), value)], Timeout.InfiniteTimeSpan), Is.EqualTo(1));
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => cache.Set(TestKeys.Key(4), value, TimeSpan.FromMilliseconds(-2)));
        Assert.That(ex!.ParamName, Is.EqualTo("timeToLive"));
        Assert.That(ex.Message, Does.Contain("InfiniteTimeSpan"));
        time.Advance(TimeSpan.FromDays(365));
        Assert.That(cache.ContainsKey(forever), Is.True);
        Assert.That(cache.ContainsKey(TestKeys.Key(3)), Is.True);
        Assert.That(cache.ContainsKey(defaulted), Is.False);
        Assert.That(cache.ContainsKey(TestKeys.Key(4)), Is.False, "the refused set stored nothing");
        using OffHeapCache infiniteDefault = Create(time, defaultTtl: Timeout.InfiniteTimeSpan);
        infiniteDefault.Set(forever, value);
        time.Advance(TimeSpan.FromDays(365));
        Assert.That(infiniteDefault.ContainsKey(forever), Is.True, "an infinite default is no default");
        cache.ValidateInvariants();
    }

    [Test]
    public void RemovingAnExpiredEntrySaysAbsentAndCountsAnExpiration()
    {
        // ContainsKey and TryGet say absent once the time to live passed; Remove used to say true (and count
        // nothing), and the typed TryRemove(key) disagreed with TryRemove(key, out value) on the same entry.
        var time = new FakeTimeProvider();
        var reasons = new List<EvictionReason>();
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 4 << 20,
            PageSize = 64 * 1024,
            ShardCount = 1,
            TimeProvider = time,
            EvictionListener = (_, reason) => reasons.Add(reason),
        });
        byte[] key = TestKeys.Key(1), live = TestKeys.Key(2);
        Assert.That(cache.Set(key, TestKeys.Value(1, 1, 50), TimeSpan.FromSeconds(10)), Is.True);
        Assert.That(cache.Set(live, TestKeys.Value(2, 1, 50), TimeSpan.FromSeconds(100)), Is.True);
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.That(cache.Count, Is.EqualTo(2), "expired but not yet reclaimed");

        Assert.That(cache.Remove(key), Is.False, "an expired entry is absent");
        Assert.That(cache.Count, Is.EqualTo(1), "and it is gone");
        Assert.That(reasons, Is.EqualTo(new[] { EvictionReason.Expired }));
        CacheStatistics stats = cache.GetStatistics();
        Assert.That((stats.Expirations, stats.Evictions), Is.EqualTo((1L, 0L)));
        Assert.That(cache.Remove(live), Is.True, "a live entry is removed as before (no listener call)");
        Assert.That(reasons, Has.Count.EqualTo(1));
        cache.ValidateInvariants();

        using var typed = new OffHeapCache<long, long>(new OffHeapCacheOptions { CapacityBytes = 4 << 20, PageSize = 64 * 1024, TimeProvider = time });
        typed.Set(7, 70, TimeSpan.FromSeconds(1));
        typed.Set(8, 80, TimeSpan.FromSeconds(1));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(typed.TryRemove(7), Is.False);
        Assert.That(typed.TryRemove(8, out _), Is.False, "both overloads agree");
    }

    [Test]
    public void DefaultTimeToLiveAppliesAndAnExplicitOneOverridesIt()
    {
        var time = new FakeTimeProvider();
        using OffHeapCache cache = Create(time, defaultTtl: TimeSpan.FromSeconds(5));
        cache.Set(TestKeys.Key(1), TestKeys.Value(1, 1, 10));
        cache.Set(TestKeys.Key(2), TestKeys.Value(2, 1, 10), TimeSpan.FromSeconds(60));
        time.Advance(TimeSpan.FromSeconds(6));
        Assert.That(cache.ContainsKey(TestKeys.Key(1)), Is.False);
        Assert.That(cache.ContainsKey(TestKeys.Key(2)), Is.True);
    }

    [Test]
    public void SettingAgainRefreshesTheTimeToLive()
    {
        var time = new FakeTimeProvider();
        using OffHeapCache cache = Create(time);
        byte[] key = TestKeys.Key(1);
        cache.Set(key, TestKeys.Value(1, 1, 10), TimeSpan.FromSeconds(5));
        time.Advance(TimeSpan.FromSeconds(4));
        cache.Set(key, TestKeys.Value(1, 2, 10));   // no TTL now
        time.Advance(TimeSpan.FromSeconds(100));
        Assert.That(cache.ContainsKey(key), Is.True);
        cache.ValidateInvariants();
    }

    [TestCase(false)]
    [TestCase(true)]
    public void ExpiredEntriesAreReclaimedBeforeLiveOnesAreEvicted(bool countBound)
    {
        var time = new FakeTimeProvider();
        // Bytes bound: a large index (hint 32) so memory binds; count bound: MaxEntries binds.
        using OffHeapCache cache = Create(time, capacity: 512 * 1024, maxEntries: countBound ? 500 : null, hint: 32);
        int id = 0;
        while (cache.GetStatistics().Evictions == 0 && id < 100_000)
        {
            cache.Set(TestKeys.Key(id), TestKeys.Value(id, 0, 100), TimeSpan.FromSeconds(10));
            id++;
        }
        long full = cache.Count;
        long evictionsBefore = cache.GetStatistics().Evictions;
        time.Advance(TimeSpan.FromSeconds(11));

        for (int i = 0; i < full / 2; i++)
        {
            Assert.That(cache.Set(TestKeys.Key(1_000_000 + i), TestKeys.Value(i, 1, 100)), Is.True);
        }
        CacheStatistics stats = cache.GetStatistics();
        TestContext.Out.WriteLine($"full at {full} entries; after: {stats.Count} entries, expirations {stats.Expirations}, evictions {stats.Evictions - evictionsBefore}");
        Assert.That(stats.Evictions, Is.EqualTo(evictionsBefore), "no live entry may be evicted while expired ones remain");
        Assert.That(stats.Expirations, Is.GreaterThan(0));
        for (int i = 0; i < full / 2; i++)
        {
            Assert.That(cache.ContainsKey(TestKeys.Key(1_000_000 + i)), Is.True);
        }
        cache.ValidateInvariants();
    }
}

public class ExpiredVictimTests
{
    // The expiry hand scans 4 x 16 buckets per insert; an index of ~1000 buckets leaves most expired entries
    // outside one scan, so the policy's own victim is often an entry whose time to live has passed.
    [TestCase(true)]
    [TestCase(false)]
    public void AnExpiredEntryRemovedAsAPolicyVictimIsAnExpirationNotAnEviction(bool withListener)
    {
        var time = new FakeTimeProvider();
        var heard = new List<(int Id, EvictionReason Reason)>();
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 8 << 20,
            PageSize = 64 * 1024,
            ShardCount = 1,
            MaxEntries = 4096,
            Policy = CachePolicy.Lru,
            TimeProvider = time,
            HashSeed = 11,
            EvictionListener = withListener ? (key, reason) => heard.Add((TestKeys.IdOf(key), reason)) : null,
        });
        const int ttlEntries = 20;
        for (int i = 0; i < 4096; i++)
        {
            // The least recently used 20 entries expire; the others never do.
            if (i < ttlEntries)
            {
                cache.Set(TestKeys.Key(i), TestKeys.Value(i, 0, 20), TimeSpan.FromSeconds(1));
            }
            else
            {
                cache.Set(TestKeys.Key(i), TestKeys.Value(i, 0, 20));
            }
        }
        time.Advance(TimeSpan.FromSeconds(2));

        // Each newcomer at the bound removes one entry: an expired one found by the hand, else the LRU victim,
        // which is the oldest expired entry left. Either way every entry removed had expired.
        for (int i = 0; i < ttlEntries; i++)
        {
            Assert.That(cache.Set(TestKeys.Key(10_000 + i), TestKeys.Value(i, 1, 20)), Is.True);
        }
        CacheStatistics stats = cache.GetStatistics();
        Assert.That((stats.Evictions, stats.Expirations), Is.EqualTo((0L, (long)ttlEntries)),
            "an entry whose time to live had passed counts as an expiration, whichever path removed it");
        if (withListener)
        {
            Assert.That(heard.Select(h => h.Reason), Is.All.EqualTo(EvictionReason.Expired));
            Assert.That(heard.Select(h => h.Id).Order(), Is.EqualTo(Enumerable.Range(0, ttlEntries)));
        }
        cache.ValidateInvariants();
    }
}

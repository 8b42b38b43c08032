using Microsoft.Extensions.Time.Testing;

namespace CacheKit.OffHeap.Tests;

public class TtlTests
{
    private static OffHeapCache Create(TimeProvider time, long capacity = 4 << 20, long? maxEntries = null, TimeSpan? defaultTtl = null, int hint = 256)
        => new(new OffHeapCacheOptions
        {
            CapacityBytes = capacity,
            PageSize = 64 * 1024,
            ShardCount = 1,
            MaxEntries = maxEntries,
            TimeProvider = time,
            DefaultTimeToLive = defaultTtl,
            AverageEntrySizeHint = hint,
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

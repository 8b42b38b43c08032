using Microsoft.Extensions.Time.Testing;

namespace CacheKit.OffHeap.Tests;

/// <summary>
/// <see cref="OffHeapCache.RemoveExpired"/>: expired entries leave a cache that is not full only by a write of their key or
/// this sweep, so that Count, the payload bytes and the metrics can follow the clock (found by a new user's review: 10,000
/// entries read after their time to live, then 10,000 other keys set, left Count at 20,000 and Expirations at 0).
/// </summary>
public class RemoveExpiredTests
{
    [Test]
    public void TheSweepRemovesExactlyTheExpiredEntriesAndCountsThemAsExpirations()
    {
        var time = new FakeTimeProvider();
        var heard = new List<(int Id, EvictionReason Reason)>();
        using OffHeapCache cache = TtlTests.Create(time, capacity: 16 << 20,
            listener: (key, reason) => heard.Add((TestKeys.IdOf(key), reason)));
        const int Entries = 3_000;
        for (int i = 0; i < Entries; i++)
        {
            // A third short-lived, a third long-lived, a third without a time to live.
            TimeSpan ttl = (i % 3) switch { 0 => TimeSpan.FromMinutes(20), 1 => TimeSpan.FromHours(5), _ => Timeout.InfiniteTimeSpan };
            Assert.That(cache.Set(TestKeys.Key(i), TestKeys.Value(i, 1, 40), ttl), Is.True);
        }
        long payloadBefore = cache.GetStatistics().PayloadBytes;
        Assert.That(cache.RemoveExpired(), Is.Zero, "nothing has expired yet");

        time.Advance(TimeSpan.FromHours(1));
        var buffer = new byte[64];
        for (int i = 0; i < Entries; i += 3)
        {
            Assert.That(cache.TryGet(TestKeys.Key(i), buffer, out _), Is.False, "a read never returns an expired entry");
        }
        Assert.That(cache.Count, Is.EqualTo(Entries), "reads do not reclaim");

        long removed = cache.RemoveExpired();

        Assert.That(removed, Is.EqualTo(Entries / 3));
        Assert.That(cache.Count, Is.EqualTo(Entries - (Entries / 3)));
        CacheStatistics stats = cache.GetStatistics();
        Assert.That(stats.Expirations, Is.EqualTo(Entries / 3));
        Assert.That(stats.Evictions, Is.Zero, "expirations are not evictions");
        long removedPayload = Enumerable.Range(0, Entries).Where(i => i % 3 == 0).Sum(i => (long)TestKeys.Key(i).Length + 40);
        Assert.That(stats.PayloadBytes, Is.EqualTo(payloadBefore - removedPayload));
        Assert.That(heard.Select(h => h.Id).Order(), Is.EqualTo(Enumerable.Range(0, Entries).Where(i => i % 3 == 0)));
        Assert.That(heard.All(h => h.Reason == EvictionReason.Expired), Is.True);
        for (int i = 0; i < Entries; i++)
        {
            Assert.That(cache.ContainsKey(TestKeys.Key(i)), Is.EqualTo(i % 3 != 0), $"key {i}");
        }
        Assert.That(cache.RemoveExpired(), Is.Zero, "a second sweep finds nothing");
        cache.ValidateInvariants();
    }

    [Test]
    public void TheSweepCoversEveryShardAndEveryBatchOfALargeIndex()
    {
        // 4 shards, an index of more than one 4,096-bucket batch per shard.
        var time = new FakeTimeProvider();
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 64L << 20,
            ShardCount = 4,
            MaxEntries = 200_000,
            TimeProvider = time,
            HashSeed = 7,
        });
        const int Entries = 50_000;
        for (int i = 0; i < Entries; i++)
        {
            cache.Set(TestKeys.Key(i), TestKeys.Value(i, 1, 20), TimeSpan.FromSeconds(i % 2 == 0 ? 10 : 1_000));
        }
        Assert.That(cache.Count, Is.EqualTo(Entries), "nothing evicted");
        time.Advance(TimeSpan.FromSeconds(11));
        Assert.That(cache.RemoveExpired(), Is.EqualTo(Entries / 2));
        Assert.That(cache.Count, Is.EqualTo(Entries / 2));
        Assert.That(cache.Keys.Select(k => TestKeys.IdOf(k)).Order(), Is.EqualTo(Enumerable.Range(0, Entries).Where(i => i % 2 == 1)));
        time.Advance(TimeSpan.FromSeconds(1_000));
        Assert.That(cache.RemoveExpired(), Is.EqualTo(Entries / 2));
        Assert.That(cache.Count, Is.Zero);
        Assert.That(cache.GetStatistics().PayloadBytes, Is.Zero);
        cache.ValidateInvariants();
    }

    [Test]
    public void AThrowingListenerStopsTheSweepAndLeavesTheCacheConsistent()
    {
        var time = new FakeTimeProvider();
        int calls = 0;
        using OffHeapCache cache = TtlTests.Create(time, listener: (_, _) =>
        {
            if (++calls == 5)
            {
                throw new InvalidOperationException("listener failed");
            }
        });
        for (int i = 0; i < 100; i++)
        {
            cache.Set(TestKeys.Key(i), TestKeys.Value(i, 1, 40), TimeSpan.FromSeconds(1));
        }
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Throws<InvalidOperationException>(() => cache.RemoveExpired());
        Assert.That(cache.Count, Is.EqualTo(95), "the entry being reported left too");
        cache.ValidateInvariants();
        Assert.That(cache.RemoveExpired(), Is.EqualTo(95), "the next sweep removes the rest");
        Assert.That(cache.Count, Is.Zero);
        Assert.That(cache.GetStatistics().Expirations, Is.EqualTo(100));
        cache.ValidateInvariants();
    }

    [Test]
    public void FromAListenerItIsRefusedAndAfterDisposeItThrowsObjectDisposed()
    {
        var time = new FakeTimeProvider();
        Exception? fromListener = null;
        OffHeapCache? self = null;
        using OffHeapCache cache = TtlTests.Create(time, maxEntries: 10, listener: (_, _) =>
        {
            try
            {
                self!.RemoveExpired();
            }
            catch (Exception e)
            {
                fromListener = e;
            }
        });
        self = cache;
        for (int i = 0; i < 11; i++)
        {
            cache.Set(TestKeys.Key(i), TestKeys.Value(i, 1, 40));   // the 11th evicts
        }
        Assert.That(fromListener, Is.TypeOf<InvalidOperationException>());
        cache.ValidateInvariants();
        cache.Dispose();
        Assert.Throws<ObjectDisposedException>(() => cache.RemoveExpired());
    }

    [Test]
    public void TheTypedViewSweepsTheByteCache()
    {
        var time = new FakeTimeProvider();
        using var cache = new OffHeapCache<string, int>(new OffHeapCacheOptions { CapacityBytes = 4 << 20, TimeProvider = time });
        cache.Set("short", 1, TimeSpan.FromSeconds(5));
        cache.Set("long", 2, TimeSpan.FromSeconds(50));
        time.Advance(TimeSpan.FromSeconds(6));
        Assert.That(cache.RemoveExpired(), Is.EqualTo(1));
        Assert.That(cache.Count, Is.EqualTo(1));
        Assert.That(cache.TryGetValue("long", out int value) && value == 2, Is.True);
    }
}

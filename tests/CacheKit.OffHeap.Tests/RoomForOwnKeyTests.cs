using System.IO.Hashing;
using Microsoft.Extensions.Time.Testing;

namespace CacheKit.OffHeap.Tests;

/// <summary>
/// A write that has to make room may remove the very key it writes: the listener, the counters and the result must then
/// agree on what happened to it. Found by an adversarial review (2026-11-27): a Touch reported its key evicted and still
/// returned true with the key present; a refused Set dropped the key's expired entry without counting or reporting it.
/// </summary>
public class RoomForOwnKeyTests
{
    private static byte[] K(int i) => BitConverter.GetBytes((long)i);

    /// <summary>One shard of two 64 KiB pages (LRU, no expiry stored yet), filled with 100-byte values until the first
    /// eviction, then key 0 set and made the LRU tail by reading every other key. One read-buffer stripe: a write
    /// replays only its own core's stripe, so reads recorded on another core (the test thread moved) could still be
    /// pending at the write that needs key 0 to be the tail.</summary>
    private static OffHeapCache FullCacheWithKeyZeroOldest(List<(long Key, EvictionReason Reason)> heard)
    {
        var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = (16 * 1024) + (2 * 65536), PageSize = 65536, ShardCount = 1, MaxEntries = 1000, Policy = CachePolicy.Lru,
            TimeProvider = new FakeTimeProvider(), HashSeed = 5, ReadBufferStripes = 1,
            EvictionListener = (k, r) => heard.Add((BitConverter.ToInt64(k), r)),
        });
        byte[] value = new byte[100];
        int n = 1;
        while (heard.Count == 0 && n < 5000)
        {
            Assert.That(cache.Set(K(n++), value), Is.True);
        }
        Assert.That(heard, Is.Not.Empty, "the pages filled (precondition)");
        Assert.That(cache.Set(K(0), value), Is.True);
        var buffer = new byte[200];
        for (int i = 1; i < n; i++)
        {
            cache.TryGet(K(i), buffer, out _);
        }
        heard.Clear();
        return cache;
    }

    [Test]
    public void ATouchWhoseRewriteEvictsItsOwnEntryReportsItGoneAndReturnsFalse()
    {
        var heard = new List<(long Key, EvictionReason Reason)>();
        using OffHeapCache cache = FullCacheWithKeyZeroOldest(heard);
        CacheStatistics before = cache.GetStatistics();

        // The shard holds no expiry yet, so the entry has no field: a finite expiry rewrites it, which must make room,
        // and key 0 is the policy's first victim. Room is made only because the 8 more bytes change the size class (a
        // rewrite that keeps its class is written in place: InPlaceUpdateTests).
        int entry = 8 + K(0).Length + 100;
        Assert.That(cache.Pool.Classes.ClassOf(entry + 8), Is.Not.EqualTo(cache.Pool.Classes.ClassOf(entry)), "precondition: the rewrite changes class");
        bool touched = cache.Touch(K(0), TimeSpan.FromHours(1));

        AssertKeyZeroLeftAsItsOwnVictim(cache, heard, before, touched, "Touch cannot have given it an expiry");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void ATryUpdateWhoseRoomMakingEvictsItsOwnEntryReturnsFalseAndDoesNotBringItBack(bool compareAndSwap)
    {
        var heard = new List<(long Key, EvictionReason Reason)>();
        using OffHeapCache cache = FullCacheWithKeyZeroOldest(heard);
        CacheStatistics before = cache.GetStatistics();

        // A value of another size class: the full pages have no chunk of it, so victims go first, key 0 among them.
        bool updated = compareAndSwap ? cache.TryUpdate(K(0), new byte[900], comparisonValue: new byte[100]) : cache.TryUpdate(K(0), new byte[900]);

        AssertKeyZeroLeftAsItsOwnVictim(cache, heard, before, updated, "an update of a key evicted meanwhile fails");
    }

    /// <summary>Key 0 was the victim of its own call's room-making: the call said false, the key stays out, every entry that
    /// left was reported and counted once, and no rejection was counted (room was made: a failed condition).</summary>
    private static void AssertKeyZeroLeftAsItsOwnVictim(OffHeapCache cache, List<(long Key, EvictionReason Reason)> heard,
                                                       CacheStatistics before, bool result, string whyFalse)
    {
        CacheStatistics after = cache.GetStatistics();
        cache.ValidateInvariants();
        Assert.Multiple(() =>
        {
            Assert.That(heard, Does.Contain((0L, EvictionReason.Capacity)), "key 0 was the victim (precondition)");
            Assert.That(result, Is.False, whyFalse);
            Assert.That(cache.ContainsKey(K(0)), Is.False, "not brought back after the listener heard it leave");
            Assert.That(after.Evictions - before.Evictions, Is.EqualTo(heard.Count), "every entry reported was counted once");
            Assert.That(before.Count - after.Count, Is.EqualTo(heard.Count), "and every entry that left was reported");
            Assert.That(after.Rejections, Is.EqualTo(before.Rejections), "room was made: a failed condition, not a rejection");
        });
    }

    [Test]
    public void APlainSetWhoseRoomMakingEvictsItsOwnOlderValueStillStoresTheNewOne()
    {
        var heard = new List<(long Key, EvictionReason Reason)>();
        using OffHeapCache cache = FullCacheWithKeyZeroOldest(heard);

        byte[] value = new byte[900];
        value.AsSpan().Fill(7);
        Assert.That(cache.Set(K(0), value), Is.True, "a set stores its key whether or not it was there");
        Assert.That(heard, Does.Contain((0L, EvictionReason.Capacity)), "the older value was the victim (precondition)");
        var read = new byte[900];
        Assert.That(cache.TryGet(K(0), read, out int n), Is.True);
        Assert.That(read.AsSpan(0, n).ToArray(), Is.EqualTo(value));
        cache.ValidateInvariants();
    }

    /// <summary>
    /// One shard whose budget is its index and one 64 KiB page, holding 21 small entries and <paramref name="expiredKey"/>,
    /// whose time to live has passed. The key's home bucket is beyond the expiry hand's reach (a few steps of 16 buckets
    /// from bucket 0), so a later refused set, not the hand, is what removes its expired entry.
    /// </summary>
    private static OffHeapCache CacheWithAnExpiredKey(EvictionListener listener, out int expiredKey)
    {
        const int seed = 5;
        const int buckets = 238;   // MaxEntries 1000 at load 0.6 in one shard
        expiredKey = 1000;
        while ((((ulong)(uint)XxHash3.HashToUInt64(K(expiredKey), seed) * buckets) >> 32) < 80)
        {
            expiredKey++;
        }
        var time = new FakeTimeProvider();
        var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = (buckets * 64) + 65536 + 1024, PageSize = 65536, ShardCount = 1, MaxEntries = 1000, Policy = CachePolicy.Lru,
            MaxEvictionsPerInsert = 1, TimeProvider = time, HashSeed = seed, EvictionListener = listener,
        });
        byte[] small = new byte[100];
        Assert.That(cache.Set(K(1), small, TimeSpan.FromHours(1)), Is.True);
        for (int i = 2; i < 22; i++)
        {
            Assert.That(cache.Set(K(i), small), Is.True);
        }
        Assert.That(cache.Set(K(expiredKey), small, TimeSpan.FromSeconds(1)), Is.True);
        time.Advance(TimeSpan.FromSeconds(2));
        return cache;
    }

    [Test]
    public void ASetRefusedForWantOfRoomCountsAndReportsTheKeysExpiredEntryAsAnExpiration()
    {
        var heard = new List<(long Key, EvictionReason Reason)>();
        using OffHeapCache cache = CacheWithAnExpiredKey((k, r) => heard.Add((BitConverter.ToInt64(k), r)), out int kIndex);
        CacheStatistics before = cache.GetStatistics();

        bool stored = cache.Set(K(kIndex), new byte[3000]);

        CacheStatistics after = cache.GetStatistics();
        cache.ValidateInvariants();
        Assert.That(stored, Is.False, "no room for the new value (precondition)");
        Assert.Multiple(() =>
        {
            Assert.That(after.Evictions - before.Evictions + (after.Expirations - before.Expirations), Is.EqualTo(before.Count - after.Count),
                "every entry that left is counted as an eviction or an expiration");
            Assert.That(heard, Does.Contain(((long)kIndex, EvictionReason.Expired)), "the expired entry is reported as Expired, whichever path removed it");
            Assert.That(after.Rejections - before.Rejections, Is.EqualTo(1));
            Assert.That(cache.ContainsKey(K(kIndex)), Is.False);
        });
    }

    [Test]
    public void ATypedAddOrUpdateWhoseUpdateEvictsItsOwnEntryAddsItsValueInstead()
    {
        // Key 0 is set first (on the first page) and kept hot, so it is never the LRU victim; the 900-byte class has no
        // page, so making room reclaims a page, key 0's. ConcurrentDictionary's AddOrUpdate: a key that vanished
        // meanwhile is added. (Found by the session's last look: the update was refused and nothing stored at all.)
        var heard = new List<(long Key, EvictionReason Reason)>();
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = (32 * 1024) + (2 * 65536), PageSize = 65536, ShardCount = 1, MaxEntries = 2000, Policy = CachePolicy.Lru,
            TimeProvider = new FakeTimeProvider(), HashSeed = 5,
            EvictionListener = (k, r) => heard.Add((BitConverter.ToInt64(k), r)),
        });
        byte[] value = new byte[100];
        var buffer = new byte[200];
        Assert.That(cache.Set(K(0), value), Is.True);
        for (int n = 1; heard.Count == 0 && n < 5000; n++)
        {
            Assert.That(cache.Set(K(n), value), Is.True);
            cache.TryGet(K(0), buffer, out _);
        }
        heard.Clear();
        var view = new OffHeapCache<long, byte[]>(cache);
        CacheStatistics before = cache.GetStatistics();

        byte[] result = view.AddOrUpdate(0L, [1], static (_, _) => new byte[900]);

        CacheStatistics after = cache.GetStatistics();
        cache.ValidateInvariants();
        Assert.Multiple(() =>
        {
            Assert.That(heard, Does.Contain((0L, EvictionReason.PageReclaimed)), "the update's page reclaim took key 0's page (precondition)");
            Assert.That(result, Is.EqualTo(new byte[] { 1 }), "its update evicted it, so the add value went in");
            Assert.That(view.TryGetValue(0L, out byte[]? stored), Is.True, "the key is in the cache after AddOrUpdate");
            Assert.That(stored, Is.EqualTo(result), "holding the value AddOrUpdate returned");
            Assert.That(after.Rejections, Is.EqualTo(before.Rejections));
        });
    }

    [Test]
    public void ARefusedSetOverAnExpiredEntryCountsItsRejectionEvenWhenTheListenerThrows()
    {
        bool throwing = false;
        using OffHeapCache cache = CacheWithAnExpiredKey((_, r) =>
        {
            if (throwing && r == EvictionReason.Expired)
            {
                throw new InvalidOperationException("listener");
            }
        }, out int kIndex);
        CacheStatistics before = cache.GetStatistics();
        throwing = true;

        Assert.That(() => cache.Set(K(kIndex), new byte[3000]), Throws.InvalidOperationException.With.Message.EqualTo("listener"));

        throwing = false;
        CacheStatistics after = cache.GetStatistics();
        cache.ValidateInvariants();
        Assert.That(after.Rejections - before.Rejections, Is.EqualTo(1), "counted before the listener ran");
        Assert.That(after.Expirations - before.Expirations, Is.EqualTo(1));
        Assert.That(cache.ContainsKey(K(kIndex)), Is.False, "the expired entry is gone although the listener threw");
    }
}

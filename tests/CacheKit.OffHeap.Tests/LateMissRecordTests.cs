using CacheKit.Policies;
using Microsoft.Extensions.Time.Testing;

namespace CacheKit.OffHeap.Tests;

/// <summary>
/// A write replays only its own core's read-buffer stripe (Shard.DrainOwnStripeBeforeWrite), so a caller's miss
/// recorded on one core can be replayed after the add of that key made on another (the thread moved; an await between
/// the lookup and the add). The add counted the access; the late miss must not count it again
/// (IReadRecordFilter.HoldsKeyOf), or a key looked up and added across cores would enter W-TinyLFU with twice the
/// frequency of one looked up and added on one core.
/// </summary>
[TestFixture]
public sealed class LateMissRecordTests
{
    private static byte[] Key(int k) => BitConverter.GetBytes(k);

    private static OffHeapCache NewCache(TimeProvider? time = null) => new(new OffHeapCacheOptions
    {
        CapacityBytes = 16 << 20, MaxEntries = 100, ShardCount = 1, HashSeed = 7, ReadBufferStripes = 1,
        TimeProvider = time ?? TimeProvider.System,
    });

    [Test]
    public void TheShardHoldsTheKeysItStoresAndNoOthers()
    {
        using OffHeapCache cache = NewCache();
        cache.Set(Key(1), new byte[16]);
        Shard shard = cache.Shards[0];
        lock (shard.Gate)
        {
            Assert.That(shard.HoldsKeyOf(cache.Hash(Key(1))), Is.True);
            Assert.That(Enumerable.Range(2, 200).Where(k => shard.HoldsKeyOf(cache.Hash(Key(k)))), Is.Empty, "keys never stored (seed 7: no tag collides)");
        }
        cache.Remove(Key(1));
        lock (shard.Gate)
        {
            Assert.That(shard.HoldsKeyOf(cache.Hash(Key(1))), Is.False, "removed");
        }
    }

    [Test]
    public void AnExpiredEntryIsNotHeldSoTheMissThatFoundItExpiredCounts()
    {
        // A get that finds its key expired misses with the entry still in the index (readers do not remove it); that
        // miss was no lookup of a key added later, so the drain must count it.
        var time = new FakeTimeProvider();
        using OffHeapCache cache = NewCache(time);
        Shard shard = cache.Shards[0];
        var policy = (WTinyLfuPolicy)shard.Policy;
        ulong expiring = cache.Hash(Key(1));
        cache.Set(Key(1), new byte[16], TimeSpan.FromSeconds(1));
        cache.Set(Key(2), new byte[16]);
        time.Advance(TimeSpan.FromSeconds(2));
        lock (shard.Gate)
        {
            Assert.That(shard.HoldsKeyOf(expiring), Is.False, "expired");
            Assert.That(shard.HoldsKeyOf(cache.Hash(Key(2))), Is.True, "no time to live");
        }
        int before = policy.Sketch.Frequency(expiring);
        Assert.That(cache.TryGet(Key(1), new byte[64], out _), Is.False);
        cache.Remove(Key(3));   // a write: drains the stripe (the expired entry is still in the index)
        Assert.That(policy.Sketch.Frequency(expiring), Is.EqualTo(before + 1), "the miss on the expired entry was not counted");
        cache.ValidateInvariants();
    }

    [Test]
    public void AMissReplayedAfterItsKeyWasAddedIsNotCountedAgain()
    {
        using OffHeapCache cache = NewCache();
        Shard shard = cache.Shards[0];
        var policy = (WTinyLfuPolicy)shard.Policy;
        var buffer = (ReadBuffer)typeof(Shard).GetField("_readBuffer", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(shard)!;
        ulong added = cache.Hash(Key(1)), absent = cache.Hash(Key(2));

        cache.Set(Key(1), new byte[16]);   // a blind add: it counts the access itself
        int addedBefore = policy.Sketch.Frequency(added);
        int absentBefore = policy.Sketch.Frequency(absent);
        Assume.That(addedBefore, Is.EqualTo(1));

        // The misses that preceded the add (of key 1) and of a key never added (2), published late; the next write drains them.
        Assert.That(buffer.TryRecordMiss(added), Is.True);
        Assert.That(buffer.TryRecordMiss(absent), Is.True);
        cache.Remove(Key(3));

        Assert.That(cache.PendingReads, Is.Zero, "the write drained the stripe");
        Assert.That(policy.Sketch.Frequency(added), Is.EqualTo(addedBefore), "the late miss of a key added since counted it a second time");
        Assert.That(policy.Sketch.Frequency(absent), Is.EqualTo(absentBefore + 1), "a miss of a key still absent counts");
        cache.ValidateInvariants();
    }
}

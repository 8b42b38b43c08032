using CacheKit.Policies;
using Microsoft.Extensions.Time.Testing;

namespace CacheKit.OffHeap.Tests;

/// <summary>
/// A set replays only its own core's read-buffer stripe (Shard.DrainOwnStripeBeforeWrite), so a caller's miss recorded
/// on one core can be replayed after the add of that key made on another (the thread moved; an await between the lookup
/// and the add). That add found no replayed miss and counted the access itself; the late miss must then not count it
/// again (IReadRecordFilter.HandleOfLiveKey, IEvictionPolicy.TryCancelLateMiss), or a key looked up and added across
/// cores would enter W-TinyLFU with twice the frequency of one looked up and added on one core. Other callers' misses
/// of the key still count.
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

    /// <summary>The one shard's policy and read buffer (the tests append records to it as a late reader would).</summary>
    private static (WTinyLfuPolicy Policy, ReadBuffer Buffer) PartsOf(OffHeapCache cache)
    {
        Shard shard = cache.Shards[0];
        var buffer = (ReadBuffer)typeof(Shard).GetField("_readBuffer", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(shard)!;
        return ((WTinyLfuPolicy)shard.Policy, buffer);
    }

    /// <summary>Misses of <paramref name="hashes"/> published late (their readers were mid-way), then a set of
    /// <paramref name="writeKey"/>, which replays them.</summary>
    private static void PublishLateMissesThenSet(OffHeapCache cache, ReadBuffer buffer, int writeKey, params ulong[] hashes)
    {
        foreach (ulong hash in hashes)
        {
            Assert.That(buffer.TryRecordMiss(hash), Is.True);
        }
        cache.Set(Key(writeKey), new byte[16]);
        Assert.That(cache.PendingReads, Is.Zero, "the set replayed the stripe");
    }

    [Test]
    public void TheShardFindsTheKeysItStoresAndNoOthers()
    {
        using OffHeapCache cache = NewCache();
        cache.Set(Key(1), new byte[16]);
        Shard shard = cache.Shards[0];
        lock (shard.Gate)
        {
            Assert.That(shard.HandleOfLiveKey(cache.Hash(Key(1))), Is.GreaterThanOrEqualTo(0));
            Assert.That(Enumerable.Range(2, 200).Where(k => shard.HandleOfLiveKey(cache.Hash(Key(k))) >= 0), Is.Empty, "keys never stored (seed 7: no tag collides)");
        }
        cache.Remove(Key(1));
        lock (shard.Gate)
        {
            Assert.That(shard.HandleOfLiveKey(cache.Hash(Key(1))), Is.EqualTo(-1), "removed");
        }
    }

    [Test]
    public void AnExpiredEntryIsNotFoundSoTheMissThatFoundItExpiredCounts()
    {
        // A get that finds its key expired misses with the entry still in the index (readers do not remove it); that
        // miss was no lookup of a key added later, so the drain must count it.
        var time = new FakeTimeProvider();
        using OffHeapCache cache = NewCache(time);
        Shard shard = cache.Shards[0];
        WTinyLfuPolicy policy = PartsOf(cache).Policy;
        ulong expiring = cache.Hash(Key(1));
        cache.Set(Key(1), new byte[16], TimeSpan.FromSeconds(1));   // a blind add: it counts the access, and says so
        cache.Set(Key(2), new byte[16]);
        time.Advance(TimeSpan.FromSeconds(2));
        lock (shard.Gate)
        {
            Assert.That(shard.HandleOfLiveKey(expiring), Is.EqualTo(-1), "expired");
            Assert.That(shard.HandleOfLiveKey(cache.Hash(Key(2))), Is.GreaterThanOrEqualTo(0), "no time to live");
        }
        int before = policy.Sketch.Frequency(expiring);
        Assert.That(cache.TryGet(Key(1), new byte[64], out _), Is.False);
        cache.Set(Key(3), new byte[16]);   // a write: replays the stripe (the expired entry is still in the index)
        Assert.That(policy.Sketch.Frequency(expiring), Is.EqualTo(before + 1), "the miss on the expired entry was not counted");
        cache.ValidateInvariants();
    }

    [Test]
    public void AMissReplayedAfterTheAddThatCountedItIsNotCountedAgain()
    {
        using OffHeapCache cache = NewCache();
        (WTinyLfuPolicy policy, ReadBuffer buffer) = PartsOf(cache);
        ulong added = cache.Hash(Key(1)), absent = cache.Hash(Key(2));

        cache.Set(Key(1), new byte[16]);   // no miss replayed before it: the add counts the access itself
        int addedBefore = policy.Sketch.Frequency(added);
        int absentBefore = policy.Sketch.Frequency(absent);
        Assume.That(addedBefore, Is.EqualTo(1));

        // The miss that preceded the add of key 1, and one of key 2 (never added).
        PublishLateMissesThenSet(cache, buffer, 3, added, absent);
        Assert.That(policy.Sketch.Frequency(added), Is.EqualTo(addedBefore), "the late miss of a key whose add counted it was counted again");
        Assert.That(policy.Sketch.Frequency(absent), Is.EqualTo(absentBefore + 1), "a miss of a key still absent counts");

        // The add's count cancels one late miss only: a second caller's miss of key 1 counts.
        PublishLateMissesThenSet(cache, buffer, 4, added);
        Assert.That(policy.Sketch.Frequency(added), Is.EqualTo(addedBefore + 1), "another caller's miss of the key was dropped");
        cache.ValidateInvariants();
    }

    [Test]
    public void AnotherCallersLateMissCountsWhenTheAddFollowedItsOwnMiss()
    {
        // A stampede: the adder's own miss was replayed before its add (which then counted nothing); another caller's
        // miss of the same key, replayed after the add, is an access of its own and counts.
        using OffHeapCache cache = NewCache();
        (WTinyLfuPolicy policy, ReadBuffer buffer) = PartsOf(cache);
        ulong key = cache.Hash(Key(1));
        Assert.That(cache.TryGet(Key(1), new byte[64], out _), Is.False);
        cache.Set(Key(1), new byte[16]);   // replays the miss first, then adds: one access
        int before = policy.Sketch.Frequency(key);
        Assume.That(before, Is.EqualTo(1));

        PublishLateMissesThenSet(cache, buffer, 2, key);
        Assert.That(policy.Sketch.Frequency(key), Is.EqualTo(before + 1), "the other caller's miss was dropped");
        cache.ValidateInvariants();
    }
}

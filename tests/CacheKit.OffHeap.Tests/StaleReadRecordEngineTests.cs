using System.Reflection;
using CacheKit.Policies;

namespace CacheKit.OffHeap.Tests;

/// <summary>
/// Found by a review: a hit record reaches the read buffer after the drain that preceded the key's removal
/// (its reader was preempted between claiming the stripe's slot and publishing it, or between its
/// validated lookup and its append). Meanwhile another key took the same index slot, i.e. the same
/// policy handle. The replay must ignore the old key's record; W-TinyLFU promotes the new key instead.
/// </summary>
[TestFixture]
public sealed class StaleReadRecordEngineTests
{
    private const BindingFlags Any = BindingFlags.NonPublic | BindingFlags.Instance;

    [Test]
    public void AHitOfARemovedKeyReplayedLateDoesNotPromoteTheKeyThatNowHoldsItsSlot()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 16 << 20,
            MaxEntries = 20,
            ShardCount = 1,
            HashSeed = 7,
            ReadBufferStripes = 1,
        });
        byte[] value = new byte[16];
        static byte[] Key(int k) => BitConverter.GetBytes(k);
        for (int k = 0; k < 20; k++)
        {
            cache.Set(Key(k), value);
        }

        Shard shard = cache.Shards[0];
        IEvictionPolicy policy = shard.Policy;
        MethodInfo hashOf = policy.GetType().GetMethod("HashOf", Any)!;
        object lists = policy.GetType().BaseType!.GetField("Lists", Any)!.GetValue(policy)!;
        MethodInfo listOf = lists.GetType().GetMethod("ListOf")!;
        int ListOf(int h) => (int)listOf.Invoke(lists, [h])!;
        ulong HashOf(int h) => (ulong)hashOf.Invoke(policy, [h])!;

        // The slot (policy handle) of key 0.
        ulong hashA = cache.Hash(Key(0));
        int slotA = Enumerable.Range(0, policy.MaxHandles).Single(h => ListOf(h) >= 0 && HashOf(h) == hashA);

        // A reader claims the next record of the one stripe and is preempted before publishing it
        // (ReadBuffer.TryAppend between its compare-and-swap and its tag store).
        var buffer = (ReadBuffer)typeof(Shard).GetField("_readBuffer", Any)!.GetValue(shard)!;
        var tails = (long[])typeof(ReadBuffer).GetField("_tails", Any)!.GetValue(buffer)!;
        var tags = (long[])typeof(ReadBuffer).GetField("_tags", Any)!.GetValue(buffer)!;
        const int firstCounter = 16, firstSlot = 16;   // EdgePad: stripe 0's tail, and its slot 0
        Assume.That(tails[firstCounter], Is.EqualTo(0));
        tails[firstCounter] = 1;

        // Another reader reads key 0: its record waits behind the unpublished one.
        Span<byte> destination = stackalloc byte[64];
        Assert.That(cache.TryGet(Key(0), destination, out _), Is.True);

        cache.Remove(Key(0));
        int b = 1000;
        for (; b < 3000; b++)
        {
            cache.Set(Key(b), value);
            if (ListOf(slotA) >= 0 && HashOf(slotA) == cache.Hash(Key(b)))
            {
                break;
            }
            cache.Remove(Key(b));
        }
        Assume.That(b, Is.LessThan(3000), "a new key took key 0's slot");
        cache.Set(Key(b), value);   // seen twice: it wins its admission duel and settles in probation
        for (int c = 5000; c < 5040 && ListOf(slotA) != 1; c++)
        {
            cache.Set(Key(c), value);
        }
        Assume.That(HashOf(slotA), Is.EqualTo(cache.Hash(Key(b))));
        Assume.That(ListOf(slotA), Is.EqualTo(1), "the new key is in probation, never read");

        // The preempted reader publishes (a miss); the next write drains the stripe.
        tags[firstSlot] = 1;
        cache.Remove(Key(-1));
        cache.ValidateInvariants();

        Assert.That(ListOf(slotA), Is.EqualTo(1), "key 0's late hit promoted the key now in its slot to protected");
    }
}

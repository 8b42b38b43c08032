using System.Buffers.Binary;
using CacheKit.OffHeap;

namespace CacheKit.Hardening.Tests;

/// <summary>
/// Keys chosen by an attacker: hashing is seeded per instance (two caches disagree on every hash), and probing is
/// bounded (keys that all collide into one home bucket under a known seed cost at most 8 buckets per lookup; the
/// index evicts inside the window rather than scanning further). The longest-probe counter shows it.
/// </summary>
public class AdversarialKeyTests
{
    /// <summary>
    /// Keys whose hash under <paramref name="cache"/>'s seed has its low 32 bits below 2^16, so their home bucket is
    /// 0 for any bucket count up to 65 536 (home = low32 * buckets >> 32): all collide. Also in shard 0 when
    /// <paramref name="shardBitsZero"/> (top 8 bits 0).
    /// </summary>
    internal static List<byte[]> CollidingKeys(OffHeapCache cache, int count, bool shardBitsZero = false)
    {
        var keys = new List<byte[]>(count);
        var key = new byte[12];
        "adv:"u8.CopyTo(key);
        for (long i = 0; keys.Count < count; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(key.AsSpan(4), i);
            ulong hash = cache.Hash(key);
            if ((uint)hash < (1u << 16) && (!shardBitsZero || hash >> 56 == 0))
            {
                keys.Add((byte[])key.Clone());
            }
        }
        return keys;
    }

    [Test]
    public void TwoCachesGetDifferentSeeds()
    {
        var options = new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1 };
        using var a = new OffHeapCache(options);
        using var b = new OffHeapCache(options);
        byte[][] keys = [[], [1], "the same key"u8.ToArray(), new byte[1000]];
        Assert.That(keys.Count(k => a.Hash(k) == b.Hash(k)), Is.Zero, "hashes of two caches differ (random seed per instance)");

        // And keys crafted against one cache do not collide in the other.
        List<byte[]> crafted = CollidingKeys(a, 60);
        Assert.That(crafted.Count(k => (uint)b.Hash(k) < (1u << 16)), Is.LessThan(3));
    }

    [Test]
    public void CollidingKeysStayWithinTheProbeBound()
    {
        var options = new OffHeapCacheOptions { CapacityBytes = 8 << 20, PageSize = 64 * 1024, ShardCount = 1, HashSeed = 42 };
        using var victim = new OffHeapCache(options);
        List<byte[]> keys = CollidingKeys(victim, 300);
        var read = new byte[8];
        for (int i = 0; i < keys.Count; i++)
        {
            Assert.That(victim.Set(keys[i], BitConverter.GetBytes(i)), Is.True);
            Assert.That(victim.TryGet(keys[i], read, out int n) && n == 4, Is.True, "the newest colliding key is readable");
        }
        victim.ValidateInvariants();
        int window = Shard.ProbeBuckets * IndexBucket.SlotCount;
        Assert.That(victim.LongestProbe, Is.EqualTo(Shard.ProbeBuckets - 1), "the window filled to its last bucket and no further");
        Assert.That(victim.Count, Is.EqualTo(window), "one window of colliding keys, the rest evicted");
        Assert.That(victim.FullWindowEvictions, Is.EqualTo(keys.Count - window));

        // The same keys in a cache with its own random seed: spread out, no full window.
        using var other = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 8 << 20, PageSize = 64 * 1024, ShardCount = 1 });
        foreach (byte[] key in keys)
        {
            other.Set(key, [1, 2, 3, 4]);
        }
        Assert.That(other.Count, Is.EqualTo(keys.Count));
        Assert.That(other.FullWindowEvictions, Is.Zero);
        Assert.That(other.LongestProbe, Is.LessThan(Shard.ProbeBuckets - 1));
        TestContext.Out.WriteLine($"fixed seed: longest probe {victim.LongestProbe}, {victim.FullWindowEvictions} full-window evictions; random seed: longest probe {other.LongestProbe}");
    }

    [Test]
    public void ThrowingListenerDuringAFullWindowEvictionLeaksNoChunk()
    {
        // The full-window eviction happens after the newcomer's chunk was allocated: if the listener throws there,
        // that chunk must not be lost.
        bool fail = false;
        var options = new OffHeapCacheOptions
        {
            CapacityBytes = 8 << 20, PageSize = 64 * 1024, ShardCount = 1, HashSeed = 7,
            EvictionListener = (_, _) =>
            {
                if (fail)
                {
                    throw new InvalidOperationException("listener failed");
                }
            },
        };
        using var cache = new OffHeapCache(options);
        List<byte[]> keys = CollidingKeys(cache, 80);
        int window = Shard.ProbeBuckets * IndexBucket.SlotCount;
        for (int i = 0; i < window; i++)
        {
            cache.Set(keys[i], new byte[100]);
        }
        fail = true;
        int thrown = 0;
        for (int i = window; i < keys.Count; i++)
        {
            try
            {
                cache.Set(keys[i], new byte[100]);
            }
            catch (InvalidOperationException)
            {
                thrown++;   // the eviction completed, the newcomer was not stored: the next one finds a free slot
            }
        }
        fail = false;
        Assert.That(thrown, Is.GreaterThanOrEqualTo((keys.Count - window) / 2));
        Assert.That(cache.Count, Is.LessThanOrEqualTo(window));
        FaultInjectionTests.AssertConsistent(cache, 8 << 20);
        // The cache still works for these keys afterwards.
        Assert.That(cache.Set(keys[^1], new byte[100]), Is.True);
        FaultInjectionTests.AssertConsistent(cache, 8 << 20);
    }
}

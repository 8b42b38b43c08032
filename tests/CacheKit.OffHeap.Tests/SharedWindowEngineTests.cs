using System.Buffers.Binary;
using CacheKit.Policies;

namespace CacheKit.OffHeap.Tests;

/// <summary>
/// The engine's shards share one adaptive-window decision (shard 0's shadows) when each holds more than
/// <see cref="WindowShadows.MaxShadowEntries"/> entries, and keep their own below that (<see cref="SharedWindowChoice"/>).
/// </summary>
public class SharedWindowEngineTests
{
    private static OffHeapCache Create(int shards, long maxEntries, CachePolicy policy = CachePolicy.WTinyLfu) => new(new OffHeapCacheOptions
    {
        CapacityBytes = 64L << 20,
        ShardCount = shards,
        MaxEntries = maxEntries,
        Policy = policy,
        HashSeed = 7,
    });

    private static WTinyLfuPolicy PolicyOf(OffHeapCache cache, int shard) => (WTinyLfuPolicy)cache.Shards[shard].Policy;

    [Test]
    public void Large_shards_follow_shard_zero_and_run_no_shadows()
    {
        using var cache = Create(shards: 4, maxEntries: 4 * 2_500);
        Assert.That(PolicyOf(cache, 0).FollowsSharedWindow, Is.False, "shard 0 leads");
        Assert.That(PolicyOf(cache, 0).ShadowSampleRate, Is.GreaterThan(0));
        for (int s = 1; s < 4; s++)
        {
            Assert.That(PolicyOf(cache, s).FollowsSharedWindow, Is.True, $"shard {s}");
            Assert.That(PolicyOf(cache, s).ShadowSampleRate, Is.EqualTo(0), $"shard {s} runs no shadows");
        }
    }

    [TestCase(4, 4 * WindowShadows.MaxShadowEntries)]       // every shard at the shadows' size: each keeps its own
    [TestCase(4, (4 * (WindowShadows.MaxShadowEntries + 1)) - 1)]   // the last shard one entry short
    [TestCase(1, 100_000)]                                  // one shard: nothing to share
    public void Small_shards_or_a_single_shard_keep_their_own_shadows(int shards, long maxEntries)
    {
        using var cache = Create(shards, maxEntries);
        for (int s = 0; s < shards; s++)
        {
            Assert.That(PolicyOf(cache, s).FollowsSharedWindow, Is.False, $"shard {s}");
            Assert.That(PolicyOf(cache, s).ShadowSampleRate, Is.GreaterThan(0), $"shard {s} has shadows");
        }
    }

    [Test]
    public void Other_policies_are_built_as_before()
    {
        using var cache = Create(shards: 4, maxEntries: 40_000, CachePolicy.Lru);
        Assert.That(cache.Shards.Select(s => s.Policy.Name), Is.All.EqualTo("LRU"));
    }

    /// <summary>
    /// A zig-zag sweep over 1.5x the entry bound (recency-heavy: the window grows far past 1 %) through the real
    /// engine: every shard ends with the window shard 0's shadows chose, the followers without shadows of their own.
    /// </summary>
    [Test]
    public void Every_shard_takes_the_window_shard_zero_chose()
    {
        const int shards = 4, perShard = 2_500, keys = shards * perShard * 3 / 2;
        using var cache = Create(shards, shards * perShard);
        Span<byte> key = stackalloc byte[8];
        Span<byte> value = stackalloc byte[16];
        Span<byte> read = stackalloc byte[16];
        long initial = PolicyOf(cache, 1).WindowMaximum;
        for (int round = 0; round < 20; round++)
        {
            for (int i = 0; i < keys; i++)
            {
                int k = round % 2 == 0 ? i : keys - 1 - i;
                BinaryPrimitives.WriteInt64LittleEndian(key, k);
                if (!cache.TryGet(key, read, out _))
                {
                    BinaryPrimitives.WriteInt64LittleEndian(value, k);
                    cache.Set(key, value);
                }
            }
        }
        // One more add in each follower (a key never seen that hashes to it), where a follower looks; shard 0 sees
        // nothing more, so its choice stays.
        int fresh = keys;
        for (int s = 1; s < shards; s++)
        {
            do
            {
                BinaryPrimitives.WriteInt64LittleEndian(key, fresh++);
            }
            while (cache.ShardOf(cache.Hash(key)) != cache.Shards[s]);
            cache.Set(key, value);
        }
        cache.ValidateInvariants();
        long chosen = PolicyOf(cache, 0).WindowMaximum;
        TestContext.Out.WriteLine($"zigzag over {keys} keys, {shards} x {perShard}: windows {string.Join(", ", Enumerable.Range(0, shards).Select(s => PolicyOf(cache, s).WindowMaximum))} (start {initial}); hit ratio {cache.GetStatistics().HitRatio:P2}");
        Assert.That(chosen, Is.GreaterThan(initial * 10), "shard 0's shadows grew the window on this workload");
        for (int s = 1; s < shards; s++)
        {
            Assert.That(PolicyOf(cache, s).WindowMaximum, Is.EqualTo(chosen).Within(1), $"shard {s} follows (shards differ by at most one entry)");
        }
    }
}

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

    [TestCase(4 * 2_500)]
    [TestCase(4 * (WindowShadows.MaxShadowEntries + 1))]   // the smallest that shares
    public void Large_shards_follow_shard_zero_and_run_no_shadows(long maxEntries)
    {
        using var cache = Create(shards: 4, maxEntries);
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
    /// Shard 0 sees a zig-zag sweep (recency-heavy: its shadows grow the window far past 1 %), the other shards a loop
    /// (frequency-heavy: their own shadows would keep the window near 1 %). Every follower ends at shard 0's window,
    /// which it can only have from the shared choice; then a cache-wide <c>Clear</c> starts every shard over at 1 %.
    /// </summary>
    [Test]
    public void Followers_take_shard_zeros_window_even_on_another_workload_and_Clear_resets_all()
    {
        const int shards = 4, perShard = 2_500;
        using var cache = Create(shards, shards * perShard);
        int[][] keysOf = KeysByShard(cache, perShard * 3 / 2);
        byte[] key = new byte[8], value = new byte[16], read = new byte[16];
        long initial = PolicyOf(cache, 1).WindowMaximum;
        void Access(int k)
        {
            BinaryPrimitives.WriteInt64LittleEndian(key, k);
            if (!cache.TryGet(key, read, out _))
            {
                cache.Set(key, value);
            }
        }
        for (int round = 0; round < 20; round++)
        {
            int[] zig = keysOf[0];
            for (int i = 0; i < zig.Length; i++)
            {
                Access(zig[round % 2 == 0 ? i : zig.Length - 1 - i]);   // shard 0: forward, then backward
                for (int s = 1; s < shards; s++)
                {
                    Access(keysOf[s][i]);   // the others: the same order every round (a loop over 1.5x their bound)
                }
            }
        }
        // One more add in each follower (a key never seen), where a follower looks; shard 0 sees nothing more.
        for (int s = 1; s < shards; s++)
        {
            Access(keysOf[s][^1]);
        }
        cache.ValidateInvariants();
        long chosen = PolicyOf(cache, 0).WindowMaximum;
        TestContext.Out.WriteLine($"shard 0 zig-zag, shards 1-3 loop, {shards} x {perShard}: windows {string.Join(", ", Enumerable.Range(0, shards).Select(s => PolicyOf(cache, s).WindowMaximum))} (start {initial})");
        Assert.That(chosen, Is.GreaterThan(initial * 10), "shard 0's shadows grew the window on its zig-zag");
        for (int s = 1; s < shards; s++)
        {
            Assert.That(PolicyOf(cache, s).FollowsSharedWindow, Is.True, $"shard {s}");
            Assert.That(PolicyOf(cache, s).WindowMaximum, Is.EqualTo(chosen).Within(1), $"shard {s} follows (shards differ by at most one entry)");
        }

        cache.Clear();
        for (int s = 1; s < shards; s++)
        {
            Access(keysOf[s][0]);   // an add in each follower after the clear
        }
        cache.ValidateInvariants();
        for (int s = 0; s < shards; s++)
        {
            Assert.That(PolicyOf(cache, s).WindowMaximum, Is.EqualTo(initial).Within(1), $"shard {s} back at the initial window");
        }
    }

    /// <summary>For each shard, <paramref name="count"/> + 1 distinct 8-byte keys that hash to it (the last one kept unused).</summary>
    private static int[][] KeysByShard(OffHeapCache cache, int count)
    {
        var lists = Enumerable.Range(0, cache.ShardCount).Select(_ => new List<int>()).ToArray();
        Span<byte> key = stackalloc byte[8];
        for (int k = 0; lists.Any(l => l.Count <= count); k++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(key, k);
            int shard = cache.Shards.ToList().IndexOf(cache.ShardOf(cache.Hash(key)));
            if (lists[shard].Count <= count)
            {
                lists[shard].Add(k);
            }
        }
        return [.. lists.Select(l => l.ToArray())];
    }
}

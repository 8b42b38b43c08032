using System.Diagnostics;

namespace CacheKit.Policies;

/// <summary>
/// One adaptive-window decision shared by the W-TinyLFU policies of a sharded cache. The shards of a cache
/// see statistically the same workload (keys are spread over them by a seeded hash), so one shard's window
/// shadows (the <i>leader</i>'s) answer for all: the leader publishes its <see cref="WindowShadows.Best"/> here
/// at the end of each decision epoch and the other shards (<i>followers</i>) run no shadows and take that
/// choice at their next add.
/// </summary>
/// <remarks>
/// Why: a shard above <see cref="WindowShadows.MaxShadowEntries"/> entries replays
/// <c>MaxShadowEntries / entries</c> of its requests into 7 shadows, 8 times over for one answer with 8 shards
/// of 12,500 entries; sharing took the 90/10 mix with eviction there from 1.15x to 1.57x ConcurrentLfu's
/// throughput with 2 threads (medians of five alternated runs; docs/policies/w-tinylfu.md, departure 9).
/// Below that size each shard replays every request and the shadows' detail is what small caches' hit
/// ratios rest on (<see cref="PaysOff"/>), so shards that small keep their own.
/// <para>Thread safety: the leader writes under its shard's lock, followers read under theirs; the value is a
/// single int written and read with volatile semantics, and a follower that reads a stale value takes the new
/// one at a later add.</para>
/// </remarks>
internal sealed class SharedWindowChoice
{
    private volatile int _best = WindowShadows.InitialBest;

    /// <summary>The leader's latest <see cref="WindowShadows.Best"/>.</summary>
    public int Best => _best;

    /// <summary>The leader publishes its shadows' choice (at each decision epoch and after a clear).</summary>
    public void Publish(int best)
    {
        // Shared only above MaxShadowEntries entries per shard (the policy's constructor checks), where no
        // long-memory shadows run.
        Debug.Assert((uint)best < (uint)WindowShadows.Fractions.Length, "a shared window choice is one of the short-memory shadows");
        if (_best != best)
        {
            _best = best;   // written only when it moves: the followers' copy of the line stays valid between epochs
        }
    }

    /// <summary>
    /// Whether sharing one decision pays off for shards of <paramref name="shardCapacity"/> entries (the smallest
    /// shard's): only above <see cref="WindowShadows.MaxShadowEntries"/>, where each shard samples its requests
    /// anyway. With 16 shards of at most 2,048 entries on the simulator's suite (<c>engine@16</c>), sharing lost up
    /// to 3.5 points (backf at 400 entries) against per-shard shadows; at 4 shards the suite moved +0.03 on average.
    /// </summary>
    public static bool PaysOff(long shardCapacity) => shardCapacity > WindowShadows.MaxShadowEntries;
}

namespace CacheKit.Policies;

/// <summary>How to build a policy: handle range, weight budget and the optional knobs.</summary>
public sealed record PolicyOptions
{
    /// <summary>Handles accepted are in [0, MaxHandles). Sizes the per-entry arrays.</summary>
    public required int MaxHandles { get; init; }

    /// <summary>The weight budget (entries when every weight is 1, else bytes).</summary>
    public required long Capacity { get; init; }

    /// <summary>Wraps the policy in a TinyLFU admission filter (ignored by W-TinyLFU, which has its own).</summary>
    public bool TinyLfuAdmission { get; init; }

    /// <summary>Seed for policies that draw random numbers (Random) and for sketch hashing.</summary>
    public int Seed { get; init; } = 0x5EED;

    /// <summary>W-TinyLFU: fixed window fraction in (0, 1), or null for the adaptive window chosen by shadow caches (default).</summary>
    public double? WindowFraction { get; init; }

    /// <summary>
    /// W-TinyLFU with an adaptive window: the decision it shares with the other shards of one cache, or null for
    /// its own shadows (see <see cref="SharedWindowChoice"/>); <see cref="LeadsSharedWindow"/> says which shard's
    /// shadows make it. Entry-count capacities above <see cref="WindowShadows.MaxShadowEntries"/> only.
    /// </summary>
    internal SharedWindowChoice? SharedWindow { get; init; }

    /// <summary>With <see cref="SharedWindow"/>: this policy runs the shadows and publishes their choice.</summary>
    internal bool LeadsSharedWindow { get; init; }

    /// <summary>LRU-K: K (default 2).</summary>
    public int K { get; init; } = 2;

    /// <summary>
    /// The largest weight of one entry, 2^32 (4 GiB): with at most 2^30 handles the sum of the weights stays
    /// below 2^62, so <see cref="IEvictionPolicy.Weight"/> cannot overflow (a weight near long.MaxValue used to
    /// wrap it negative, and the owner then stopped evicting).
    /// </summary>
    public const long MaxWeight = 1L << 32;
}

using CacheKit.Policies;

namespace CacheKit.OffHeap;

/// <summary>
/// The eviction policy an <see cref="OffHeapCache"/> uses, one per shard. Every member maps to the
/// <see cref="PolicyKind"/> of the same name. The default, <see cref="WTinyLfu"/>, is the best
/// measured on the shared traces (see docs/policies).
/// </summary>
public enum CachePolicy
{
    /// <summary>W-TinyLFU with an adaptive window. The default.</summary>
    WTinyLfu = 0,
    /// <summary>First in, first out.</summary>
    Fifo,
    /// <summary>Last in, first out.</summary>
    Lifo,
    /// <summary>Uniformly random victim.</summary>
    Random,
    /// <summary>Least recently used.</summary>
    Lru,
    /// <summary>Most recently used.</summary>
    Mru,
    /// <summary>LRU-K (K = 2).</summary>
    LruK,
    /// <summary>Segmented LRU.</summary>
    Slru,
    /// <summary>2Q.</summary>
    TwoQ,
    /// <summary>Adaptive Replacement Cache.</summary>
    Arc,
    /// <summary>CLOCK with Adaptive Replacement.</summary>
    Car,
    /// <summary>CLOCK (second chance).</summary>
    Clock,
    /// <summary>CLOCK-Pro.</summary>
    ClockPro,
    /// <summary>Not recently used.</summary>
    Nru,
    /// <summary>Least frequently used.</summary>
    Lfu,
    /// <summary>Least frequently used over a heap.</summary>
    HeapLfu,
    /// <summary>Most frequently used.</summary>
    Mfu,
    /// <summary>S3-FIFO.</summary>
    S3Fifo,
    /// <summary>SIEVE.</summary>
    Sieve,
    /// <summary>Low Inter-reference Recency Set.</summary>
    Lirs,
    /// <summary>Greedy-Dual-Size-Frequency.</summary>
    Gdsf,
}

internal static class CachePolicyMapping
{
    /// <summary>Maps the public enum to the policy library's kind (same names, checked by a test).</summary>
    public static PolicyKind ToPolicyKind(this CachePolicy policy) => policy switch
    {
        CachePolicy.WTinyLfu => PolicyKind.WTinyLfu,
        CachePolicy.Fifo => PolicyKind.Fifo,
        CachePolicy.Lifo => PolicyKind.Lifo,
        CachePolicy.Random => PolicyKind.Random,
        CachePolicy.Lru => PolicyKind.Lru,
        CachePolicy.Mru => PolicyKind.Mru,
        CachePolicy.LruK => PolicyKind.LruK,
        CachePolicy.Slru => PolicyKind.Slru,
        CachePolicy.TwoQ => PolicyKind.TwoQ,
        CachePolicy.Arc => PolicyKind.Arc,
        CachePolicy.Car => PolicyKind.Car,
        CachePolicy.Clock => PolicyKind.Clock,
        CachePolicy.ClockPro => PolicyKind.ClockPro,
        CachePolicy.Nru => PolicyKind.Nru,
        CachePolicy.Lfu => PolicyKind.Lfu,
        CachePolicy.HeapLfu => PolicyKind.HeapLfu,
        CachePolicy.Mfu => PolicyKind.Mfu,
        CachePolicy.S3Fifo => PolicyKind.S3Fifo,
        CachePolicy.Sieve => PolicyKind.Sieve,
        CachePolicy.Lirs => PolicyKind.Lirs,
        CachePolicy.Gdsf => PolicyKind.Gdsf,
        _ => throw new ArgumentOutOfRangeException(nameof(policy), policy, "Policy must be a defined CachePolicy value."),
    };
}

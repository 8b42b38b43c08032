namespace CacheKit.Policies;

/// <summary>Every eviction policy in the library. Belady's OPT is not here: it needs the future and lives in the simulator.</summary>
public enum PolicyKind
{
    /// <summary>W-TinyLFU with an adaptive window (miniature simulation of several window sizes). The default.</summary>
    WTinyLfu = 0,
    /// <summary>First in, first out.</summary>
    Fifo,
    /// <summary>Last in, first out.</summary>
    Lifo,
    /// <summary>Uniformly random victim (seeded).</summary>
    Random,
    /// <summary>Least recently used.</summary>
    Lru,
    /// <summary>Most recently used.</summary>
    Mru,
    /// <summary>LRU-K (K = 2 by default): evicts by the K-th most recent access.</summary>
    LruK,
    /// <summary>Segmented LRU: probation and protected segments.</summary>
    Slru,
    /// <summary>2Q: A1in FIFO, A1out ghost queue, Am LRU.</summary>
    TwoQ,
    /// <summary>Adaptive Replacement Cache.</summary>
    Arc,
    /// <summary>CLOCK with Adaptive Replacement.</summary>
    Car,
    /// <summary>CLOCK (second chance).</summary>
    Clock,
    /// <summary>CLOCK-Pro.</summary>
    ClockPro,
    /// <summary>Not recently used (reference bit classes).</summary>
    Nru,
    /// <summary>Least frequently used with O(1) frequency buckets.</summary>
    Lfu,
    /// <summary>Least frequently used over a binary heap.</summary>
    HeapLfu,
    /// <summary>Most frequently used.</summary>
    Mfu,
    /// <summary>S3-FIFO: small, main and ghost FIFO queues.</summary>
    S3Fifo,
    /// <summary>SIEVE: a FIFO queue with a visited bit and a moving hand.</summary>
    Sieve,
    /// <summary>Low Inter-reference Recency Set.</summary>
    Lirs,
    /// <summary>Greedy-Dual-Size-Frequency (size-aware).</summary>
    Gdsf,
}

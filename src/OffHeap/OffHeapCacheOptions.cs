namespace CacheKit.OffHeap;

/// <summary>
/// How to build an <see cref="OffHeapCache"/>. Plain settable properties so the options bind from
/// configuration; every value is validated when the cache is constructed (an
/// <see cref="ArgumentOutOfRangeException"/> naming the property and its limit).
/// </summary>
public sealed class OffHeapCacheOptions
{
    /// <summary>The largest key the format can hold (the entry header keeps the key length in 16 bits).</summary>
    public const int MaxKeyBytesLimit = ushort.MaxValue;

    /// <summary>
    /// The exact budget, in bytes, for every native byte the cache owns: slab pages and the index.
    /// Must hold at least the index and one page per shard.
    /// </summary>
    public long CapacityBytes { get; set; }

    /// <summary>Optional bound on the number of entries as well (at least 1); null = bytes only. The bound is split evenly over
    /// the shards (each holds at most <c>MaxEntries / ShardCount</c>, rounded), and keys hash unevenly, so a cache starts
    /// evicting a little before it holds <c>MaxEntries</c> (measured: 999,290 of 1,000,000 keys, 9,921 of 10,000): it is an
    /// upper bound, not a guaranteed capacity. Also sizes the index (<c>MaxEntries × 5/3</c> slots) and the policy's managed
    /// arrays (docs/sizing.md).</summary>
    public long? MaxEntries { get; set; }

    /// <summary>The eviction policy (one instance per shard). Default: <see cref="CachePolicy.WTinyLfu"/>.</summary>
    public CachePolicy Policy { get; set; } = CachePolicy.WTinyLfu;

    /// <summary>
    /// Puts a TinyLFU admission filter in front of <see cref="Policy"/> (W-TinyLFU has its own and ignores
    /// this): a newcomer that needs room is stored only if it is estimated more frequent than the victim.
    /// Default false.
    /// </summary>
    public bool TinyLfuAdmission { get; set; }

    /// <summary>Time to live of entries set without an explicit one; null (or <see cref="Timeout.InfiniteTimeSpan"/>) = they never expire. Otherwise must be positive.</summary>
    public TimeSpan? DefaultTimeToLive { get; set; }

    /// <summary>The clock for time to live (its monotonic <see cref="TimeProvider.GetTimestamp"/> is used; its TimestampFrequency must be positive). Default: <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Number of shards, a power of two in [1, 256], or 0 (default) to choose from the processor count and the budget.</summary>
    public int ShardCount { get; set; }

    /// <summary>Longest key accepted, in [1, <see cref="MaxKeyBytesLimit"/>] and small enough to leave room in the largest
    /// chunk (<see cref="PageSize"/>) for the 16-byte entry header. Default 8 KiB.</summary>
    public int MaxKeyBytes { get; set; } = 8 * 1024;

    /// <summary>
    /// Largest value accepted; null (default) = the largest that fits one slab chunk of the automatic page together
    /// with a key of <see cref="MaxKeyBytes"/> and the entry header. When set and <see cref="PageSize"/> is 0, the
    /// page grows to hold it (up to 64 MiB); with an explicit <see cref="PageSize"/> a value above what its chunk can
    /// hold is rejected at construction. Either way the limit is the same on every machine.
    /// </summary>
    public int? MaxValueBytes { get; set; }

    /// <summary>
    /// Slab page size: a power of two in [64 KiB, 64 MiB], or 0 (default) to choose it from the options alone:
    /// <see cref="CapacityBytes"/> / 4096 rounded down to a power of two in [64 KiB, 1 MiB], raised to hold
    /// <see cref="MaxValueBytes"/> when that is set. It never depends on the processor count (the shard count does).
    /// </summary>
    public int PageSize { get; set; }

    /// <summary>
    /// Expected average entry size (header + key + value) when <see cref="MaxEntries"/> is not set: it sizes the index
    /// (<c>CapacityBytes / hint × 5/3</c> slots, so the entry bound is <c>CapacityBytes / hint</c>) and with it the eviction
    /// policy's managed arrays, allocated at construction for that many entries (about 61 B each with W-TinyLFU: 243 MiB of
    /// GC heap for a 1 GiB budget at the default; docs/sizing.md). Too small a hint wastes budget and GC heap, too large a
    /// hint runs out of slots before bytes. Default 256; in [32, 1 MiB].
    /// </summary>
    public int AverageEntrySizeHint { get; set; } = 256;

    /// <summary>Most live entries one insert may evict through the policy to make room for its bytes before giving up (then at
    /// most one page reclaim, which for a size class with no page in its shard may also be the emptiest page of another class
    /// if it holds at most this many entries). Default 16; in [1, 1024]. The entry-count bound (<see cref="MaxEntries"/>) is kept by a
    /// separate step of at most one more eviction than this (normally one).</summary>
    public int MaxEvictionsPerInsert { get; set; } = 16;

    /// <summary>
    /// Whether the policy's buffered reads are replayed on the thread pool. Default false.
    /// </summary>
    /// <remarks>
    /// <para>Reads of an order-keeping policy (W-TinyLFU, LRU, SLRU and the others whose hits are not
    /// lock-free) go to a lossy read buffer. false (default): a reader that finds its stripe of it full
    /// replays 8 records into the policy itself under the shard's lock, so one get in 9 pays for 8
    /// replays. true: a reader that finds its stripe half full queues one thread-pool work item that
    /// replays the whole buffer (as Caffeine and BitFaster's ConcurrentLfu do), and its get returns at
    /// once; a reader still replays inline if the stripe fills before the work item ran. In both modes a
    /// write replays the stripe of the core it runs on before it changes the shard (a remove replays
    /// every stripe; docs/engine.md, "A write replays only its own core's reads").</para>
    /// <para>true suits machines with idle cores: measured on 2 cores (docs/engine.md, "Background read
    /// replay"), a 1-thread get of 1M entries took 0.7x the time, but 2 threads together did 8-16 % fewer gets than with
    /// inline replay (the pool thread takes a core from them), and a single thread reading faster than
    /// the pool drains loses records: an engine replay of the gli trace at 500 entries lost up to 3
    /// points of hit ratio. With true, runs are no longer repeatable hit for hit, and queuing the work item
    /// may allocate in the thread pool (measured: 32 B per ~400 queued replays; false allocates nothing).</para>
    /// </remarks>
    public bool BackgroundReadReplay { get; set; }

    /// <summary>Called for each evicted or expired entry; null (default) costs nothing.</summary>
    public EvictionListener? EvictionListener { get; set; }

    /// <summary>Hash seed for tests that need a reproducible layout; null (default) = random per instance.</summary>
    internal long? HashSeed { get; set; }

    /// <summary>
    /// Stripes of each shard's read buffer; 0 (default) = one per processor. Replays that must repeat hit for
    /// hit (the simulator's engine rows, the engine hit-ratio tests) use 1: with several stripes a thread's
    /// reads land on the stripe of whichever core it runs on, a drain replays stripe by stripe, and a write replays
    /// only its own core's stripe, so a thread that moves between cores changes the order the policy sees and leaves
    /// reads pending on the stripe it moved off at its next write.
    /// </summary>
    internal int ReadBufferStripes { get; set; }

    /// <summary>Test mode: poison freed chunks and recycled pages (see the slab's PoisonFreedMemory); null = the slab's default (CACHEKIT_POISON).</summary>
    internal bool? PoisonFreedMemory { get; set; }

    /// <summary>A copy of these options with another <see cref="CapacityBytes"/> (the layout's search for the least budget).</summary>
    internal OffHeapCacheOptions WithCapacityBytes(long capacityBytes)
    {
        var copy = (OffHeapCacheOptions)MemberwiseClone();
        copy.CapacityBytes = capacityBytes;
        return copy;
    }
}

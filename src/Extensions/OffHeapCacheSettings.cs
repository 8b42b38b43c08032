namespace CacheKit.OffHeap.Extensions;

/// <summary>
/// The bindable settings of one named <see cref="OffHeapCache"/> registered with
/// <c>services.AddOffHeapCache(...)</c>: the plain values of <see cref="OffHeapCacheOptions"/> (so
/// they bind from appsettings.json) plus the integration's own switches. The clock comes from the
/// container's <see cref="TimeProvider"/>; code-only settings (eviction listener) go through
/// <see cref="OffHeapCacheBuilder.ConfigureCacheOptions"/>.
/// </summary>
/// <remarks>Ranges are the engine's (see <see cref="OffHeapCacheOptions"/>); a value out of range fails when
/// the host starts with an <see cref="Microsoft.Extensions.Options.OptionsValidationException"/> whose
/// message names the setting's configuration key and the limit. A configuration key that matches no setting,
/// or a value of the wrong type, fails earlier, in the configuration binder (<see cref="InvalidOperationException"/>).</remarks>
public sealed class OffHeapCacheSettings
{
    /// <summary>The exact budget in bytes for every native byte of the cache (pages and index). Required.</summary>
    public long CapacityBytes { get; set; }

    /// <summary>Optional bound on the number of entries; null = bytes only.</summary>
    public long? MaxEntries { get; set; }

    /// <summary>The eviction policy; binds from its name, e.g. "WTinyLfu", "S3Fifo", "Lru".</summary>
    public CachePolicy Policy { get; set; } = CachePolicy.WTinyLfu;

    /// <summary>TinyLFU admission in front of the policy (see <see cref="OffHeapCacheOptions.TinyLfuAdmission"/>); for
    /// policies other than W-TinyLFU, which has its own. Default false.</summary>
    public bool TinyLfuAdmission { get; set; }

    /// <summary>Time to live of entries the byte and typed APIs store without one, e.g. "00:05:00"; null = never expire.
    /// Entries of the distributed cache follow their own <c>DistributedCacheEntryOptions</c> (none: never expire).</summary>
    public TimeSpan? DefaultTimeToLive { get; set; }

    /// <summary>Number of shards: a power of two in [1, 256], or 0 to let the engine choose.</summary>
    public int ShardCount { get; set; }

    /// <summary>Longest key accepted, in [1, 65535] and at most the largest chunk (the page size) less 16 bytes. Default 8 KiB.</summary>
    public int MaxKeyBytes { get; set; } = 8 * 1024;

    /// <summary>Largest value accepted; null = the largest one slab chunk holds.</summary>
    public int? MaxValueBytes { get; set; }

    /// <summary>Slab page size: a power of two in [64 KiB, 64 MiB], or 0 to let the engine choose.</summary>
    public int PageSize { get; set; }

    /// <summary>Expected average entry size (header + key + value), used to size the index. Default 256.</summary>
    public int AverageEntrySizeHint { get; set; } = 256;

    /// <summary>Most live entries one insert may evict before giving up. Default 16.</summary>
    public int MaxEvictionsPerInsert { get; set; } = 16;

    /// <summary>Replays the policy's buffered reads on the thread pool (see <see cref="OffHeapCacheOptions.BackgroundReadReplay"/>). Default false.</summary>
    public bool BackgroundReadReplay { get; set; }

    /// <summary>
    /// Records the opt-in histogram <c>cachekit.offheap.operation.duration</c> for the operations the
    /// integration performs (the distributed cache). Off by default: the span API is never timed.
    /// </summary>
    public bool EnableLatencyHistogram { get; set; }

    /// <summary>
    /// How often the integration calls <see cref="OffHeapCache.RemoveExpired"/> on this cache (on the container's
    /// <see cref="TimeProvider"/>), e.g. "00:01:00" as MemoryCache's <c>ExpirationScanFrequency</c>; null (the default) =
    /// never, and expired entries then leave only when a write needs their room or reaches their key (so <c>Count</c> and
    /// the entries / payload metrics include them until then). From 1 ms to 49.7 days (the timer's range) when set. A sweep
    /// that throws (an eviction listener's exception) is logged and the next one runs on time; the scans run without
    /// the execution context of whoever first resolved the cache.
    /// </summary>
    public TimeSpan? ExpirationScanInterval { get; set; }

    /// <summary>Copies the engine's settings into a fresh <see cref="OffHeapCacheOptions"/>.</summary>
    /// <param name="timeProvider">The clock of the cache.</param>
    internal OffHeapCacheOptions ToCacheOptions(TimeProvider timeProvider) => new()
    {
        CapacityBytes = CapacityBytes,
        MaxEntries = MaxEntries,
        Policy = Policy,
        TinyLfuAdmission = TinyLfuAdmission,
        DefaultTimeToLive = DefaultTimeToLive,
        ShardCount = ShardCount,
        MaxKeyBytes = MaxKeyBytes,
        MaxValueBytes = MaxValueBytes,
        PageSize = PageSize,
        AverageEntrySizeHint = AverageEntrySizeHint,
        MaxEvictionsPerInsert = MaxEvictionsPerInsert,
        BackgroundReadReplay = BackgroundReadReplay,
        TimeProvider = timeProvider,
    };
}

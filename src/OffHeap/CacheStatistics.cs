namespace CacheKit.OffHeap;

/// <summary>A snapshot of an <see cref="OffHeapCache"/>'s counters (<see cref="OffHeapCache.GetStatistics"/>).</summary>
/// <remarks>Counters are summed over shards without stopping writers, so under concurrent use the
/// fields of one snapshot may be a few operations apart from each other.</remarks>
public sealed class CacheStatistics
{
    internal CacheStatistics(long hits, long misses, long evictions, long expirations, long rejections,
        long count, long payloadBytes, long nativeBytes, long capacityBytes)
    {
        Hits = hits;
        Misses = misses;
        Evictions = evictions;
        Expirations = expirations;
        Rejections = rejections;
        Count = count;
        PayloadBytes = payloadBytes;
        NativeBytes = nativeBytes;
        CapacityBytes = capacityBytes;
    }

    /// <summary>Lookups that returned a value (TryGet, ContainsKey and the lookups of GetOrAdd).</summary>
    public long Hits { get; }

    /// <summary>Lookups that found no live value (absent or expired).</summary>
    public long Misses { get; }

    /// <summary>Live entries removed to make room (policy victims, index overflow, page reclaim).</summary>
    public long Evictions { get; }

    /// <summary>The part of <see cref="Evictions"/> whose entries left because their page was taken for another size class (<see cref="EvictionReason.PageReclaimed"/>).</summary>
    public long PageReclaims { get; internal init; }

    /// <summary>The part of <see cref="Evictions"/> whose reason was <see cref="EvictionReason.Capacity"/> (policy victims, index
    /// overflow). Kept as its own counter, so that it never steps back between snapshots (a difference of two counters read
    /// one after the other could).</summary>
    public long CapacityEvictions { get; internal init; }

    /// <summary>Expired entries reclaimed.</summary>
    public long Expirations { get; }

    /// <summary>Sets that did not store their entry: refused by admission, or no room could be made within the per-insert eviction cap.</summary>
    public long Rejections { get; }

    /// <summary>Entries stored, including expired ones not yet reclaimed.</summary>
    public long Count { get; }

    /// <summary>Bytes of keys and values stored.</summary>
    public long PayloadBytes { get; }

    /// <summary>Every native byte the cache owns right now (pages, index); never above <see cref="CapacityBytes"/>.</summary>
    public long NativeBytes { get; }

    /// <summary>The configured budget (<see cref="OffHeapCacheOptions.CapacityBytes"/>).</summary>
    public long CapacityBytes { get; }

    /// <summary>
    /// The most entries the cache holds, whatever their size: <see cref="OffHeapCacheOptions.MaxEntries"/>, or without it
    /// the index's bound (about <c>CapacityBytes / AverageEntrySizeHint</c>). When <see cref="Count"/> stays near it and
    /// <see cref="Evictions"/> climb while <see cref="NativeBytes"/> stays well under <see cref="CapacityBytes"/>, the
    /// entries are smaller than <see cref="OffHeapCacheOptions.AverageEntrySizeHint"/> and part of the budget stays unused:
    /// lower the hint (or set <see cref="OffHeapCacheOptions.MaxEntries"/>).
    /// </summary>
    public long EntryBound { get; internal init; }

    /// <summary>Hits / (Hits + Misses), or 0 when there was no lookup.</summary>
    public double HitRatio => Hits + Misses == 0 ? 0 : (double)Hits / (Hits + Misses);
}

namespace CacheKit.Slab;

/// <summary>
/// A snapshot of a <see cref="SlabPool"/>'s accounting. Exact when no arena is working while it is taken;
/// otherwise each counter is individually current but they may be from slightly different instants.
/// </summary>
public sealed class SlabStatistics
{
    internal SlabStatistics(long budgetBytes, long ownedBytes, long blockBytes, int pageSize, int pages, int freePages,
        long managedBookkeepingBytes, SlabClassStatistics[] classes)
    {
        BudgetBytes = budgetBytes;
        OwnedBytes = ownedBytes;
        BlockBytes = blockBytes;
        PageSize = pageSize;
        Pages = pages;
        FreePages = freePages;
        ManagedBookkeepingBytes = managedBookkeepingBytes;
        Classes = classes;
    }

    /// <summary>The configured cap on native bytes.</summary>
    public long BudgetBytes { get; }

    /// <summary>Native bytes allocated from the system: <c>Pages * PageSize + BlockBytes</c>, never above <see cref="BudgetBytes"/>.</summary>
    public long OwnedBytes { get; }

    /// <summary>Native bytes held by raw blocks (<see cref="SlabPool.TryAllocateBlock"/>).</summary>
    public long BlockBytes { get; }

    /// <summary>Page size in bytes.</summary>
    public int PageSize { get; }

    /// <summary>Pages allocated from the system (held by arenas or free in the pool).</summary>
    public int Pages { get; }

    /// <summary>Pages free in the pool, ready to be cut for any class by any arena.</summary>
    public int FreePages { get; }

    /// <summary>
    /// Managed bytes of bookkeeping (page table, per-page chunk bitmaps, per-class counters). Not part of the
    /// native budget; reported so the whole cost is visible.
    /// </summary>
    public long ManagedBookkeepingBytes { get; }

    /// <summary>Per-class figures summed over every arena, indexed by class.</summary>
    public IReadOnlyList<SlabClassStatistics> Classes { get; }

    /// <summary>Bytes in chunks currently handed out, over all classes.</summary>
    public long HandedOutBytes => Classes.Sum(c => c.HandedOutBytes);

    /// <summary>Chunk bytes handed out by every allocation so far / bytes those allocations requested (1.0 = no internal waste).</summary>
    public double InternalFragmentationRatio
    {
        get
        {
            long requested = Classes.Sum(c => c.TotalRequestedBytes);
            return requested == 0 ? 1.0 : (double)Classes.Sum(c => c.TotalHandedOutBytes) / requested;
        }
    }
}

/// <summary>Figures of one size class, summed over every arena.</summary>
/// <param name="ClassIndex">Index in the <see cref="SizeClassTable"/>.</param>
/// <param name="ChunkSize">Chunk size of the class in bytes.</param>
/// <param name="Pages">Pages currently cut to this class.</param>
/// <param name="LiveChunks">Chunks currently handed out.</param>
/// <param name="HandedOutBytes">Bytes in chunks currently handed out (<c>LiveChunks * ChunkSize</c>).</param>
/// <param name="TotalAllocations">Allocations served so far.</param>
/// <param name="TotalHandedOutBytes">Chunk bytes of every allocation so far.</param>
/// <param name="TotalRequestedBytes">Bytes requested by every allocation so far (internal waste = handed out - requested).</param>
public readonly record struct SlabClassStatistics(
    int ClassIndex, int ChunkSize, int Pages, long LiveChunks, long HandedOutBytes,
    long TotalAllocations, long TotalHandedOutBytes, long TotalRequestedBytes);

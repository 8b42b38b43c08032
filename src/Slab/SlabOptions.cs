namespace CacheKit.Slab;

/// <summary>Configuration of a <see cref="SlabPool"/>. Validated by the pool's constructor.</summary>
public sealed class SlabOptions
{
    /// <summary>Smallest accepted <see cref="PageSize"/>: 64 KiB.</summary>
    public const int MinPageSize = 1 << 16;

    /// <summary>Largest accepted <see cref="PageSize"/>: 64 MiB (the handle's 23-bit offset field, in 8-byte units).</summary>
    public const int MaxPageSize = 1 << 26;

    /// <summary>
    /// Exact cap on every native byte the pool owns: slab pages plus raw blocks taken through
    /// <see cref="SlabPool.TryAllocateBlock"/>. Must be at least one <see cref="PageSize"/>.
    /// </summary>
    public long BudgetBytes { get; set; }

    /// <summary>Page size in bytes: a power of two in [<see cref="MinPageSize"/>, <see cref="MaxPageSize"/>]. Default 1 MiB.</summary>
    public int PageSize { get; set; } = 1 << 20;

    /// <summary>
    /// Strictly ascending chunk sizes in bytes, each a multiple of 8 and at most <see cref="PageSize"/>;
    /// <see langword="null"/> selects <see cref="SizeClassTable.CreateDefault(int)"/>.
    /// </summary>
    public IReadOnlyList<int>? SizeClasses { get; set; }
}

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
    /// <see langword="null"/> selects <see cref="SizeClassTable.CreateDefault(int, int)"/> with <see cref="SizeClassStepsPerDoubling"/>.
    /// </summary>
    public IReadOnlyList<int>? SizeClasses { get; set; }

    /// <summary>
    /// Classes per doubling above 128 B of the default table, when <see cref="SizeClasses"/> is null: 2, 4 or 8 (default).
    /// Fewer suit a budget of few pages per arena with widely mixed sizes (docs/slab.md).
    /// </summary>
    public int SizeClassStepsPerDoubling { get; set; } = SizeClassTable.MaxStepsPerDoubling;

    /// <summary>
    /// Test mode (poison on free): every freed chunk (after its 4-byte free-list link) and every page acquired or
    /// given back is filled with <see cref="SlabArena.PoisonByte"/>, and an allocation checks that its chunk still
    /// holds the pattern, so a read of recycled memory shows up as garbage and a write after free as an exception.
    /// Default: on when the environment variable CACHEKIT_POISON is "1"; off costs one predictable branch per free.
    /// </summary>
    internal bool PoisonFreedMemory { get; set; } = Environment.GetEnvironmentVariable("CACHEKIT_POISON") == "1";
}

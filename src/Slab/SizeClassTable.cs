using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace CacheKit.Slab;

/// <summary>
/// The chunk sizes pages are cut into: strictly ascending, each a multiple of 8 (so every chunk of a
/// 64-byte-aligned page is 8-byte aligned) and at most the page size. Immutable.
/// </summary>
/// <remarks>
/// <para>The default table (<see cref="CreateDefault(int)"/>) keeps internal waste low for small entries:</para>
/// <list type="bullet">
/// <item>16 to 128 bytes in steps of 8 (at most 7 bytes, at most 50% at 16 B but under 6% from 128 B);</item>
/// <item>above 128 bytes, eight steps per power of two (step = 2^k / 8 in [2^k, 2^(k+1)]), so a chunk
/// is at most 12.5% larger than the request and about 6% on average, up to PageSize / 8 (four or two steps with
/// <see cref="CreateDefault(int, int)"/>, which the cache engine takes when a shard has few pages);</item>
/// <item>above PageSize / 8, the sizes PageSize / n for n = 7..1 (rounded down to 8), so the big
/// classes waste almost nothing at the end of the page.</item>
/// </list>
/// <para>Memcached's default factor 1.25 wastes about 10% on average; the measured figures for the
/// Twitter size distributions are in docs/slab.md.</para>
/// </remarks>
public sealed class SizeClassTable
{
    /// <summary>Most classes a table may hold.</summary>
    public const int MaxClassCount = 4096;

    /// <summary>Requests up to this size are mapped to a class by one table lookup; larger ones by binary search.</summary>
    private const int DirectLookupLimit = 4096;

    // Invariant: _sizes strictly ascending, each > 0, multiple of 8, <= page size.
    private readonly int[] _sizes;

    // _direct[(size + 7) >> 3] = class of size, for size in [0, min(DirectLookupLimit, MaxChunkSize)].
    private readonly short[] _direct;

    private SizeClassTable(int[] sizes)
    {
        _sizes = sizes;
        int directLimit = Math.Min(DirectLookupLimit, sizes[^1]);
        _direct = new short[(directLimit >> 3) + 1];
        int c = 0;
        for (int units = 0; units < _direct.Length; units++)
        {
            while (sizes[c] < units << 3)
            {
                c++;
            }

            _direct[units] = (short)c;
        }
    }

    /// <summary>Number of classes.</summary>
    public int Count => _sizes.Length;

    /// <summary>Chunk size in bytes of class <paramref name="classIndex"/>.</summary>
    public int this[int classIndex] => _sizes[classIndex];

    /// <summary>The largest chunk size: the largest value a slab can hold.</summary>
    public int MaxChunkSize => _sizes[^1];

    /// <summary>The smallest chunk size.</summary>
    public int MinChunkSize => _sizes[0];

    /// <summary>Managed bytes held by this table (reported beside the native budget).</summary>
    internal long FootprintBytes => ((long)_sizes.Length * sizeof(int)) + ((long)_direct.Length * sizeof(short));

    /// <summary>
    /// The default table for <paramref name="pageSize"/>: fine steps for small sizes (see the remarks of
    /// <see cref="SizeClassTable"/>), largest class = <paramref name="pageSize"/>. Eight classes per doubling above 128 B.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">pageSize is not a power of two in [64 KiB, 64 MiB].</exception>
    public static SizeClassTable CreateDefault(int pageSize) => CreateDefault(pageSize, MaxStepsPerDoubling);

    /// <summary>Most classes per doubling above 128 B (<see cref="CreateDefault(int, int)"/>); also the default.</summary>
    public const int MaxStepsPerDoubling = 8;

    /// <summary>
    /// The default table for <paramref name="pageSize"/> with <paramref name="stepsPerDoubling"/> classes per doubling from
    /// 128 B to PageSize / 8 (2, 4 or 8: a chunk at most 50 %, 25 % or 12.5 % larger than the request above 128 B). Fewer
    /// classes waste more inside a chunk but leave fewer partly filled pages: an arena keeps about a page per class in use,
    /// so with few pages (a small budget per shard) and a wide mix of sizes the coarser table holds more entries.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">pageSize is not a power of two in [64 KiB, 64 MiB], or stepsPerDoubling is not 2, 4 or 8.</exception>
    public static SizeClassTable CreateDefault(int pageSize, int stepsPerDoubling) => CreateDefault(pageSize, stepsPerDoubling, nameof(stepsPerDoubling));

    /// <summary><see cref="CreateDefault(int, int)"/>, naming <paramref name="stepsParamName"/> (the caller's option) in its exception.</summary>
    internal static SizeClassTable CreateDefault(int pageSize, int stepsPerDoubling, string stepsParamName)
    {
        ValidatePageSize(pageSize, nameof(pageSize));
        if (stepsPerDoubling is not (2 or 4 or 8))
        {
            throw new ArgumentOutOfRangeException(stepsParamName, stepsPerDoubling, $"{stepsParamName} must be 2, 4 or 8.");
        }
        var sizes = new List<int>();
        for (int s = 16; s <= 128; s += 8)
        {
            sizes.Add(s);
        }

        // stepsPerDoubling steps per doubling from 128 up to PageSize / 8 (each a multiple of 8: 128 / 8 = 16).
        int geometricLimit = pageSize / 8;
        for (int power = 128; power < geometricLimit; power *= 2)
        {
            int step = power / stepsPerDoubling;
            for (int i = 1; i <= stepsPerDoubling; i++)
            {
                sizes.Add(power + (i * step));
            }
        }

        // PageSize / n for n = 7..1: the page divides into n chunks with under 8 bytes left over.
        for (int n = 7; n >= 1; n--)
        {
            int s = pageSize / n & ~7;
            if (s > sizes[^1])
            {
                sizes.Add(s);
            }
        }

        return new SizeClassTable([.. sizes]);
    }

    /// <summary>
    /// A table of the given chunk sizes, validated: 1 to <see cref="MaxClassCount"/> strictly ascending
    /// sizes, each a positive multiple of 8 and at most <paramref name="pageSize"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The sizes break one of the rules (the message says which).</exception>
    public static SizeClassTable Create(IReadOnlyList<int> sizes, int pageSize) => Create(sizes, pageSize, nameof(sizes));

    /// <summary><see cref="Create(IReadOnlyList{int}, int)"/>, naming <paramref name="paramName"/> (the caller's option) in its exceptions.</summary>
    internal static SizeClassTable Create(IReadOnlyList<int> sizes, int pageSize, string paramName)
    {
        ArgumentNullException.ThrowIfNull(sizes, paramName);
        ValidatePageSize(pageSize, nameof(pageSize));
        if (sizes.Count is 0 or > MaxClassCount)
        {
            throw new ArgumentException($"{paramName} must hold 1 to {MaxClassCount} classes; it holds {sizes.Count}.", paramName);
        }

        var copy = new int[sizes.Count];
        for (int i = 0; i < copy.Length; i++)
        {
            int s = sizes[i];
            if (s <= 0 || (s & 7) != 0 || s > pageSize)
            {
                throw new ArgumentException($"{paramName}[{i}] = {s}: every class must be a positive multiple of 8 and at most the page size {pageSize}.", paramName);
            }

            if (i > 0 && s <= copy[i - 1])
            {
                throw new ArgumentException($"{paramName}[{i}] = {s} is not larger than {paramName}[{i - 1}] = {copy[i - 1]}: classes must be strictly ascending.", paramName);
            }

            copy[i] = s;
        }

        return new SizeClassTable(copy);
    }

    /// <summary>
    /// A memcached-like table: from <paramref name="minSize"/>, each class <paramref name="factor"/> times the
    /// previous, rounded up to 8 (memcached's rule), then <paramref name="pageSize"/>. For comparisons (the
    /// fragmentation report).
    /// </summary>
    public static SizeClassTable CreateGeometric(int pageSize, int minSize, double factor)
    {
        ValidatePageSize(pageSize, nameof(pageSize));
        ArgumentOutOfRangeException.ThrowIfLessThan(minSize, 8);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minSize, pageSize);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(factor, 1.0);
        // memcached's rule (slabs_init): next = align8(previous * factor), starting from align8(minSize).
        var sizes = new List<int>();
        int size = (minSize + 7) & ~7;
        while (size < pageSize)
        {
            sizes.Add(size);
            int next = ((int)Math.Min(size * factor, pageSize) + 7) & ~7;
            size = Math.Max(next, size + 8);
        }

        sizes.Add(pageSize);
        if (sizes.Count > MaxClassCount)
        {
            // Name the argument that caused it (Create would name its own parameter, "sizes").
            throw new ArgumentOutOfRangeException(nameof(factor), factor,
                $"factor {factor} gives {sizes.Count} classes from {minSize} to {pageSize} bytes; the limit is {MaxClassCount} (MaxClassCount): use a larger factor or minSize.");
        }

        return Create(sizes, pageSize);
    }

    /// <summary>The smallest class whose chunk is at least <paramref name="size"/> bytes; -1 if size &gt; <see cref="MaxChunkSize"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">size is negative.</exception>
    public int ClassOf(int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        return size > MaxChunkSize ? -1 : ClassOfUnchecked(size);
    }

    /// <summary>Class of a size already known to be in [0, MaxChunkSize]. O(1) up to 4 KiB, O(log Count) above.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal int ClassOfUnchecked(int size)
    {
        Debug.Assert(size >= 0 && size <= MaxChunkSize, "size out of range");
        int units = (size + 7) >> 3;
        if ((uint)units < (uint)_direct.Length)
        {
            return _direct[units];
        }

        return ClassOfBySearch(size);
    }

    private int ClassOfBySearch(int size)
    {
        int i = Array.BinarySearch(_sizes, size);
        return i >= 0 ? i : ~i;
    }

    internal static void ValidatePageSize(int pageSize, string paramName)
    {
        if (pageSize < SlabOptions.MinPageSize || pageSize > SlabOptions.MaxPageSize || (pageSize & (pageSize - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(paramName, pageSize,
                $"The page size must be a power of two in [{SlabOptions.MinPageSize}, {SlabOptions.MaxPageSize}] bytes (64 KiB to 64 MiB).");
        }
    }
}

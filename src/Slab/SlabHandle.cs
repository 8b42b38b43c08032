using System.Runtime.CompilerServices;

namespace CacheKit.Slab;

/// <summary>
/// The name of a chunk: a page id and the chunk's byte offset in that page, packed into 48 bits.
/// </summary>
/// <remarks>
/// <para>Bit layout of <see cref="Value"/> (bits 63..48 are always zero, so the engine can keep a
/// 16-bit tag or generation beside it in one 64-bit slot word):</para>
/// <code>
///   63        48 47                        23 22                          0
///  [  0 (16)    ][ page id + 1 (25 bits)     ][ byte offset / 8 (23 bits)  ]
/// </code>
/// <para>The page field stores id + 1, so a valid handle's value is never 0 (0 = "no chunk").
/// Page ids run from 0 to <see cref="MaxPageId"/>; offsets are multiples of 8 below
/// <see cref="SlabOptions.MaxPageSize"/> (64 MiB = 2^23 * 8). The handle does not name the size
/// class: a stale handle, kept after its chunk was freed and its page re-cut to another class,
/// still resolves to the same byte inside the same live page, never outside it.</para>
/// </remarks>
public readonly struct SlabHandle : IEquatable<SlabHandle>
{
    /// <summary>Number of low bits a handle's <see cref="Value"/> may use.</summary>
    public const int Bits = 48;

    /// <summary>Width of the offset field (byte offset / 8).</summary>
    internal const int OffsetBits = 23;

    /// <summary>Position of the lowest bit of the offset field.</summary>
    internal const int OffsetShift = 0;

    /// <summary>Mask of the offset field after shifting.</summary>
    internal const ulong OffsetMask = (1UL << OffsetBits) - 1;

    /// <summary>Offsets are stored in units of 2^3 = 8 bytes (every chunk is 8-byte aligned).</summary>
    internal const int OffsetGranularityShift = 3;

    /// <summary>Width of the page field (page id + 1).</summary>
    internal const int PageBits = Bits - OffsetBits;

    /// <summary>Position of the lowest bit of the page field.</summary>
    internal const int PageShift = OffsetBits;

    /// <summary>Mask of the page field after shifting.</summary>
    internal const ulong PageMask = (1UL << PageBits) - 1;

    /// <summary>Largest page id a handle can name (the page field holds id + 1 and is never all zero).</summary>
    public const int MaxPageId = (1 << PageBits) - 2;

    private readonly ulong _value;

    private SlabHandle(ulong value) => _value = value;

    /// <summary>The packed 48-bit value (0 for <see cref="IsNone"/>).</summary>
    public ulong Value => _value;

    /// <summary>Whether this is the empty handle (value 0), which names no chunk.</summary>
    public bool IsNone => _value == 0;

    /// <summary>The page id this handle names (-1 for the empty handle).</summary>
    public int PageId => (int)((_value >> PageShift) & PageMask) - 1;

    /// <summary>The chunk's byte offset from the start of its page.</summary>
    public int ByteOffset => (int)((_value >> OffsetShift) & OffsetMask) << OffsetGranularityShift;

    /// <summary>Rebuilds a handle from a stored <see cref="Value"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">value uses bits above <see cref="Bits"/>.</exception>
    public static SlabHandle FromValue(ulong value)
    {
        if ((value >> Bits) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, $"value must fit in {Bits} bits (below 2^{Bits}).");
        }

        return new SlabHandle(value);
    }

    /// <summary>Rebuilds a handle from a <see cref="Value"/> the caller knows to fit in <see cref="Bits"/> bits (masked); checked in Debug only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static SlabHandle FromValueUnchecked(ulong value)
    {
        System.Diagnostics.Debug.Assert((value >> Bits) == 0, "a handle value fits in 48 bits");
        return new SlabHandle(value);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static SlabHandle Create(int pageId, int byteOffset)
    {
        System.Diagnostics.Debug.Assert((uint)pageId <= MaxPageId, "page id out of the handle's range");
        System.Diagnostics.Debug.Assert(byteOffset >= 0 && (byteOffset & 7) == 0 && byteOffset < SlabOptions.MaxPageSize, "offset must be 8-aligned and below 64 MiB");
        return new SlabHandle(((ulong)(uint)(pageId + 1) << PageShift) | ((ulong)(uint)byteOffset >> OffsetGranularityShift << OffsetShift));
    }

    /// <inheritdoc/>
    public bool Equals(SlabHandle other) => _value == other._value;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is SlabHandle other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => _value.GetHashCode();

    /// <inheritdoc/>
    public override string ToString() => IsNone ? "SlabHandle(none)" : $"SlabHandle(page {PageId}, offset {ByteOffset})";

    /// <summary>Value equality.</summary>
    public static bool operator ==(SlabHandle left, SlabHandle right) => left.Equals(right);

    /// <summary>Value inequality.</summary>
    public static bool operator !=(SlabHandle left, SlabHandle right) => !left.Equals(right);
}

using System.Buffers;
using System.Runtime.CompilerServices;

namespace CacheKit.OffHeap;

/// <summary>
/// A private copy of bytes that someone else may change or free while an operation runs (a caller's key buffer,
/// which another thread may be writing; an entry's chunk, which making room may free): in the caller's stack
/// buffer when they fit, else in an array from the shared pool, given back by <see cref="Dispose"/>.
/// </summary>
/// <remarks>Use as <c>using var copy = new StableCopy(source, stackalloc byte[StableCopy.StackBytes]);</c> in a
/// <c>[SkipLocalsInit]</c> method: the stack buffer is written before it is read.</remarks>
internal ref struct StableCopy
{
    /// <summary>Bytes copied to the caller's stack buffer; longer sources go to a pooled array.</summary>
    public const int StackBytes = 256;

    private byte[]? _rented;

    /// <summary>Copies <paramref name="source"/> into <paramref name="stackBuffer"/> if it fits, else into a pooled array.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]   // on every set: as cheap as the inline copy it replaced
    public StableCopy(ReadOnlySpan<byte> source, Span<byte> stackBuffer)
    {
        Span<byte> target = source.Length <= stackBuffer.Length
            ? stackBuffer[..source.Length]
            : (_rented = ArrayPool<byte>.Shared.Rent(source.Length)).AsSpan(0, source.Length);
        source.CopyTo(target);
        Bytes = target;
    }

    /// <summary>The copy: exactly the source's length.</summary>
    public Span<byte> Bytes { get; }

    /// <summary>Gives a pooled array back (the copy must not be used after).</summary>
    public void Dispose()
    {
        if (_rented is not null)
        {
            ArrayPool<byte>.Shared.Return(_rented);
            _rented = null;
        }
    }
}

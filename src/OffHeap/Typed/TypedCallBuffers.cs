using System.Buffers;

namespace CacheKit.OffHeap;

/// <summary>
/// The typed facade's per-thread serialization buffers, one for keys and one for values, each lent to one call at a
/// time: <see cref="RentKey"/> / <see cref="RentValue"/> take the thread's buffer out of its slot (a call made while it
/// is out, from a serializer or an eviction listener, finds the slot empty and gets a new buffer; besides the first
/// call on a thread and a call after a buffer grew past <see cref="RetainedBufferBytes"/>, the only case that allocates), and <see cref="ReturnKey"/> / <see cref="ReturnValue"/> put it back unless it grew past <see cref="RetainedBufferBytes"/>.
/// </summary>
/// <remarks>
/// Non-generic on purpose: every <see cref="OffHeapCache{TKey, TValue}"/> shares these slots. A thread-static field of a
/// generic class is reached through the shared generic code's type lookup when the type arguments are reference types
/// (<c>&lt;string, byte[]&gt;</c>), which cost about 100 instructions per access; a non-generic one is a direct read of the
/// thread's storage. Sharing across caches is safe because a buffer is out of its slot for the whole of the call that
/// uses it (the previous design kept the key buffer in its slot, so a serializer that called another cache of the same
/// types overwrote the key being stored).
/// </remarks>
internal static class TypedCallBuffers
{
    /// <summary>
    /// The largest buffer kept between calls. One huge value (a 200 MB string that the size check then refuses, say)
    /// grows the buffer; without this limit the thread would keep it for its life. A buffer that grew past it is let go
    /// at the end of the call. Larger values allocate a fresh buffer per call (their own object is at least that large), except
    /// <c>byte[]</c> values with the built-in serializer, which use no buffer past its first 1 KiB.
    /// </summary>
    public const int RetainedBufferBytes = 1 << 20;

    private const int InitialKeyBytes = 256;
    private const int InitialValueBytes = 1024;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_key;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_value;

    /// <summary>This thread's key buffer, emptied and taken out of its slot (or a new one if it is out).</summary>
    public static ArrayBufferWriter<byte> RentKey() => Rent(ref t_key, InitialKeyBytes);

    /// <summary>This thread's value buffer, emptied and taken out of its slot (or a new one if it is out).</summary>
    public static ArrayBufferWriter<byte> RentValue() => Rent(ref t_value, InitialValueBytes);

    /// <summary>Puts a key buffer back in this thread's slot, unless it grew past <see cref="RetainedBufferBytes"/>.</summary>
    public static void ReturnKey(ArrayBufferWriter<byte> buffer) => Return(ref t_key, buffer);

    /// <summary>Puts a value buffer back in this thread's slot, unless it grew past <see cref="RetainedBufferBytes"/>.</summary>
    public static void ReturnValue(ArrayBufferWriter<byte> buffer) => Return(ref t_value, buffer);

    private static ArrayBufferWriter<byte> Rent(ref ArrayBufferWriter<byte>? slot, int initialBytes)
    {
        ArrayBufferWriter<byte>? buffer = slot;
        if (buffer is null)
        {
            return new ArrayBufferWriter<byte>(initialBytes);
        }
        slot = null;
        buffer.ResetWrittenCount();
        return buffer;
    }

    private static void Return(ref ArrayBufferWriter<byte>? slot, ArrayBufferWriter<byte> buffer)
    {
        if (buffer.Capacity <= RetainedBufferBytes)
        {
            slot = buffer;
        }
    }

    /// <summary>Capacity of this thread's value buffer in its slot, 0 when none (tests).</summary>
    internal static int ThreadValueBufferCapacity => t_value?.Capacity ?? 0;

    /// <summary>Capacity of this thread's key buffer in its slot, 0 when none (tests).</summary>
    internal static int ThreadKeyBufferCapacity => t_key?.Capacity ?? 0;
}

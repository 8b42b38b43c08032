using System.Buffers;

namespace CacheKit.OffHeap;

/// <summary>Where a lookup copies a value: a span, a buffer writer, or nowhere (ContainsKey).</summary>
/// <remarks>A read may copy more than once (a concurrent writer forces a retry); only the copy
/// followed by <see cref="Commit"/> is valid.</remarks>
internal interface IValueSink
{
    /// <summary>Whether the value is wanted at all.</summary>
    bool CopiesValue { get; }

    /// <summary>Whether <see cref="GetBuffer"/> calls the caller's code (an <see cref="IBufferWriter{T}"/>): then the buffer
    /// it returns is checked against the key (a failed optimistic copy would overwrite the key being looked up).</summary>
    bool CallsCallerCode { get; }

    /// <summary>Whether the lookup validates the entry before <see cref="GetBuffer"/>, so that the length it is asked for
    /// is never one read from a torn header: true when that length reaches the caller's code or sizes an allocation.</summary>
    bool ValidatesBeforeBuffer { get; }

    /// <summary>Whether a buffer shorter than the value takes the value's first bytes (a hit) instead of meaning "too small".</summary>
    bool TakesPrefix { get; }

    /// <summary>A buffer for a value of <paramref name="length"/> bytes; shorter means "too small" (or, with
    /// <see cref="TakesPrefix"/>, "copy only this much").</summary>
    Span<byte> GetBuffer(int length);

    /// <summary>The last buffer now holds a validated value of <paramref name="length"/> bytes.</summary>
    void Commit(int length);
}

internal ref struct SpanSink(Span<byte> destination) : IValueSink
{
    private readonly Span<byte> _destination = destination;

    public readonly bool CopiesValue => true;

    public readonly bool CallsCallerCode => false;

    public readonly bool ValidatesBeforeBuffer => false;

    public readonly bool TakesPrefix => false;

    public readonly Span<byte> GetBuffer(int length) => _destination.Length >= length ? _destination[..length] : _destination;

    public readonly void Commit(int length)
    {
    }
}

/// <summary>The value in a new array of its exact length (the typed facade's <c>byte[]</c> values): one copy, no buffer between.</summary>
/// <remarks>It allocates in <see cref="GetBuffer"/>, so it asks the lookup to validate the entry first
/// (<see cref="ValidatesBeforeBuffer"/>): a length read from a torn header never sizes an array. A retry that finds the
/// same length reuses the array.</remarks>
internal struct NewArraySink : IValueSink
{
    /// <summary>The array of the last <see cref="GetBuffer"/>; after a hit, the value.</summary>
    public byte[]? Array { get; private set; }

    public readonly bool CopiesValue => true;

    public readonly bool CallsCallerCode => false;

    public readonly bool ValidatesBeforeBuffer => true;

    public readonly bool TakesPrefix => false;

    public Span<byte> GetBuffer(int length)
    {
        if (Array is null || Array.Length != length)
        {
            Array = length == 0 ? [] : GC.AllocateUninitializedArray<byte>(length);
        }
        return Array;
    }

    public readonly void Commit(int length)
    {
    }
}

/// <summary>The first bytes of the value, as many as the destination holds (the distributed cache's header read).</summary>
internal ref struct PrefixSink(Span<byte> destination) : IValueSink
{
    private readonly Span<byte> _destination = destination;

    public readonly bool CopiesValue => true;

    public readonly bool CallsCallerCode => false;

    public readonly bool ValidatesBeforeBuffer => false;

    public readonly bool TakesPrefix => true;

    public readonly Span<byte> GetBuffer(int length) => _destination.Length >= length ? _destination[..length] : _destination;

    public readonly void Commit(int length)
    {
    }
}

/// <summary>
/// A caller's <see cref="IBufferWriter{T}"/>. Its <c>GetSpan</c> and <c>Advance</c> run inside a lookup of
/// <paramref name="cache"/> (an operation that <see cref="OffHeapCache.Dispose"/> waits for), so they run marked as the
/// cache's caller code (<see cref="OffHeapCache.EnterCallerCode"/>): a Dispose of that cache from them throws instead of
/// waiting for itself.
/// </summary>
internal readonly struct BufferWriterSink(IBufferWriter<byte> writer, OffHeapCache cache) : IValueSink
{
    public bool CopiesValue => true;

    public bool CallsCallerCode => true;

    public bool ValidatesBeforeBuffer => true;

    public bool TakesPrefix => false;

    public Span<byte> GetBuffer(int length)
    {
        Span<byte> span;
        OffHeapCache? outer = OffHeapCache.EnterCallerCode(cache);
        try
        {
            span = writer.GetSpan(length);
        }
        finally
        {
            OffHeapCache.ExitCallerCode(outer);
        }
        if (span.Length < length)
        {
            // As Remove(key, IBufferWriter) reports it (a bare slice exception read as the key-length refusal; found by review).
            throw new ArgumentException($"The destination's GetSpan({length}) returned {span.Length} bytes, fewer than asked; nothing was read.", "destination");
        }
        return span[..length];
    }

    public void Commit(int length)
    {
        OffHeapCache? outer = OffHeapCache.EnterCallerCode(cache);
        try
        {
            writer.Advance(length);
        }
        finally
        {
            OffHeapCache.ExitCallerCode(outer);
        }
    }
}

internal readonly struct NoCopySink : IValueSink
{
    public bool CopiesValue => false;

    public bool CallsCallerCode => false;

    public bool ValidatesBeforeBuffer => false;

    public bool TakesPrefix => false;

    public Span<byte> GetBuffer(int length) => default;

    public void Commit(int length)
    {
    }
}

/// <summary>Outcome of a lookup.</summary>
internal enum ReadResult
{
    Miss,
    Hit,
    DestinationTooSmall,
}

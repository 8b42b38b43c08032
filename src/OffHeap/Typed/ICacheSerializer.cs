using System.Runtime.InteropServices;
using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;

namespace CacheKit.OffHeap;

/// <summary>Turns keys or values of <typeparamref name="T"/> into bytes for <see cref="OffHeapCache{TKey, TValue}"/> and back.</summary>
/// <typeparam name="T">The type serialized.</typeparam>
public interface ICacheSerializer<T>
{
    /// <summary>Writes <paramref name="value"/> to <paramref name="destination"/>.</summary>
    void Serialize(T value, IBufferWriter<byte> destination);

    /// <summary>Reads a value from exactly the bytes <see cref="Serialize"/> wrote.</summary>
    T Deserialize(ReadOnlySpan<byte> source);
}

/// <summary>The built-in serializers.</summary>
public static class CacheSerializers
{
    /// <summary>
    /// The built-in serializer for <typeparamref name="T"/>: <see cref="string"/> (UTF-8), <see cref="byte"/>[],
    /// <see cref="ReadOnlyMemory{T}"/> of bytes, or any type without references (its raw bytes, no allocation).
    /// </summary>
    /// <exception cref="ArgumentException">No built-in serializer fits <typeparamref name="T"/>; pass one (for classes and
    /// records, <see cref="SystemTextJsonSerializer{T}"/>).</exception>
    public static ICacheSerializer<T> GetDefault<T>()
    {
        if (typeof(T) == typeof(string))
        {
            return (ICacheSerializer<T>)(object)Utf8StringSerializer.Instance;
        }
        if (typeof(T) == typeof(byte[]))
        {
            return (ICacheSerializer<T>)(object)ByteArraySerializer.Instance;
        }
        if (typeof(T) == typeof(ReadOnlyMemory<byte>))
        {
            return (ICacheSerializer<T>)(object)ReadOnlyMemorySerializer.Instance;
        }
        if (!RuntimeHelpers.IsReferenceOrContainsReferences<T>())
        {
            return new UnmanagedSerializer<T>();
        }
        throw new ArgumentException(
            $"No built-in serializer for {CSharpName(typeof(T))}: pass an ICacheSerializer<{CSharpName(typeof(T))}>, e.g. new SystemTextJsonSerializer<{CSharpName(typeof(T))}>(YourJsonContext.Default.{ContextPropertyName(typeof(T))}) with [JsonSerializable(typeof({CSharpName(typeof(T))}))] on YourJsonContext.",
            nameof(T));
    }

    /// <summary>The type's name without the generic arity suffix (List, not List`1); a type nested in a generic one has none.</summary>
    private static string BaseName(Type type)
        => type.Name.IndexOf('`', StringComparison.Ordinal) is int tick and >= 0 ? type.Name[..tick] : type.Name;

    /// <summary>The type as C# spells it (List&lt;Int32&gt;, not List`1), for the message above.</summary>
    private static string CSharpName(Type type)
        => type.IsGenericType
            ? $"{BaseName(type)}<{string.Join(", ", type.GetGenericArguments().Select(CSharpName))}>"
            : type.IsArray ? $"{CSharpName(type.GetElementType()!)}[]" : type.Name;

    /// <summary>The property System.Text.Json's source generator names for the type (ListInt32, StringArray).</summary>
    private static string ContextPropertyName(Type type)
        => type.IsGenericType
            ? BaseName(type) + string.Concat(type.GetGenericArguments().Select(ContextPropertyName))
            : type.IsArray ? ContextPropertyName(type.GetElementType()!) + "Array" : type.Name;
}

/// <summary>
/// Raw bytes of a type without references (int, long, Guid, a struct of such): <c>sizeof(T)</c> bytes,
/// in the machine's byte order. No allocation either way.
/// </summary>
/// <remarks>As keys, values are equal when their bytes are, which is not always <c>Equals</c>: 0.0 and -0.0 are two keys
/// (and NaNs with different payloads), so are 1.0m and 1.00m, and a struct's padding bytes count (usually zero, but not
/// for a value built in memory that was not cleared, under <c>SkipLocalsInit</c> say). For such types pass a serializer
/// that writes a canonical form.</remarks>
/// <typeparam name="T">A type for which <see cref="RuntimeHelpers.IsReferenceOrContainsReferences{T}"/> is false.</typeparam>
public sealed class UnmanagedSerializer<T> : ICacheSerializer<T>
{
    /// <summary>Creates the serializer.</summary>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> is or contains a reference.</exception>
    public UnmanagedSerializer()
    {
        if (RuntimeHelpers.IsReferenceOrContainsReferences<T>())
        {
            throw new ArgumentException($"{typeof(T)} is or contains references; its raw bytes cannot be cached.", nameof(T));
        }
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The writer's <c>GetSpan</c> returned fewer than <c>sizeof(T)</c> bytes (a broken
    /// <see cref="IBufferWriter{T}"/>): nothing is written.</exception>
    public void Serialize(T value, IBufferWriter<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        int size = Unsafe.SizeOf<T>();
        Span<byte> span = destination.GetSpan(size);
        if (span.Length < size)
        {
            // A writer breaking GetSpan's contract: writing sizeof(T) bytes would go past the span it gave.
            throw new ArgumentException($"The buffer writer's GetSpan({size}) returned {span.Length} bytes; {typeof(T)} needs {size}.", nameof(destination));
        }
        Unsafe.WriteUnaligned(ref MemoryMarshal.GetReference(span), value);
        destination.Advance(size);
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The source is not exactly sizeof(T) bytes.</exception>
    public T Deserialize(ReadOnlySpan<byte> source)
    {
        if (source.Length != Unsafe.SizeOf<T>())
        {
            throw new ArgumentException($"source must be {Unsafe.SizeOf<T>()} bytes (sizeof {typeof(T).Name}), not {source.Length}.", nameof(source));
        }
        return Unsafe.ReadUnaligned<T>(in source[0]);
    }
}

/// <summary>Strings as UTF-8. A string that is not valid UTF-16 (a lone surrogate) is refused with
/// <see cref="ArgumentException"/>: UTF-8 cannot hold it, and replacing it would make distinct strings equal.</summary>
public sealed class Utf8StringSerializer : ICacheSerializer<string>
{
    /// <summary>The shared instance.</summary>
    public static readonly Utf8StringSerializer Instance = new();

    /// <inheritdoc/>
    /// <remarks>Asks <paramref name="destination"/> once for the whole encoding (3 bytes a character up to 1,024
    /// characters, the exact count beyond), so its <c>GetSpan</c> must honour the size hint.</remarks>
    /// <exception cref="ArgumentException">The string holds a lone surrogate (parameter <c>value</c>), or the writer's
    /// <c>GetSpan</c> returned less than it was asked for (parameter <c>destination</c>).</exception>
    public void Serialize(string value, IBufferWriter<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(destination);
        StrictUtf8.GetBytes(value, destination, nameof(value));
    }

    /// <inheritdoc/>
    /// <exception cref="InvalidDataException">The bytes are not valid UTF-8 (written another way, through the byte API or
    /// another view of the cache): refused rather than read with U+FFFD in place of the bad bytes, which made distinct
    /// byte keys come back as one string (found by review).</exception>
    public string Deserialize(ReadOnlySpan<byte> source)
    {
        try
        {
            return StrictDecoding.GetString(source);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"The stored bytes are not valid UTF-8 (at byte {e.Index} of {source.Length}): they were not written as a string by this serializer.", e);
        }
    }

    private static readonly UTF8Encoding StrictDecoding = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}

/// <summary>Byte arrays as themselves (a copy each way).</summary>
public sealed class ByteArraySerializer : ICacheSerializer<byte[]>
{
    /// <summary>The shared instance.</summary>
    public static readonly ByteArraySerializer Instance = new();

    /// <inheritdoc/>
    public void Serialize(byte[] value, IBufferWriter<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(destination);
        destination.Write(value);
    }

    /// <inheritdoc/>
    public byte[] Deserialize(ReadOnlySpan<byte> source) => source.ToArray();
}

/// <summary>Read-only byte memory as its bytes (deserialized into a new array).</summary>
public sealed class ReadOnlyMemorySerializer : ICacheSerializer<ReadOnlyMemory<byte>>
{
    /// <summary>The shared instance.</summary>
    public static readonly ReadOnlyMemorySerializer Instance = new();

    /// <inheritdoc/>
    public void Serialize(ReadOnlyMemory<byte> value, IBufferWriter<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        destination.Write(value.Span);
    }

    /// <inheritdoc/>
    public ReadOnlyMemory<byte> Deserialize(ReadOnlySpan<byte> source) => source.ToArray();
}

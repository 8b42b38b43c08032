using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace CacheKit.OffHeap;

/// <summary>
/// Any type as UTF-8 JSON, through System.Text.Json: the serializer for values (and keys) that are classes or records
/// with references, which <see cref="CacheSerializers.GetDefault{T}"/> cannot store.
/// </summary>
/// <remarks>
/// <para>Give it the source-generated metadata of <typeparamref name="T"/> (<c>new JsonCacheSerializer&lt;Order&gt;(
/// AppJsonContext.Default.Order)</c>, with a <c>JsonSerializerContext</c> that lists <c>Order</c>): no reflection,
/// safe under trimming and NativeAOT. The constructor that takes <see cref="JsonSerializerOptions"/> (or none) uses
/// reflection-based metadata instead.</para>
/// <para>A null value is stored as the four bytes <c>null</c> and read back as null (as
/// <c>ConcurrentDictionary</c> stores a null value); the typed cache refuses null keys before any serializer sees them.</para>
/// <para>Serializing allocates no buffer of its own: the JSON is written straight into the cache's per-thread buffer
/// (one <see cref="Utf8JsonWriter"/> per thread is reused). Deserializing allocates the object graph read back, as
/// any deserialization does. As a key serializer, equal keys must produce equal JSON: a type whose serialized form
/// depends on more than its value (a dictionary's insertion order, say) makes equal keys distinct.</para>
/// <para>Bytes that are not JSON of <typeparamref name="T"/> (another typed view sharing the byte cache's keys, or
/// <typeparamref name="T"/> changed so that old entries no longer fit) make the read throw <see cref="JsonException"/>;
/// the entry is left in place.</para>
/// </remarks>
/// <typeparam name="T">The type serialized.</typeparam>
public sealed class JsonCacheSerializer<T> : ICacheSerializer<T>
{
    // One writer per thread, reused while the same serializer instance asks for it (its writer options are this
    // instance's). Taken out of the slot for the call, so that a converter that serializes through another
    // JsonCacheSerializer<T> on the same thread gets a writer of its own instead of the one in use.
    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    // The instance whose options t_writer was made with. It keeps that one serializer per thread and T reachable
    // (a small object; a serializer is usually a singleton anyway).
    [ThreadStatic]
    private static JsonCacheSerializer<T>? t_writerOwner;

    private readonly JsonTypeInfo<T> _typeInfo;
    private readonly JsonWriterOptions _writerOptions;

    /// <summary>Creates the serializer from source-generated (or otherwise resolved) metadata for <typeparamref name="T"/>;
    /// no reflection, trimming and NativeAOT safe.</summary>
    /// <param name="typeInfo">The metadata, e.g. <c>AppJsonContext.Default.Order</c>; its options (naming policy,
    /// converters, ...) apply.</param>
    /// <exception cref="ArgumentNullException"><paramref name="typeInfo"/> is null.</exception>
    public JsonCacheSerializer(JsonTypeInfo<T> typeInfo)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        _typeInfo = typeInfo;
        _writerOptions = WriterOptionsOf(typeInfo.Options);
    }

    /// <summary>Creates the serializer with reflection-based metadata for <typeparamref name="T"/>.</summary>
    /// <param name="options">The serializer options (made read-only, as System.Text.Json does on first use); null for
    /// <see cref="JsonSerializerOptions.Default"/>.</param>
    [RequiresUnreferencedCode("Reflection-based JSON metadata: the members of T may be trimmed away. Pass a source-generated JsonTypeInfo<T> instead.")]
    [RequiresDynamicCode("Reflection-based JSON metadata may need runtime code generation. Pass a source-generated JsonTypeInfo<T> instead.")]
    public JsonCacheSerializer(JsonSerializerOptions? options = null)
    {
        options ??= JsonSerializerOptions.Default;
        options.MakeReadOnly(populateMissingResolver: true);
        _typeInfo = (JsonTypeInfo<T>)options.GetTypeInfo(typeof(T));
        _writerOptions = WriterOptionsOf(options);
    }

    /// <summary>The metadata this serializer writes and reads with.</summary>
    public JsonTypeInfo<T> TypeInfo => _typeInfo;

    /// <inheritdoc/>
    /// <exception cref="ArgumentNullException"><paramref name="destination"/> is null.</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> (or a member) cannot be serialized.</exception>
    public void Serialize(T value, IBufferWriter<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        Utf8JsonWriter? writer = t_writer;
        if (writer is not null && ReferenceEquals(t_writerOwner, this))
        {
            t_writer = null;   // leased: a nested call on this thread makes its own
            writer.Reset(destination);
        }
        else
        {
            writer = new Utf8JsonWriter(destination, _writerOptions);
        }
        try
        {
            JsonSerializer.Serialize(writer, value, _typeInfo);
            writer.Flush();
        }
        finally
        {
            // Drop the reference to the caller's buffer before the writer waits in the slot for the next call.
            writer.Reset(Stub.Instance);
            t_writer = writer;
            t_writerOwner = this;
        }
    }

    /// <inheritdoc/>
    /// <exception cref="JsonException">The bytes are not JSON of <typeparamref name="T"/>.</exception>
    public T Deserialize(ReadOnlySpan<byte> source) => JsonSerializer.Deserialize(source, _typeInfo)!;

    // What JsonSerializer itself would write with for these options (indentation, escaping, depth).
    private static JsonWriterOptions WriterOptionsOf(JsonSerializerOptions options) => new()
    {
        Encoder = options.Encoder,
        Indented = options.WriteIndented,
        IndentCharacter = options.IndentCharacter,
        IndentSize = options.IndentSize,
        NewLine = options.NewLine,
        // The serializer stops at options.MaxDepth (default 64) itself; the writer must not stop sooner.
        MaxDepth = options.MaxDepth == 0 ? 64 : options.MaxDepth,
    };

    /// <summary>A buffer writer that is never written to: what an idle writer points at, so it keeps no caller's buffer alive.</summary>
    private sealed class Stub : IBufferWriter<byte>
    {
        public static readonly Stub Instance = new();

        public void Advance(int count) => throw new InvalidOperationException("An idle JSON writer was written to.");

        public Memory<byte> GetMemory(int sizeHint = 0) => throw new InvalidOperationException("An idle JSON writer was written to.");

        public Span<byte> GetSpan(int sizeHint = 0) => throw new InvalidOperationException("An idle JSON writer was written to.");
    }
}

using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace CacheKit.OffHeap;

/// <summary>
/// Values (and keys) as UTF-8 JSON through System.Text.Json: the serializer for classes and records, which
/// <see cref="CacheSerializers.GetDefault{T}"/> cannot store.
/// </summary>
/// <remarks>
/// <para>Give it the source-generated metadata of <typeparamref name="T"/> (<c>new SystemTextJsonSerializer&lt;Order&gt;(
/// AppJsonContext.Default.Order)</c>, with a <c>JsonSerializerContext</c> that lists <c>Order</c>): no reflection,
/// safe under trimming and NativeAOT. The constructor that takes <see cref="JsonSerializerOptions"/> (or none) uses
/// reflection-based metadata instead.</para>
/// <para><b>The type.</b> <typeparamref name="T"/> should be the concrete type stored: as System.Text.Json does, a
/// base class writes and reads only its own members (configure <c>[JsonPolymorphic]</c>/<c>[JsonDerivedType]</c> to keep
/// derived types), and <see cref="object"/> reads back as a <see cref="JsonElement"/>. An interface or abstract
/// <typeparamref name="T"/> without polymorphism metadata or a converter could be written but never read back, so it is
/// refused at construction.</para>
/// <para><b>Null.</b> A null value is stored as the four bytes <c>null</c> and read back as null (as
/// <c>ConcurrentDictionary</c> stores a null value), also for a <typeparamref name="T"/> declared non-nullable; the typed
/// cache refuses null keys before any serializer sees them.</para>
/// <para><b>As a key serializer</b>, equal keys must give equal JSON, and JSON is not canonical: equal values with
/// different forms are different keys (1.0m and 1.00m, 0.0 and -0.0, one instant at two offsets, a dictionary's order),
/// and different values with one form are one key (members marked <c>[JsonIgnore]</c>; a string with a lone surrogate,
/// which JSON writes as U+FFFD, so "a\uD800" and "a\uFFFD" are one key: the built-in <see cref="Utf8StringSerializer"/>
/// refuses such strings instead). Prefer the built-in serializers for keys.</para>
/// <para><b>Allocation and size.</b> Serializing writes straight into the cache's per-thread buffer through one
/// <see cref="Utf8JsonWriter"/> per thread, reused by every serializer with the same writer settings, so a warm
/// <see cref="Serialize"/> allocates nothing; deserializing allocates the object graph read back, as any deserialization
/// does. The default encoder escapes non-ASCII text (é takes 6 bytes instead of 2, counted in the byte budget and
/// against <c>MaxKeyBytes</c>/<c>MaxValueBytes</c>); the JSON is never embedded in HTML, so
/// <c>JavaScriptEncoder.UnsafeRelaxedJsonEscaping</c> is safe here and keeps such text small.</para>
/// <para><b>Errors.</b> Unlike <c>JsonSerializer</c>, whose writer does not validate, a converter that writes invalid
/// JSON makes <see cref="Serialize"/> throw: such bytes could never be read back. Bytes that are not JSON of
/// <typeparamref name="T"/> (another typed view sharing the byte cache's keys, or <typeparamref name="T"/> changed so that
/// old entries no longer fit) make the read throw <see cref="JsonException"/>; the entry is left in place.</para>
/// </remarks>
/// <typeparam name="T">The type serialized.</typeparam>
public sealed class SystemTextJsonSerializer<T> : ICacheSerializer<T>
{
    // One idle writer per thread (and T), pointed at no caller's buffer. A call takes it out of the slot (so that a
    // converter serializing through a serializer of the same T on this thread makes its own instead of reusing the one in
    // use) and puts it back when done; it is reused only by serializers whose writer settings are the ones it was made with.
    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    private readonly JsonTypeInfo<T> _typeInfo;
    private readonly JsonWriterOptions _writerOptions;

    /// <summary>Creates the serializer from source-generated (or otherwise resolved) metadata for <typeparamref name="T"/>;
    /// no reflection, trimming and NativeAOT safe.</summary>
    /// <param name="typeInfo">The metadata, e.g. <c>AppJsonContext.Default.Order</c>; its options (naming policy,
    /// encoder, converters, ...) apply, and are made read-only now (as System.Text.Json does on first use), so that the
    /// JSON of a value cannot change afterwards.</param>
    /// <exception cref="ArgumentNullException"><paramref name="typeInfo"/> is null.</exception>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> is an interface or abstract class that the metadata
    /// cannot read back (no polymorphism metadata, no converter).</exception>
    /// <exception cref="InvalidOperationException">The metadata's options have no <c>TypeInfoResolver</c>.</exception>
    public SystemTextJsonSerializer(JsonTypeInfo<T> typeInfo)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        typeInfo.Options.MakeReadOnly();
        _typeInfo = typeInfo;
        _writerOptions = WriterOptionsOf(typeInfo.Options);
        ThrowIfNeverReadable(typeInfo, nameof(typeInfo));
    }

    /// <summary>Creates the serializer with reflection-based metadata for <typeparamref name="T"/>.</summary>
    /// <param name="options">The serializer options, made read-only now (as System.Text.Json does on first use; without a
    /// <c>TypeInfoResolver</c> they get the reflection-based one); null for <see cref="JsonSerializerOptions.Default"/>.</param>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> is an interface or abstract class that cannot be read
    /// back (no polymorphism metadata, no converter).</exception>
    /// <exception cref="NotSupportedException">The options' resolver has no metadata for <typeparamref name="T"/>.</exception>
    [RequiresUnreferencedCode("Reflection-based JSON metadata: the members of T may be trimmed away. Pass a source-generated JsonTypeInfo<T> instead.")]
    [RequiresDynamicCode("Reflection-based JSON metadata may need runtime code generation. Pass a source-generated JsonTypeInfo<T> instead.")]
    public SystemTextJsonSerializer(JsonSerializerOptions? options = null)
    {
        options ??= JsonSerializerOptions.Default;
        options.MakeReadOnly(populateMissingResolver: true);
        _typeInfo = (JsonTypeInfo<T>)options.GetTypeInfo(typeof(T));
        _writerOptions = WriterOptionsOf(options);
        ThrowIfNeverReadable(_typeInfo, nameof(options));
    }

    /// <summary>The metadata this serializer writes and reads with.</summary>
    public JsonTypeInfo<T> TypeInfo => _typeInfo;

    /// <inheritdoc/>
    /// <exception cref="ArgumentNullException"><paramref name="destination"/> is null.</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> or one of its members cannot be serialized.</exception>
    /// <exception cref="JsonException">A reference cycle, nesting deeper than the options' <c>MaxDepth</c>, or a converter
    /// that wrote invalid JSON.</exception>
    public void Serialize(T value, IBufferWriter<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        Utf8JsonWriter? writer = t_writer;
        if (writer is not null && SameSettings(writer.Options, _writerOptions))
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
            writer.Reset(IdleDestination.Instance);
            t_writer = writer;
        }
    }

    /// <inheritdoc/>
    /// <remarks>Stored JSON <c>null</c> reads back as null, whatever the nullability <typeparamref name="T"/> is declared with.</remarks>
    /// <exception cref="JsonException">The bytes are not JSON of <typeparamref name="T"/>.</exception>
    /// <exception cref="NotSupportedException">The metadata cannot create a <typeparamref name="T"/> (no usable constructor).</exception>
    public T Deserialize(ReadOnlySpan<byte> source) => JsonSerializer.Deserialize(source, _typeInfo)!;

    // What JsonSerializer itself writes with for these options (escaping, indentation, depth), except that it validates:
    // invalid JSON from a converter is refused here rather than stored unreadable.
    private static JsonWriterOptions WriterOptionsOf(JsonSerializerOptions options) => new()
    {
        Encoder = options.Encoder,
        Indented = options.WriteIndented,
        IndentCharacter = options.IndentCharacter,
        IndentSize = options.IndentSize,
        NewLine = options.NewLine,
        // The serializer stops at options.MaxDepth (default 64) itself; the writer must not stop sooner (its default is 1000).
        MaxDepth = options.MaxDepth == 0 ? 64 : options.MaxDepth,
    };

    // Field by field: the struct's own Equals would box and compare by reflection.
    private static bool SameSettings(in JsonWriterOptions a, in JsonWriterOptions b)
        => ReferenceEquals(a.Encoder, b.Encoder) && a.Indented == b.Indented && a.IndentCharacter == b.IndentCharacter
            && a.IndentSize == b.IndentSize && a.MaxDepth == b.MaxDepth && a.SkipValidation == b.SkipValidation
            && string.Equals(a.NewLine, b.NewLine, StringComparison.Ordinal);

    // An interface or abstract class with the default object handling: JsonSerializer writes its declared members but
    // throws NotSupportedException on every read, so the cache would fill with entries no one can read.
    private static void ThrowIfNeverReadable(JsonTypeInfo<T> typeInfo, string paramName)
    {
        if ((typeof(T).IsInterface || typeof(T).IsAbstract) && typeInfo.Kind == JsonTypeInfoKind.Object
            && typeInfo.PolymorphismOptions is null && typeInfo.CreateObject is null)
        {
            throw new ArgumentException(
                $"{typeof(T)} is an interface or abstract class: its values could be written but never read back. Serialize the concrete type, or declare its derived types ([JsonPolymorphic] and [JsonDerivedType], or JsonTypeInfo.PolymorphismOptions).",
                paramName);
        }
    }

    /// <summary>A buffer writer that is never written to: what an idle writer points at, so it keeps no caller's buffer alive.</summary>
    private sealed class IdleDestination : IBufferWriter<byte>
    {
        public static readonly IdleDestination Instance = new();

        public void Advance(int count) => throw new InvalidOperationException("An idle JSON writer was written to.");

        public Memory<byte> GetMemory(int sizeHint = 0) => throw new InvalidOperationException("An idle JSON writer was written to.");

        public Span<byte> GetSpan(int sizeHint = 0) => throw new InvalidOperationException("An idle JSON writer was written to.");
    }
}

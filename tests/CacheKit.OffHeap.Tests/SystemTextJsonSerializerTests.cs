using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json.Serialization.Metadata;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CacheKit.OffHeap.Tests;

public record class Customer(string Name, int Age, List<string> Tags, Address? Home);

public record class Address(string City, string? Street);

/// <summary>A chain as deep as wanted, for the depth limits.</summary>
public sealed class Chain(Chain? next)
{
    public Chain? Next { get; } = next;
}

public interface IShape
{
    double Area { get; }
}

public abstract record class Shape(string Name);

public sealed record class Circle(string Name, double Radius) : Shape(Name);

[System.Text.Json.Serialization.JsonPolymorphic]
[System.Text.Json.Serialization.JsonDerivedType(typeof(Square), "square")]
public abstract record class Tile(string Name);

public sealed record class Square(string Name, int Side) : Tile(Name);

/// <summary>A value whose converter serializes another <see cref="Nested"/> through the very serializer that is
/// writing it (the nesting the serializer's per-thread writer must survive).</summary>
[JsonConverter(typeof(NestedConverter))]
public sealed record class Nested(string Label, Nested? Inner);

[JsonSerializable(typeof(Customer))]
[JsonSerializable(typeof(Nested))]
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
internal sealed partial class TestJsonContext : JsonSerializerContext;

internal sealed class NestedConverter : JsonConverter<Nested>
{
    /// <summary>The serializer the converter writes inner values through (set by the test).</summary>
    public static SystemTextJsonSerializer<Nested>? Through { get; set; }

    public override Nested Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        string text = reader.GetString()!;
        int bar = text.IndexOf('|', StringComparison.Ordinal);
        if (bar < 0)
        {
            return new Nested(text, null);
        }
        byte[] innerJson = Convert.FromBase64String(text[(bar + 1)..]);
        return new Nested(text[..bar], Through!.Deserialize(innerJson));
    }

    public override void Write(Utf8JsonWriter writer, Nested value, JsonSerializerOptions options)
    {
        if (value.Inner is null)
        {
            writer.WriteStringValue(value.Label);
            return;
        }
        var inner = new ArrayBufferWriter<byte>();
        Through!.Serialize(value.Inner, inner);
        writer.WriteStringValue(value.Label + "|" + Convert.ToBase64String(inner.WrittenSpan));
    }
}

public class SystemTextJsonSerializerTests
{
    private static OffHeapCacheOptions Options() => new() { CapacityBytes = 4 << 20, PageSize = 64 * 1024 };

    private static Customer Ada() => new("Ada", 36, ["math", "engines"], new Address("London", null));

    private static void AssertSameCustomer(Customer? actual, Customer expected)
    {
        Assert.That(actual, Is.Not.Null);
        Assert.That(actual!.Name, Is.EqualTo(expected.Name));
        Assert.That(actual.Age, Is.EqualTo(expected.Age));
        Assert.That(actual.Tags, Is.EqualTo(expected.Tags));
        Assert.That(actual.Home, Is.EqualTo(expected.Home));
    }

    [Test]
    public void SourceGeneratedMetadataRoundTripsAGraphAndKeepsItsNamingPolicy()
    {
        using var bytes = new OffHeapCache(Options());
        using var cache = new OffHeapCache<string, Customer>(bytes, valueSerializer: new SystemTextJsonSerializer<Customer>(TestJsonContext.Default.Customer));

        Assert.That(cache.Set("ada", Ada()), Is.True);
        Assert.That(cache.TryGetValue("ada", out Customer? back), Is.True);
        AssertSameCustomer(back, Ada());

        // The stored bytes are the context's JSON (camelCase), nothing else.
        var raw = new ArrayBufferWriter<byte>();
        Assert.That(bytes.TryGet("ada"u8, raw), Is.True);
        Assert.That(Encoding.UTF8.GetString(raw.WrittenSpan),
            Is.EqualTo("""{"name":"Ada","age":36,"tags":["math","engines"],"home":{"city":"London","street":null}}"""));
    }

    [Test]
    public void ReflectionMetadataRoundTripsWithTheGivenOptions()
    {
        var options = new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
        var serializer = new SystemTextJsonSerializer<Customer>(options);
        using var bytes = new OffHeapCache(Options());
        using var cache = new OffHeapCache<int, Customer>(bytes, valueSerializer: serializer);

        cache.Set(1, Ada());
        Assert.That(cache.TryGetValue(1, out Customer? back), Is.True);
        AssertSameCustomer(back, Ada());
        Assert.That(options.IsReadOnly, Is.True, "the options are locked, as System.Text.Json does on first use");

        var raw = new ArrayBufferWriter<byte>();
        cache.Set(2, new Customer("Bob", 7, [], null));
        Assert.That(bytes.TryGet(BitConverter.GetBytes(2), raw), Is.True);
        Assert.That(Encoding.UTF8.GetString(raw.WrittenSpan), Is.EqualTo("""{"name":"Bob","age":7,"tags":[],"home":null}"""));

        // No options: JsonSerializerOptions.Default (the members' own names).
        var plain = new ArrayBufferWriter<byte>();
        new SystemTextJsonSerializer<Address>().Serialize(new Address("Paris", "Rue"), plain);
        Assert.That(Encoding.UTF8.GetString(plain.WrittenSpan), Is.EqualTo("""{"City":"Paris","Street":"Rue"}"""));
    }

    [Test]
    public void ANullValueIsStoredAndReadBackAsNull()
    {
        using var cache = new OffHeapCache<string, Customer?>(Options(), valueSerializer: new SystemTextJsonSerializer<Customer?>(TestJsonContext.Default.Customer));
        Assert.That(cache.Set("nobody", null), Is.True);
        Assert.That(cache.TryGetValue("nobody", out Customer? back), Is.True);
        Assert.That(back, Is.Null);
        Assert.That(cache.GetOrAdd("other", _ => null), Is.Null);
        Assert.That(cache.ContainsKey("other"), Is.True);
        Assert.That(cache.Count, Is.EqualTo(2));
    }

    [Test]
    public void SerializersWithDifferentOptionsOnOneThreadEachWriteTheirOwnFormat()
    {
        // Both share the per-thread writer slot (same T); each must write with its own options.
        var indented = new SystemTextJsonSerializer<Address>(new JsonSerializerOptions { WriteIndented = true, IndentSize = 1, NewLine = "\n" });
        var compact = new SystemTextJsonSerializer<Address>(new JsonSerializerOptions());
        var address = new Address("Oslo", null);
        for (int round = 0; round < 3; round++)
        {
            var a = new ArrayBufferWriter<byte>();
            var b = new ArrayBufferWriter<byte>();
            indented.Serialize(address, a);
            compact.Serialize(address, b);
            compact.Serialize(address, b);   // the reused writer appends to this call's buffer only
            Assert.That(Encoding.UTF8.GetString(a.WrittenSpan), Is.EqualTo("{\n \"City\": \"Oslo\",\n \"Street\": null\n}"));
            Assert.That(Encoding.UTF8.GetString(b.WrittenSpan), Is.EqualTo("""{"City":"Oslo","Street":null}{"City":"Oslo","Street":null}"""));
        }
    }

    [Test]
    public void AConverterMaySerializeThroughTheSameSerializerWhileItWrites()
    {
        var serializer = new SystemTextJsonSerializer<Nested>(TestJsonContext.Default.Nested);
        NestedConverter.Through = serializer;
        try
        {
            using var cache = new OffHeapCache<string, Nested>(Options(), valueSerializer: serializer);
            var value = new Nested("outer", new Nested("middle", new Nested("inner", null)));
            for (int i = 0; i < 3; i++)   // the second and third rounds reuse the thread's writer
            {
                Assert.That(cache.Set("n" + i, value), Is.True);
                Assert.That(cache.TryGetValue("n" + i, out Nested? back), Is.True);
                Assert.That(back, Is.EqualTo(value));
            }
        }
        finally
        {
            NestedConverter.Through = null;
        }
    }

    [Test]
    public void AValueThatCannotBeSerializedStoresNothingAndTheNextSetWorks()
    {
        using var cache = new OffHeapCache<string, object>(Options(), valueSerializer: new SystemTextJsonSerializer<object>());
        Assert.That(cache.Set("ok", new Address("Rome", null)), Is.True);
        // System.Type is refused by System.Text.Json part-way through the object.
        Assert.Throws<NotSupportedException>(() => cache.Set("bad", new { Name = "x", Kind = typeof(string) }));
        Assert.That(cache.ContainsKey("bad"), Is.False);
        Assert.That(cache.Count, Is.EqualTo(1));

        Assert.That(cache.Set("after", new Address("Nice", "Quai")), Is.True);
        var raw = new ArrayBufferWriter<byte>();
        new SystemTextJsonSerializer<object>().Serialize(new Address("Nice", "Quai"), raw);
        Assert.That(Encoding.UTF8.GetString(raw.WrittenSpan), Is.EqualTo("""{"City":"Nice","Street":"Quai"}"""));
    }

    [Test]
    public void BytesThatAreNotJsonOfTheTypeThrowJsonExceptionAndStayCached()
    {
        using var bytes = new OffHeapCache(Options());
        using var cache = new OffHeapCache<string, Customer>(bytes, valueSerializer: new SystemTextJsonSerializer<Customer>(TestJsonContext.Default.Customer));
        bytes.Set("raw"u8, "not json"u8);
        bytes.Set("array"u8, "[1,2]"u8);
        Assert.Throws(Is.InstanceOf<JsonException>(), () => cache.TryGetValue("raw", out _));
        Assert.Throws(Is.InstanceOf<JsonException>(), () => cache.TryGetValue("array", out _));
        Assert.That(bytes.Count, Is.EqualTo(2));
        Assert.That(bytes.ContainsKey("raw"u8), Is.True);
    }

    [Test]
    public void AsAKeySerializerEqualValuesFindTheirEntry()
    {
        using var cache = new OffHeapCache<Address, int>(Options(), keySerializer: new SystemTextJsonSerializer<Address>(new JsonSerializerOptions()));
        cache.Set(new Address("Lima", "Jr. Union"), 5);
        Assert.That(cache.TryGetValue(new Address("Lima", "Jr. Union"), out int v), Is.True);
        Assert.That(v, Is.EqualTo(5));
        Assert.That(cache.TryGetValue(new Address("Lima", null), out _), Is.False);
        Assert.Throws<ArgumentNullException>(() => cache.Set(null!, 1));
    }

    [Test]
    public void BadArgumentsAreNamed()
    {
        Assert.That(Assert.Throws<ArgumentNullException>(() => new SystemTextJsonSerializer<Customer>((System.Text.Json.Serialization.Metadata.JsonTypeInfo<Customer>)null!))!.ParamName,
            Is.EqualTo("typeInfo"));
        var serializer = new SystemTextJsonSerializer<Customer>(TestJsonContext.Default.Customer);
        Assert.That(Assert.Throws<ArgumentNullException>(() => serializer.Serialize(Ada(), null!))!.ParamName, Is.EqualTo("destination"));

        var e = Assert.Throws<ArgumentException>(() => CacheSerializers.GetDefault<Customer>())!;
        Assert.That(e.Message, Does.Contain("SystemTextJsonSerializer<Customer>"));
        Assert.That(e.Message, Does.Contain("ICacheSerializer<Customer>"));
    }

    private static string Json(ICacheSerializer<Chain> serializer, Chain value)
    {
        var w = new ArrayBufferWriter<byte>();
        serializer.Serialize(value, w);
        return Encoding.UTF8.GetString(w.WrittenSpan);
    }

    private static Chain ChainOf(int depth)
    {
        Chain c = new(null);
        for (int i = 1; i < depth; i++)
        {
            c = new Chain(c);
        }
        return c;
    }

    [Test]
    public void TheBytesAreWhatJsonSerializerWritesForEachOptionSet()
    {
        JsonSerializerOptions[] optionSets =
        [
            new(),
            new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping },
            new() { WriteIndented = true, IndentCharacter = '\t', IndentSize = 1, NewLine = "\r\n", Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping },
            new() { PropertyNamingPolicy = JsonNamingPolicy.KebabCaseUpper, WriteIndented = true },
        ];
        var value = new Customer("Zoë <&> 日本", 41, ["a'b", "c+d", "é"], new Address("Zürich", "Bahnhofstraße"));
        foreach (JsonSerializerOptions options in optionSets)
        {
            var w = new ArrayBufferWriter<byte>();
            new SystemTextJsonSerializer<Customer>(options).Serialize(value, w);
            Assert.That(w.WrittenSpan.ToArray(), Is.EqualTo(JsonSerializer.SerializeToUtf8Bytes(value, options)));
        }
        // The encoder is this serializer's: relaxed escaping writes é as its 2 UTF-8 bytes, the default as \u00E9 (6).
        var relaxed = new ArrayBufferWriter<byte>();
        new SystemTextJsonSerializer<string>(optionSets[1]).Serialize("é", relaxed);
        var escaped = new ArrayBufferWriter<byte>();
        new SystemTextJsonSerializer<string>(optionSets[0]).Serialize("é", escaped);
        Assert.That(Encoding.UTF8.GetString(relaxed.WrittenSpan), Is.EqualTo("\"é\""));
        Assert.That(Encoding.UTF8.GetString(escaped.WrittenSpan), Is.EqualTo("\"\\u00E9\""));
    }

    [Test]
    public void NestingIsLimitedByTheOptionsMaxDepthNotByTheWritersDefault()
    {
        // The writer alone would stop at 1000 levels; the options allow 2000.
        var deep = new SystemTextJsonSerializer<Chain>(new JsonSerializerOptions { MaxDepth = 2000 });
        string json = Json(deep, ChainOf(1500));
        Assert.That(deep.Deserialize(Encoding.UTF8.GetBytes(json)), Is.Not.Null);
        // The default (64) and a small limit stop where JsonSerializer stops.
        Assert.Throws<JsonException>(() => Json(new SystemTextJsonSerializer<Chain>(), ChainOf(70)));
        Assert.That(Json(new SystemTextJsonSerializer<Chain>(), ChainOf(60)), Does.StartWith("{\"Next\":{"));
        Assert.Throws<JsonException>(() => Json(new SystemTextJsonSerializer<Chain>(new JsonSerializerOptions { MaxDepth = 3 }), ChainOf(5)));
    }

    /// <summary>Bytes allocated by warm serializations that go through <paramref name="serializers"/> in turn (least of three runs).</summary>
    private static long AllocatedSerializingThrough(ArrayBufferWriter<byte> destination, params SystemTextJsonSerializer<Address>[] serializers)
    {
        var address = new Address("Quito", "Av. Amazonas");
        void Run()
        {
            for (int i = 0; i < 1000; i++)
            {
                destination.ResetWrittenCount();
                foreach (SystemTextJsonSerializer<Address> serializer in serializers)
                {
                    serializer.Serialize(address, destination);
                }
            }
        }
        Run();
        return Allocations.LeastOfThreeRuns(Run);
    }

    [Test]
    public void SerializingAfterWarmUpAllocatesNoBufferOfItsOwn()
    {
        var destination = new ArrayBufferWriter<byte>(4096);
        Assert.That(AllocatedSerializingThrough(destination, new SystemTextJsonSerializer<Address>(new JsonSerializerOptions())), Is.Zero,
            "the thread's writer is reused; nothing is allocated per call");
    }

    [Test]
    public void TwoSerializersWithTheSameSettingsShareTheThreadsWriter()
    {
        // Keys and values of one type, or two caches of one value type: each with its own instance.
        var first = new SystemTextJsonSerializer<Address>(new JsonSerializerOptions());
        var second = new SystemTextJsonSerializer<Address>(new JsonSerializerOptions());
        var destination = new ArrayBufferWriter<byte>(4096);
        Assert.That(AllocatedSerializingThrough(destination, first, second), Is.Zero);
        Assert.That(Encoding.UTF8.GetString(destination.WrittenSpan), Is.EqualTo("{\"City\":\"Quito\",\"Street\":\"Av. Amazonas\"}{\"City\":\"Quito\",\"Street\":\"Av. Amazonas\"}"));
    }

    [Test]
    public void TheIdleWriterKeepsNoCallersBufferAlive()
    {
        var serializer = new SystemTextJsonSerializer<Address>(new JsonSerializerOptions());
        WeakReference buffer = WriteOnce(serializer);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.That(buffer.IsAlive, Is.False);
        serializer.Serialize(new Address("a", null), new ArrayBufferWriter<byte>());   // the writer is still usable

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        static WeakReference WriteOnce(SystemTextJsonSerializer<Address> s)
        {
            var w = new ArrayBufferWriter<byte>();
            s.Serialize(new Address("Lagos", null), w);
            return new WeakReference(w);
        }
    }

    [Test]
    public void NullableValueTypesRoundTripNullAndPlainOnesRefuseIt()
    {
        using var cache = new OffHeapCache<int, int?>(Options(), valueSerializer: new SystemTextJsonSerializer<int?>());
        cache.Set(1, null);
        cache.Set(2, 5);
        Assert.That(cache.TryGetValue(1, out int? a) && a is null, Is.True);
        Assert.That(cache.TryGetValue(2, out int? b) && b == 5, Is.True);
        Assert.Throws<JsonException>(() => new SystemTextJsonSerializer<int>().Deserialize("null"u8));
    }

    [Test]
    public void AnInterfaceOrAbstractTypeThatCouldNeverBeReadBackIsRefusedAtConstruction()
    {
        var e = Assert.Throws<ArgumentException>(() => new SystemTextJsonSerializer<IShape>())!;
        Assert.That(e.ParamName, Is.EqualTo("options"));
        Assert.That(e.Message, Does.Contain("IShape").And.Contain("never read back"));
        var typeInfo = (JsonTypeInfo<Shape>)JsonSerializerOptions.Default.GetTypeInfo(typeof(Shape));
        Assert.That(Assert.Throws<ArgumentException>(() => new SystemTextJsonSerializer<Shape>(typeInfo))!.ParamName, Is.EqualTo("typeInfo"));

        // With polymorphism metadata the base type round-trips its derived values.
        using var tiles = new OffHeapCache<int, Tile>(Options(), valueSerializer: new SystemTextJsonSerializer<Tile>());
        tiles.Set(1, new Square("s", 3));
        Assert.That(tiles.TryGetValue(1, out Tile? tile) ? tile : null, Is.EqualTo(new Square("s", 3)));
        // A collection interface is not refused: System.Text.Json reads it into a list.
        var list = new SystemTextJsonSerializer<IReadOnlyList<int>>();
        Assert.That(list.Deserialize("[1,2]"u8), Is.EqualTo(new[] { 1, 2 }));
        // object reads back as a JsonElement, as documented.
        Assert.That(new SystemTextJsonSerializer<object>().Deserialize("{\"a\":1}"u8), Is.InstanceOf<JsonElement>());
    }

    [Test]
    public void TheMetadatasOptionsAreLockedSoTheJsonOfAValueCannotChangeLater()
    {
        var options = new JsonSerializerOptions { TypeInfoResolver = new DefaultJsonTypeInfoResolver() };
        var typeInfo = (JsonTypeInfo<Address>)options.GetTypeInfo(typeof(Address));
        Assert.That(options.IsReadOnly, Is.False, "resolving metadata alone leaves the options open");
        _ = new SystemTextJsonSerializer<Address>(typeInfo);
        Assert.That(options.IsReadOnly, Is.True);
        Assert.Throws<InvalidOperationException>(() => options.WriteIndented = true);
    }

    [Test]
    public void AsAKeySerializerALoneSurrogateAndTheReplacementCharacterAreOneKey()
    {
        // Documented: JSON writes a lone surrogate as U+FFFD (the built-in string serializer refuses it instead).
        using var cache = new OffHeapCache<string, int>(Options(), keySerializer: new SystemTextJsonSerializer<string>());
        cache.Set("a\uD800", 1);
        Assert.That(cache.TryGetValue("a\uFFFD", out int v) ? v : 0, Is.EqualTo(1));
        using var strict = new OffHeapCache<string, int>(Options());
        Assert.Throws<ArgumentException>(() => strict.Set("a\uD800", 1));
    }
}

using System.Buffers;
using System.Text;
using CacheKit.OffHeap;

namespace CacheKit.Hardening.Tests;

/// <summary>
/// Every public method of the byte cache, the typed facade and the options, fed bad input: the exception type,
/// its ParamName and a fragment of its message are checked, and afterwards the cache holds exactly what it held
/// before (same entries, values, count, payload and native bytes; invariants hold). The table in
/// docs/hardening.md is printed by <see cref="PrintTable"/> from the same rows.
/// </summary>
public class BadInputTests
{
    /// <summary>The caches a row acts on, with known content.</summary>
    public sealed class Fixture : IDisposable
    {
        public const int MaxKeyBytes = 64;
        public readonly OffHeapCache Bytes;
        public readonly OffHeapCache<string, string> Typed;
        public readonly Dictionary<string, byte[]> Known = [];

        public Fixture()
        {
            Bytes = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, PageSize = 64 * 1024, ShardCount = 2, MaxKeyBytes = MaxKeyBytes });
            Typed = new OffHeapCache<string, string>(new OffHeapCacheOptions { CapacityBytes = 4 << 20, PageSize = 64 * 1024, ShardCount = 2, MaxKeyBytes = MaxKeyBytes });
            for (int i = 0; i < 20; i++)
            {
                string key = "key" + i;
                byte[] value = Encoding.UTF8.GetBytes(new string((char)('a' + i), 10 + (i * 37)));
                Bytes.Set(Encoding.UTF8.GetBytes(key), value);
                Typed.Set(key, Encoding.UTF8.GetString(value));
                Known[key] = value;
            }
            Bytes.Set([], "empty key"u8);
            Known[""] = "empty key"u8.ToArray();
        }

        public byte[] LongKey => new byte[MaxKeyBytes + 1];

        public byte[] TooLargeValue => new byte[Bytes.MaxValueBytes + 1];

        public string Snapshot(OffHeapCache cache, bool typed)
        {
            var sb = new StringBuilder();
            var writer = new ArrayBufferWriter<byte>();
            foreach ((string key, byte[] value) in Known)
            {
                if (typed && key.Length == 0)
                {
                    continue;
                }
                writer.ResetWrittenCount();
                byte[] keyBytes = Encoding.UTF8.GetBytes(key);
                bool hit = cache.TryGet(keyBytes, writer);
                sb.Append(key).Append('=').Append(hit && writer.WrittenSpan.SequenceEqual(value) ? "ok" : hit ? "CHANGED" : "MISSING").Append(';');
            }
            CacheStatistics s = cache.GetStatistics();
            sb.Append($"count={s.Count};payload={s.PayloadBytes};native={s.NativeBytes};flights={cache.FlightCount}");
            return sb.ToString();
        }

        public void Dispose()
        {
            Bytes.Dispose();
            Typed.Dispose();
        }
    }

    /// <summary>One row of the table.</summary>
    public sealed record Row(string Member, string Input, Type Exception, string? ParamName, string Message, Action<Fixture> Act)
    {
        public override string ToString() => $"{Member}: {Input}";
    }

    private static readonly TimeSpan[] BadTtls = [TimeSpan.Zero, TimeSpan.FromTicks(-1), TimeSpan.MinValue];

    private static ValueTask Nothing(ReadOnlyMemory<byte> k, int s, IBufferWriter<byte> w, CancellationToken ct) => ValueTask.CompletedTask;

    public static IEnumerable<Row> Rows()
    {
        Type aoore = typeof(ArgumentOutOfRangeException), ane = typeof(ArgumentNullException), ae = typeof(ArgumentException);
        var w = new ArrayBufferWriter<byte>();
        ValueFactory<int> noop = static (_, _, _) => { };

        // ---- OffHeapCache (bytes)
        yield return new("TryGet(key, Span, out int)", "key longer than MaxKeyBytes", aoore, "key", "limit is 64", f => f.Bytes.TryGet(f.LongKey, new byte[10], out _));
        yield return new("TryGet(key, Span, out int)", "key of 70 000 bytes (above the format's 65 535)", aoore, "key", "limit is 64", f => f.Bytes.TryGet(new byte[70_000], new byte[10], out _));
        yield return new("TryGet(key, IBufferWriter)", "key longer than MaxKeyBytes", aoore, "key", "MaxKeyBytes", f => f.Bytes.TryGet(f.LongKey, new ArrayBufferWriter<byte>()));
        yield return new("TryGet(key, IBufferWriter)", "null destination", ane, "destination", "", f => f.Bytes.TryGet("key1"u8, (IBufferWriter<byte>)null!));
        yield return new("ContainsKey", "key longer than MaxKeyBytes", aoore, "key", "MaxKeyBytes", f => f.Bytes.ContainsKey(f.LongKey));
        yield return new("Set(key, value)", "key longer than MaxKeyBytes", aoore, "key", "MaxKeyBytes", f => f.Bytes.Set(f.LongKey, "v"u8));
        yield return new("Set(key, value)", "value longer than MaxValueBytes", aoore, "value", "MaxValueBytes", f => f.Bytes.Set("key1"u8, f.TooLargeValue));
        yield return new("Set(key, value)", "existing key, value too large (old value must stay)", aoore, "value", "limit for this key", f => f.Bytes.Set("key3"u8, f.TooLargeValue));
        foreach (TimeSpan ttl in BadTtls)
        {
            yield return new("Set(key, value, ttl)", $"ttl = {ttl}", aoore, "timeToLive", "must be positive", f => f.Bytes.Set("key2"u8, "new"u8, ttl));
        }
        yield return new("Set(key, value, ttl)", "key too long", aoore, "key", "MaxKeyBytes", f => f.Bytes.Set(f.LongKey, "v"u8, TimeSpan.FromSeconds(1)));
        yield return new("Remove", "key longer than MaxKeyBytes", aoore, "key", "MaxKeyBytes", f => f.Bytes.Remove(f.LongKey));
        yield return new("Remove(key, Span, out int)", "key longer than MaxKeyBytes", aoore, "key", "MaxKeyBytes", f => f.Bytes.Remove(f.LongKey, new byte[10], out _));
        yield return new("Remove(key, IBufferWriter)", "key longer than MaxKeyBytes", aoore, "key", "MaxKeyBytes", f => f.Bytes.Remove(f.LongKey, new ArrayBufferWriter<byte>()));
        yield return new("Remove(key, IBufferWriter)", "null destination", ane, "destination", "", f => f.Bytes.Remove("key1"u8, (IBufferWriter<byte>)null!));
        yield return new("RemoveIfEquals", "key longer than MaxKeyBytes", aoore, "key", "MaxKeyBytes", f => f.Bytes.RemoveIfEquals(f.LongKey, "v"u8));
        yield return new("GetOrAdd", "null factory", ane, "factory", "", f => f.Bytes.GetOrAdd("new"u8, 0, null!, w));
        yield return new("GetOrAdd", "null destination", ane, "destination", "", f => f.Bytes.GetOrAdd("new"u8, 0, noop, null!));
        yield return new("GetOrAdd", "key longer than MaxKeyBytes", aoore, "key", "MaxKeyBytes", f => f.Bytes.GetOrAdd(f.LongKey, 0, noop, w));
        yield return new("GetOrAdd", "ttl = 0", aoore, "timeToLive", "must be positive", f => f.Bytes.GetOrAdd("new"u8, 0, noop, w, TimeSpan.Zero));
        yield return new("GetOrAdd", "factory writes a value above MaxValueBytes", aoore, "factory", "MaxValueBytes",
            f => f.Bytes.GetOrAdd("new"u8, f.Bytes.MaxValueBytes + 1, static (_, n, b) => b.Write(new byte[n]), new ArrayBufferWriter<byte>()));
        yield return new("GetOrAdd", "cancelled token (miss)", typeof(OperationCanceledException), null, "",
            f => f.Bytes.GetOrAdd("new"u8, 0, noop, w, cancellationToken: new CancellationToken(true)));
        yield return new("GetOrAddAsync", "null factory", ane, "factory", "", f => f.Bytes.GetOrAddAsync("new"u8.ToArray(), 0, null!, w).AsTask().GetAwaiter().GetResult());
        yield return new("GetOrAddAsync", "null destination", ane, "destination", "", f => f.Bytes.GetOrAddAsync("new"u8.ToArray(), 0, Nothing, null!).AsTask().GetAwaiter().GetResult());
        yield return new("GetOrAddAsync", "key longer than MaxKeyBytes", aoore, "key", "MaxKeyBytes", f => f.Bytes.GetOrAddAsync(f.LongKey, 0, Nothing, w).AsTask().GetAwaiter().GetResult());
        yield return new("GetOrAddAsync", "ttl < 0", aoore, "timeToLive", "must be positive", f => f.Bytes.GetOrAddAsync("new"u8.ToArray(), 0, Nothing, w, TimeSpan.FromSeconds(-1)).AsTask().GetAwaiter().GetResult());
        yield return new("GetOrAddAsync", "factory writes a value above MaxValueBytes", aoore, "factory", "MaxValueBytes",
            f => f.Bytes.GetOrAddAsync("new"u8.ToArray(), f.Bytes.MaxValueBytes + 1, static (_, n, b, _) => { b.Write(new byte[n]); return ValueTask.CompletedTask; }, new ArrayBufferWriter<byte>()).AsTask().GetAwaiter().GetResult());
        yield return new("GetOrAddAsync", "cancelled token (miss)", typeof(OperationCanceledException), null, "",
            f => f.Bytes.GetOrAddAsync("new"u8.ToArray(), 0, Nothing, w, cancellationToken: new CancellationToken(true)).AsTask().GetAwaiter().GetResult());
        yield return new("SetMany", "one key too long among good items (nothing stored)", aoore, "items", "MaxKeyBytes",
            f => f.Bytes.SetMany(new KeyValuePair<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>>[] { new("key1"u8.ToArray(), "x"u8.ToArray()), new(f.LongKey, "y"u8.ToArray()) }));
        yield return new("SetMany", "one value too large among good items (nothing stored)", aoore, "items", "MaxValueBytes",
            f => f.Bytes.SetMany(new KeyValuePair<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>>[] { new("key1"u8.ToArray(), "x"u8.ToArray()), new("key2"u8.ToArray(), f.TooLargeValue) }));
        yield return new("SetMany", "ttl = 0", aoore, "timeToLive", "must be positive",
            f => f.Bytes.SetMany(new KeyValuePair<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>>[] { new("key1"u8.ToArray(), "x"u8.ToArray()) }, TimeSpan.Zero));
        yield return new("TryGetMany", "null destination", ane, "destination", "", f => f.Bytes.TryGetMany(new ReadOnlyMemory<byte>[1], null!, new int[1]));
        yield return new("TryGetMany", "valueLengths shorter than keys", ae, "valueLengths", "at least keys.Length (2)", f => f.Bytes.TryGetMany(new ReadOnlyMemory<byte>[2], w, new int[1]));
        yield return new("TryGetMany", "a key too long", aoore, "keys", "MaxKeyBytes", f => f.Bytes.TryGetMany(new ReadOnlyMemory<byte>[] { "key1"u8.ToArray(), f.LongKey }, w, new int[2]));

        // ---- OffHeapCache<TKey, TValue>
        yield return new("OffHeapCache<K,V>(options)", "null options", ane, "options", "", _ => new OffHeapCache<string, string>((OffHeapCacheOptions)null!));
        yield return new("OffHeapCache<K,V>(bytes)", "null byte cache", ane, "bytes", "", _ => new OffHeapCache<string, string>((OffHeapCache)null!));
        yield return new("OffHeapCache<K,V>(options)", "TKey without a built-in serializer and none given", ae, "T", "No built-in serializer", _ => new OffHeapCache<object, string>(new OffHeapCacheOptions { CapacityBytes = 4 << 20 }));
        yield return new("Set(TKey, TValue)", "null string key", ane, "key", "", f => f.Typed.Set(null!, "v"));
        yield return new("Set(TKey, TValue)", "null string value", ane, "value", "", f => f.Typed.Set("key1", null!));
        yield return new("Set(TKey, TValue)", "key serializing above MaxKeyBytes", aoore, "key", "MaxKeyBytes", f => f.Typed.Set(new string('k', 65), "v"));
        yield return new("Set(TKey, TValue)", "value serializing above MaxValueBytes", aoore, "value", "MaxValueBytes", f => f.Typed.Set("key1", new string('v', f.Typed.Bytes.MaxValueBytes + 1)));
        yield return new("Set(TKey, TValue, ttl)", "ttl = 0", aoore, "timeToLive", "must be positive", f => f.Typed.Set("key1", "v", TimeSpan.Zero));
        yield return new("TryGetValue", "null key", ane, "key", "", f => f.Typed.TryGetValue(null!, out _));
        yield return new("ContainsKey(TKey)", "null key", ane, "key", "", f => f.Typed.ContainsKey(null!));
        yield return new("TryRemove(TKey)", "null key", ane, "key", "", f => f.Typed.TryRemove(null!));
        yield return new("TryRemove(TKey, out TValue)", "null key", ane, "key", "", f => f.Typed.TryRemove(null!, out _));
        yield return new("TryRemove(KeyValuePair)", "null key", ane, "key", "", f => f.Typed.TryRemove(new KeyValuePair<string, string>(null!, "v")));
        yield return new("TryUpdateIfEquals", "null key", ane, "key", "", f => f.Typed.TryUpdateIfEquals(null!, "new", "v"));
        yield return new("TryUpdateIfEquals", "null new value (string serializer)", ane, "newValue", "", f => f.Typed.TryUpdateIfEquals("key1", null!, "v"));
        yield return new("TryUpdateIfEquals", "ttl = 0", aoore, "timeToLive", "must be positive", f => f.Typed.TryUpdateIfEquals("key1", "new", "v", TimeSpan.Zero));
        yield return new("TryUpdateIfEquals", "new value serializing above MaxValueBytes (old value must stay)", aoore, "newValue", "MaxValueBytes",
            f => f.Typed.TryUpdateIfEquals("key3", new string('v', f.Typed.Bytes.MaxValueBytes + 1), "v"));
        yield return new("TryUpdateIfEquals", "new value above MaxValueBytes, null comparison (checked whatever the comparison)", aoore, "newValue", "MaxValueBytes",
            f => f.Typed.TryUpdateIfEquals("key3", new string('v', f.Typed.Bytes.MaxValueBytes + 1), null!));
        yield return new("TryUpdateIfEquals", "new value with a lone surrogate", ae, "newValue", "surrogate",
            f => f.Typed.TryUpdateIfEquals("key3", "\uD800", "v"));
        yield return new("GetOrAdd(TKey, Func)", "null factory", ane, "valueFactory", "", f => f.Typed.GetOrAdd("new", (Func<string, string>)null!));
        yield return new("GetOrAdd(TKey, Func)", "factory returns null (string serializer)", ane, "value", "", f => f.Typed.GetOrAdd("new", _ => null!));
        yield return new("GetOrAdd(TKey, Func)", "ttl = 0", aoore, "timeToLive", "must be positive", f => f.Typed.GetOrAdd("new", _ => "v", TimeSpan.Zero));
        yield return new("GetOrAddAsync(TKey, Func)", "null factory", ane, "valueFactory", "", f => f.Typed.GetOrAddAsync("new", null!).AsTask().GetAwaiter().GetResult());
        yield return new("AddOrUpdate", "null update factory", ane, "updateValueFactory", "", f => f.Typed.AddOrUpdate("key1", "v", null!));
        yield return new("AddOrUpdate", "ttl = 0", aoore, "timeToLive", "must be positive", f => f.Typed.AddOrUpdate("key1", "v", (_, o) => o + "!", TimeSpan.Zero));
        yield return new("UnmanagedSerializer<T>.Deserialize", "3 bytes for an int", ae, "source", "must be 4 bytes", _ => new UnmanagedSerializer<int>().Deserialize([1, 2, 3]));
        yield return new("UnmanagedSerializer<T>()", "T with references (string)", ae, "T", "contains references", _ => new UnmanagedSerializer<string>());
        yield return new("CacheSerializers.GetDefault<T>", "T = object", ae, "T", "No built-in serializer", _ => CacheSerializers.GetDefault<object>());
        yield return new("SystemTextJsonSerializer<T>(typeInfo)", "null metadata", ane, "typeInfo", "", _ => new SystemTextJsonSerializer<string>((System.Text.Json.Serialization.Metadata.JsonTypeInfo<string>)null!));
        yield return new("SystemTextJsonSerializer<T>.Serialize", "null destination", ane, "destination", "", _ => new SystemTextJsonSerializer<int[]>().Serialize([1], null!));
        yield return new("SystemTextJsonSerializer<T>.Deserialize", "bytes that are not JSON of T", typeof(System.Text.Json.JsonException), null, "", _ => new SystemTextJsonSerializer<int[]>().Deserialize("{\"a\":1}"u8));

        // ---- OffHeapCacheOptions (validated by the constructor)
        OffHeapCacheOptions Good() => new() { CapacityBytes = 4 << 20 };
        yield return new("OffHeapCache(options)", "null options", ane, "options", "", _ => new OffHeapCache(null!));
        yield return new("OffHeapCache(options)", "TimeProvider = null", ane, "TimeProvider", "", _ => new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, TimeProvider = null! }));
        foreach (long capacity in new long[] { 0, -1, long.MinValue })
        {
            yield return new("OffHeapCacheOptions.CapacityBytes", $"{capacity}", aoore, "CapacityBytes", "must be positive", _ => new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = capacity }));
        }
        yield return new("OffHeapCacheOptions.CapacityBytes", "below the index + one page per shard (50 000)", aoore, "CapacityBytes", "must be at least", _ => new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 50_000 }));
        yield return new("OffHeapCacheOptions.CapacityBytes", "long.MaxValue (index would need more buckets than a shard can hold)", aoore, "CapacityBytes", "buckets per shard",
            _ => new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = long.MaxValue }));
        foreach (long max in new long[] { 0, -1 })
        {
            yield return new("OffHeapCacheOptions.MaxEntries", $"{max}", aoore, "MaxEntries", "at least 1", _ => new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, MaxEntries = max }));
        }
        foreach (int shards in new[] { 0, 1, 2, 4, 16, 256 })
        {
            foreach (long max in new[] { long.MaxValue, long.MaxValue / 2, long.MaxValue / 5 + 1, 1L << 40 })
            {
                yield return new("OffHeapCacheOptions.MaxEntries", $"{max} with ShardCount {shards} (index too large)", aoore, "MaxEntries", "buckets per shard",
                    _ => new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 64 << 20, ShardCount = shards, MaxEntries = max }));
            }
        }
        // One shard of 10^9 entries: 238M buckets, under int.MaxValue / 7 but above the policy's 2^30 handles;
        // refused before the 15 GB index is allocated.
        yield return new("OffHeapCacheOptions.MaxEntries", "10^9 with ShardCount 1 and a 20 GB budget (more slots than a policy's 2^30 handles)", aoore, "MaxEntries", "buckets per shard",
            _ => new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 20L << 30, ShardCount = 1, MaxEntries = 1_000_000_000 }));
        yield return new("OffHeapCacheOptions.MaxEntries", "3 with ShardCount 4 (fewer entries than shards)", aoore, "MaxEntries", "at least ShardCount (4)", _ => new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 4, MaxEntries = 3 }));
        yield return new("OffHeapCacheOptions.MaxEntries", "10 million with a 4 MiB budget (index does not fit)", aoore, "CapacityBytes", "must be at least", _ => new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, MaxEntries = 10_000_000 }));
        foreach (int shards in new[] { 3, -1, 512 })
        {
            yield return new("OffHeapCacheOptions.ShardCount", $"{shards}", aoore, "ShardCount", "power of two in [1, 256]", _ => new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = shards }));
        }
        yield return new("OffHeapCacheOptions.ShardCount", "256 shards with a 1 MiB budget (one page each does not fit)", aoore, "CapacityBytes", "one page per shard", _ => new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 1 << 20, ShardCount = 256 }));
        foreach (int page in new[] { 1000, 3 * 65536, 1 << 27, -65536 })
        {
            yield return new("OffHeapCacheOptions.PageSize", $"{page}", aoore, "PageSize", "power of two in [65536, 67108864]", _ => new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, PageSize = page }));
        }
        foreach (int maxKey in new[] { 0, -1, 65536 })
        {
            yield return new("OffHeapCacheOptions.MaxKeyBytes", $"{maxKey}", aoore, "MaxKeyBytes", "[1, 65535]", _ => new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, MaxKeyBytes = maxKey }));
        }
        yield return new("OffHeapCacheOptions.MaxKeyBytes", "65535 with 64 KiB pages (no room for the header)", aoore, "MaxKeyBytes", "leave room", _ => new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, PageSize = 65536, MaxKeyBytes = 65535 }));
        foreach (int maxValue in new[] { -1, 1 << 20 })
        {
            yield return new("OffHeapCacheOptions.MaxValueBytes", $"{maxValue} (64 KiB pages)", aoore, "MaxValueBytes", "MaxValueBytes must be in [0,", _ => new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, PageSize = 65536, MaxValueBytes = maxValue }));
        }
        foreach (int hint in new[] { 31, 0, (1 << 20) + 1 })
        {
            yield return new("OffHeapCacheOptions.AverageEntrySizeHint", $"{hint}", aoore, "AverageEntrySizeHint", "[32, 1048576]", _ => new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, AverageEntrySizeHint = hint }));
        }
        foreach (int evictions in new[] { 0, 1025 })
        {
            yield return new("OffHeapCacheOptions.MaxEvictionsPerInsert", $"{evictions}", aoore, "MaxEvictionsPerInsert", "[1, 1024]", _ => new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, MaxEvictionsPerInsert = evictions }));
        }
        yield return new("OffHeapCacheOptions.Policy", "(CachePolicy)999", aoore, "Policy", "defined CachePolicy", _ => new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, Policy = (CachePolicy)999 }));
        foreach (TimeSpan ttl in BadTtls)
        {
            yield return new("OffHeapCacheOptions.DefaultTimeToLive", $"{ttl}", aoore, "DefaultTimeToLive", "must be positive", _ => new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, DefaultTimeToLive = ttl }));
        }
        _ = Good();
    }

    public static IEnumerable<TestCaseData> Cases() => Rows().Select(r => new TestCaseData(r).SetName($"BadInput: {r.Member} | {r.Input}"));

    [TestCaseSource(nameof(Cases))]
    public void ThrowsTheDocumentedExceptionAndChangesNothing(object rowObject)
    {
        var row = (Row)rowObject;
        using var f = new Fixture();
        string bytesBefore = f.Snapshot(f.Bytes, false), typedBefore = f.Snapshot(f.Typed.Bytes, true);

        Exception? thrown = null;
        try
        {
            row.Act(f);
        }
        catch (Exception e)
        {
            thrown = e;
        }

        Assert.That(thrown, Is.Not.Null, "no exception");
        Assert.That(thrown!.GetType(), Is.EqualTo(row.Exception), thrown.ToString());
        if (row.ParamName is not null)
        {
            Assert.That(((ArgumentException)thrown).ParamName, Is.EqualTo(row.ParamName), thrown.Message);
        }
        Assert.That(thrown.Message, Does.Contain(row.Message));
        Assert.That(f.Snapshot(f.Bytes, false), Is.EqualTo(bytesBefore), "byte cache content changed");
        Assert.That(f.Snapshot(f.Typed.Bytes, true), Is.EqualTo(typedBefore), "typed cache content changed");
        f.Bytes.ValidateInvariants();
        f.Typed.Bytes.ValidateInvariants();
    }

    [Test]
    public void EdgeInputsThatAreValid()
    {
        using var f = new Fixture();
        // The empty key is a key like any other.
        Assert.That(f.Bytes.TryGet([], new byte[100], out int n) && n == 9, Is.True);
        Assert.That(f.Bytes.Remove([]), Is.True);
        Assert.That(f.Bytes.ContainsKey([]), Is.False);
        // Empty values, a key of exactly MaxKeyBytes, a value of exactly MaxValueBytes, the longest TTL.
        Assert.That(f.Bytes.Set("e"u8, []), Is.True);
        Assert.That(f.Bytes.TryGet("e"u8, [], out n) && n == 0, Is.True);
        Assert.That(f.Bytes.Set(new byte[Fixture.MaxKeyBytes], new byte[f.Bytes.MaxValueBytes]), Is.True);
        Assert.That(f.Bytes.Set("t"u8, "v"u8, TimeSpan.MaxValue), Is.True);
        Assert.That(f.Bytes.ContainsKey("t"u8), Is.True);
        // A too-small destination is not an error: false, and bytesWritten tells the length needed.
        Assert.That(f.Bytes.TryGet("key5"u8, new byte[3], out n), Is.False);
        Assert.That(n, Is.EqualTo(f.Known["key5"].Length));
        // Empty batches.
        Assert.That(f.Bytes.SetMany([]), Is.Zero);
        Assert.That(f.Bytes.TryGetMany([], new ArrayBufferWriter<byte>(), []), Is.Zero);
        f.Bytes.ValidateInvariants();
    }

    [Test]
    public void EveryMemberAfterDisposeThrowsObjectDisposed()
    {
        var f = new Fixture();
        f.Dispose();
        f.Dispose();   // a second Dispose is harmless
        var w = new ArrayBufferWriter<byte>();
        Action[] calls =
        [
            () => f.Bytes.TryGet("k"u8, new byte[1], out _), () => f.Bytes.TryGet("k"u8, w), () => f.Bytes.ContainsKey("k"u8),
            () => f.Bytes.Set("k"u8, "v"u8), () => f.Bytes.Set("k"u8, "v"u8, TimeSpan.FromSeconds(1)), () => f.Bytes.Remove("k"u8),
            () => f.Bytes.Clear(), () => _ = f.Bytes.Count, () => f.Bytes.GetStatistics(),
            () => f.Bytes.GetOrAdd("k"u8, 0, static (_, _, _) => { }, w),
            () => f.Bytes.GetOrAddAsync("k"u8.ToArray(), 0, Nothing, w).AsTask().GetAwaiter().GetResult(),
            () => f.Bytes.SetMany(new KeyValuePair<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>>[] { new("k"u8.ToArray(), "v"u8.ToArray()) }),
            () => f.Bytes.TryGetMany(new ReadOnlyMemory<byte>[] { "k"u8.ToArray() }, w, new int[1]),
            () => f.Typed.Set("k", "v"), () => f.Typed.TryGetValue("k", out _), () => f.Typed.ContainsKey("k"), () => f.Typed.TryRemove("k"),
            () => f.Bytes.Remove("k"u8, new byte[1], out _), () => f.Bytes.Remove("k"u8, w), () => f.Bytes.RemoveIfEquals("k"u8, "v"u8),
            () => f.Typed.TryRemove("k", out _), () => f.Typed.TryRemove(new KeyValuePair<string, string>("k", "v")),
            () => f.Typed.TryUpdateIfEquals("k", "v", "w"),
            () => f.Typed.GetOrAdd("k", _ => "v"), () => f.Typed.AddOrUpdate("k", "v", (_, o) => o), () => f.Typed.Clear(),
            () => _ = f.Typed.Count, () => f.Typed.GetStatistics(),
            () => _ = f.Bytes.Keys, () => _ = f.Typed.Keys, () => _ = f.Bytes.Entries, () => _ = f.Typed.Entries,
            () => f.Bytes.ForEachEntry(0, static (_, _, _) => true),
        ];
        for (int i = 0; i < calls.Length; i++)
        {
            Assert.Throws<ObjectDisposedException>(() => calls[i](), $"call {i}");
        }
    }

    [Test]
    public void PrintTable()
    {
        // The docs table, from the rows above (docs/hardening.md).
        var sb = new StringBuilder("| member | input | exception (ParamName) | message contains |\n| --- | --- | --- | --- |\n");
        foreach (Row r in Rows())
        {
            sb.Append($"| `{r.Member}` | {r.Input} | `{r.Exception.Name}`{(r.ParamName is null ? "" : $" (`{r.ParamName}`)")} | {(r.Message.Length == 0 ? "-" : r.Message)} |\n");
        }
        TestContext.Out.WriteLine(sb.ToString());
        Assert.That(Rows().Count(), Is.GreaterThan(60));
    }
}

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace CacheKit.OffHeap.Tests;

/// <summary>
/// The typed facade's shortcuts for its built-in serializers (a string or unmanaged key in a stack buffer, an unmanaged
/// value from and into its own bytes, a byte[] value read into an array of its length) store and read the same bytes,
/// and refuse the same input, as the serializers through the thread's buffers do; the limits between the two paths are
/// tested from both sides.
/// </summary>
public class TypedShortcutTests
{
    private static OffHeapCacheOptions Options() => new() { CapacityBytes = 16 << 20, PageSize = 64 * 1024, MaxEntries = 10_000 };

    private readonly record struct Point(int X, long Y, double Z);

    /// <summary>An unmanaged value above the stack buffer's 256 bytes: the general path.</summary>
    [InlineArray(40)]
    private struct Wide
    {
        private long _first;
    }

    // 64 characters of 3 UTF-8 bytes fill the 192-byte stack buffer exactly; 65 do not (the thread's buffer).
    [TestCase("a", 1)]
    [TestCase("a", 64)]
    [TestCase("a", 65)]
    [TestCase("a", 300)]
    [TestCase("€", 63)]
    [TestCase("€", 64)]
    [TestCase("€", 65)]
    [TestCase("\uD83D\uDE00", 40)]   // a surrogate pair: 4 bytes for 2 units
    public void A_string_key_is_its_UTF8_bytes_on_either_side_of_the_stack_buffer(string unit, int repeat)
    {
        using var cache = new OffHeapCache<string, byte[]>(Options());
        string key = string.Concat(Enumerable.Repeat(unit, repeat));
        byte[] keyBytes = Encoding.UTF8.GetBytes(key);
        byte[] value = [.. Enumerable.Range(0, 100).Select(i => (byte)(i * 7))];

        Assert.That(cache.Set(key, value), Is.True);
        Assert.That(cache.Bytes.TryGet(keyBytes, new byte[200], out int written), Is.True, "the typed key is the UTF-8 bytes");
        Assert.That(written, Is.EqualTo(100));
        Assert.That(cache.ContainsKey(key), Is.True);

        cache.Bytes.Set(keyBytes, [1, 2, 3]);   // written through the byte API, read typed
        Assert.That(cache.TryGetValue(key, out byte[]? read) ? read : null, Is.EqualTo(new byte[] { 1, 2, 3 }));
        Assert.That(cache.Set(key, value, TimeSpan.FromMinutes(1)), Is.True);
        Assert.That(cache.TryGetValue(key, out read) ? read : null, Is.EqualTo(value));
        Assert.That(cache.TryRemove(key), Is.True);
        Assert.That(cache.Bytes.TryGet(keyBytes, new byte[200], out _), Is.False);

        Assert.That(cache.TryAdd(key, value), Is.True);
        Assert.That(cache.TryAdd(key, [9]), Is.False);
        Assert.That(cache.TryUpdate(key, [4, 5]), Is.True);
        Assert.That(cache.Touch(key, TimeSpan.FromMinutes(5)), Is.True);
        Assert.That(cache.Bytes.TryGet(keyBytes, new byte[200], out written), Is.True);
        Assert.That(written, Is.EqualTo(2));
        Assert.That(cache.TryRemove(key, out byte[]? removed) ? removed : null, Is.EqualTo(new byte[] { 4, 5 }));
        Assert.That(cache.Count, Is.Zero);
    }

    [Test]
    public void A_lone_surrogate_is_refused_alike_in_a_short_and_a_long_key()
    {
        using var cache = new OffHeapCache<string, byte[]>(Options());
        string shortKey = "ab\uD800";                                  // the stack buffer's path
        string longKey = new string('x', 100) + "\uD800";             // the thread buffer's path
        var onStack = Assert.Throws<ArgumentException>(() => cache.Set(shortKey, [1]));
        var inBuffer = Assert.Throws<ArgumentException>(() => cache.Set(longKey, [1]));
        Assert.That(onStack!.ParamName, Is.EqualTo("key"));
        Assert.That(inBuffer!.ParamName, Is.EqualTo("key"));
        Assert.That(onStack.GetType(), Is.EqualTo(inBuffer.GetType()));
        Assert.That(onStack.InnerException, Is.InstanceOf<ArgumentException>(), "renamed from the serializer's refusal, as the other path's");
        Assert.That(inBuffer.InnerException, Is.InstanceOf<ArgumentException>());
        Assert.That(onStack.Message, Does.Contain("lone surrogate at index 2"));
        Assert.That(inBuffer.Message, Does.Contain("lone surrogate at index 100"));
        var onGet = Assert.Throws<ArgumentException>(() => cache.TryGetValue(shortKey, out _));
        Assert.That(onGet!.ParamName, Is.EqualTo("key"));
        Assert.That(onGet.GetType(), Is.EqualTo(onStack.GetType()));
        Assert.That(onGet.InnerException, Is.InstanceOf<ArgumentException>(), "the get's own shortcut renames the refusal too");
        Assert.That(onGet.Message, Is.EqualTo(onStack.Message));
        Assert.That(() => cache.ContainsKey(shortKey), Throws.ArgumentException.With.Property("ParamName").EqualTo("key"));
        Assert.That(() => cache.TryRemove(shortKey), Throws.ArgumentException.With.Property("ParamName").EqualTo("key"));
        Assert.That(() => cache.TryAdd(shortKey, [1]), Throws.ArgumentException.With.Property("ParamName").EqualTo("key"));
        Assert.That(() => cache.TryUpdate(shortKey, [1]), Throws.ArgumentException.With.Property("ParamName").EqualTo("key"));
        Assert.That(() => cache.Touch(shortKey, TimeSpan.FromMinutes(1)), Throws.ArgumentException.With.Property("ParamName").EqualTo("key"));
        Assert.That(() => cache.TryRemove(shortKey, out _), Throws.ArgumentException.With.Property("ParamName").EqualTo("key"));
        Assert.That(() => cache.Set(null!, [1]), Throws.ArgumentNullException.With.Property("ParamName").EqualTo("key"));
        Assert.That(cache.Count, Is.Zero);
    }

    /// <summary>A <c>Nullable&lt;T&gt;</c> key takes the unmanaged key's stack path, which refused nothing: a null key was
    /// stored (as its bytes) by Set, TryAdd, Touch and the indexer and found by TryGetValue, while GetOrAdd's miss path and
    /// AddOrUpdate refused it (found by an adversarial review, 2026-11-30). Every member refuses it now.</summary>
    [Test]
    public void A_null_nullable_key_is_refused_by_every_member()
    {
        using var cache = new OffHeapCache<int?, int>(Options());
        Assert.That(cache.Set(7, 70), Is.True);
        var members = new (string Name, Action Call)[]
        {
            ("Set", () => cache.Set(null, 5)),
            ("Set with a time to live", () => cache.Set(null, 5, TimeSpan.FromMinutes(1))),
            ("TryAdd", () => cache.TryAdd(null, 5)),
            ("TryUpdate", () => cache.TryUpdate(null, 5)),
            ("indexer set", () => cache[null] = 5),
            ("indexer get", () => _ = cache[null]),
            ("TryGetValue", () => cache.TryGetValue(null, out _)),
            ("ContainsKey", () => cache.ContainsKey(null)),
            ("Touch", () => cache.Touch(null, TimeSpan.FromMinutes(1))),
            ("TryRemove", () => cache.TryRemove(null)),
            ("TryRemove with the value", () => cache.TryRemove(null, out _)),
            ("TryRemove(KeyValuePair)", () => cache.TryRemove(new KeyValuePair<int?, int>(null, 5))),
            ("TryUpdateIfEquals", () => cache.TryUpdateIfEquals(null, 6, 5)),
            ("GetOrAdd", () => cache.GetOrAdd(null, _ => 5)),
            ("AddOrUpdate", () => cache.AddOrUpdate(null, 5, (_, v) => v)),
        };
        foreach ((string name, Action call) in members)
        {
            Assert.That(() => call(), Throws.InstanceOf<ArgumentNullException>().With.Property("ParamName").EqualTo("key"), name);
        }
        Assert.That(cache.Count, Is.EqualTo(1), "nothing stored under the null key's bytes");
        Assert.That(cache.Keys, Is.EqualTo(new int?[] { 7 }));
        Assert.That(cache.TryGetValue(7, out int value) ? value : -1, Is.EqualTo(70));
    }

    [Test]
    public void A_string_key_longer_than_the_cache_allows_is_refused_on_the_stack_path_too()
    {
        using var cache = new OffHeapCache<string, byte[]>(new OffHeapCacheOptions { CapacityBytes = 16 << 20, MaxEntries = 1000, MaxKeyBytes = 16 });
        Assert.That(cache.Set(new string('k', 16), [1]), Is.True);
        Assert.That(() => cache.Set(new string('k', 17), [1]), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("key"));
        Assert.That(() => cache.TryGetValue(new string('é', 9), out _), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("key"));
        Assert.That(cache.Count, Is.EqualTo(1));
    }

    [Test]
    public void A_byte_array_value_is_read_into_a_new_array_of_its_length()
    {
        using var cache = new OffHeapCache<string, byte[]>(Options());
        byte[] value = [.. Enumerable.Range(0, 100).Select(i => (byte)i)];
        cache.Set("k", value);
        cache.Set("empty", []);

        Assert.That(cache.TryGetValue("k", out byte[]? first), Is.True);
        Assert.That(cache.TryGetValue("k", out byte[]? second), Is.True);
        Assert.That(first, Is.EqualTo(value));
        Assert.That(first, Is.Not.SameAs(second), "each get returns an array of its own");
        first![0] = 99;   // the caller's array: changing it changes nothing stored
        Assert.That(cache.TryGetValue("k", out byte[]? third) ? third : null, Is.EqualTo(value));
        Assert.That(cache.TryGetValue("empty", out byte[]? empty) ? empty : null, Is.Empty);
        Assert.That(cache.TryGetValue("missing", out byte[]? missing), Is.False);
        Assert.That(missing, Is.Null);

        long hits = cache.GetStatistics().Hits, misses = cache.GetStatistics().Misses;
        cache.TryGetValue("k", out _);
        cache.TryGetValue("missing", out _);
        Assert.That(cache.GetStatistics().Hits - hits, Is.EqualTo(1));
        Assert.That(cache.GetStatistics().Misses - misses, Is.EqualTo(1));

        void Get()
        {
            for (int i = 0; i < 1000; i++)
            {
                cache.TryGetValue("k", out _);
            }
        }
        Get();   // warm up
        long perGet = Allocations.LeastOfThreeRuns(Get) / 1000;
        Assert.That(perGet, Is.EqualTo(24 + 100 + 4).Or.EqualTo(128), "the returned array (24-byte header, 100 bytes, padding) and nothing else");
    }

    [Test]
    public void An_unmanaged_key_and_value_are_their_own_bytes()
    {
        using var cache = new OffHeapCache<long, Point>(Options());
        var point = new Point(1, -2, 3.5);
        long key = 0x0102030405060708;
        Assert.That(cache.Set(key, point), Is.True);
        Span<byte> read = stackalloc byte[64];
        Assert.That(cache.Bytes.TryGet(BitConverter.GetBytes(key), read, out int written), Is.True);
        Assert.That(read[..written].ToArray(), Is.EqualTo(MemoryMarshal.AsBytes(new ReadOnlySpan<Point>(in point)).ToArray()));

        var other = new Point(-7, 8, -9.25);
        cache.Bytes.Set(BitConverter.GetBytes(9L), MemoryMarshal.AsBytes(new ReadOnlySpan<Point>(in other)));
        Assert.That(cache.TryGetValue(9L, out Point back) ? back : default, Is.EqualTo(other));
        Assert.That(cache.Set(9L, point, TimeSpan.FromMinutes(1)), Is.True);
        Assert.That(cache.TryGetValue(9L, out back) ? back : default, Is.EqualTo(point));
        Assert.That(cache.ContainsKey(9L) && cache.TryRemove(9L) && !cache.ContainsKey(9L), Is.True);

        Assert.That(cache.TryAdd(9L, other) && !cache.TryAdd(9L, point), Is.True);
        Assert.That(cache.TryUpdate(9L, point, TimeSpan.FromMinutes(1)) && !cache.TryUpdate(10L, point), Is.True);
        Assert.That(cache.Bytes.TryGet(BitConverter.GetBytes(9L), read, out written), Is.True);
        Assert.That(read[..written].ToArray(), Is.EqualTo(MemoryMarshal.AsBytes(new ReadOnlySpan<Point>(in point)).ToArray()));
        Assert.That(cache.ContainsKey(10L), Is.False);
    }

    [TestCase(3)]     // shorter than Point: read through the stack buffer, refused by the serializer
    [TestCase(25)]    // one byte longer: too long for the stack buffer, refused on the general path
    [TestCase(300)]
    public void An_unmanaged_value_of_another_length_is_refused_as_the_serializer_refuses_it(int length)
    {
        using var cache = new OffHeapCache<int, Point>(Options());
        cache.Bytes.Set(BitConverter.GetBytes(1), new byte[length]);
        long hits = cache.GetStatistics().Hits;
        var refused = Assert.Throws<ArgumentException>(() => cache.TryGetValue(1, out _));
        Assert.That(refused!.Message, Does.Contain($"source must be {Unsafe.SizeOf<Point>()} bytes").And.Contain($"not {length}"));
        Assert.That(cache.GetStatistics().Hits - hits, Is.EqualTo(1), "one lookup counted, not one per path tried");
        Assert.That(cache.TryGetValue(2, out Point none), Is.False);
        Assert.That(none, Is.EqualTo(default(Point)));
    }

    [Test]
    public void An_unmanaged_value_above_the_stack_buffer_round_trips_on_the_general_path()
    {
        using var cache = new OffHeapCache<int, Wide>(Options());
        Assert.That(Unsafe.SizeOf<Wide>(), Is.GreaterThan(256));
        var wide = default(Wide);
        for (int i = 0; i < 40; i++)
        {
            wide[i] = i * 1_000_003L;
        }
        Assert.That(cache.Set(5, wide), Is.True);
        Assert.That(cache.TryGetValue(5, out Wide back), Is.True);
        for (int i = 0; i < 40; i++)
        {
            Assert.That(back[i], Is.EqualTo(i * 1_000_003L));
        }
    }
}

using System.Buffers;
namespace CacheKit.OffHeap.Tests;

public class TypedCacheTests
{
    private static OffHeapCacheOptions Options() => new() { CapacityBytes = 4 << 20, PageSize = 64 * 1024 };

    private readonly record struct Point(int X, long Y, double Z);

    [Test]
    public void UnmanagedKeysAndValuesRoundTripWithoutAllocating()
    {
        using var cache = new OffHeapCache<int, Point>(Options());
        for (int i = 0; i < 1000; i++)
        {
            Assert.That(cache.Set(i, new Point(i, -i, i / 2.0)), Is.True);
        }
        for (int i = 0; i < 1000; i++)
        {
            Assert.That(cache.TryGetValue(i, out Point p), Is.True);
            Assert.That(p, Is.EqualTo(new Point(i, -i, i / 2.0)));
        }
        Assert.That(cache.TryGetValue(5000, out _), Is.False);

        void Run()
        {
            for (int i = 0; i < 10_000; i++)
            {
                cache.Set(i % 1000, new Point(i, i, i));
                cache.TryGetValue(i % 1500, out _);
            }
        }
        Run();   // warm up
        Assert.That(Allocations.LeastOfThreeRuns(Run), Is.Zero);
    }

    [Test]
    public void StringBytesAndMemoryBuiltInsRoundTrip()
    {
        using var strings = new OffHeapCache<string, string>(Options());
        strings.Set("héllo", "wörld ✓");
        Assert.That(strings.TryGetValue("héllo", out string? s) ? s : null, Is.EqualTo("wörld ✓"));

        using var arrays = new OffHeapCache<string, byte[]>(Options());
        arrays.Set("a", [1, 2, 3]);
        Assert.That(arrays.TryGetValue("a", out byte[]? a) ? a : null, Is.EqualTo(new byte[] { 1, 2, 3 }));

        using var memory = new OffHeapCache<long, ReadOnlyMemory<byte>>(Options());
        memory.Set(7L, new byte[] { 9, 8 });
        Assert.That(memory.TryGetValue(7L, out ReadOnlyMemory<byte> m) ? m.ToArray() : null, Is.EqualTo(new byte[] { 9, 8 }));
    }

    [Test]
    public void DictionaryShapedOperations()
    {
        using var cache = new OffHeapCache<string, int>(Options());
        int calls = 0;
        Assert.That(cache.GetOrAdd("k", _ => { calls++; return 41; }), Is.EqualTo(41));
        Assert.That(cache.GetOrAdd("k", _ => { calls++; return 0; }), Is.EqualTo(41));
        Assert.That(calls, Is.EqualTo(1));
        Assert.That(cache.AddOrUpdate("k", 0, (_, old) => old + 1), Is.EqualTo(42));
        Assert.That(cache.AddOrUpdate("new", 5, (_, old) => old + 1), Is.EqualTo(5));
        Assert.That(cache.GetOrAdd("arg", (k, x) => k.Length + x, 10), Is.EqualTo(13));
        Assert.That(cache.ContainsKey("k"), Is.True);
        Assert.That(cache.Count, Is.EqualTo(3));
        Assert.That(cache.TryRemove("k", out int removed) ? removed : -1, Is.EqualTo(42));
        Assert.That(cache.TryRemove("k"), Is.False);
        cache.Clear();
        Assert.That(cache.Count, Is.Zero);
    }

    [Test]
    public async Task GetOrAddAsyncTyped()
    {
        using var cache = new OffHeapCache<int, string>(Options());
        string v = await cache.GetOrAddAsync(1, async (k, ct) => { await Task.Yield(); return "v" + k; });
        Assert.That(v, Is.EqualTo("v1"));
        Assert.That(cache.TryGetValue(1, out string? again) ? again : null, Is.EqualTo("v1"));
    }

    [Test]
    public void TypeWithoutABuiltInSerializerIsRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => new OffHeapCache<int, List<int>>(Options()))!;
        Assert.That(e.Message, Does.Contain("ICacheSerializer"));
    }

    [Test]
    public async Task TypedGetOrAddCountsOneMissThenOneHit()
    {
        // The typed GetOrAdd looks the key up itself first; the byte cache's GetOrAdd used to count that miss again.
        using var cache = new OffHeapCache<int, int>(new OffHeapCacheOptions { CapacityBytes = 16 << 20, MaxEntries = 1000 });
        Assert.That(cache.GetOrAdd(1, _ => 2), Is.EqualTo(2));
        Assert.That((cache.Bytes.GetStatistics().Misses, cache.Bytes.GetStatistics().Hits), Is.EqualTo((1L, 0L)));
        Assert.That(cache.GetOrAdd(1, _ => 3), Is.EqualTo(2));
        Assert.That((cache.Bytes.GetStatistics().Misses, cache.Bytes.GetStatistics().Hits), Is.EqualTo((1L, 1L)));
        Assert.That(await cache.GetOrAddAsync(5, (k, _) => ValueTask.FromResult(k * 10)), Is.EqualTo(50));
        Assert.That((cache.Bytes.GetStatistics().Misses, cache.Bytes.GetStatistics().Hits), Is.EqualTo((2L, 1L)));
    }

    [Test]
    public void StringsThatAreNotValidUtf16AreRefusedWithTheParameterNamed()
    {
        using var cache = new OffHeapCache<string, string>(new OffHeapCacheOptions { CapacityBytes = 16 << 20, MaxEntries = 1000 });
        Assert.That(() => cache.Set("a\uD800", "x"), Throws.ArgumentException.With.Property("ParamName").EqualTo("key").And.Message.Contains("lone surrogate"));
        Assert.That(() => cache.TryGetValue("a\uDBFF", out _), Throws.ArgumentException.With.Property("ParamName").EqualTo("key"));
        Assert.That(() => cache.Set("k", "\uDC00"), Throws.ArgumentException.With.Property("ParamName").EqualTo("value"));
        Assert.That(cache.Count, Is.Zero);
        cache.Set("\uD83D\uDE00", "\uD83D\uDE01");   // surrogate pairs round-trip
        Assert.That(cache.TryGetValue("\uD83D\uDE00", out string? value) ? value : null, Is.EqualTo("\uD83D\uDE01"));
    }

    [Test]
    public void AValueSerializerThatUsesTypedCachesDoesNotChangeTheKeyBeingStored()
    {
        // The serializer reads and writes another cache of the same types, and this one, while the outer Set holds its
        // serialized key. With the key buffer left in its thread slot (before TypedCallBuffers), the inner calls overwrote
        // it and the outer value was stored under the inner key.
        using var other = new OffHeapCache<string, string>(Options());
        OffHeapCache<string, string>? self = null;
        var serializer = new CallbackStrings(() =>
        {
            other.Set("inner-key", "inner-value");
            _ = other.TryGetValue("inner-key", out _);
            _ = self!.TryGetValue("inner-key-of-self", out _);
        });
        using var cache = new OffHeapCache<string, string>(Options(), valueSerializer: serializer);
        self = cache;
        Assert.That(cache.Set("outer-key", "outer-value"), Is.True);
        Assert.That(cache.TryGetValue("outer-key", out string? stored) ? stored : null, Is.EqualTo("outer-value"));
        Assert.That(cache.Count, Is.EqualTo(1), "nothing stored under another key");
        Assert.That(other.TryGetValue("inner-key", out string? inner) ? inner : null, Is.EqualTo("inner-value"));
        Assert.That(serializer.Calls, Is.EqualTo(1));
    }

    [Test]
    public void AKeySerializerThatUsesATypedCacheMidwayKeepsItsOwnBytes()
    {
        // The key serializer writes half the key, looks up another cache of the same types, then writes the rest: the
        // lookup must not reset or overwrite the buffer the outer key is being written to.
        using var other = new OffHeapCache<string, string>(Options());
        other.Set("x", "y");
        var keys = new CallbackStrings(() => _ = other.TryGetValue("a-much-longer-inner-key", out _), splitWrite: true);
        using var cache = new OffHeapCache<string, string>(Options(), keySerializer: keys);
        Assert.That(cache.Set("outer-key", "v"), Is.True);
        Assert.That(cache.Keys, Is.EqualTo(new[] { "outer-key" }));
        Assert.That(cache.TryGetValue("outer-key", out string? v) ? v : null, Is.EqualTo("v"));
    }

    [Test]
    public void ThreadsUsingTypedCachesAtOnceNeverSeeAnotherThreadsKeyOrValue()
    {
        // Every typed cache shares the per-thread buffers (TypedCallBuffers): each thread must have its own. Values are a
        // function of their key, with ASCII and non-ASCII keys of several lengths (both encoder paths).
        using var cache = new OffHeapCache<string, string>(new OffHeapCacheOptions { CapacityBytes = 16 << 20, MaxEntries = 2000 });
        using var other = new OffHeapCache<string, byte[]>(new OffHeapCacheOptions { CapacityBytes = 16 << 20, MaxEntries = 2000 });
        static string KeyOf(int i) => (i % 3) switch { 0 => "k" + i, 1 => "clé-" + i + new string('x', i % 40), _ => "キー" + i };
        static string ValueOf(string key) => "value of " + key + " / " + key.Length;
        int wrong = 0;
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, t =>
        {
            var random = new Random(t);
            for (int n = 0; n < 20_000; n++)
            {
                string key = KeyOf(random.Next(3000));
                if (random.Next(4) == 0)
                {
                    cache.Set(key, ValueOf(key));
                    other.Set(key, System.Text.Encoding.UTF8.GetBytes(key));
                }
                else
                {
                    if (cache.TryGetValue(key, out string? value) && value != ValueOf(key))
                    {
                        Interlocked.Increment(ref wrong);
                    }
                    if (other.TryGetValue(key, out byte[]? bytes) && System.Text.Encoding.UTF8.GetString(bytes) != key)
                    {
                        Interlocked.Increment(ref wrong);
                    }
                }
            }
        });
        Assert.That(wrong, Is.Zero);
        Assert.That(cache.Count, Is.GreaterThan(0));
    }

    [Test]
    public void ReadsWhileTheValueChangesSizeReturnOneWholeValue()
    {
        // A writer flips one key between values of sizes around the 1 KiB buffer and far past it, each value's bytes a
        // function of its size. A reader must get one whole value: a value that shrank between the too-short read and the
        // exact-size read must not come back as the larger array with stale bytes at its end (found by review: no test
        // caught dropping the length check on the exact array).
        int[] sizes = [0, 10, 1023, 1024, 1025, 4000, 9000, 70000];
        static byte[] ValueOf(int size) => Enumerable.Range(0, size).Select(i => (byte)(size * 31 + i)).ToArray();
        byte[][] values = [.. sizes.Select(ValueOf)];
        using var cache = new OffHeapCache<long, byte[]>(new OffHeapCacheOptions { CapacityBytes = 16L << 20, PageSize = 1 << 20, ShardCount = 1 });
        cache.Set(1, values[0]);
        bool stop = false;
        var writer = Task.Run(() =>
        {
            for (int n = 0; !Volatile.Read(ref stop); n++)
            {
                cache.Set(1, values[n % values.Length]);
            }
        });
        int reads = 0, wrong = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(3) && wrong == 0)
        {
            if (cache.TryGetValue(1, out byte[]? read))
            {
                int k = Array.IndexOf(sizes, read.Length);
                wrong += k < 0 || !read.AsSpan().SequenceEqual(values[k]) ? 1 : 0;
                reads++;
            }
        }
        Volatile.Write(ref stop, true);
        writer.Wait();
        Assert.That(wrong, Is.Zero, $"after {reads} reads");
        Assert.That(reads, Is.GreaterThan(100));
    }

    /// <summary>UTF-8 strings whose serializer runs a callback while it writes (once per call, to the first write only,
    /// so that the callback's own use of the same serializer type does not recurse).</summary>
    private sealed class CallbackStrings(Action callback, bool splitWrite = false) : ICacheSerializer<string>
    {
        private bool _inCallback;

        public int Calls { get; private set; }

        public void Serialize(string value, IBufferWriter<byte> destination)
        {
            byte[] bytes = System.Text.Encoding.UTF8.GetBytes(value);
            int half = splitWrite ? bytes.Length / 2 : bytes.Length;
            destination.Write(bytes.AsSpan(0, half));
            if (!_inCallback)
            {
                _inCallback = true;
                Calls++;
                try
                {
                    callback();
                }
                finally
                {
                    _inCallback = false;
                }
            }
            destination.Write(bytes.AsSpan(half));
        }

        public string Deserialize(ReadOnlySpan<byte> source) => System.Text.Encoding.UTF8.GetString(source);
    }

    /// <summary>A byte[] cache whose key 1 holds a random 2 MiB value: past the 1 MiB buffer a thread keeps.</summary>
    private static OffHeapCache<long, byte[]> CacheOfOneBigValue(int seed, out byte[] big)
    {
        var cache = new OffHeapCache<long, byte[]>(new OffHeapCacheOptions { CapacityBytes = 64L << 20, PageSize = 1 << 23, ShardCount = 1 });
        big = new byte[2 << 20];
        new Random(seed).NextBytes(big);
        cache.Set(1, big);
        return cache;
    }

    [Test]
    public void AByteArrayValueIsStoredFromTheCallersArrayWithoutABufferOfItsSize()
    {
        // A 2 MiB value is past the 1 MiB buffer a thread keeps: it used to be copied into a new buffer of its size on
        // every Set (two large-object allocations a call, here). The built-in byte[] serializer's array is now stored as is.
        using var cache = CacheOfOneBigValue(seed: 5, out byte[] big);
        long allocated = Allocations.LeastOfThreeRuns(() =>
        {
            cache.Set(1, big);
            cache.Set(2, big, TimeSpan.FromMinutes(5));
            cache.TryAdd(3, big);
            cache.TryUpdate(3, big);
        });
        Assert.That(allocated, Is.LessThan(4096));
        byte[] expected = (byte[])big.Clone();
        big[0] ^= 0xFF;   // the cache holds its own copy: changing the caller's array afterwards changes nothing stored
        Assert.That(cache.TryGetValue(1, out byte[]? one) ? one : null, Is.EqualTo(expected));
        Assert.That(cache.TryGetValue(3, out byte[]? three) ? three : null, Is.EqualTo(expected));
        Assert.That(() => cache.Set(4, null!), Throws.ArgumentNullException.With.Property("ParamName").EqualTo("value"));
    }

    [Test]
    public void AValueLongerThanTheBufferIsReadOnceIntoTheArrayReturnedAndCountedOnce()
    {
        // A 2 MiB byte[] value: read into the array returned (it used to grow a buffer to its size on every get, then
        // copy it once more: 4.2 MB a get). A string value longer than the buffer grows the buffer.
        using var cache = CacheOfOneBigValue(seed: 7, out byte[] big);
        byte[]? read = null;
        Assert.That(cache.TryGetValue(1, out read), Is.True);
        long allocated = Allocations.LeastOfThreeRuns(() => cache.TryGetValue(1, out read));
        Assert.That(read, Is.EqualTo(big));
        Assert.That(allocated, Is.LessThan(big.Length + (64 << 10)), "the array returned, and little else");
        long hitsBefore = cache.GetStatistics().Hits;
        Assert.That(cache.TryGetValue(1, out _), Is.True);
        Assert.That(cache.GetStatistics().Hits - hitsBefore, Is.EqualTo(1), "one hit a get (the too-short read is not counted)");

        using var strings = new OffHeapCache<int, string>(new OffHeapCacheOptions { CapacityBytes = 64L << 20, PageSize = 1 << 20, ShardCount = 1 });
        string longText = string.Concat(Enumerable.Range(0, 3000).Select(i => (char)('a' + (i % 26)) + (i % 7 == 0 ? "é" : "")));
        strings.Set(1, longText);
        long stringHits = strings.GetStatistics().Hits;
        Assert.That(strings.TryGetValue(1, out string? text) ? text : null, Is.EqualTo(longText));
        Assert.That(strings.GetStatistics().Hits - stringHits, Is.EqualTo(1));
        Assert.That(strings.TryGetValue(2, out _), Is.False);
    }

    [Test]
    public void ARemovedValueLongerThanTheBufferIsRemovedOnceIntoTheArrayReturned()
    {
        // TryRemove(key, out value) of a 2 MiB byte[] value used to grow a buffer to its size, then copy it into the
        // array returned (4.2 MB a call); the value is now removed straight into the array returned.
        using var cache = CacheOfOneBigValue(seed: 9, out byte[] big);
        long allocated = Allocations.LeastOfThreeRuns(() =>
        {
            cache.Set(1, big);
            Assert.That(cache.TryRemove(1, out byte[]? removed), Is.True);
            Assert.That(removed!.Length, Is.EqualTo(big.Length));
        });
        Assert.That(allocated, Is.LessThan(big.Length + (64 << 10)), "the array returned, and little else");
        cache.Set(1, big);
        Assert.That(cache.TryRemove(1, out byte[]? value) ? value : null, Is.EqualTo(big));
        Assert.That(cache.ContainsKey(1), Is.False);
        Assert.That(cache.TryRemove(1, out value), Is.False);
        Assert.That(value, Is.Null);

        // A string value longer than the buffer grows the buffer, and is removed once.
        using var strings = new OffHeapCache<int, string>(new OffHeapCacheOptions { CapacityBytes = 64L << 20, PageSize = 1 << 20, ShardCount = 1 });
        string longText = string.Concat(Enumerable.Range(0, 3000).Select(i => (char)('a' + (i % 26)) + (i % 7 == 0 ? "é" : "")));
        strings.Set(1, longText);
        strings.Set(2, "short");
        Assert.That(strings.TryRemove(1, out string? text) ? text : null, Is.EqualTo(longText));
        Assert.That(strings.Count, Is.EqualTo(1));
        Assert.That(strings.TryRemove(2, out text) ? text : null, Is.EqualTo("short"));
        Assert.That(strings.TryRemove(2, out _), Is.False);
    }

    [Test]
    public void AHugeRefusedValueDoesNotLeaveItsBufferWithTheThread()
    {
        using var cache = new OffHeapCache<string, string>(new OffHeapCacheOptions { CapacityBytes = 16 << 20, MaxEntries = 1000 });
        Assert.That(() => cache.Set("k", new string('x', 8 << 20)), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(TypedCallBuffers.ThreadValueBufferCapacity, Is.LessThanOrEqualTo(TypedCallBuffers.RetainedBufferBytes),
            "the buffer the refused value grew is let go at the end of the call, not kept until the thread's next one");
        cache.Set("k", "small");
        Assert.That(TypedCallBuffers.ThreadValueBufferCapacity, Is.LessThanOrEqualTo(TypedCallBuffers.RetainedBufferBytes));
        Assert.That(cache.TryGetValue("k", out string? v) ? v : null, Is.EqualTo("small"));
    }
    [Test]
    public async Task ABadTimeToLiveIsRefusedBeforeTheLookupOnAHitAsOnAMiss()
    {
        // The byte GetOrAdd checks its time to live first; the typed one used to check it only on a miss, so the
        // same call returned the cached value on a hit and threw on a miss (and AddOrUpdate ran its factory first).
        using var cache = new OffHeapCache<string, string>(new OffHeapCacheOptions { CapacityBytes = 16 << 20, MaxEntries = 1000 });
        cache.Set("hit", "v");
        int factoryRuns = 0;
        foreach (string key in new[] { "hit", "miss" })
        {
            Assert.That(() => cache.GetOrAdd(key, _ => "x", TimeSpan.Zero), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("timeToLive"));
            Assert.That(() => cache.GetOrAdd(key, (_, a) => a, "x", TimeSpan.FromTicks(-5)), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("timeToLive"));
            Assert.That(async () => await cache.GetOrAddAsync(key, (_, _) => ValueTask.FromResult("x"), TimeSpan.Zero),
                Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("timeToLive"));
            Assert.That(() => cache.AddOrUpdate(key, "a", (_, _) => { factoryRuns++; return "u"; }, TimeSpan.Zero),
                Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("timeToLive"));
        }
        Assert.That(factoryRuns, Is.Zero, "the update factory never ran");
        Assert.That(cache.Bytes.GetStatistics().Hits + cache.Bytes.GetStatistics().Misses, Is.Zero, "no lookup was made");
        Assert.That(cache.TryGetValue("hit", out string? v) ? v : null, Is.EqualTo("v"));
        Assert.That(cache.ContainsKey("miss"), Is.False);
        Assert.That(await cache.GetOrAddAsync("forever", (_, _) => ValueTask.FromResult("f"), Timeout.InfiniteTimeSpan), Is.EqualTo("f"));
    }

    [Test]
    public void AnEvictionListenerReadingTheTypedCacheDoesNotChangeTheValueBeingStored()
    {
        // The cache runs the listener while it makes room, before it copies the value being stored; a listener that
        // reads the typed cache (to log the evicted value) used to overwrite that value in the shared per-thread buffer.
        OffHeapCache<int, byte[]>? typed = null;
        var options = new OffHeapCacheOptions
        {
            CapacityBytes = 4 << 20,
            ShardCount = 1,
            Policy = CachePolicy.Lru,
            EvictionListener = (key, _) => typed!.TryGetValue(System.Runtime.InteropServices.MemoryMarshal.Read<int>(key), out byte[]? _),
        };
        typed = new OffHeapCache<int, byte[]>(options);
        using (typed)
        {
            var wrong = new List<string>();
            for (int i = 0; i < 2_000; i++)
            {
                byte[] value = new byte[8_000];
                Array.Fill(value, (byte)(i % 251));
                typed.Set(i, value);
                if (typed.TryGetValue(i, out byte[]? stored) && !stored.AsSpan().SequenceEqual(value))
                {
                    wrong.Add($"key {i}: stored a value of {stored[0]}, {stored.Length} B");
                }
            }
            Assert.That(typed.Bytes.GetStatistics().Evictions, Is.GreaterThan(1_000), "the listener ran");
            Assert.That(wrong, Is.Empty);
        }
    }

    [Test]
    public void TheUnmanagedSerializerRefusesAWriterThatGivesTooShortASpan()
    {
        var backing = new byte[16];
        var shortWriter = new ShortSpanWriter(backing);
        Assert.That(() => new UnmanagedSerializer<long>().Serialize(-1L, shortWriter),
            Throws.ArgumentException.With.Property("ParamName").EqualTo("destination"));
        Assert.That(backing, Is.All.Zero, "nothing written past the 1-byte span");
    }

    [Test]
    public void AKeySerializersOwnArgumentOutOfRangeExceptionKeepsItsType()
    {
        using var cache = new OffHeapCache<int, int>(new OffHeapCacheOptions { CapacityBytes = 4 << 20 }, keySerializer: new NonNegativeKeys());
        Assert.That(() => cache.Set(-1, 1), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(cache.Set(1, 1), Is.True);
    }

    [Test]
    public void TryRemoveWithItsValueIsNotALookup()
    {
        using var cache = new OffHeapCache<int, long>(new OffHeapCacheOptions { CapacityBytes = 4 << 20 });
        cache.Set(1, 10);
        Assert.That(cache.TryRemove(1, out long removed) ? removed : -1, Is.EqualTo(10));
        Assert.That(cache.TryRemove(5, out long absent), Is.False);
        Assert.That(absent, Is.Zero);
        CacheStatistics stats = cache.Bytes.GetStatistics();
        Assert.That((stats.Hits, stats.Misses), Is.EqualTo((0L, 0L)), "reading the value to return is not a lookup");
        Assert.That(cache.ContainsKey(1), Is.False);
    }

    private sealed class ShortSpanWriter(byte[] backing) : IBufferWriter<byte>
    {
        public void Advance(int count) { }

        public Memory<byte> GetMemory(int sizeHint = 0) => backing.AsMemory(0, 1);

        public Span<byte> GetSpan(int sizeHint = 0) => backing.AsSpan(0, 1);
    }

    private sealed class NonNegativeKeys : ICacheSerializer<int>
    {
        private static readonly UnmanagedSerializer<int> Inner = new();

        public void Serialize(int value, IBufferWriter<byte> destination)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            Inner.Serialize(value, destination);
        }

        public int Deserialize(ReadOnlySpan<byte> source) => Inner.Deserialize(source);
    }

    [Test]
    public void ATypedViewOverAByteCacheSharesItsEntriesAndLeavesItsDisposalToTheOwner()
    {
        using var bytes = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 8L << 20 });
        var view = new OffHeapCache<long, int>(bytes);
        Assert.That(view.Bytes, Is.SameAs(bytes));
        Assert.That(view.Set(42L, 7), Is.True);
        Assert.That(bytes.Count, Is.EqualTo(1), "the view writes into the byte cache");
        Assert.That(bytes.ContainsKey(BitConverter.GetBytes(42L)), Is.True, "under the key serializer's bytes");
        Assert.That(view.TryGetValue(42L, out int v) && v == 7, Is.True);

        view.Dispose();
        Assert.That(bytes.Count, Is.EqualTo(1), "a view that does not own the cache leaves it alive");
        Assert.That(view.TryGetValue(42L, out v) && v == 7, Is.True, "and keeps working while its owner does");

        bytes.Dispose();
        Assert.That(() => view.TryGetValue(42L, out _), Throws.TypeOf<ObjectDisposedException>(), "after the owner's Dispose, the view throws");
        Assert.That(() => new OffHeapCache<long, int>((OffHeapCache)null!), Throws.ArgumentNullException.With.Property("ParamName").EqualTo("bytes"));
    }

    [Test]
    public void AnOwningTypedViewDisposesItsByteCache()
    {
        var bytes = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 8L << 20 });
        using (var view = new OffHeapCache<long, int>(bytes, ownsCache: true))
        {
            view.Set(1L, 1);
        }
        Assert.That(() => bytes.Count, Throws.TypeOf<ObjectDisposedException>());
    }

    [Test]
    public void AMissingSerializerIsNamedAsCSharpAndTheJsonContextSpellIt()
    {
        // The message suggested SystemTextJsonSerializer<List`1>(YourJsonContext.Default.List`1), which does not compile
        // (a new user's review); the source generator's property for List<int> is ListInt32.
        var e = Assert.Throws<ArgumentException>(() => CacheSerializers.GetDefault<List<int>>())!;
        Assert.That(e.ParamName, Is.EqualTo("T"));
        Assert.That(e.Message, Does.Contain("SystemTextJsonSerializer<List<Int32>>(YourJsonContext.Default.ListInt32)"));
        Assert.That(e.Message, Does.Contain("[JsonSerializable(typeof(List<Int32>))]"));
        var nested = Assert.Throws<ArgumentException>(() => CacheSerializers.GetDefault<Dictionary<string, string[]>>())!;
        Assert.That(nested.Message, Does.Contain("Dictionary<String, String[]>").And.Contain("Default.DictionaryStringStringArray"));
    }

    [Test]
    public void StringsAreReadBackStrictlySoDistinctByteKeysNeverBecomeOneString()
    {
        // Byte keys [0xFF] and [0xFE] both came back from a string view's Keys as "\uFFFD" (an adversarial review).
        using var bytes = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20 });
        var view = new OffHeapCache<string, string>(bytes);
        bytes.Set([0xFF], "v"u8);
        bytes.Set("ok"u8, [0xC3]);   // a truncated two-byte sequence as the value
        Assert.That(() => view.Keys.ToList(), Throws.TypeOf<InvalidDataException>().With.Message.Contains("not valid UTF-8"));
        Assert.That(() => view.TryGetValue("ok", out _), Throws.TypeOf<InvalidDataException>());
        Assert.That(Utf8StringSerializer.Instance.Deserialize("h\u00E9llo"u8), Is.EqualTo("h\u00E9llo"), "valid UTF-8 reads as before");
    }
}

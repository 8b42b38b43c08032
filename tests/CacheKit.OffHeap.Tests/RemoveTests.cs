using System.Buffers;
using Microsoft.Extensions.Time.Testing;

namespace CacheKit.OffHeap.Tests;

/// <summary>
/// The removes beyond <c>Remove(key)</c>: remove-and-return-the-value (span and buffer writer; the typed
/// <c>TryRemove(key, out value)</c>), compare-and-delete (<c>RemoveIfEquals</c>, the typed <c>TryRemove(KeyValuePair)</c>)
/// and the typed compare-and-swap <c>TryUpdateIfEquals</c>: one step under the key's lock, expired = absent.
/// </summary>
public class RemoveTests
{
    private static OffHeapCache Create() => new(new OffHeapCacheOptions { CapacityBytes = 16 << 20, HashSeed = 5 });

    [Test]
    public void RemoveIntoASpanReturnsTheValueAndLeavesTheKeyWhenTheSpanIsTooSmall()
    {
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(1), value = TestKeys.Value(1, 1, 300);
        cache.Set(key, value);

        var small = new byte[299];
        Assert.That(cache.Remove(key, small, out int needed), Is.False, "too small: nothing removed");
        Assert.That(needed, Is.EqualTo(300), "the length needed");
        Assert.That(cache.ContainsKey(key), Is.True);

        var destination = new byte[400];
        Assert.That(cache.Remove(key, destination, out int written), Is.True);
        Assert.That(written, Is.EqualTo(300));
        Assert.That(destination.AsSpan(0, written).ToArray(), Is.EqualTo(value));
        Assert.That(cache.ContainsKey(key), Is.False);
        Assert.That(cache.Remove(key, destination, out written), Is.False, "absent");
        Assert.That(written, Is.Zero, "absent tells itself apart from too small");

        cache.Set(key, []);
        Assert.That(cache.Remove(key, [], out written), Is.True, "an empty value fits an empty span");
        Assert.That(written, Is.Zero);
        Assert.That(cache.Count, Is.Zero);
        cache.ValidateInvariants();
    }

    [Test]
    public void RemoveIntoASpanMayUseTheKeysOwnBuffer()
    {
        // Pins the documented overlap contract (as for TryGet: the key is read before the value is copied over it). It
        // does not test RemoveCore's key copy, which guards against another thread changing the key buffer meanwhile.
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(2), value = TestKeys.Value(2, 1, 64);
        cache.Set(key, value);
        var buffer = new byte[64];
        key.CopyTo(buffer, 0);

        Assert.That(cache.Remove(buffer.AsSpan(0, key.Length), buffer, out int written), Is.True);
        Assert.That(buffer.AsSpan(0, written).ToArray(), Is.EqualTo(value));
        Assert.That(cache.ContainsKey(key), Is.False, "the key removed is the one the buffer held before the copy");
    }

    [Test]
    public void RemoveIntoABufferWriterAsksAgainWhenTheSpanIsShortAndAdvancesOnce()
    {
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(3), value = TestKeys.Value(3, 1, 5000);
        cache.Set(key, value);
        var writer = new StingyWriter();

        Assert.That(cache.Remove(key, writer), Is.True);
        Assert.That(writer.Written, Is.EqualTo(value));
        Assert.That(writer.SizeHints, Is.EqualTo(new[] { 0, 5000 }), "a first span of 1 byte, then one of the length");
        Assert.That(writer.Advances, Is.EqualTo(1));
        Assert.That(cache.ContainsKey(key), Is.False);
        Assert.That(cache.Remove(key, writer), Is.False, "absent");
        Assert.That(writer.Advances, Is.EqualTo(1), "nothing written for an absent key");
        Assert.That(() => cache.Remove(key, (IBufferWriter<byte>)null!), Throws.ArgumentNullException.With.Property("ParamName").EqualTo("destination"));
        Assert.That(() => cache.Remove(new byte[cache.MaxKeyBytes + 1], writer), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(writer.SizeHints, Has.Count.EqualTo(3), "a key too long is refused before the writer is asked");
    }

    [Test]
    public void RemoveIfEqualsRemovesOnlyTheExactValue()
    {
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(4), value = TestKeys.Value(4, 1, 100);
        cache.Set(key, value);
        byte[] lastByteOff = [.. value[..^1], (byte)(value[^1] ^ 1)];

        Assert.That(cache.RemoveIfEquals(key, lastByteOff), Is.False);
        Assert.That(cache.RemoveIfEquals(key, value.AsSpan(0, 99)), Is.False, "a prefix is another value");
        Assert.That(cache.RemoveIfEquals(key, [.. value, 0]), Is.False, "so is a longer one");
        Assert.That(cache.Count, Is.EqualTo(1));
        Assert.That(cache.RemoveIfEquals(key, value), Is.True);
        Assert.That(cache.Count, Is.Zero);
        Assert.That(cache.RemoveIfEquals(key, value), Is.False, "absent");
        CacheStatistics stats = cache.GetStatistics();
        Assert.That(stats.Hits + stats.Misses, Is.Zero, "not lookups");
        cache.ValidateInvariants();
    }

    [Test]
    public void AnExpiredEntryIsAbsentForEveryRemoveAndLeavesAsAnExpiration()
    {
        var time = new FakeTimeProvider();
        var reasons = new List<EvictionReason>();
        using OffHeapCache cache = TtlTests.Create(time, listener: (_, reason) => reasons.Add(reason));
        byte[] a = TestKeys.Key(5), b = TestKeys.Key(6), value = TestKeys.Value(5, 1, 40);
        cache.Set(a, value, TimeSpan.FromSeconds(1));
        cache.Set(b, value, TimeSpan.FromSeconds(1));
        time.Advance(TimeSpan.FromSeconds(1));

        Assert.That(cache.Remove(a, new byte[100], out int written), Is.False);
        Assert.That(written, Is.Zero);
        Assert.That(cache.RemoveIfEquals(b, value), Is.False);
        Assert.That(reasons, Is.EqualTo(new[] { EvictionReason.Expired, EvictionReason.Expired }));
        Assert.That(cache.Count, Is.Zero);
        cache.ValidateInvariants();
    }

    [Test]
    public void AConcurrentRemoveReturnsEachStoredValueAtMostOnce([Values(30_000)] int removals)
    {
        // Setters store distinct values of one key until the removers, using the typed TryRemove(key, out value), have
        // taken `removals` of them. Read-then-remove (what TryRemove used to be) lets two removers read one value and both
        // succeed, the second removing a newer value it never saw: a value handed out twice, or one lost unseen.
        using var cache = new OffHeapCache<int, long>(new OffHeapCacheOptions { CapacityBytes = 4 << 20, HashSeed = 3 });
        const int Setters = 2, Removers = 2;
        const long SetterBit = 1L << 40;
        var removed = Enumerable.Range(0, Removers).Select(_ => new List<long>()).ToArray();
        var lastSet = new long[Setters];
        int taken = 0;
        bool stop = false;
        using var start = new Barrier(Setters + Removers);
        var setters = Enumerable.Range(0, Setters).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            long i = 0;
            for (; !Volatile.Read(ref stop); i++)
            {
                cache.Set(7, (t * SetterBit) + i);
            }
            lastSet[t] = i - 1;
        })).ToArray();
        var removers = Enumerable.Range(0, Removers).Select(r => new Thread(() =>
        {
            start.SignalAndWait();
            while (!Volatile.Read(ref stop))
            {
                if (cache.TryRemove(7, out long value))
                {
                    removed[r].Add(value);
                    if (Interlocked.Increment(ref taken) >= removals)
                    {
                        Volatile.Write(ref stop, true);
                    }
                }
            }
        })).ToArray();
        foreach (Thread t in removers.Concat(setters))
        {
            t.Start();
        }
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        while (!Volatile.Read(ref stop) && deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            Thread.Sleep(10);
        }
        Volatile.Write(ref stop, true);
        foreach (Thread t in removers.Concat(setters))
        {
            Assert.That(t.Join(TimeSpan.FromSeconds(60)), Is.True, "threads finished");
        }

        long[] all = [.. removed.SelectMany(r => r)];
        long[] twice = [.. all.GroupBy(v => v).Where(g => g.Count() > 1).Select(g => g.Key).Take(5)];
        Assert.That(twice, Is.Empty, $"values removed twice (the first 5), of {all.Length} removed");
        Assert.That(all.Count(v => v / SetterBit >= Setters || v % SetterBit > lastSet[v / SetterBit]), Is.Zero, "only values that were set");
        Assert.That(all.Length, Is.GreaterThanOrEqualTo(removals), "the race ran (within 30 s)");
    }

    [Test]
    public void RemoveIntoABufferWriterThatGivesLessThanAskedThrowsAndKeepsTheEntry()
    {
        // A writer breaking GetSpan's contract made the retry ask for the same length forever (found by review).
        using OffHeapCache cache = Create();
        byte[] key = TestKeys.Key(8), value = TestKeys.Value(8, 1, 100);
        cache.Set(key, value);
        var capped = new CappedWriter(16);
        Assert.That(() => cache.Remove(key, capped), Throws.ArgumentException.With.Property("ParamName").EqualTo("destination").And.Message.Contains("fewer than asked"));
        Assert.That(capped.Calls, Is.EqualTo(2), "the default span, then one ask for the value's 100 bytes");
        Assert.That(cache.Remove(key, new byte[100], out int written) && written == 100, Is.True, "the entry was kept");
    }

    [Test]
    public void TypedTryRemoveRemovesTheEntryEvenWhenTheValueCannotBeRead()
    {
        using var cache = new OffHeapCache<string, string>(new OffHeapCacheOptions { CapacityBytes = 4 << 20 }, valueSerializer: new UnreadableStrings());
        cache.Set("k", "v");
        Assert.That(() => cache.TryRemove("k", out _), Throws.InstanceOf<FormatException>());
        Assert.That(cache.ContainsKey("k"), Is.False, "removed in the same step as the read (documented)");
    }

    [Test]
    public void TypedComparisonsReportANullKeyAsTheKeyAndTreatARefusedComparisonAsNoMatch()
    {
        using var cache = new OffHeapCache<string, string>(new OffHeapCacheOptions { CapacityBytes = 4 << 20 });
        cache.Set("k", "v");
        Assert.That(() => cache.TryRemove(new KeyValuePair<string, string>(null!, null!)), Throws.ArgumentNullException.With.Property("ParamName").EqualTo("key"));
        Assert.That(() => cache.TryUpdateIfEquals(null!, "x", null!), Throws.ArgumentNullException.With.Property("ParamName").EqualTo("key"));
        Assert.That(() => cache.TryUpdateIfEquals("k", null!, "v"), Throws.ArgumentNullException.With.Property("ParamName").EqualTo("newValue"));
        Assert.That(cache.TryRemove(new KeyValuePair<string, string>("k", null!)), Is.False, "no entry holds null (the dictionary says false too)");
        Assert.That(cache.TryUpdateIfEquals("k", "x", null!), Is.False);
        Assert.That(cache.TryRemove(new KeyValuePair<string, string>("k", "\uD800")), Is.False, "a lone surrogate: refused like null, held by no entry");
        Assert.That(cache.TryUpdateIfEquals("k", "x", "\uD800"), Is.False);
        Assert.That(cache.TryGetValue("k", out string? now) ? now : null, Is.EqualTo("v"), "nothing changed");
    }

    [Test]
    public void TypedTryRemoveOfAPairComparesTheSerializedValue()
    {
        using var cache = new OffHeapCache<string, byte[]>(new OffHeapCacheOptions { CapacityBytes = 4 << 20 });
        cache.Set("k", [1, 2, 3]);

        Assert.That(cache.TryRemove(new KeyValuePair<string, byte[]>("k", [1, 2, 4])), Is.False);
        Assert.That(cache.TryRemove(new KeyValuePair<string, byte[]>("other", [1, 2, 3])), Is.False);
        Assert.That(cache.ContainsKey("k"), Is.True);
        Assert.That(cache.TryRemove(new KeyValuePair<string, byte[]>("k", [1, 2, 3])), Is.True, "another array with the same bytes");
        Assert.That(cache.ContainsKey("k"), Is.False);
        Assert.That(() => cache.TryRemove(new KeyValuePair<string, byte[]>(null!, [1])), Throws.ArgumentNullException.With.Property("ParamName").EqualTo("key"));
    }

    [Test]
    public void TypedTryUpdateIfEqualsSwapsOnlyFromTheComparisonValue()
    {
        var time = new FakeTimeProvider();
        using var cache = new OffHeapCache<string, string>(new OffHeapCacheOptions { CapacityBytes = 4 << 20, TimeProvider = time });

        Assert.That(cache.TryUpdateIfEquals("k", "new", "old"), Is.False, "absent");
        Assert.That(cache.ContainsKey("k"), Is.False, "and not added");
        cache.Set("k", "old");
        Assert.That(cache.TryUpdateIfEquals("k", "new", "OLD"), Is.False, "ordinal comparison");
        Assert.That(cache.TryUpdateIfEquals("k", "new", "old", TimeSpan.FromSeconds(5)), Is.True);
        Assert.That(cache.TryGetValue("k", out string? now) ? now : null, Is.EqualTo("new"));
        Assert.That(cache.TryUpdateIfEquals("k", "newer", "old"), Is.False, "the comparison is the value now");
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.That(cache.ContainsKey("k"), Is.False, "the swap's own time to live");
        Assert.That(() => cache.TryUpdateIfEquals("k", "x", "y", TimeSpan.Zero), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("timeToLive"));
    }

    [Test]
    public void TypedTryUpdateIfEqualsCountsExactlyUnderThreads([Values(2_000)] int incrementsPerThread)
    {
        // The compare-and-swap loop of a counter: lost updates would leave the total short.
        using var cache = new OffHeapCache<int, long>(new OffHeapCacheOptions { CapacityBytes = 4 << 20, HashSeed = 1 });
        cache.Set(1, 0);
        const int Threads = 4;
        int misses = 0;   // counted here and asserted after the joins: an assert on a plain thread would end the test host
        var threads = Enumerable.Range(0, Threads).Select(_ => new Thread(() =>
        {
            for (int i = 0; i < incrementsPerThread; i++)
            {
                while (true)
                {
                    if (!cache.TryGetValue(1, out long seen))
                    {
                        Interlocked.Increment(ref misses);
                        return;
                    }
                    if (cache.TryUpdateIfEquals(1, seen + 1, seen))
                    {
                        break;
                    }
                }
            }
        })).ToArray();
        foreach (Thread t in threads)
        {
            t.Start();
        }
        foreach (Thread t in threads)
        {
            Assert.That(t.Join(TimeSpan.FromSeconds(60)), Is.True);
        }
        Assert.That(misses, Is.Zero, "the counter was always there");
        Assert.That(cache.TryGetValue(1, out long total) ? total : -1, Is.EqualTo(Threads * (long)incrementsPerThread));
    }

    [Test]
    public void ACacheOfTimeSpanValuesStillBindsTryUpdatesThirdArgumentToTheTimeToLive()
    {
        // Why the compare-and-swap has a name of its own: as a TryUpdate overload it would take this call.
        var time = new FakeTimeProvider();
        using var cache = new OffHeapCache<int, TimeSpan>(new OffHeapCacheOptions { CapacityBytes = 4 << 20, TimeProvider = time });
        cache.Set(1, TimeSpan.FromDays(1));
        Assert.That(cache.TryUpdate(1, TimeSpan.FromDays(2), TimeSpan.FromSeconds(3)), Is.True);
        time.Advance(TimeSpan.FromSeconds(3));
        Assert.That(cache.ContainsKey(1), Is.False, "the third argument was the time to live");
    }

    /// <summary>A writer whose spans are never longer than a cap, whatever the hint (it breaks GetSpan's contract).</summary>
    private sealed class CappedWriter(int cap) : IBufferWriter<byte>
    {
        public int Calls { get; private set; }

        public Span<byte> GetSpan(int sizeHint = 0)
        {
            Calls++;
            return new byte[cap];
        }

        public Memory<byte> GetMemory(int sizeHint = 0) => throw new NotSupportedException();

        public void Advance(int count) => throw new InvalidOperationException("nothing fits, so nothing is advanced");
    }

    /// <summary>Strings stored as UTF-8 that cannot be read back.</summary>
    private sealed class UnreadableStrings : ICacheSerializer<string>
    {
        public void Serialize(string value, IBufferWriter<byte> destination) => destination.Write(System.Text.Encoding.UTF8.GetBytes(value));

        public string Deserialize(ReadOnlySpan<byte> source) => throw new FormatException("unreadable");
    }

    /// <summary>A writer whose first span is one byte, whatever the hint; then exactly the hint.</summary>
    private sealed class StingyWriter : IBufferWriter<byte>
    {
        private byte[] _span = [];
        private readonly List<byte> _written = [];

        public List<int> SizeHints { get; } = [];

        public int Advances { get; private set; }

        public byte[] Written => [.. _written];

        public Span<byte> GetSpan(int sizeHint = 0)
        {
            SizeHints.Add(sizeHint);
            _span = new byte[SizeHints.Count == 1 ? 1 : Math.Max(1, sizeHint)];
            return _span;
        }

        public Memory<byte> GetMemory(int sizeHint = 0) => throw new NotSupportedException();

        public void Advance(int count)
        {
            Advances++;
            _written.AddRange(_span.AsSpan(0, count).ToArray());
        }
    }

    [Test]
    public void AComparisonTheSerializerRefusesSkipsNeitherTheKeyCheckNorTheDisposedCheck()
    {
        // A null comparison matches no entry (false), but used to return before the byte cache was reached: no
        // ArgumentOutOfRangeException for a key too long, no ObjectDisposedException (review, 2026-11-29).
        using (var cache = new OffHeapCache<string, string>(new OffHeapCacheOptions { CapacityBytes = 4 << 20, MaxKeyBytes = 16 }))
        {
            string key = new('x', 17);
            Assert.Multiple(() =>
            {
                Assert.That(() => cache.TryRemove(new KeyValuePair<string, string>(key, "v")), Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("key"));
                Assert.That(() => cache.TryRemove(new KeyValuePair<string, string>(key, null!)), Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("key"));
                Assert.That(() => cache.TryUpdateIfEquals(key, "new", null!), Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("key"));
                Assert.That(() => cache.TryUpdateIfEquals(key, new string('v', 100_000), "old"), Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("key"),
                    "the key is checked before the new value");
            });
        }
        var disposed = new OffHeapCache<string, string>(new OffHeapCacheOptions { CapacityBytes = 4 << 20 });
        disposed.Set("k", "v");
        disposed.Dispose();
        Assert.Multiple(() =>
        {
            Assert.That(() => disposed.TryRemove(new KeyValuePair<string, string>("k", "v")), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => disposed.TryRemove(new KeyValuePair<string, string>("k", null!)), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => disposed.TryUpdateIfEquals("k", "w", null!), Throws.TypeOf<ObjectDisposedException>());
        });
    }

    [Test]
    public void ATooLongNewValueIsNamedWithItsActualValueKeptApart()
    {
        using var cache = new OffHeapCache<string, string>(new OffHeapCacheOptions { CapacityBytes = 4 << 20 });
        cache.Set("k", "old");
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => cache.TryUpdateIfEquals("k", new string('v', 100_000), "old"));
        Assert.That(e!.ParamName, Is.EqualTo("newValue"));
        Assert.That(e.ActualValue, Is.EqualTo(100_000));
        Assert.That(e.Message, Does.Not.Contain("Parameter 'value'"));
        Assert.That(e.Message.Split("Actual value was").Length, Is.LessThanOrEqualTo(2), "the actual value appears once at most");
        Assert.That(cache.TryGetValue("k", out string? value) && value == "old", Is.True, "nothing changed");
    }
}

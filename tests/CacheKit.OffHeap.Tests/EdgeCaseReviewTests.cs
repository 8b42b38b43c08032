using Microsoft.Extensions.Time.Testing;

namespace CacheKit.OffHeap.Tests;

/// <summary>Edges found by the review of the sixteenth session's own diff (2026-11-29), and two RemoveExpired race runs
/// that review added (they passed: kept as regression tests).</summary>
public class EdgeCaseReviewTests
{
    public class Outer<T>
    {
        public class Nested
        {
            public string? Name { get; set; }
        }
    }

    [Test]
    public void AMissingSerializerForAClassNestedInAGenericTypeIsAnArgumentException()
    {
        // typeof(Outer<int>.Nested).IsGenericType is true but its Name ("Nested") has no backtick: CSharpName slices
        // Name[..-1] while building the message, and GetDefault throws ArgumentOutOfRangeException instead.
        Assert.That(() => CacheSerializers.GetDefault<Outer<int>.Nested>(),
            Throws.TypeOf<ArgumentException>().With.Property("ParamName").EqualTo("T"));
        Assert.That(() => new OffHeapCache<string, Outer<int>.Nested>(new OffHeapCacheOptions { CapacityBytes = 4 << 20 }),
            Throws.TypeOf<ArgumentException>());
    }

    [Test]
    public void TheLeastCapacityNamedIsNotAboveOneThatWorks()
    {
        // Explicit shards, MaxEntries fixed (the index does not grow with the budget), automatic page size: the page
        // doubles from 256 KiB to 512 KiB at CapacityBytes = 2^31, so 2^31 fails while 2^31 - 1 works; the message for
        // 2^31 says "at least 2182217728".
        OffHeapCacheOptions Options(long capacity) => new() { CapacityBytes = capacity, ShardCount = 256, MaxEntries = 134_400_000 };
        Assert.That(() => CacheLayout.Compute(Options((1L << 31) - 1), processorCount: 4), Throws.Nothing, "2^31 - 1 works");
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => CacheLayout.Compute(Options(1L << 31), processorCount: 4))!;
        var match = System.Text.RegularExpressions.Regex.Match(e.Message, "at least ([0-9]+)");
        Assert.That(match.Success, Is.True, e.Message);
        long least = long.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(least, Is.LessThanOrEqualTo((1L << 31) - 1), "the message names a least budget above one that works: " + e.Message);
    }

    [Test]
    public void ATypedConditionalRemoveWithARefusedComparisonFromTheListenerIsRefusedAsAWrite()
    {
        // TryRemove(KeyValuePair) with a value the serializer refuses returns false after "the checks the write would have
        // made" (key length, disposed), but not the listener check every other write makes: from the cache's own eviction
        // listener it returns false instead of throwing InvalidOperationException.
        OffHeapCache<string, string>? self = null;
        Exception? withValue = null, withNull = null;
        bool? nullResult = null;
        var time = new FakeTimeProvider();
        using var bytes = TtlTests.Create(time, maxEntries: 10, listener: (_, _) =>
        {
            try { self!.TryRemove(new KeyValuePair<string, string>("k1", "v")); } catch (Exception e) { withValue = e; }
            try { nullResult = self!.TryRemove(new KeyValuePair<string, string>("k1", null!)); } catch (Exception e) { withNull = e; }
        });
        self = new OffHeapCache<string, string>(bytes);
        for (int i = 0; i < 11; i++)
        {
            self.Set("k" + i, "v");   // the 11th evicts
        }
        Assert.That(withValue, Is.TypeOf<InvalidOperationException>(), "a comparison the serializer takes: refused");
        Assert.That(withNull, Is.TypeOf<InvalidOperationException>(), $"a null comparison: returned {nullResult} instead");
    }

    [Test]
    public void RemoveExpiredRacingWritersClearAndReadersKeepsEveryInvariant()
    {
        // Not a finding (passes): RemoveExpired beside writers with short TTLs, Clear and readers, then invariants.
        var time = new FakeTimeProvider();
        long heard = 0;
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 8 << 20, ShardCount = 2, TimeProvider = time, HashSeed = 3,
            EvictionListener = (_, _) => Interlocked.Increment(ref heard),
        });
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        var tasks = new List<Task>();
        for (int t = 0; t < 2; t++)
        {
            int seed = t;
            tasks.Add(Task.Run(() =>
            {
                var rng = new Random(seed);
                var buf = new byte[256];
                while (!stop.IsCancellationRequested)
                {
                    int k = rng.Next(20_000);
                    int r = rng.Next(100);
                    if (r < 50) cache.Set(TestKeys.Key(k), TestKeys.Value(k, 1, 20 + rng.Next(100)), TimeSpan.FromMilliseconds(1 + rng.Next(50)));
                    else if (r < 90) cache.TryGet(TestKeys.Key(k), buf, out _);
                    else if (r < 99) cache.Remove(TestKeys.Key(k));
                    else if (rng.Next(50) == 0) cache.Clear();
                }
            }));
        }
        tasks.Add(Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                time.Advance(TimeSpan.FromMilliseconds(5));
                cache.RemoveExpired();
            }
        }));
        Task.WaitAll(tasks);
        cache.ValidateInvariants();
        time.Advance(TimeSpan.FromSeconds(1));
        cache.RemoveExpired();
        Assert.That(cache.Count, Is.Zero);
        cache.ValidateInvariants();
    }

    [TestCase(CachePolicy.WTinyLfu, true)]
    [TestCase(CachePolicy.Lru, false)]
    [TestCase(CachePolicy.Sieve, false)]
    public void RemoveExpiredBesideBackgroundReplayGetOrAddTouchAndDispose(CachePolicy policy, bool backgroundReplay)
    {
        // Not a finding unless it fails.
        var time = new FakeTimeProvider();
        long heardExpired = 0, heardOther = 0;
        var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 2 << 20, ShardCount = 2, TimeProvider = time, HashSeed = 9, Policy = policy,
            BackgroundReadReplay = backgroundReplay, MaxEntries = 9_000,
            EvictionListener = (_, r) => { if (r == EvictionReason.Expired) Interlocked.Increment(ref heardExpired); else Interlocked.Increment(ref heardOther); },
        });
        var errors = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        var tasks = new List<Task>();
        for (int t = 0; t < 3; t++)
        {
            int seed = t;
            tasks.Add(Task.Run(() =>
            {
                var rng = new Random(seed);
                var buf = new byte[512];
                var writer = new System.Buffers.ArrayBufferWriter<byte>();
                while (!stop.IsCancellationRequested)
                {
                    int k = rng.Next(20_000);
                    int r = rng.Next(100);
                    try
                    {
                        if (r < 30) cache.Set(TestKeys.Key(k), TestKeys.Value(k, 1, 20 + rng.Next(200)), TimeSpan.FromMilliseconds(1 + rng.Next(40)));
                        else if (r < 80) cache.TryGet(TestKeys.Key(k % 500), buf, out _);
                        else if (r < 88) { writer.ResetWrittenCount(); cache.GetOrAdd(TestKeys.Key(k), k, static (key, id, w) => System.Buffers.BuffersExtensions.Write(w, (ReadOnlySpan<byte>)TestKeys.Value(id, 2, 30)), writer, TimeSpan.FromMilliseconds(5)); }
                        else if (r < 95) cache.Touch(TestKeys.Key(k), TimeSpan.FromMilliseconds(1 + rng.Next(20)));
                        else if (r < 99) cache.RemoveExpired();
                        else cache.Remove(TestKeys.Key(k));
                    }
                    catch (Exception e)
                    {
                        errors.Enqueue(e.ToString());
                    }
                }
            }));
        }
        tasks.Add(Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                time.Advance(TimeSpan.FromMilliseconds(3));
                try { cache.RemoveExpired(); } catch (Exception e) { errors.Enqueue(e.ToString()); }
            }
        }));
        Task.WaitAll(tasks);
        Assert.That(errors, Is.Empty, string.Join("\n", errors.Take(3)));
        cache.ValidateInvariants();
        var st = cache.GetStatistics();
        Assert.That(st.Expirations, Is.EqualTo(Interlocked.Read(ref heardExpired)));
        Assert.That(st.Evictions, Is.EqualTo(Interlocked.Read(ref heardOther)));
        time.Advance(TimeSpan.FromSeconds(1));
        long left = cache.Count;
        Assert.That(cache.RemoveExpired(), Is.EqualTo(left));
        cache.ValidateInvariants();

        // Dispose racing sweeps: only ObjectDisposedException.
        var sweepers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            for (int i = 0; i < 100_000; i++)
            {
                try { cache.RemoveExpired(); } catch (ObjectDisposedException) { return; } catch (Exception e) { errors.Enqueue(e.ToString()); return; }
            }
        })).ToArray();
        Thread.Sleep(20);
        cache.Dispose();
        Task.WaitAll(sweepers);
        Assert.That(errors, Is.Empty, string.Join("\n", errors.Take(3)));
    }
}

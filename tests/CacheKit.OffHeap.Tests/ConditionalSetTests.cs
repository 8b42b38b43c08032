using Microsoft.Extensions.Time.Testing;

namespace CacheKit.OffHeap.Tests;

/// <summary>TryAdd (only if absent), TryUpdate (only if present, or only if it holds a given value) and the typed
/// AddOrUpdate built on them: atomic under the shard lock, expired = absent.</summary>
public class ConditionalSetTests
{
    private static readonly byte[] Buffer = new byte[256];

    private static byte[] Read(OffHeapCache cache, byte[] key)
        => cache.TryGet(key, Buffer, out int written) ? Buffer.AsSpan(0, written).ToArray() : [];

    [Test]
    public void TryAddStoresOnlyForAnAbsentKeyAndLeavesALiveEntryAlone()
    {
        var time = new FakeTimeProvider();
        using OffHeapCache cache = TtlTests.Create(time);
        byte[] key = TestKeys.Key(1), first = TestKeys.Value(1, 1, 40), second = TestKeys.Value(1, 2, 40);

        Assert.That(cache.TryAdd(key, first, TimeSpan.FromSeconds(10)), Is.True);
        Assert.That(cache.TryAdd(key, second), Is.False, "a live entry is kept");
        Assert.That(Read(cache, key), Is.EqualTo(first));
        time.Advance(TimeSpan.FromSeconds(9));
        Assert.That(cache.TryAdd(key, second, TimeSpan.FromHours(1)), Is.False, "nor is its time to live changed");
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(cache.ContainsKey(key), Is.False, "expired at 10 s as first set");

        CacheStatistics before = cache.GetStatistics();
        Assert.That(cache.TryAdd(key, second), Is.True, "an expired entry counts as absent");
        CacheStatistics after = cache.GetStatistics();
        Assert.That(after.Expirations - before.Expirations, Is.EqualTo(1), "the expired entry left as an expiration");
        Assert.That(Read(cache, key), Is.EqualTo(second));
        Assert.That(cache.Count, Is.EqualTo(1));
        cache.ValidateInvariants();
    }

    [Test]
    public void TryUpdateReplacesOnlyALiveEntry()
    {
        var time = new FakeTimeProvider();
        var reasons = new List<EvictionReason>();
        using OffHeapCache cache = TtlTests.Create(time, listener: (_, reason) => reasons.Add(reason));
        byte[] key = TestKeys.Key(1), first = TestKeys.Value(1, 1, 40), second = TestKeys.Value(1, 2, 90);

        Assert.That(cache.TryUpdate(key, first), Is.False, "nothing to update");
        Assert.That(cache.Count, Is.Zero, "and nothing stored");
        cache.Set(key, first, TimeSpan.FromSeconds(10));
        Assert.That(cache.TryUpdate(key, second, TimeSpan.FromSeconds(20)), Is.True);
        Assert.That(Read(cache, key), Is.EqualTo(second), "replaced, with another length");
        time.Advance(TimeSpan.FromSeconds(19));
        Assert.That(cache.ContainsKey(key), Is.True, "the update's own time to live");
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(cache.TryUpdate(key, first), Is.False, "an expired entry is not updated");
        Assert.That(cache.Count, Is.Zero, "it left");
        Assert.That(reasons, Is.EqualTo(new[] { EvictionReason.Expired }));
        cache.Remove(key);
        Assert.That(cache.TryUpdate(key, first), Is.False);
        cache.ValidateInvariants();
    }

    [Test]
    public void OfConcurrentTryAddsOfOneKeyExactlyOneStores()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 16 << 20, HashSeed = 9 });
        const int Threads = 4, Rounds = 2000;
        int winners = 0, wrong = 0;
        using var barrier = new Barrier(Threads);
        var threads = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            var buffer = new byte[16];
            for (int round = 0; round < Rounds; round++)
            {
                barrier.SignalAndWait();
                byte[] key = BitConverter.GetBytes(round);
                if (cache.TryAdd(key, BitConverter.GetBytes(t * 1_000_000L + round)))
                {
                    Interlocked.Increment(ref winners);
                }
                // Whoever won, every thread reads one value for the key, never a loser's.
                if (!cache.TryGet(key, buffer, out int written) || written != 8 || BitConverter.ToInt64(buffer) % 1_000_000 != round)
                {
                    Interlocked.Increment(ref wrong);
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.That(wrong, Is.Zero);
        Assert.That(winners, Is.EqualTo(Rounds), "one add per key");
        cache.ValidateInvariants();
    }

    [Test]
    public void ARefusedConditionalSetIsNotAnAccessForThePolicy()
    {
        // LRU over 3 entries: TryAdd of a live key must not refresh it (else B, not A, would leave).
        using OffHeapCache cache = TtlTests.Create(new FakeTimeProvider(), maxEntries: 3, policy: CachePolicy.Lru);
        for (int id = 1; id <= 3; id++)
        {
            cache.Set(TestKeys.Key(id), TestKeys.Value(id, 1, 20));
        }
        Assert.That(cache.TryAdd(TestKeys.Key(1), TestKeys.Value(1, 2, 20)), Is.False);
        Assert.That(cache.TryUpdate(TestKeys.Key(9), TestKeys.Value(9, 1, 20)), Is.False);
        cache.Set(TestKeys.Key(4), TestKeys.Value(4, 1, 20));
        Assert.That(cache.ContainsKey(TestKeys.Key(1)), Is.False);
        Assert.That(cache.ContainsKey(TestKeys.Key(2)), Is.True);
    }

    [Test]
    public void BadArgumentsAreRefusedAndChangeNothing()
    {
        using OffHeapCache cache = TtlTests.Create(new FakeTimeProvider());
        byte[] key = TestKeys.Key(1), value = TestKeys.Value(1, 1, 20);
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => cache.TryAdd(key, value, TimeSpan.Zero))!.ParamName, Is.EqualTo("timeToLive"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => cache.TryUpdate(key, value, TimeSpan.FromTicks(-5)))!.ParamName, Is.EqualTo("timeToLive"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => cache.TryAdd(new byte[cache.MaxKeyBytes + 1], value))!.ParamName, Is.EqualTo("key"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => cache.TryAdd(key, new byte[cache.MaxValueBytes + 1]))!.ParamName, Is.EqualTo("value"));
        Assert.That(cache.Count, Is.Zero);
        cache.Dispose();
        Assert.Throws<ObjectDisposedException>(() => cache.TryAdd(key, value));
        Assert.Throws<ObjectDisposedException>(() => cache.TryUpdate(key, value, TimeSpan.FromSeconds(1)));
    }

    [Test]
    public void TypedFacadeAddsUpdatesAndCounts()
    {
        var time = new FakeTimeProvider();
        using var typed = new OffHeapCache<string, long>(new OffHeapCacheOptions { CapacityBytes = 4 << 20, PageSize = 64 * 1024, TimeProvider = time });
        Assert.That(typed.TryAdd("a", 1), Is.True);
        Assert.That(typed.TryAdd("a", 2), Is.False);
        Assert.That(typed.TryUpdate("b", 3), Is.False);
        Assert.That(typed.TryUpdate("a", 4, TimeSpan.FromSeconds(5)), Is.True);
        Assert.That(typed.TryGetValue("a", out long value) ? value : -1, Is.EqualTo(4));
        Assert.That(typed.Count, Is.EqualTo(1));
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.That(typed.TryAdd("a", 5, TimeSpan.FromSeconds(1)), Is.True, "expired: absent");
        Assert.Throws<ArgumentNullException>(() => typed.TryAdd(null!, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => typed.TryUpdate("a", 1, TimeSpan.Zero));
        Assert.That(typed.TryGetValue("a", out value) ? value : -1, Is.EqualTo(5), "the refused update changed nothing");
    }

    [Test]
    public void TryUpdateWithAComparisonValueReplacesOnlyThatValue()
    {
        var time = new FakeTimeProvider();
        using OffHeapCache cache = TtlTests.Create(time);
        byte[] key = TestKeys.Key(1), first = TestKeys.Value(1, 1, 40), second = TestKeys.Value(1, 2, 70), third = TestKeys.Value(1, 3, 40);

        Assert.That(cache.TryUpdate(key, second, first), Is.False, "no entry");
        Assert.That(cache.Count, Is.Zero);
        cache.Set(key, first, TimeSpan.FromSeconds(10));
        Assert.That(cache.TryUpdate(key, second, third), Is.False, "another value (same length)");
        Assert.That(cache.TryUpdate(key, second, first.AsSpan(0, 39)), Is.False, "a prefix of the value");
        Assert.That(Read(cache, key), Is.EqualTo(first), "unchanged");
        Assert.That(cache.TryUpdate(key, second, first, TimeSpan.FromSeconds(20)), Is.True);
        Assert.That(Read(cache, key), Is.EqualTo(second));
        Assert.That(cache.TryUpdate(key, third, first), Is.False, "the old value is gone");
        time.Advance(TimeSpan.FromSeconds(20));
        Assert.That(cache.TryUpdate(key, third, second), Is.False, "an expired entry holds no value");
        Assert.That(cache.Count, Is.Zero, "it left");
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => cache.TryUpdate(key, first, second, TimeSpan.Zero))!.ParamName, Is.EqualTo("timeToLive"));
        cache.ValidateInvariants();
    }

    [Test]
    public void ConcurrentAddOrUpdatesLoseNoUpdate([Values(4)] int threads, [Values(3_000)] int incrementsPerThread)
    {
        // ConcurrentDictionary's guarantee: each increment applies to the value its factory saw, so none is lost.
        using var typed = new OffHeapCache<string, long>(new OffHeapCacheOptions { CapacityBytes = 4 << 20, PageSize = 64 * 1024 });
        using var start = new Barrier(threads);
        var workers = Enumerable.Range(0, threads).Select(_ => new Thread(() =>
        {
            start.SignalAndWait();
            for (int i = 0; i < incrementsPerThread; i++)
            {
                typed.AddOrUpdate("counter", 1, static (_, old) => old + 1);
            }
        })).ToArray();
        foreach (Thread t in workers)
        {
            t.Start();
        }
        foreach (Thread t in workers)
        {
            t.Join();
        }
        Assert.That(typed.TryGetValue("counter", out long total) ? total : -1, Is.EqualTo((long)threads * incrementsPerThread));
    }

    [Test]
    public void AddOrUpdateWithAnAddFactoryAddsOnceAndRetriesWhenAnotherWriterAddsFirst()
    {
        // ConcurrentDictionary.AddOrUpdate(key, addValueFactory, updateValueFactory): asked for by a new user's review.
        using var typed = new OffHeapCache<string, long>(new OffHeapCacheOptions { CapacityBytes = 4 << 20, PageSize = 64 * 1024 });
        int adds = 0, updates = 0;
        Assert.That(typed.AddOrUpdate("k", k => { adds++; return k.Length * 10L; }, (_, old) => { updates++; return old + 1; }), Is.EqualTo(10));
        Assert.That(typed.AddOrUpdate("k", _ => { adds++; return -1L; }, (_, old) => { updates++; return old + 1; }), Is.EqualTo(11));
        Assert.That((adds, updates), Is.EqualTo((1, 1)));

        // Another writer adds the key between the lookup and the add: the added value is not stored, the update runs on
        // the value now there.
        adds = updates = 0;
        long result = typed.AddOrUpdate("raced", k =>
        {
            if (++adds == 1)
            {
                typed.Set(k, 100);
            }
            return 7L;
        }, (_, old) => { updates++; return old + 1; });
        Assert.That((adds, updates, result), Is.EqualTo((1, 1, 101L)));
        Assert.That(typed.TryGetValue("raced", out long stored) ? stored : -1, Is.EqualTo(101));

        Assert.That(() => typed.AddOrUpdate("k", null!, (_, old) => old), Throws.ArgumentNullException.With.Property("ParamName").EqualTo("addValueFactory"));
        Assert.That(() => typed.AddOrUpdate("k", _ => 1L, null!), Throws.ArgumentNullException.With.Property("ParamName").EqualTo("updateValueFactory"));
        Assert.That(() => typed.AddOrUpdate("k", _ => 1L, (_, old) => old, TimeSpan.Zero), Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("timeToLive"));
    }

    [Test]
    public void AddOrUpdateRetriesWhenTheValueChangesUnderItsFactory()
    {
        using var typed = new OffHeapCache<string, long>(new OffHeapCacheOptions { CapacityBytes = 4 << 20, PageSize = 64 * 1024 });
        typed.Set("k", 10);
        int runs = 0;
        long result = typed.AddOrUpdate("k", -1, (_, old) =>
        {
            if (++runs == 1)
            {
                typed.Set("k", 20);   // another writer, between this factory's read and its write (made deterministic)
            }
            return old + 1;
        });
        Assert.That((runs, result), Is.EqualTo((2, 21L)), "the first result (11) applied to a value that was gone, so it ran again");
        Assert.That(typed.TryGetValue("k", out long stored) ? stored : -1, Is.EqualTo(21));

        runs = 0;
        result = typed.AddOrUpdate("absent", 5, (_, old) =>
        {
            runs++;
            return old * 100;
        });
        Assert.That((runs, result), Is.EqualTo((0, 5L)));
    }
}

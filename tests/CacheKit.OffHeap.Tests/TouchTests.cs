using Microsoft.Extensions.Time.Testing;

namespace CacheKit.OffHeap.Tests;

/// <summary>OffHeapCache.Touch: a new time to live for a live entry, in place, seen by no lookup counter or policy.</summary>
public class TouchTests
{
    [Test]
    public void TouchGivesALiveEntryANewTimeToLiveFromNowAndKeepsItsValue()
    {
        var time = new FakeTimeProvider();
        using OffHeapCache cache = TtlTests.Create(time);
        byte[] key = TestKeys.Key(1), value = TestKeys.Value(1, 1, 100);
        cache.Set(key, value, TimeSpan.FromSeconds(10));
        time.Advance(TimeSpan.FromSeconds(8));
        CacheStatistics before = cache.GetStatistics();

        Assert.That(cache.Touch(key, TimeSpan.FromSeconds(10)), Is.True);

        CacheStatistics after = cache.GetStatistics();
        Assert.That((after.Hits, after.Misses, after.Evictions, after.Expirations, after.NativeBytes),
            Is.EqualTo((before.Hits, before.Misses, before.Evictions, before.Expirations, before.NativeBytes)),
            "not a lookup, and nothing allocated, evicted or expired");
        time.Advance(TimeSpan.FromSeconds(10) - TimeSpan.FromTicks(1));
        var buffer = new byte[128];
        Assert.That(cache.TryGet(key, buffer, out int written), Is.True, "18 s after the set, alive thanks to the touch at 8 s");
        Assert.That(buffer.AsSpan(0, written).SequenceEqual(value), Is.True);
        time.Advance(TimeSpan.FromTicks(1));
        Assert.That(cache.ContainsKey(key), Is.False, "10 s after the touch");
        cache.ValidateInvariants();
    }

    [Test]
    public void TouchCanShortenTheTimeToLiveOrRemoveIt()
    {
        var time = new FakeTimeProvider();
        using OffHeapCache cache = TtlTests.Create(time);
        byte[] shortened = TestKeys.Key(1), forever = TestKeys.Key(2);
        cache.Set(shortened, TestKeys.Value(1, 1, 20), TimeSpan.FromHours(1));
        cache.Set(forever, TestKeys.Value(2, 1, 20), TimeSpan.FromSeconds(5));

        Assert.That(cache.Touch(shortened, TimeSpan.FromSeconds(1)), Is.True);
        Assert.That(cache.Touch(forever, Timeout.InfiniteTimeSpan), Is.True);
        cache.ValidateInvariants();   // the count of entries with an expiry follows both changes

        time.Advance(TimeSpan.FromDays(400));
        Assert.That(cache.ContainsKey(shortened), Is.False);
        Assert.That(cache.ContainsKey(forever), Is.True, "an infinite time to live never expires");
        Assert.That(cache.Touch(forever, TimeSpan.FromSeconds(1)), Is.True, "and can get a finite one again");
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(cache.ContainsKey(forever), Is.False);
        cache.ValidateInvariants();
    }

    [Test]
    public void TouchOfAnAbsentOrExpiredKeySaysFalseAndAnExpiredOneLeavesAsAnExpiration()
    {
        var time = new FakeTimeProvider();
        var reasons = new List<EvictionReason>();
        using OffHeapCache cache = TtlTests.Create(time, listener: (_, reason) => reasons.Add(reason));
        byte[] key = TestKeys.Key(1);
        Assert.That(cache.Touch(key, TimeSpan.FromSeconds(1)), Is.False, "never stored");
        Assert.That(cache.Count, Is.Zero, "a touch stores nothing");

        cache.Set(key, TestKeys.Value(1, 1, 20), TimeSpan.FromSeconds(1));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(cache.Touch(key, TimeSpan.FromHours(1)), Is.False, "past its time to live: too late to extend");
        Assert.That(cache.Count, Is.Zero, "removed");
        Assert.That(reasons, Is.EqualTo(new[] { EvictionReason.Expired }));
        Assert.That(cache.GetStatistics().Expirations, Is.EqualTo(1));
        Assert.That(cache.ContainsKey(key), Is.False, "not resurrected");
        cache.ValidateInvariants();
    }

    [Test]
    public void AnEntryStoredWithoutRoomForAnExpiryIsWrittenAgainWithIt()
    {
        // The shard stored no expiry before this entry, so its header has no expiry field: the first finite time to
        // live rewrites it (same key and value), here into another size class (in place when it keeps its class:
        // InPlaceUpdateTests); later touches are in place.
        var time = new FakeTimeProvider();
        using OffHeapCache cache = TtlTests.Create(time);
        byte[] key = TestKeys.Key(1), value = TestKeys.Value(1, 1, 100), other = TestKeys.Key(2);
        cache.Set(key, value);
        cache.Set(other, TestKeys.Value(2, 1, 100));
        Assert.That(cache.Touch(key, Timeout.InfiniteTimeSpan), Is.True, "no field and no expiry: nothing to write");

        Assert.That(cache.Touch(key, TimeSpan.FromSeconds(10)), Is.True);
        cache.ValidateInvariants();
        CacheStatistics stats = cache.GetStatistics();
        Assert.That((stats.Count, stats.Hits, stats.Misses, stats.Evictions), Is.EqualTo((2L, 0L, 0L, 0L)));
        var buffer = new byte[128];
        Assert.That(cache.TryGet(key, buffer, out int written), Is.True);
        Assert.That(buffer.AsSpan(0, written).SequenceEqual(value), Is.True, "the same value, written again");
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.That(cache.ContainsKey(key), Is.False);
        Assert.That(cache.ContainsKey(other), Is.True, "the other entry keeps no time to live");
        Assert.That(cache.Touch(other, TimeSpan.FromSeconds(1)), Is.True);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(cache.ContainsKey(other), Is.False);
        cache.ValidateInvariants();
    }

    [Test]
    public void TouchIsNotAnAccessForThePolicy()
    {
        // LRU over 3 entries: A, B, C stored, A touched, D stored. Were the touch an access, B would be the least
        // recent; it is not, so A leaves.
        var time = new FakeTimeProvider();
        using OffHeapCache cache = TtlTests.Create(time, maxEntries: 3, policy: CachePolicy.Lru);
        for (int id = 1; id <= 3; id++)
        {
            cache.Set(TestKeys.Key(id), TestKeys.Value(id, 1, 20), TimeSpan.FromHours(1));
        }
        Assert.That(cache.Touch(TestKeys.Key(1), TimeSpan.FromHours(2)), Is.True);
        cache.Set(TestKeys.Key(4), TestKeys.Value(4, 1, 20), TimeSpan.FromHours(1));
        Assert.That(cache.ContainsKey(TestKeys.Key(1)), Is.False, "the touched entry is still the least recently used");
        Assert.That(cache.ContainsKey(TestKeys.Key(2)), Is.True);
    }

    [Test]
    public void BadArgumentsAreRefusedAndChangeNothing()
    {
        var time = new FakeTimeProvider();
        using OffHeapCache cache = TtlTests.Create(time);
        byte[] key = TestKeys.Key(1);
        cache.Set(key, TestKeys.Value(1, 1, 20), TimeSpan.FromSeconds(10));
        foreach (TimeSpan bad in new[] { TimeSpan.Zero, TimeSpan.FromTicks(-1), TimeSpan.MinValue })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => cache.Touch(key, bad))!;
            Assert.That(e.ParamName, Is.EqualTo("timeToLive"));
        }
        var tooLong = Assert.Throws<ArgumentOutOfRangeException>(() => cache.Touch(new byte[cache.MaxKeyBytes + 1], TimeSpan.FromSeconds(1)))!;
        Assert.That(tooLong.ParamName, Is.EqualTo("key"));
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.That(cache.ContainsKey(key), Is.False, "the refused touches left the old time to live");
        cache.ValidateInvariants();
    }

    [Test]
    public void AnEvictionListenerMayNotTouch()
    {
        var time = new FakeTimeProvider();
        OffHeapCache? self = null;
        Exception? seen = null;
        using OffHeapCache cache = TtlTests.Create(time, maxEntries: 1, listener: (key, _) =>
        {
            try
            {
                self!.Touch(key, TimeSpan.FromSeconds(1));
            }
            catch (InvalidOperationException e)
            {
                seen = e;
            }
        });
        self = cache;
        cache.Set(TestKeys.Key(1), TestKeys.Value(1, 1, 20), TimeSpan.FromSeconds(1));
        time.Advance(TimeSpan.FromSeconds(1));
        cache.Set(TestKeys.Key(2), TestKeys.Value(2, 1, 20));   // reclaims the expired entry: the listener runs
        Assert.That(seen, Is.Not.Null, "a touch from the listener is refused like any other write");
        cache.ValidateInvariants();
    }

    [Test]
    public void TypedFacadeTouches()
    {
        var time = new FakeTimeProvider();
        using var typed = new OffHeapCache<long, long>(new OffHeapCacheOptions { CapacityBytes = 4 << 20, PageSize = 64 * 1024, TimeProvider = time });
        typed.Set(7, 70, TimeSpan.FromSeconds(5));
        time.Advance(TimeSpan.FromSeconds(4));
        Assert.That(typed.Touch(7, TimeSpan.FromSeconds(5)), Is.True);
        Assert.That(typed.Touch(8, TimeSpan.FromSeconds(5)), Is.False);
        time.Advance(TimeSpan.FromSeconds(4));
        Assert.That(typed.TryGetValue(7, out long value) ? value : -1, Is.EqualTo(70));
        Assert.Throws<ArgumentOutOfRangeException>(() => typed.Touch(7, TimeSpan.Zero));
        using var strings = new OffHeapCache<string, long>(new OffHeapCacheOptions { CapacityBytes = 4 << 20, PageSize = 64 * 1024 });
        Assert.Throws<ArgumentNullException>(() => strings.Touch(null!, TimeSpan.FromSeconds(1)));
    }

    [Test]
    public void ReadersRacingTouchesSeeEveryEntryWithItsOwnValue()
    {
        // Touches rewrite 8 bytes of published entries in place; readers racing them must still find every live
        // key with its own value (a write at a wrong offset, or into the wrong chunk, shows here). What it cannot
        // show on x64: a missing version change around the write (an aligned 8-byte store is never torn there,
        // and both expiries are live); that rests on the argument in docs/engine.md, Reads.
        var time = new ManualClock();
        using OffHeapCache cache = TtlTests.Create(time, capacity: 16 << 20);
        const int Keys = 64;
        var keys = new byte[Keys][];
        var values = new byte[Keys][];
        for (int i = 0; i < Keys; i++)
        {
            keys[i] = TestKeys.Key(i);
            values[i] = TestKeys.Value(i, 1, 40 + i);
            Assert.That(cache.Set(keys[i], values[i], TimeSpan.FromDays(1)), Is.True);
        }
        // Counted, not timed, on threads of their own (the thread pool may be busy with other tests): the reader
        // keeps reading until the toucher is done, and the toucher keeps touching until the reader has started.
        const int Touches = 200_000;
        long reads = 0, wrong = 0;
        int touchesDone = 0;
        var readerStarted = new ManualResetEventSlim();
        var toucher = new Thread(() =>
        {
            readerStarted.Wait();
            for (int n = 0; n < Touches; n++)
            {
                if (!cache.Touch(keys[n % Keys], (n & 1) == 0 ? TimeSpan.FromDays(2) : Timeout.InfiniteTimeSpan))
                {
                    Interlocked.Increment(ref wrong);
                }
            }
            Volatile.Write(ref touchesDone, 1);
        });
        var reader = new Thread(() =>
        {
            var buffer = new byte[256];
            readerStarted.Set();
            for (int n = 0; Volatile.Read(ref touchesDone) == 0 || n < 10_000; n++)
            {
                int i = n % Keys;
                if (!cache.TryGet(keys[i], buffer, out int written) || !buffer.AsSpan(0, written).SequenceEqual(values[i]))
                {
                    Interlocked.Increment(ref wrong);
                }
                reads++;
            }
        });
        toucher.Start();
        reader.Start();
        toucher.Join();
        reader.Join();
        TestContext.Out.WriteLine($"{Touches} touches, {reads} reads");
        Assert.That(wrong, Is.Zero);
        cache.ValidateInvariants();
    }

    [Test]
    public void APrefixReadCopiesTheValuesFirstBytesAndCountsNothing()
    {
        // The distributed cache re-reads only an entry's 16-byte expiration header before it renews it with Touch.
        using OffHeapCache cache = TtlTests.Create(new FakeTimeProvider());
        byte[] longKey = TestKeys.Key(1), shortKey = TestKeys.Key(2), longValue = TestKeys.Value(1, 1, 100), shortValue = TestKeys.Value(2, 1, 10);
        cache.Set(longKey, longValue);
        cache.Set(shortKey, shortValue);
        CacheStatistics before = cache.GetStatistics();
        Span<byte> prefix = stackalloc byte[16];

        Assert.That(cache.TryGetPrefixUncounted(longKey, prefix, out int length), Is.True);
        Assert.That(length, Is.EqualTo(100), "the whole value's length");
        Assert.That(prefix.SequenceEqual(longValue.AsSpan(0, 16)), Is.True);
        prefix.Clear();
        Assert.That(cache.TryGetPrefixUncounted(shortKey, prefix, out length), Is.True);
        Assert.That(length, Is.EqualTo(10));
        Assert.That(prefix[..10].SequenceEqual(shortValue) && prefix[10..].IndexOfAnyExcept((byte)0) < 0, Is.True, "10 bytes copied, the rest untouched");
        Assert.That(cache.TryGetPrefixUncounted(TestKeys.Key(3), prefix, out length), Is.False);
        Assert.That(length, Is.Zero);

        CacheStatistics after = cache.GetStatistics();
        Assert.That((after.Hits, after.Misses), Is.EqualTo((before.Hits, before.Misses)), "uncounted");
        Assert.That(cache.TryGet(longKey, new byte[16], out length), Is.False, "the public TryGet still says too small");
        Assert.That(length, Is.EqualTo(100));
    }
}

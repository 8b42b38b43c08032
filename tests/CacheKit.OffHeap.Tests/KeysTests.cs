using System.Buffers;
using System.Text;

namespace CacheKit.OffHeap.Tests;

public class KeysTests
{
    private static byte[] Key(int i) => Encoding.ASCII.GetBytes($"key:{i:D8}");

    private static int IdOf(byte[] key) => int.Parse(Encoding.ASCII.GetString(key, 4, 8));

    private static OffHeapCacheOptions Options(int shards = 4) => new() { CapacityBytes = 32 << 20, PageSize = 64 * 1024, ShardCount = shards };

    [Test]
    public void EveryLiveKeyOnceAndNothingElse()
    {
        var time = new ManualClock();
        OffHeapCacheOptions options = Options();
        options.TimeProvider = time;
        using var cache = new OffHeapCache(options);
        Assert.That(cache.Keys, Is.Empty);

        // 30,000 keys of 12 bytes: several batches per shard (ended by the 28,672-slot bound here; the count bound is
        // KeysResumeExactlyAfterABatchFilledByCount's).
        for (int i = 0; i < 30_000; i++)
        {
            Assert.That(i % 10 == 7 ? cache.Set(Key(i), "v"u8, TimeSpan.FromSeconds(5)) : cache.Set(Key(i), "v"u8), Is.True);
        }
        for (int i = 0; i < 30_000; i += 100)
        {
            cache.Remove(Key(i));
        }
        time.Advance(TimeSpan.FromSeconds(6));   // the keys with a time to live expire, unreclaimed

        CacheStatistics before = cache.GetStatistics();
        List<int> ids = cache.Keys.Select(IdOf).ToList();
        int[] expected = Enumerable.Range(0, 30_000).Where(i => i % 100 != 0 && i % 10 != 7).ToArray();
        Assert.That(ids, Has.Count.EqualTo(expected.Length), "no key twice");
        Assert.That(ids, Is.EquivalentTo(expected));

        CacheStatistics after = cache.GetStatistics();
        Assert.That((after.Hits, after.Misses, after.Count), Is.EqualTo((before.Hits, before.Misses, before.Count)),
            "not a lookup, and nothing reclaimed");
    }

    [Test]
    public void KeysResumeExactlyAfterABatchFilledByCount()
    {
        // A dense index (MaxEntries = 20,000 in one shard): some batch stops at 4,096 keys, inside its slot bound, and
        // the next must start at the slot it refused (keys never fill a batch's bytes: the longest key is under 64 KiB).
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 16 << 20, PageSize = 64 * 1024, ShardCount = 1, MaxEntries = 20_000 });
        for (int i = 0; i < 20_000; i++)
        {
            cache.Set(Key(i), "v"u8);
        }
        Shard shard = cache.Shards[0];
        using var batch = new EntryBatch(withValues: false);
        bool endedByCount = false;
        lock (shard.Gate)
        {
            for (int slot = 0; slot < shard.SlotCount;)
            {
                batch.Clear();
                slot = shard.CopyEntriesUnsynchronized(slot, batch);
                endedByCount |= batch.Count == EntryBatch.MaxEntries;
            }
        }
        Assert.That(endedByCount, Is.True, "a batch was ended by its entry count");
        List<int> ids = cache.Keys.Select(IdOf).ToList();
        Assert.That(ids, Is.Unique);
        Assert.That(ids, Has.Count.EqualTo(cache.Count));
    }

    [Test]
    public void TheCallerMayRemoveWhatItEnumerates()
    {
        using var cache = new OffHeapCache(Options(shards: 2));
        for (int i = 0; i < 20_000; i++)
        {
            cache.Set(Key(i), BitConverter.GetBytes(i));
        }
        int removed = 0;
        foreach (byte[] key in cache.Keys)
        {
            if (IdOf(key) % 2 == 0 && cache.Remove(key))
            {
                removed++;
            }
        }
        Assert.That(removed, Is.EqualTo(10_000));
        Assert.That(cache.Count, Is.EqualTo(10_000));
        Assert.That(cache.Keys.Select(IdOf).All(id => id % 2 == 1), Is.True);
        cache.ValidateInvariants();
    }

    /// <summary><see cref="OffHeapCache.Keys"/> or <see cref="OffHeapCache.Entries"/> (the same walk), as objects.</summary>
    private static IEnumerable<object> Enumerate(OffHeapCache cache, bool entries)
        => entries ? cache.Entries.Select(e => (object)e) : cache.Keys;

    [TestCase(false)]
    [TestCase(true)]
    public void ADisposedCacheRefusesTheNextBatchAndTheProperty(bool entries)
    {
        var cache = new OffHeapCache(Options(shards: 1));
        for (int i = 0; i < 20_000; i++)
        {
            cache.Set(Key(i), "v"u8);
        }
        using IEnumerator<object> items = Enumerate(cache, entries).GetEnumerator();
        Assert.That(items.MoveNext(), Is.True);
        cache.Dispose();   // does not wait for the enumeration: it holds nothing between batches
        Assert.Throws<ObjectDisposedException>(() =>
        {
            while (items.MoveNext())
            {
            }
        });
        Assert.Throws<ObjectDisposedException>(() => Enumerate(cache, entries));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void AnEvictionListenerMayNotEnumerate(bool entries)
    {
        OffHeapCache? cache = null;
        Exception? fromListener = null;
        OffHeapCacheOptions options = new() { CapacityBytes = 4 << 20, PageSize = 64 * 1024, ShardCount = 1, MaxEntries = 100 };
        options.EvictionListener = (_, _) =>
        {
            try
            {
                _ = Enumerate(cache!, entries).Count();
            }
            catch (InvalidOperationException e)
            {
                fromListener ??= e;
            }
        };
        using (cache = new OffHeapCache(options))
        {
            for (int i = 0; i < 1_000 && fromListener is null; i++)
            {
                cache.Set(Key(i), "v"u8);
            }
            Assert.That(fromListener, Is.Not.Null, "an eviction ran the listener");
            Assert.That(fromListener!.Message, Does.Contain("eviction listener"));
            cache.ValidateInvariants();
        }
    }

    [Test]
    public void TheTypedViewDeserializesTheKeys()
    {
        using var cache = new OffHeapCache<string, int>(Options());
        for (int i = 0; i < 1_000; i++)
        {
            cache.Set($"user:{i}", i);
        }
        Assert.That(cache.Keys, Is.EquivalentTo(Enumerable.Range(0, 1_000).Select(i => $"user:{i}")));
        cache.Dispose();
        Assert.Throws<ObjectDisposedException>(() => _ = cache.Keys);
    }

    [Test]
    public void OneLockHoldVisitsABoundedNumberOfSlotsWhateverItCopies()
    {
        // A large index of expired entries fills no batch room; the slot bound must end the hold anyway.
        var time = new ManualClock();
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 64 << 20, PageSize = 64 * 1024, ShardCount = 1, MaxEntries = 100_000, TimeProvider = time,
        });
        for (int i = 0; i < 60_000; i++)
        {
            cache.Set(Key(i), "v"u8, TimeSpan.FromSeconds(1));
        }
        time.Advance(TimeSpan.FromSeconds(2));
        Shard shard = cache.Shards[0];
        Assert.That(shard.SlotCount, Is.GreaterThan(3 * Shard.MaxSlotsPerBatch));
        using var batch = new EntryBatch(withValues: false);
        lock (shard.Gate)
        {
            Assert.That(shard.CopyEntriesUnsynchronized(0, batch), Is.EqualTo(Shard.MaxSlotsPerBatch));
            Assert.That(shard.CopyEntriesUnsynchronized(5, batch), Is.EqualTo(5 + Shard.MaxSlotsPerBatch), "the bound counts from where the walk resumes");
            Assert.That(batch.Count, Is.Zero);
            int last = shard.SlotCount - 10;
            Assert.That(shard.CopyEntriesUnsynchronized(last, batch), Is.EqualTo(shard.SlotCount), "the last batch ends at the index's end");
        }
        Assert.That(cache.Keys, Is.Empty);
    }

    [Test]
    public void AListenerOfAnotherCacheMayNotEnumerateEither()
    {
        using var other = new OffHeapCache(Options(shards: 2));
        other.Set("x"u8, "y"u8);
        Exception? fromListener = null;
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 4 << 20, PageSize = 64 * 1024, ShardCount = 1, MaxEntries = 100,
            EvictionListener = (_, _) =>
            {
                try
                {
                    _ = other.Keys.Count();
                }
                catch (InvalidOperationException e)
                {
                    fromListener ??= e;
                }
                // Single-key reads of the other cache stay allowed.
                Assert.That(other.ContainsKey("x"u8), Is.True);
            },
        });
        for (int i = 0; i < 1_000 && fromListener is null; i++)
        {
            cache.Set(Key(i), "v"u8);
        }
        Assert.That(fromListener, Is.Not.Null);
        Assert.That(other.Keys.Count(), Is.EqualTo(1), "outside a listener it enumerates");
    }

    [Test]
    public void TheBatchBufferGoesBackToThePoolWithoutTheKeys()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 8 << 20, PageSize = 64 * 1024, ShardCount = 1, MaxKeyBytes = 64 });
        for (int i = 0; i < 10_000; i++)   // more keys than one batch: the buffer is refilled
        {
            cache.Set(Key(i), "v"u8);
        }
        // This thread's slot of the shared pool may hold another test's array (with key bytes of its own): rent it, clear
        // it and give it back, so that the batch rents exactly it and returns it to the same slot.
        byte[] rented = ArrayPool<byte>.Shared.Rent(64 * 1024);
        Array.Clear(rented);
        ArrayPool<byte>.Shared.Return(rented);
        using (IEnumerator<byte[]> keys = cache.Keys.GetEnumerator())
        {
            while (keys.MoveNext())
            {
            }
        }
        // The shared pool keeps the array just returned on this thread and hands it out again.
        rented = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            Assert.That(rented.AsSpan().IndexOf("key:"u8), Is.EqualTo(-1), "no key bytes left in a pooled array");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }
}

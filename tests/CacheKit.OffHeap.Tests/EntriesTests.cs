using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace CacheKit.OffHeap.Tests;

/// <summary><see cref="OffHeapCache.Entries"/> and the typed view's: every live entry once with its value, in batches
/// bounded by bytes as well as by count, resumed at the exact slot where a full batch stopped.</summary>
public class EntriesTests
{
    // Keys of 5 to 40 bytes (TestKeys), unlike KeysTests' fixed 12.
    private static byte[] Key(int i) => TestKeys.Key(i);

    private static int IdOf(byte[] key) => TestKeys.IdOf(key);

    /// <summary>A value that names its key and its version, <paramref name="length"/> bytes (at least 8).</summary>
    private static byte[] Value(int id, int version, int length)
    {
        var value = new byte[length];
        BinaryPrimitives.WriteInt32LittleEndian(value, id);
        BinaryPrimitives.WriteInt32LittleEndian(value.AsSpan(4), version);
        for (int i = 8; i < length; i++)
        {
            value[i] = (byte)(id + version + i);
        }
        return value;
    }

    private static int LengthOf(int id) => 8 + (id * 37 % 700);

    private static OffHeapCacheOptions Options(int shards = 4) => new() { CapacityBytes = 64 << 20, PageSize = 64 * 1024, ShardCount = shards };

    [Test]
    public void EveryLiveEntryOnceWithItsValue()
    {
        var time = new ManualClock();
        OffHeapCacheOptions options = Options();
        options.TimeProvider = time;
        using var cache = new OffHeapCache(options);
        Assert.That(cache.Entries, Is.Empty);

        // 20,000 entries of 8 to 707 bytes (about 7 MB): a batch is bound by its 64 KiB long before its 4,096 entries,
        // so most batches stop at a slot that the next one must take, once.
        for (int i = 0; i < 20_000; i++)
        {
            byte[] value = Value(i, 0, LengthOf(i));
            Assert.That(i % 10 == 7 ? cache.Set(Key(i), value, TimeSpan.FromSeconds(5)) : cache.Set(Key(i), value), Is.True);
        }
        for (int i = 0; i < 20_000; i += 100)
        {
            cache.Remove(Key(i));
        }
        for (int i = 1; i < 20_000; i += 100)
        {
            cache.Set(Key(i), Value(i, 1, LengthOf(i + 1)));   // rewritten in place or moved: the new value is what is read
        }
        time.Advance(TimeSpan.FromSeconds(6));   // the entries with a time to live (other than the rewritten) expire, unreclaimed

        CacheStatistics before = cache.GetStatistics();
        var seen = new Dictionary<int, byte[]>();
        foreach (KeyValuePair<byte[], byte[]> entry in cache.Entries)
        {
            Assert.That(seen.TryAdd(IdOf(entry.Key), entry.Value), Is.True, "no entry twice");
        }
        int[] expected = Enumerable.Range(0, 20_000).Where(i => i % 100 != 0 && i % 10 != 7).ToArray();
        Assert.That(seen.Keys, Is.EquivalentTo(expected));
        foreach (int id in expected)
        {
            byte[] value = id % 100 == 1 ? Value(id, 1, LengthOf(id + 1)) : Value(id, 0, LengthOf(id));
            Assert.That(seen[id], Is.EqualTo(value), $"the value of {id}");
        }

        CacheStatistics after = cache.GetStatistics();
        Assert.That((after.Hits, after.Misses, after.Count), Is.EqualTo((before.Hits, before.Misses, before.Count)),
            "not a lookup, and nothing reclaimed");
    }

    [Test]
    public void ABatchIsBoundByBytesAndResumesAtTheSlotItRefused()
    {
        // A dense index (MaxEntries sizes it for 2,000 entries), so that the bytes end each batch, not the slot bound.
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 64 << 20, PageSize = 64 * 1024, ShardCount = 1, MaxEntries = 2_000 });
        for (int i = 0; i < 2_000; i++)
        {
            cache.Set(Key(i), Value(i, 0, 500));
        }
        Shard shard = cache.Shards[0];
        using var batch = new EntryBatch(withValues: true);
        var ids = new List<int>();
        int batches = 0, endedByBytes = 0;
        lock (shard.Gate)
        {
            int slot = 0;
            while (slot < shard.SlotCount)
            {
                batch.Clear();
                int start = slot;
                slot = shard.CopyEntriesUnsynchronized(slot, batch);
                batches++;
                if (slot < shard.SlotCount && slot < start + Shard.MaxSlotsPerBatch && batch.Count < EntryBatch.MaxEntries)
                {
                    endedByBytes++;
                }
                int bytes = 0;
                for (int i = 0; i < batch.Count; i++)
                {
                    ids.Add(IdOf(batch.KeyAt(i).ToArray()));
                    Assert.That(batch.ValueAt(i).ToArray(), Is.EqualTo(Value(ids[^1], 0, 500)));
                    bytes += batch.KeyAt(i).Length + batch.ValueAt(i).Length;
                }
                Assert.That(bytes, Is.LessThanOrEqualTo(EntryBatch.BufferBytes), "a hold copies at most the buffer");
            }
        }
        Assert.That(ids, Is.EquivalentTo(Enumerable.Range(0, 2_000)));
        Assert.That(endedByBytes, Is.EqualTo(batches - 1), "the bytes, not the count or the slot bound, ended every batch but the last");
    }

    [Test]
    public void AnEntryLargerThanTheBatchBufferIsReturnedWhole()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 64 << 20, PageSize = 1 << 20, ShardCount = 1 });
        int[] lengths = [100, 200_000, 70_000, 8, 900_000, 65_536, 40];
        for (int i = 0; i < lengths.Length; i++)
        {
            Assert.That(cache.Set(Key(i), Value(i, 0, lengths[i])), Is.True);
        }
        Dictionary<int, byte[]> seen = cache.Entries.ToDictionary(e => IdOf(e.Key), e => e.Value);
        Assert.That(seen.Keys, Is.EquivalentTo(Enumerable.Range(0, lengths.Length)));
        for (int i = 0; i < lengths.Length; i++)
        {
            Assert.That(seen[i], Is.EqualTo(Value(i, 0, lengths[i])), $"entry {i} of {lengths[i]} bytes");
        }
    }

    [Test]
    public void TheBatchRefusesAnOversizedEntryWithItsSizeAndTakesItAfterGrowing()
    {
        using var batch = new EntryBatch(withValues: true);
        byte[] large = new byte[EntryBatch.BufferBytes + 1];
        Assert.That(batch.TryAdd("a"u8, "1"u8), Is.True);
        Assert.That(batch.TryAdd("b"u8, large), Is.False, "a batch with entries refuses what does not fit");
        Assert.That((batch.Count, batch.NeededBytes), Is.EqualTo((1, 0)), "and notes no size: the next batch starts with it");
        batch.Clear();
        Assert.That(batch.TryAdd("b"u8, large), Is.False, "an empty batch refuses an entry larger than its buffer");
        Assert.That(batch.NeededBytes, Is.EqualTo(large.Length + 1), "with the size it needs");
        batch.GrowForRefusedEntry();   // the caller does this outside the shard's lock
        Assert.That(batch.TryAdd("b"u8, large), Is.True);
        Assert.That(batch.ValueAt(0).Length, Is.EqualTo(large.Length));
        Assert.That(batch.TryAdd("c"u8, "3"u8), Is.False, "the entry that needed the grown buffer comes alone");
        batch.Clear();
        Assert.That(batch.TryAdd("b"u8, large), Is.False, "Clear went back to the usual buffer");
        batch.GrowForRefusedEntry();
        byte[] value31 = new byte[31];
        Assert.That(batch.TryAdd("s"u8, value31), Is.True, "a grown buffer whose entry shrank meanwhile takes small ones");
        int small = 1;
        while (batch.TryAdd("s"u8, value31))
        {
            small++;
        }
        Assert.That(small, Is.EqualTo(EntryBatch.BufferBytes / 32), "but only BufferBytes of them, not the grown size");
        batch.Clear();
        int taken = 0;
        while (batch.TryAdd("k"u8, value31))
        {
            taken++;
        }
        Assert.That(taken, Is.EqualTo(EntryBatch.BufferBytes / 32), "back to the usual 64 KiB after Clear (the grown buffer held more)");

        using var keysOnly = new EntryBatch(withValues: false);
        for (int i = 0; i < EntryBatch.MaxEntries; i++)
        {
            Assert.That(keysOnly.TryAdd("k"u8, large), Is.True, "a keys-only batch copies no value");
        }
        Assert.That(keysOnly.TryAdd("k"u8, default), Is.False, "at most MaxEntries");
        Assert.That(keysOnly.ValueAt(0).IsEmpty, Is.True);
    }

    [TestCase(false)]
    [TestCase(true)]
    public void WhatStaysIsSeenOnceWhileOthersChurn(bool entries)
    {
        using var cache = new OffHeapCache(Options());
        const int Stable = 3_000;
        for (int i = 0; i < Stable; i++)
        {
            cache.Set(Key(i), Value(i, 0, LengthOf(i)));
        }
        using var stop = new CancellationTokenSource();
        Exception? writerFailure = null;
        var writer = new Thread(() =>
        {
            try
            {
                var random = new Random(7);
                for (int version = 0; !stop.IsCancellationRequested; version++)
                {
                    int id = 1_000_000 + random.Next(20_000);
                    if (random.Next(3) != 0)
                    {
                        cache.Set(Key(id), Value(id, version, 8 + random.Next(600)));
                    }
                    else
                    {
                        cache.Remove(Key(id));
                    }
                }
            }
            catch (Exception e)
            {
                writerFailure = e;
            }
        }) { IsBackground = true };
        writer.Start();
        try
        {
            for (int round = 0; round < 10; round++)
            {
                var seen = new HashSet<int>();
                IEnumerable<KeyValuePair<byte[], byte[]?>> listed = entries
                    ? cache.Entries.Select(e => new KeyValuePair<byte[], byte[]?>(e.Key, e.Value))
                    : cache.Keys.Select(k => new KeyValuePair<byte[], byte[]?>(k, null));
                foreach ((byte[] key, byte[]? value) in listed)
                {
                    int id = IdOf(key);
                    if (value is not null)
                    {
                        Assert.That(value, Has.Length.GreaterThanOrEqualTo(8));
                        Assert.That(BinaryPrimitives.ReadInt32LittleEndian(value), Is.EqualTo(id), "a value belongs to its key");
                        int version = BinaryPrimitives.ReadInt32LittleEndian(value.AsSpan(4));
                        Assert.That(value, Is.EqualTo(Value(id, version, value.Length)), "one whole version, never torn");
                    }
                    if (id < Stable)
                    {
                        Assert.That(seen.Add(id), Is.True, $"stable entry {id} twice");
                    }
                    else
                    {
                        Assert.That(id, Is.GreaterThanOrEqualTo(1_000_000), "an entry that was never stored");
                    }
                }
                Assert.That(seen, Has.Count.EqualTo(Stable), "every stable entry");
            }
        }
        finally
        {
            stop.Cancel();
            writer.Join();
        }
        Assert.That(writerFailure, Is.Null);
        cache.ValidateInvariants();
    }

    [Test]
    public void EnumeratingIsNotALookupForThePolicy()
    {
        // An LRU cache of 100 entries filled in order 0-99: inserting 50 more must evict 0-49, the oldest. Had the walk
        // touched the policy, it would have refreshed every entry in slot (hash) order and a random half would go.
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 4 << 20, PageSize = 64 * 1024, ShardCount = 1, MaxEntries = 100, Policy = CachePolicy.Lru,
        });
        for (int i = 0; i < 100; i++)
        {
            cache.Set(Key(i), Value(i, 0, 16));
        }
        Assert.That(cache.Entries.Count(), Is.EqualTo(100));
        Assert.That(cache.Keys.Count(), Is.EqualTo(100));
        for (int i = 100; i < 150; i++)
        {
            cache.Set(Key(i), Value(i, 0, 16));
        }
        Assert.That(Enumerable.Range(0, 50).Any(i => cache.ContainsKey(Key(i))), Is.False, "the oldest went first");
        Assert.That(Enumerable.Range(50, 100).All(i => cache.ContainsKey(Key(i))), Is.True, "the rest stayed");
    }

    [Test]
    public void TheTypedViewDeserializesKeysAndValues()
    {
        using var cache = new OffHeapCache<string, long>(Options());
        for (int i = 0; i < 1_000; i++)
        {
            cache.Set($"user:{i}", i * 3L);
        }
        Dictionary<string, long> entries = cache.Entries.ToDictionary(e => e.Key, e => e.Value);
        Assert.That(entries, Is.EquivalentTo(Enumerable.Range(0, 1_000).ToDictionary(i => $"user:{i}", i => i * 3L)));
        cache.Dispose();
        Assert.Throws<ObjectDisposedException>(() => _ = cache.Entries);
    }

    [Test]
    public void TheTypedViewReadsJsonRecords()
    {
        using var cache = new OffHeapCache<int, Order>(Options(), valueSerializer: new SystemTextJsonSerializer<Order>());
        for (int i = 0; i < 300; i++)
        {
            cache.Set(i, new Order(i, $"customer {i}", [i, i + 1]));
        }
        foreach ((int id, Order order) in cache.Entries)
        {
            Assert.That((order.Id, order.Customer, order.Items), Is.EqualTo((id, $"customer {id}", new[] { id, id + 1 })));
        }
        Assert.That(cache.Entries.Count(), Is.EqualTo(300));
    }

    public sealed record Order(int Id, string Customer, int[] Items);

    [Test]
    public void TheBatchBufferGoesBackToThePoolWithoutTheValues()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 8 << 20, PageSize = 64 * 1024, ShardCount = 1 });
        byte[] secret = Encoding.ASCII.GetBytes("secret-value-bytes");
        for (int i = 0; i < 5_000; i++)   // about 150 KB of entries: the buffer is refilled
        {
            cache.Set(Key(i), secret);
        }
        // As in KeysTests: this thread's slot of the shared pool may hold another test's array; rent it, clear it and give
        // it back, so that the batch rents exactly it and returns it to the same slot.
        byte[] rented = ArrayPool<byte>.Shared.Rent(EntryBatch.BufferBytes);
        Array.Clear(rented);
        ArrayPool<byte>.Shared.Return(rented);
        using (IEnumerator<KeyValuePair<byte[], byte[]>> entries = cache.Entries.GetEnumerator())
        {
            while (entries.MoveNext())
            {
            }
        }
        rented = ArrayPool<byte>.Shared.Rent(EntryBatch.BufferBytes);
        try
        {
            Assert.That(rented.AsSpan().IndexOf(secret), Is.EqualTo(-1), "no value bytes left in a pooled array");
            Assert.That(rented.AsSpan().IndexOf("key:"u8), Is.EqualTo(-1), "no key bytes either");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    [Test]
    public void ABufferGrownForALargeEntryGoesBackToThePoolWithoutIt()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 64 << 20, PageSize = 1 << 20, ShardCount = 1 });
        byte[] large = new byte[200_000];
        for (int i = 0; i < large.Length; i++)
        {
            large[i] = (byte)('A' + (i % 20));
        }
        cache.Set(Key(1), large);
        for (int i = 2; i < 50; i++)
        {
            cache.Set(Key(i), "v"u8);
        }
        // As above: make this thread's pool slot for the grown size a cleared array, which the batch then rents and returns.
        int grownSize = Key(1).Length + large.Length;
        byte[] rented = ArrayPool<byte>.Shared.Rent(grownSize);
        Array.Clear(rented);
        ArrayPool<byte>.Shared.Return(rented);
        Assert.That(cache.Entries.Single(e => e.Value.Length == large.Length).Value, Is.EqualTo(large));
        rented = ArrayPool<byte>.Shared.Rent(grownSize);
        try
        {
            Assert.That(rented.AsSpan().IndexOf(large.AsSpan(0, 64)), Is.EqualTo(-1), "no value bytes left in the grown buffer");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    [Test]
    public void EnumeratingRenewsNoTimeToLive()
    {
        var time = new ManualClock();
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 8 << 20, PageSize = 64 * 1024, ShardCount = 1, TimeProvider = time });
        cache.Set(Key(1), Value(1, 0, 16), TimeSpan.FromSeconds(5));
        time.Advance(TimeSpan.FromSeconds(3));
        Assert.That(cache.Entries.Select(e => IdOf(e.Key)), Is.EqualTo(new[] { 1 }));
        Assert.That(cache.Keys.Select(IdOf), Is.EqualTo(new[] { 1 }));
        time.Advance(TimeSpan.FromSeconds(3));   // 6 s after the set: expired, as if never enumerated
        Assert.That(cache.ContainsKey(Key(1)), Is.False);
        Assert.That(cache.Entries, Is.Empty);
    }

    [Test]
    public void ForEachEntryVisitsWhatEntriesListsWithoutAnArrayPerEntry()
    {
        var time = new ManualClock();
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 256 << 20, PageSize = 1 << 20, ShardCount = 2, TimeProvider = time });
        for (int i = 0; i < 10_000; i++)
        {
            byte[] value = Value(i, 0, i == 5 ? 300_000 : LengthOf(i));   // one entry larger than a batch's buffer
            Assert.That(i % 10 == 7 ? cache.Set(Key(i), value, TimeSpan.FromSeconds(5)) : cache.Set(Key(i), value), Is.True);
        }
        time.Advance(TimeSpan.FromSeconds(6));
        Dictionary<int, byte[]> listed = cache.Entries.ToDictionary(e => IdOf(e.Key), e => e.Value);
        var visited = new Dictionary<int, byte[]>();
        cache.ForEachEntry(visited, static (key, value, seen) =>
        {
            Assert.That(seen.TryAdd(TestKeys.IdOf(key), value.ToArray()), Is.True, "no entry twice");
            return true;
        });
        Assert.That(visited.Keys, Is.EquivalentTo(Enumerable.Range(0, 10_000).Where(i => i % 10 != 7)));
        Assert.That(listed.Keys, Is.EquivalentTo(visited.Keys));
        Assert.That(visited.All(v => v.Value.AsSpan().SequenceEqual(listed[v.Key])), Is.True, "the same values as Entries");
        Assert.That(visited[5], Has.Length.EqualTo(300_000));

        // Warm (the shared pool holds the batch's buffers): a whole walk over 9,000 entries with a static visitor allocates
        // the batch object alone (48 B measured), nothing per entry.
        var sum = new StrongBox<long>();
        void Walk() => cache.ForEachEntry(sum, static (key, value, total) =>
        {
            total.Value += key.Length + value.Length;
            return true;
        });
        Walk();
        long allocated = Allocations.LeastOfThreeRuns(Walk);
        Assert.That(allocated, Is.LessThanOrEqualTo(64), "bytes allocated by a walk of 9,000 entries");
        Assert.That(sum.Value, Is.GreaterThan(0));
    }

    [Test]
    public void ForEachEntryStopsWhenTheVisitorSaysSoAndLetsItWrite()
    {
        using var cache = new OffHeapCache(Options());
        for (int i = 0; i < 5_000; i++)
        {
            cache.Set(Key(i), Value(i, 0, 32));
        }
        int calls = 0;
        cache.ForEachEntry(cache, (key, _, c) =>
        {
            c.Remove(key);   // the visitor runs outside the cache's locks: writing is fine
            return ++calls < 100;
        });
        Assert.That(calls, Is.EqualTo(100), "stopped at the first false");
        Assert.That(cache.Count, Is.EqualTo(4_900));
        cache.ValidateInvariants();

        Assert.Throws<ArgumentNullException>(() => cache.ForEachEntry<int>(0, null!));
        cache.Dispose();
        Assert.Throws<ObjectDisposedException>(() => cache.ForEachEntry(0, static (_, _, _) => true));
    }
}

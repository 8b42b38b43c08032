using CacheKit.Policies;

namespace CacheKit.OffHeap.Tests;

/// <summary>The bounded drain a reader does when its read-buffer stripe is full (Shard.TryDrainOwnStripe).</summary>
[TestFixture]
public sealed class ReaderDrainTests
{
    /// <summary>A policy that only records the hits it is told (for checking the replay order).</summary>
    private sealed class RecordingPolicy : IEvictionPolicy
    {
        public List<(int Handle, ulong Hash)> Hits { get; } = [];
        public string Name => "recording";
        public long Capacity => 1;
        public int MaxHandles => 1 << 20;
        public int Count => 0;
        public long Weight => 0;
        public bool ConcurrentHits => false;
        public void OnHit(int handle, ulong keyHash) => Hits.Add((handle, keyHash));
        public void OnMiss(ulong keyHash) { }
        public void OnAdd(int handle, ulong keyHash, long weight) { }
        public void OnUpdate(int handle, ulong keyHash, long newWeight) { }
        public void OnRemove(int handle) { }
        public int SelectVictim() => -1;
        public bool ShouldAdmit(ulong candidateKeyHash, long weight) => true;
        public void Clear() { }
    }

    [Test]
    public void BoundedDrainReplaysTheOldestRecordsOfTheFullStripeAndFreesExactlyThatManySlots()
    {
        var buffer = new ReadBuffer(stripes: 1);
        var policy = new RecordingPolicy();
        for (int i = 0; i < ReadBuffer.SlotsPerStripe; i++)
        {
            Assert.That(buffer.TryRecordHit(i, (ulong)i), Is.True);
        }
        Assert.That(buffer.TryRecordHit(999, 999), Is.False, "a full stripe drops");

        Assert.That(buffer.DrainOwnStripeUnsynchronized(policy, Shard.ReaderDrainRecords), Is.EqualTo(Shard.ReaderDrainRecords));
        Assert.That(policy.Hits, Is.EqualTo(Enumerable.Range(0, Shard.ReaderDrainRecords).Select(i => (i, (ulong)i))), "oldest first, in order");

        for (int i = 0; i < Shard.ReaderDrainRecords; i++)
        {
            Assert.That(buffer.TryRecordHit(100 + i, (ulong)(100 + i)), Is.True, "a drained slot is reusable");
        }
        Assert.That(buffer.TryRecordHit(999, 999), Is.False, "full again after exactly the drained count");

        policy.Hits.Clear();
        Assert.That(buffer.DrainUnsynchronized(policy), Is.EqualTo(ReadBuffer.SlotsPerStripe), "a full drain (a remove's, the sweep's, the background replay's) takes the rest");
        var expected = Enumerable.Range(Shard.ReaderDrainRecords, ReadBuffer.SlotsPerStripe - Shard.ReaderDrainRecords).Select(i => (i, (ulong)i))
            .Concat(Enumerable.Range(100, Shard.ReaderDrainRecords).Select(i => (i, (ulong)i)));
        Assert.That(policy.Hits, Is.EqualTo(expected), "nothing lost or replayed twice");
        Assert.That(buffer.DrainOwnStripeUnsynchronized(policy, 1), Is.Zero);
    }

    [Test]
    public void BoundedDrainRejectsABoundBelowOne()
    {
        var buffer = new ReadBuffer(stripes: 1);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => buffer.DrainOwnStripeUnsynchronized(new RecordingPolicy(), 0));
        Assert.That(ex!.ParamName, Is.EqualTo("maxRecords"));
    }

    [Test]
    public void ReadsThatKeepFillingTheStripeAreAllCountedAndTheCacheStaysValid()
    {
        // One thread, W-TinyLFU: every 9th read finds its stripe full and drains 8 records under the lock.
        // One shard, one stripe: every read (hit or miss) lands on the same stripe, so the drains are visible
        // as drops of PendingReads between two reads with no write in between.
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 16 << 20, MaxEntries = 1000, ShardCount = 1, HashSeed = 7, ReadBufferStripes = 1,
        });
        byte[] value = new byte[100];
        for (int k = 0; k < 500; k++)
        {
            cache.Set(BitConverter.GetBytes(k), value);
        }
        Span<byte> destination = stackalloc byte[128];
        long hits = 0;
        int readerDrains = 0;
        for (int i = 0; i < 20_000; i++)
        {
            long pendingBefore = cache.PendingReads;
            hits += cache.TryGet(BitConverter.GetBytes(i % 700), destination, out _) ? 1 : 0;
            if (cache.PendingReads < pendingBefore)
            {
                readerDrains++;
            }
            Assert.That(cache.PendingReads, Is.LessThanOrEqualTo(ReadBuffer.SlotsPerStripe));
            if (i % 2000 == 0)
            {
                cache.ValidateInvariants();
            }
        }
        // A full stripe drains ReaderDrainRecords and takes the read: one drain per ReaderDrainRecords reads.
        Assert.That(readerDrains, Is.GreaterThan(20_000 / (2 * Shard.ReaderDrainRecords)), "readers whose stripe is full drain it");
        CacheStatistics stats = cache.GetStatistics();
        Assert.That(stats.Hits, Is.EqualTo(hits));
        Assert.That(stats.Misses, Is.EqualTo(20_000 - hits));
        cache.ValidateInvariants();
    }

    private static OffHeapCache FilledCache(bool backgroundReplay, CachePolicy policy = CachePolicy.WTinyLfu, int maxEntries = 1000, int keys = 500, int readBufferStripes = 0)
    {
        var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            ReadBufferStripes = readBufferStripes,
            CapacityBytes = 16 << 20,
            MaxEntries = maxEntries,
            ShardCount = 1,
            Policy = policy,
            HashSeed = 7,
            BackgroundReadReplay = backgroundReplay,
        });
        byte[] value = new byte[100];
        for (int k = 0; k < keys; k++)
        {
            cache.Set(BitConverter.GetBytes(k), value);
        }
        return cache;
    }

    private static void Read(OffHeapCache cache, int reads)
    {
        Span<byte> destination = stackalloc byte[128];
        for (int i = 0; i < reads; i++)
        {
            Assert.That(cache.TryGet(BitConverter.GetBytes(i % 500), destination, out _), Is.True);
        }
    }

    private static void WaitFor(Func<bool> condition, string what)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > TimeSpan.FromSeconds(20))
            {
                Assert.Fail($"timed out waiting for {what}");
            }
            Thread.Sleep(1);
        }
    }

    [Test]
    public void InlineReplayNeverUsesThePool()
    {
        using OffHeapCache cache = FilledCache(backgroundReplay: false);
        Read(cache, 5000);
        Assert.That(cache.BackgroundReplays, Is.Zero);
        Assert.That(cache.PendingReads, Is.InRange(1, ReadBuffer.SlotsPerStripe * new ReadBuffer().StripeCount), "readers drain only when their stripe is full");
    }

    [Test]
    public void InlineReplayReaderDrainsItsFullStripe()
    {
        // One stripe, no write after the fill (whose writes drained everything): the first SlotsPerStripe reads
        // fill the stripe, the next one finds it full, drains ReaderDrainRecords and records itself.
        using OffHeapCache cache = FilledCache(backgroundReplay: false, readBufferStripes: 1);
        Assert.That(cache.PendingReads, Is.Zero);
        Read(cache, ReadBuffer.SlotsPerStripe);
        Assert.That(cache.PendingReads, Is.EqualTo(ReadBuffer.SlotsPerStripe), "a full stripe");
        Read(cache, 1);
        Assert.That(cache.PendingReads, Is.EqualTo(ReadBuffer.SlotsPerStripe - Shard.ReaderDrainRecords + 1), "the reader drained its full stripe");
        Assert.That(cache.BackgroundReplays, Is.Zero);
    }

    [Test]
    public void InlineReplayReaderDrainKeepsTheRecencyAnLruNeeds()
    {
        // LRU with a full cache, one stripe, no write between the reads: key 0 read until its stripe is full,
        // then key 1 once. That read finds the stripe full: it must drain part of it and record itself, so the
        // write's drain replays ... key 0, key 1 and the newcomer evicts key 2 (the least recently used).
        // A reader that dropped its record (no drain) would leave key 1 least recently used.
        using OffHeapCache cache = FilledCache(backgroundReplay: false, CachePolicy.Lru, maxEntries: 100, keys: 100, readBufferStripes: 1);
        Span<byte> destination = stackalloc byte[128];
        for (int i = 0; i < ReadBuffer.SlotsPerStripe + 10; i++)
        {
            Assert.That(cache.TryGet(BitConverter.GetBytes(0), destination, out _), Is.True);
        }
        Assert.That(cache.TryGet(BitConverter.GetBytes(1), destination, out _), Is.True);
        cache.Set(BitConverter.GetBytes(1000), new byte[100]);
        Assert.That(cache.ContainsKey(BitConverter.GetBytes(0)), Is.True, "key 0 was read recently");
        Assert.That(cache.ContainsKey(BitConverter.GetBytes(1)), Is.True, "key 1 was read last, on a full stripe");
        Assert.That(cache.ContainsKey(BitConverter.GetBytes(2)), Is.False, "key 2 was the least recently used");
        Assert.That(cache.ContainsKey(BitConverter.GetBytes(1000)), Is.True);
    }

    [Test]
    public void BackgroundReplayEmptiesTheBufferWithoutAWrite()
    {
        // One stripe: the write at the end replays only its own core's stripe, which is then the whole buffer.
        using OffHeapCache cache = FilledCache(backgroundReplay: true, readBufferStripes: 1);
        Assert.That(cache.PendingReads, Is.Zero, "the fill's writes drained everything");
        // Half a stripe queues the replay; nothing else runs on the cache afterwards, so the pool must empty it.
        Read(cache, ReadBuffer.SlotsPerStripe / 2);
        WaitFor(() => cache.BackgroundReplays >= 1 && cache.PendingReads == 0, "the background replay");
        long before = cache.BackgroundReplays;
        Read(cache, 20_000);
        WaitFor(() => cache.BackgroundReplays > before, "more replays while reads keep coming");
        // Fewer than half a stripe may stay until the next read or write; a write replays the rest.
        cache.Set(BitConverter.GetBytes(0), new byte[100]);
        Assert.That(cache.PendingReads, Is.Zero);
        CacheStatistics stats = cache.GetStatistics();
        Assert.That(stats.Hits, Is.EqualTo(20_000 + (ReadBuffer.SlotsPerStripe / 2)), "replays never change what the statistics count");
        cache.ValidateInvariants();
    }

    [Test]
    public void BackgroundReplayKeepsTheRecencyAnLruNeeds()
    {
        // LRU with a full cache: key 0 read (replayed in the background, no write in between), then a
        // newcomer; the victim must be key 1, the least recently used, not key 0.
        using OffHeapCache cache = FilledCache(backgroundReplay: true, CachePolicy.Lru, maxEntries: 100, keys: 100);
        Span<byte> destination = stackalloc byte[128];
        for (int i = 0; i < ReadBuffer.SlotsPerStripe / 2; i++)
        {
            Assert.That(cache.TryGet(BitConverter.GetBytes(0), destination, out _), Is.True);
        }
        WaitFor(() => cache.PendingReads == 0, "the background replay");
        cache.Set(BitConverter.GetBytes(1000), new byte[100]);
        Assert.That(cache.ContainsKey(BitConverter.GetBytes(0)), Is.True, "key 0 was read last");
        Assert.That(cache.ContainsKey(BitConverter.GetBytes(1)), Is.False, "key 1 was the least recently used");
    }

    [Test]
    public void AReplayQueuedBeforeDisposeRunsHarmlesslyAfterIt()
    {
        OffHeapCache cache = FilledCache(backgroundReplay: true);
        Read(cache, ReadBuffer.SlotsPerStripe / 2);
        Assert.That(cache.Shards.Any(s => s.BackgroundReplayQueued) || cache.BackgroundReplays >= 1, Is.True, "a replay was queued");
        // The work item runs before this (Dispose waits for it: it reads the index through its hit filter) or
        // after it (then it only ends).
        cache.Dispose();
        WaitFor(() => !cache.Shards.Any(s => s.BackgroundReplayQueued), "the queued replay to end");
        Assert.Throws<ObjectDisposedException>(() => cache.TryGet(BitConverter.GetBytes(0), new byte[128], out _));
    }

    [Test]
    public void ABackgroundReplayRunsAsAnOperationSoDisposeWaitsForIt()
    {
        // The replay's hit filter reads the native index: Dispose must not free it under a running replay.
        using OffHeapCache cache = FilledCache(backgroundReplay: true);
        Shard shard = cache.Shards[0];
        bool disposed = false;
        Task replay;
        lock (shard.Gate)
        {
            replay = Task.Run(() => cache.RunBackgroundReplay(shard));   // registered, then blocks on the lock
            Thread.Sleep(100);
            Task dispose = Task.Run(() => { cache.Dispose(); Volatile.Write(ref disposed, true); });
            Thread.Sleep(200);
            Assert.That(Volatile.Read(ref disposed), Is.False, "Dispose waits for the replay in progress");
        }
        replay.Wait();
        WaitFor(() => Volatile.Read(ref disposed), "Dispose after the replay");
    }

    [Test]
    public void AnEvictionListenerThatReadsItsOwnShardReplaysNothingMidEviction()
    {
        // The shard lock is re-entrant: a listener's read whose stripe is full used to replay records into the
        // policy between the victim's selection and its removal. Its records are now dropped instead.
        OffHeapCache? self = null;
        long decreases = 0, listenerCalls = 0;
        byte[] hot = TestKeys.Key(0);
        var buffer = new byte[64];
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 4 << 20,
            ShardCount = 1,
            MaxEntries = 100,
            Policy = CachePolicy.WTinyLfu,
            HashSeed = 3,
            EvictionListener = (_, _) =>
            {
                listenerCalls++;
                Shard shard = self!.Shards[0];
                for (int i = 0; i < 2 * Policies.ReadBuffer.SlotsPerStripe; i++)
                {
                    long before = shard.PendingReads;
                    self.TryGet(hot, buffer, out _);
                    if (shard.PendingReads < before)
                    {
                        decreases++;   // a replay ran inside the eviction
                    }
                }
            },
        });
        self = cache;
        cache.Set(hot, TestKeys.Value(0, 1, 32));
        for (int id = 1; id < 400 && listenerCalls < 20; id++)
        {
            cache.TryGet(hot, buffer, out _);   // keep the hot key frequent, so it is never the victim
            cache.Set(TestKeys.Key(id), TestKeys.Value(id, 1, 32));
        }
        Assert.That(listenerCalls, Is.GreaterThan(0), "evictions ran the listener");
        Assert.That(decreases, Is.Zero, "no records replayed from inside the listener");
        cache.ValidateInvariants();
    }
    [Test]
    public void HitsThePolicyWouldIgnoreAreNotBuffered()
    {
        // Two shards of 8,192 entries share one window choice: shard 1 follows shard 0 and has no window shadows, so no
        // key of its is sampled. An entry moved to the protected head stays stamped (HitSkipFilter) until a quarter of
        // the segment's count of moves later; its reads change nothing in the policy then, and a reader leaves them out
        // of the buffer.
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 32 << 20, MaxEntries = 16_384, ShardCount = 2, HashSeed = 7, ReadBufferStripes = 1,
        });
        byte[] value = new byte[100];
        var follower = cache.Shards[1];
        var ofFollower = new List<byte[]>();
        for (int k = 0; k < 400; k++)   // about 200 per shard: all but the newest 82 leave the window for probation
        {
            byte[] key = BitConverter.GetBytes(k);
            cache.Set(key, value);
            if (cache.ShardOf(cache.Hash(key)) == follower)
            {
                ofFollower.Add(key);
            }
        }
        Assert.That(((WTinyLfuPolicy)follower.Policy).FollowsSharedWindow, Is.True, "precondition: shard 1 follows shard 0");
        byte[] unread = BitConverter.GetBytes(-1);

        void ReadAll(IEnumerable<byte[]> keys)
        {
            Span<byte> destination = stackalloc byte[128];
            foreach (byte[] key in keys)
            {
                Assert.That(cache.TryGet(key, destination, out _), Is.True);
            }
        }

        // Every key of shard 1 read once and replayed (a write drains the buffer): ~120 entries in protected, epochs of ~30 moves.
        ReadAll(ofFollower.Take(120));
        cache.Remove(unread);
        List<byte[]> hot = ofFollower.Take(10).ToList();
        // Twice more, replayed each time: the second round moves in an epoch that began before it or during the first,
        // so every hot entry ends stamped in an epoch that 10 moves cannot end.
        ReadAll(hot);
        cache.Remove(unread);
        ReadAll(hot);
        cache.Remove(unread);
        Assert.That(follower.PendingReads, Is.Zero);

        long hitsBefore = cache.GetStatistics().Hits;
        ReadAll(hot);
        ReadAll(hot);
        ReadAll(hot);
        Assert.That(follower.PendingReads, Is.Zero, "the stamped entries' reads were left out");
        Assert.That(cache.GetStatistics().Hits - hitsBefore, Is.EqualTo(30), "and still counted as hits");

        // A key of shard 1 still in probation (read never): its read is buffered.
        ReadAll([ofFollower[150]]);
        Assert.That(follower.PendingReads, Is.EqualTo(1));
    }
}

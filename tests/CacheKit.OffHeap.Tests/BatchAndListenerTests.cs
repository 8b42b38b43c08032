using System.Buffers;

namespace CacheKit.OffHeap.Tests;

public class BatchAndListenerTests
{
    [Test]
    public void SetManyThenTryGetManyMatchSingleOperations()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 8 << 20, PageSize = 64 * 1024, ShardCount = 4 });
        var items = Enumerable.Range(0, 300)
            .Select(i => new KeyValuePair<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>>(TestKeys.Key(i % 250), TestKeys.Value(i, i, i % 90)))
            .ToArray();
        Assert.That(cache.SetMany(items), Is.EqualTo(300));
        Assert.That(cache.Count, Is.EqualTo(250), "duplicates: the later item wins");
        cache.ValidateInvariants();

        ReadOnlyMemory<byte>[] keys = Enumerable.Range(0, 260).Select(i => (ReadOnlyMemory<byte>)TestKeys.Key(i)).ToArray();
        var destination = new ArrayBufferWriter<byte>();
        var lengths = new int[keys.Length];
        Assert.That(cache.TryGetMany(keys, destination, lengths), Is.EqualTo(250));
        int offset = 0;
        for (int i = 0; i < keys.Length; i++)
        {
            if (i >= 250)
            {
                Assert.That(lengths[i], Is.EqualTo(-1));
                continue;
            }
            int last = i < 50 ? i + 250 : i;   // items 250..299 overwrote keys 0..49
            byte[] expected = TestKeys.Value(last, last, last % 90);
            Assert.That(destination.WrittenSpan.Slice(offset, lengths[i]).SequenceEqual(expected), Is.True, $"key {i}");
            offset += lengths[i];
        }
    }

    [Test]
    public void SetManyWithABadItemStoresNothing()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, PageSize = 64 * 1024, MaxKeyBytes = 50 });
        var items = new[]
        {
            new KeyValuePair<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>>(TestKeys.Key(1), new byte[10]),
            new KeyValuePair<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>>(new byte[51], new byte[10]),
        };
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.SetMany(items));
        Assert.That(cache.Count, Is.Zero);
    }

    [Test]
    public void ABadItemInTheMiddleOfABatchIsNamedByItsIndexAndNothingChanges()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, PageSize = 64 * 1024, MaxKeyBytes = 50 });
        cache.Set(TestKeys.Key(0), new byte[] { 7 });
        KeyValuePair<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>> Item(byte[] key, byte[] value) => new(key, value);

        var longKey = Assert.Throws<ArgumentOutOfRangeException>(() => cache.SetMany(new[]
        {
            Item(TestKeys.Key(0), new byte[10]), Item(TestKeys.Key(1), new byte[10]), Item(new byte[51], new byte[10]), Item(TestKeys.Key(3), new byte[10]),
        }));
        Assert.That(longKey!.ParamName, Is.EqualTo("items"));
        Assert.That(longKey.Message, Does.Contain("items[2]").And.Contain("MaxKeyBytes"));

        var largeValue = Assert.Throws<ArgumentOutOfRangeException>(() => cache.SetMany(new[]
        {
            Item(TestKeys.Key(0), new byte[10]), Item(TestKeys.Key(1), new byte[10]), Item(TestKeys.Key(2), new byte[10]), Item(TestKeys.Key(3), new byte[cache.MaxValueBytes + 1]),
        }));
        Assert.That(largeValue!.ParamName, Is.EqualTo("items"));
        Assert.That(largeValue.Message, Does.Contain("items[3]").And.Contain("MaxValueBytes"));

        var lookup = Assert.Throws<ArgumentOutOfRangeException>(() => cache.TryGetMany(
            new ReadOnlyMemory<byte>[] { TestKeys.Key(0), new byte[51] }, new ArrayBufferWriter<byte>(), new int[2]));
        Assert.That(lookup!.ParamName, Is.EqualTo("keys"));
        Assert.That(lookup.Message, Does.Contain("keys[1]").And.Contain("MaxKeyBytes"));

        Assert.That(cache.Count, Is.EqualTo(1), "nothing stored");
        var buffer = new byte[16];
        Assert.That(cache.TryGet(TestKeys.Key(0), buffer, out int written) && written == 1 && buffer[0] == 7, Is.True, "the old value stays");
        Assert.That(cache.GetStatistics().Hits + cache.GetStatistics().Misses, Is.EqualTo(1), "a refused TryGetMany looks nothing up");
        cache.ValidateInvariants();
    }

    [Test]
    public void ListenerHearsEvictionsAndExpirationsWithTheirKeys()
    {
        var clock = new ManualClock();
        var heard = new List<(int Id, EvictionReason Reason)>();
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 4 << 20,
            PageSize = 64 * 1024,
            ShardCount = 1,
            MaxEntries = 100,
            Policy = CachePolicy.Fifo,
            TimeProvider = clock,
            EvictionListener = (key, reason) => heard.Add((TestKeys.IdOf(key), reason)),
        });
        for (int i = 0; i < 100; i++)
        {
            cache.Set(TestKeys.Key(i), TestKeys.Value(i, 0, 20));
        }
        cache.Set(TestKeys.Key(100), TestKeys.Value(100, 0, 20));
        Assert.That(heard, Is.EqualTo(new[] { (0, EvictionReason.Capacity) }), "FIFO evicts the first key");

        cache.Remove(TestKeys.Key(50));   // a removal is not an eviction
        cache.Set(TestKeys.Key(500), TestKeys.Value(500, 0, 20), TimeSpan.FromSeconds(1));
        clock.Advance(TimeSpan.FromSeconds(2));
        cache.Set(TestKeys.Key(501), TestKeys.Value(501, 0, 20));   // at the bound: the expired entry goes first
        Assert.That(heard, Has.Member((500, EvictionReason.Expired)));
        Assert.That(heard.Count(h => h.Reason == EvictionReason.Capacity), Is.EqualTo(1));
        CacheStatistics stats = cache.GetStatistics();
        Assert.That(stats.Evictions, Is.EqualTo(1));
        Assert.That(stats.Expirations, Is.EqualTo(1));
    }
}

public class ThrowingListenerTests
{
    [Test]
    public void AThrowingListenerLeavesTheCacheConsistent()
    {
        int calls = 0;
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 2 << 20,
            PageSize = 64 * 1024,
            ShardCount = 1,
            MaxEntries = 300,
            AverageEntrySizeHint = 512,
            EvictionListener = (key, reason) =>
            {
                if (++calls % 3 == 0)
                {
                    throw new InvalidOperationException("listener failed");
                }
            },
        });
        var rng = new Random(9);
        int thrown = 0;
        for (int i = 0; i < 5000; i++)
        {
            try
            {
                cache.Set(TestKeys.Key(rng.Next(2000)), new byte[rng.Next(0, 2000)]);
            }
            catch (InvalidOperationException e) when (e.Message == "listener failed")
            {
                thrown++;
            }
            cache.ValidateInvariants();
            Assert.That(cache.Count, Is.LessThanOrEqualTo(300));
        }
        Assert.That(thrown, Is.GreaterThan(0));
        CacheStatistics stats = cache.GetStatistics();
        Assert.That(stats.NativeBytes, Is.LessThanOrEqualTo(stats.CapacityBytes));
    }

    [Test]
    public void AListenerWritingToAnotherShardOfItsCacheIsRefusedBeforeItTakesThatShardsLock()
    {
        // Only writes to the listener's own shard were refused. A write to another shard took that shard's lock while
        // the listener held its own: two threads doing that toward each other's shards deadlocked for good.
        OffHeapCache? cache = null;
        Exception? fromListener = null;
        byte[]? otherShardKey = null;
        cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 4 << 20,
            ShardCount = 2,
            MaxEntries = 2,
            Policy = CachePolicy.Lru,
            EvictionListener = (_, _) =>
            {
                foreach (Action write in new Action[]
                {
                    () => cache!.Set(otherShardKey!, [1]), () => cache!.TryAdd(otherShardKey!, [1]), () => cache!.Remove(otherShardKey!),
                    () => cache!.Touch(otherShardKey!, TimeSpan.FromSeconds(1)), () => cache!.Clear(),
                    () => cache!.Remove(otherShardKey!, new byte[8], out _), () => cache!.Remove(otherShardKey!, new System.Buffers.ArrayBufferWriter<byte>()),
                    () => cache!.RemoveIfEquals(otherShardKey!, [1]),
                    () => cache!.SetMany([new(otherShardKey!, new byte[] { 1 })]),
                    () => cache!.GetOrAdd(otherShardKey!, 0, static (_, _, w) => w.Write("v"u8), new System.Buffers.ArrayBufferWriter<byte>()),
                    () => cache!.Dispose(),
                })
                {
                    try
                    {
                        write();
                        fromListener ??= new Exception("a write from the listener was allowed");
                    }
                    catch (InvalidOperationException)
                    {
                    }
                }
            },
        });
        using (cache)
        {
            // Keys of shard 0 until one evicts; the listener then writes a key of shard 1.
            var shard0 = Enumerable.Range(0, 1000).Select(TestKeys.Key).Where(k => cache.ShardOf(cache.Hash(k)) == cache.Shards[0]).Take(3).ToArray();
            otherShardKey = Enumerable.Range(1000, 1000).Select(TestKeys.Key).First(k => cache.ShardOf(cache.Hash(k)) == cache.Shards[1]);
            foreach (byte[] key in shard0)
            {
                cache.Set(key, [0]);
            }
            Assert.That(cache.GetStatistics().Evictions, Is.GreaterThan(0), "the listener ran");
            Assert.That(fromListener, Is.Null);
            Assert.That(cache.ContainsKey(otherShardKey), Is.False);
            Assert.That(cache.Set(otherShardKey, [2]), Is.True, "outside the listener the same write works, and the cache was not disposed");
            cache.ValidateInvariants();
        }
    }

    [Test]
    public void ListenersNestedAcrossTwoCachesStillCannotWriteToTheOuterCache()
    {
        // A's listener writes to B (another cache: allowed); B's eviction then runs B's listener, which writes to A.
        // Only the innermost cache was remembered, so that write (or A.Dispose, which hung) got through.
        OffHeapCache? a = null, b = null;
        var outcomes = new List<string>();
        bool probe = true;
        var bOptions = new OffHeapCacheOptions
        {
            CapacityBytes = 4 << 20, ShardCount = 1, MaxEntries = 1, Policy = CachePolicy.Lru,
            EvictionListener = (_, _) =>
            {
                if (!probe)
                {
                    return;
                }
                foreach ((string name, Action write) in new (string, Action)[] { ("A.Set", () => a!.Set([9], [9])), ("A.Dispose", () => a!.Dispose()) })
                {
                    try
                    {
                        write();
                        outcomes.Add(name + " allowed");
                    }
                    catch (InvalidOperationException)
                    {
                        outcomes.Add(name + " refused");
                    }
                }
            },
        };
        b = new OffHeapCache(bOptions);
        a = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 4 << 20, ShardCount = 1, MaxEntries = 1, Policy = CachePolicy.Lru,
            EvictionListener = (key, _) => b.Set(key, [1]),   // B holds one entry: each set evicts the last
        });
        using (a)
        using (b)
        {
            b.Set([100], [1]);
            var worker = new Thread(() =>
            {
                a.Set([1], [1]);
                a.Set([2], [1]);   // evicts [1]: A's listener sets it in B, which evicts [100]: B's listener runs
            })
            {
                IsBackground = true,   // should the Dispose be let through again, it hangs this thread, not the test run
            };
            worker.Start();
            Assert.That(worker.Join(TimeSpan.FromSeconds(10)), Is.True, "no hang");
            Assert.That(outcomes, Is.EqualTo(new[] { "A.Set refused", "A.Dispose refused" }));
            probe = false;
            Assert.That(b.Set([3], [1]), Is.True, "B works on, and A was not disposed:");
            Assert.That(a.Set([4], [1]), Is.True);
        }
    }

    [Test]
    public void AnEvictionListenerMayDemoteEvictedEntriesIntoAnotherCacheFromManyThreads()
    {
        // The documented use of "other caches may be used": a small cache A whose listener demotes each key it evicts into
        // a larger cache B (a two-level cache), while two threads write A. Every key lands in exactly one level, B holds
        // exactly the keys A evicted, and a read of A from inside the listener is allowed. (Only writes from a listener
        // to a cache that is running it are refused; see the two tests above.)
        using var b = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 16 << 20, MaxEntries = 100_000 });
        var demoted = new System.Collections.Concurrent.ConcurrentDictionary<int, bool>();
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        long readsInListener = 0;
        OffHeapCache? a = null;
        a = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 4 << 20, ShardCount = 2, MaxEntries = 64, Policy = CachePolicy.Lru,
            EvictionListener = (key, reason) =>
            {
                // No assertion here: an exception would fail the writer thread's Set, not the test. Failures are collected.
                int id = TestKeys.IdOf(key);
                try
                {
                    if (reason != EvictionReason.Capacity || !b.Set(key, BitConverter.GetBytes(id)) || !demoted.TryAdd(id, true))
                    {
                        failures.Enqueue($"key {id}: reason {reason}, or B refused it, or it was evicted twice");
                    }
                    a!.TryGet(TestKeys.Key(0), new byte[8], out _);   // a read of its own cache: allowed
                    Interlocked.Increment(ref readsInListener);
                }
                catch (Exception e)
                {
                    failures.Enqueue($"key {id}: {e.GetType().Name}: {e.Message}");
                }
            },
        });
        using (a)
        {
            const int PerThread = 2_000;
            using var start = new Barrier(2);   // both writers begin together, so their evictions overlap
            var writers = Enumerable.Range(0, 2).Select(t => new Thread(() =>
            {
                start.SignalAndWait();
                for (int i = 0; i < PerThread; i++)
                {
                    int id = t * PerThread + i;
                    a.Set(TestKeys.Key(id), BitConverter.GetBytes(id));
                }
            })
            {
                IsBackground = true,   // a deadlock fails the Join below instead of hanging the test host
            }).ToList();
            writers.ForEach(w => w.Start());
            Assert.That(writers.All(w => w.Join(TimeSpan.FromSeconds(30))), Is.True, "no deadlock between the levels");
            Assert.That(failures, Is.Empty);

            var buffer = new byte[8];
            for (int id = 0; id < 2 * PerThread; id++)
            {
                bool inA = a.TryGet(TestKeys.Key(id), buffer, out _);
                if (inA)
                {
                    Assert.That(BitConverter.ToInt32(buffer, 0), Is.EqualTo(id));
                }
                bool inB = b.TryGet(TestKeys.Key(id), buffer, out _);
                if (inB)
                {
                    Assert.That(BitConverter.ToInt32(buffer, 0), Is.EqualTo(id), "B holds the demoted key's value");
                }
                Assert.That(inA ^ inB, Is.True, $"key {id} is in exactly one level (A: {inA}, B: {inB})");
            }
            Assert.That(a.Count, Is.EqualTo(64));
            Assert.That(b.Count, Is.EqualTo(2 * PerThread - 64));
            Assert.That(demoted.Count, Is.EqualTo(b.Count));
            Assert.That(a.GetStatistics().Evictions, Is.EqualTo(b.Count));
            Assert.That(Interlocked.Read(ref readsInListener), Is.EqualTo(b.Count));
            a.ValidateInvariants();
            b.ValidateInvariants();
        }
    }

    [Test]
    public void ListenersOfTwoCachesThatWriteToEachOtherFromTwoThreadsGiveUpInsteadOfDeadlocking()
    {
        // Each thread holds its cache's shard lock while its listener runs; A's listener writes to B while B's writes to A,
        // from two threads at once: each waits for the lock the other holds. That hung forever (found by an adversarial
        // review, 2026-11-30); a listener's wait for another cache's lock is now bounded, and the write that gave up
        // throws out of the listener (and so out of the Set that evicted), nothing changed.
        OffHeapCache? a = null, b = null;
        using var bothInListeners = new Barrier(2);
        int rendezvous = 1;   // the first eviction of each cache meets the other's; later ones write straight through
        bool writeThrough = true;
        var thrown = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        EvictionListener WriteTo(Func<OffHeapCache> other) => (key, _) =>
        {
            if (Volatile.Read(ref rendezvous) == 1)
            {
                bothInListeners.SignalAndWait(TimeSpan.FromSeconds(10));
                Volatile.Write(ref rendezvous, 0);
            }
            if (Volatile.Read(ref writeThrough))
            {
                other().Set(key, [2]);
            }
        };
        a = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1, MaxEntries = 1, Policy = CachePolicy.Lru, EvictionListener = WriteTo(() => b!) });
        b = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1, MaxEntries = 1, Policy = CachePolicy.Lru, EvictionListener = WriteTo(() => a) });
        {
            a.Set([1], [1]);
            b.Set([101], [1]);
            var started = System.Diagnostics.Stopwatch.StartNew();
            var writers = new[] { (Cache: a, Key: (byte)2), (Cache: b, Key: (byte)102) }.Select(w => new Thread(() =>
            {
                try
                {
                    w.Cache.Set([w.Key], [1]);   // evicts the cache's one entry: its listener runs, holding the cache's lock
                }
                catch (InvalidOperationException e)
                {
                    thrown.Enqueue(e);
                }
            })
            {
                IsBackground = true,   // a deadlock fails the Join below instead of hanging the test host
            }).ToList();
            writers.ForEach(w => w.Start());
            if (!writers.All(w => w.Join(TimeSpan.FromSeconds(30))))
            {
                // Not disposed: Dispose would wait for the stuck operations, hanging the test run instead of failing it.
                Assert.Fail("deadlock: each listener's write waits for the lock the other thread holds");
            }
            // Once one gave up, the other's write goes through and may evict in turn, whose listener's write to the outer
            // cache is refused as always: so other refusals may be queued beside the one looked for.
            Assert.That(thrown.Select(e => e.Message), Has.Some.Contains("eviction listener waited 5 s for a shard lock"), "at least one of the two writes gave up");
            Assert.That(started.Elapsed, Is.GreaterThanOrEqualTo(Shard.ListenerWaitLimit - TimeSpan.FromMilliseconds(100)), "a real cycle waits the limit out");
            a.ValidateInvariants();
            b.ValidateInvariants();
            Assert.That(a.Count, Is.LessThanOrEqualTo(1));
            Assert.That(b.Count, Is.LessThanOrEqualTo(1));
            Volatile.Write(ref writeThrough, false);   // else A's eviction writes B, whose eviction's write to A is refused (nested)
            Assert.That(a.Set([3], [1]) && b.Set([103], [1]), Is.True, "both caches work on");
            a.Dispose();
            b.Dispose();
        }
    }

    [Test]
    public void AListenersWaitForAnotherCachesGetOrAddWhoseFactoryNeedsTheListenersLockGivesUp()
    {
        // Thread 2 leads B's GetOrAdd of a key; its factory writes to A. Thread 1 runs A's listener (holding A's lock) and
        // asks B for the same key, so it waits for thread 2's flight, whose factory waits for A's lock: a cycle through a
        // flight, not two locks. The listener's wait for the flight is bounded too.
        var leaderStarted = new ManualResetEventSlim();
        var listenerRunning = new ManualResetEventSlim();
        // Not `using`: after a deadlock Dispose would wait for the stuck operations (the test must fail, not hang).
        var b = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1 });
        Exception? listenerError = null;
        int fired = 0;   // the first eviction only: the leader's own write to A evicts again later
        var a = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 4 << 20, ShardCount = 1, MaxEntries = 1, Policy = CachePolicy.Lru,
            EvictionListener = (_, _) =>
            {
                if (Interlocked.Exchange(ref fired, 1) != 0)
                {
                    return;
                }
                listenerRunning.Set();
                leaderStarted.Wait(TimeSpan.FromSeconds(10));
                try
                {
                    b.GetOrAdd([7], 0, static (_, _, w) => w.Write<byte>([1]), new ArrayBufferWriter<byte>());
                }
                catch (InvalidOperationException e)
                {
                    listenerError = e;
                }
            },
        });
        a.Set([1], [1]);
        var leader = new Thread(() =>
        {
            b.GetOrAdd([7], a, (_, cache, w) =>
            {
                leaderStarted.Set();   // the flight is registered: the listener's GetOrAdd joins it
                cache.Set([50], [5]);  // not from a listener: waits for A's lock as long as it takes
                w.Write<byte>([7]);
            }, new ArrayBufferWriter<byte>());
        })
        {
            IsBackground = true,
        };
        var evictor = new Thread(() => a.Set([2], [1])) { IsBackground = true };   // evicts [1]: A's listener runs
        evictor.Start();
        Assert.That(listenerRunning.Wait(TimeSpan.FromSeconds(10)), Is.True);
        leader.Start();
        if (!(evictor.Join(TimeSpan.FromSeconds(30)) && leader.Join(TimeSpan.FromSeconds(30))))
        {
            Assert.Fail("deadlock: the listener waits for the flight, whose factory waits for the listener's lock");
        }
        Assert.That(listenerError, Is.InstanceOf<InvalidOperationException>());
        Assert.That(listenerError!.Message, Does.Contain("waited 5 s for another caller's GetOrAdd factory of the key"));
        var stored = new byte[1];
        Assert.That(b.TryGet([7], stored, out _) ? stored[0] : -1, Is.EqualTo(7), "the leader stored its value once the listener gave up");
        a.ValidateInvariants();
        b.ValidateInvariants();
        a.Dispose();
        b.Dispose();
    }

    [Test]
    public void AnIdleEmptyPageOfAnotherClassIsGivenUpBeforeAnyLiveEntryIsEvicted()
    {
        // A size class with no free chunk and no page to take evicted a whole round of policy victims (16 live entries)
        // before it gave back another class's spare empty page, which alone was enough.
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 2 << 20, PageSize = 64 * 1024, ShardCount = 1, Policy = CachePolicy.Lru, HashSeed = 7,
        });
        int id = 0;
        while (cache.GetStatistics().Evictions == 0)
        {
            cache.Set(TestKeys.Key(id++), new byte[1000]);   // the budget is full
        }
        for (int i = 0; i < 200; i++)
        {
            cache.Set(TestKeys.Key(id++), new byte[1000]);
        }
        var large = Enumerable.Range(0, 3).Select(_ => TestKeys.Key(id++)).ToList();
        foreach (byte[] key in large)
        {
            Assert.That(cache.Set(key, new byte[20_000]), Is.True);
        }
        foreach (byte[] key in large)
        {
            cache.Remove(key);   // their class keeps its page as an empty spare
        }
        CacheStatistics before = cache.GetStatistics();
        Assert.That(cache.Set(TestKeys.Key(id++), new byte[300]), Is.True);   // a class with no page yet, budget full
        CacheStatistics after = cache.GetStatistics();
        Assert.That((after.Evictions - before.Evictions, after.PageReclaims - before.PageReclaims), Is.EqualTo((0L, 0L)));
        cache.ValidateInvariants();
    }

    [Test]
    public void AListenerThatWritesToItsShardDuringAPageReclaimGetsAClearExceptionAndTheCacheStaysConsistent()
    {
        // The listener must not call back into the cache. One that does, during a page reclaim, used to run a second
        // reclaim of the same page inside the first: it evicted the entry whose listener was running and refilled
        // the shared list of the page's chunks, so the outer loop went on with stale handles (reading headers of a
        // re-cut page) and removed a slot that was already empty (IndexOutOfRangeException from the page table), or
        // another entry that had taken that slot.
        OffHeapCache? cache = null;
        bool calledBack = false;
        cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 2 << 20,
            PageSize = 64 * 1024,
            ShardCount = 1,
            Policy = CachePolicy.Lru,
            HashSeed = 5,
            EvictionListener = (key, reason) =>
            {
                if (reason == EvictionReason.PageReclaimed && !calledBack)
                {
                    calledBack = true;
                    cache!.Set(BitConverter.GetBytes(1_000_000), new byte[1000]);
                }
            },
        });
        try
        {
            for (int i = 0; i < 40_000; i++)
            {
                cache.Set(BitConverter.GetBytes(i), new byte[100]);   // ~100 B entries fill every page
            }
            Exception? thrown = null;
            for (int i = 0; i < 3000 && thrown is null; i++)
            {
                try
                {
                    cache.Set(BitConverter.GetBytes(100_000 + i), new byte[1000]);   // ~1 KB entries take pages over
                }
                catch (Exception e)
                {
                    thrown = e;
                }
            }

            Assert.That(calledBack, Is.True, "a page was reclaimed");
            Assert.That(thrown, Is.TypeOf<InvalidOperationException>());
            Assert.That(thrown!.Message, Does.Contain("listener"));
            Assert.That(cache.ContainsKey(BitConverter.GetBytes(1_000_000)), Is.False, "the listener's write was refused");
            cache.ValidateInvariants();
            Assert.That(cache.Set(BitConverter.GetBytes(2_000_000), new byte[1000]), Is.True, "the cache works on");
            cache.ValidateInvariants();
        }
        finally
        {
            cache.Dispose();
        }
    }
}

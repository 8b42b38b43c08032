using CacheKit.Policies;

namespace CacheKit.Policies.Tests;

[TestFixture]
public sealed class ReadBufferTests
{
    /// <summary>A policy that only records what it is told (for checking the replay).</summary>
    internal sealed class RecordingPolicy : IEvictionPolicy
    {
        public List<(int Handle, ulong Hash)> Hits { get; } = [];
        public List<ulong> Misses { get; } = [];
        public List<string> Events { get; } = [];
        public bool LogPrefetch { get; init; }
        /// <summary>The 0-based hit whose OnHit throws (once); -1: none.</summary>
        public int ThrowAtHit { get; init; } = -1;
        private int _hitCalls;
        public string Name => "recording";
        public long Capacity => 1;
        public int MaxHandles => 1 << 20;
        public int Count => 0;
        public long Weight => 0;
        public bool ConcurrentHits => false;
        public void OnHit(int handle, ulong keyHash)
        {
            if (_hitCalls++ == ThrowAtHit)
            {
                throw new InvalidOperationException("policy failure");
            }
            Hits.Add((handle, keyHash));
            Events.Add($"hit {handle}");
        }
        public void OnMiss(ulong keyHash)
        {
            Misses.Add(keyHash);
            Events.Add($"miss {keyHash}");
        }
        public void Prefetch(int handle, ulong keyHash)
        {
            if (LogPrefetch)
            {
                Events.Add(handle < 0 ? $"prefetch miss {keyHash}" : $"prefetch {handle}");
            }
        }
        public void PrefetchDependent(int handle)
        {
            if (LogPrefetch)
            {
                Events.Add($"dependent {handle}");
            }
        }
        public void OnAdd(int handle, ulong keyHash, long weight) { }
        public void OnUpdate(int handle, ulong keyHash, long newWeight) { }
        public void OnRemove(int handle) { }
        public int SelectVictim() => -1;
        public bool ShouldAdmit(ulong candidateKeyHash, long weight) => true;
        public void Clear() { }
    }

    [Test]
    public void Drain_replays_hits_and_misses_in_order_then_the_buffer_is_empty()
    {
        var buffer = new ReadBuffer(stripes: 1);
        var policy = new RecordingPolicy();
        Assert.That(buffer.TryRecordHit(3, 30), Is.True);
        Assert.That(buffer.TryRecordMiss(99), Is.True);
        Assert.That(buffer.TryRecordHit(0, 7), Is.True);
        Assert.That(buffer.DrainUnsynchronized(policy), Is.EqualTo(3));
        Assert.That(policy.Hits, Is.EqualTo(new[] { (3, 30UL), (0, 7UL) }));
        Assert.That(policy.Misses, Is.EqualTo(new[] { 99UL }));
        Assert.That(buffer.DrainUnsynchronized(policy), Is.Zero);
    }

    [Test]
    public void Drain_announces_each_batch_before_replaying_it_in_the_recorded_order()
    {
        var buffer = new ReadBuffer(stripes: 1);
        var policy = new RecordingPolicy { LogPrefetch = true };
        int records = 2 * ReadBuffer.ReplayBatch + 3;   // two full batches and a partial one
        var expectedReplay = new List<string>();
        for (int i = 0; i < records; i++)
        {
            if (i % 5 == 4)
            {
                Assert.That(buffer.TryRecordMiss((ulong)(1000 + i)), Is.True);
                expectedReplay.Add($"miss {1000 + i}");
            }
            else
            {
                Assert.That(buffer.TryRecordHit(i, (ulong)i), Is.True);
                expectedReplay.Add($"hit {i}");
            }
        }
        Assert.That(buffer.DrainUnsynchronized(policy), Is.EqualTo(records));

        // The replay is exactly the recorded sequence, hints aside.
        Assert.That(policy.Events.Where(e => e.StartsWith("hit", StringComparison.Ordinal) || e.StartsWith("miss", StringComparison.Ordinal)),
            Is.EqualTo(expectedReplay));
        // Every batch: first its hints (each record, then each hit's dependent stage), then its replay.
        int position = 0;
        for (int start = 0; start < records; start += ReadBuffer.ReplayBatch)
        {
            int n = Math.Min(ReadBuffer.ReplayBatch, records - start);
            var batch = expectedReplay.GetRange(start, n);
            var expected = new List<string>();
            if (n > 1)
            {
                expected.AddRange(batch.Select(e => e.StartsWith("miss", StringComparison.Ordinal) ? "prefetch " + e : "prefetch " + e[4..]));
                expected.AddRange(batch.Where(e => e.StartsWith("hit", StringComparison.Ordinal)).Select(e => "dependent " + e[4..]));
            }
            expected.AddRange(batch);
            Assert.That(policy.Events.GetRange(position, expected.Count), Is.EqualTo(expected), $"batch at record {start}");
            position += expected.Count;
        }
        Assert.That(position, Is.EqualTo(policy.Events.Count));
    }

    [Test]
    public void A_bounded_drain_replays_only_the_oldest_records_and_keeps_the_rest()
    {
        var buffer = new ReadBuffer(stripes: 1);
        var policy = new RecordingPolicy();
        for (int i = 0; i < 20; i++)
        {
            Assert.That(buffer.TryRecordHit(i, (ulong)i), Is.True);
        }
        Assert.That(buffer.DrainOwnStripeUnsynchronized(policy, 11), Is.EqualTo(11));
        Assert.That(policy.Hits.Select(h => h.Handle), Is.EqualTo(Enumerable.Range(0, 11)));
        Assert.That(buffer.DrainUnsynchronized(policy), Is.EqualTo(9));
        Assert.That(policy.Hits.Select(h => h.Handle), Is.EqualTo(Enumerable.Range(0, 20)));
    }

    [Test]
    public void A_full_stripe_drops_and_accepts_again_after_a_drain()
    {
        var buffer = new ReadBuffer(stripes: 1);
        var policy = new RecordingPolicy();
        for (int i = 0; i < ReadBuffer.SlotsPerStripe; i++)
        {
            Assert.That(buffer.TryRecordHit(i, (ulong)i), Is.True);
        }
        Assert.That(buffer.TryRecordHit(1, 1), Is.False, "a full stripe drops");
        Assert.That(buffer.DrainUnsynchronized(policy), Is.EqualTo(ReadBuffer.SlotsPerStripe));
        Assert.That(buffer.TryRecordHit(5, 5), Is.True);
        buffer.ClearUnsynchronized();
        Assert.That(buffer.DrainUnsynchronized(policy), Is.Zero);
    }

    [Test]
    public void Drained_hits_of_removed_entries_are_ignored_by_the_policy()
    {
        var policy = PolicyFactory.Create(PolicyKind.Lru, new PolicyOptions { MaxHandles = 4, Capacity = 4 });
        var buffer = new ReadBuffer(stripes: 1);
        policy.OnAdd(0, 10, 1);
        policy.OnAdd(1, 11, 1);
        buffer.TryRecordHit(0, 10);
        buffer.TryRecordHit(1, 11);
        policy.OnRemove(1);
        Assert.DoesNotThrow(() => buffer.DrainUnsynchronized(policy));
        Assert.That(policy.Count, Is.EqualTo(1));
    }

    [Test]
    public void Bad_arguments_throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new ReadBuffer(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new ReadBuffer(2000));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReadBuffer(1).TryRecordHit(-1, 0));
        Assert.Throws<ArgumentNullException>(() => new ReadBuffer(1).DrainUnsynchronized(null!));
        Assert.That(new ReadBuffer(3).StripeCount, Is.EqualTo(4));
    }

    [Test]
    public void Recording_and_draining_allocate_nothing()
    {
        var buffer = new ReadBuffer();
        var policy = PolicyFactory.Create(PolicyKind.WTinyLfu, new PolicyOptions { MaxHandles = 64, Capacity = 64 });
        for (int h = 0; h < 64; h++)
        {
            policy.OnAdd(h, (ulong)h, 1);
        }
        void Run()
        {
            for (int i = 0; i < 10_000; i++)
            {
                if (!buffer.TryRecordHit(i & 63, (ulong)(i & 63)))
                {
                    buffer.DrainUnsynchronized(policy);
                }
                if ((i & 7) == 0)
                {
                    buffer.TryRecordMiss((ulong)i);
                }
            }
            buffer.DrainUnsynchronized(policy);
        }
        Run();
        long before = GC.GetAllocatedBytesForCurrentThread();
        Run();
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
    }

    [Test]
    public void Concurrent_readers_and_one_drainer_lose_records_but_never_corrupt_them()
    {
        // Each reader records (handle, hash) pairs with hash = handle * 31 + 7, so a torn record would show.
        int readers = Math.Max(2, Math.Min(4, Environment.ProcessorCount));
        int perReader = int.TryParse(Environment.GetEnvironmentVariable("CACHEKIT_STRESS_OPS"), out int n) ? n : 200_000;
        var buffer = new ReadBuffer(stripes: 2);
        var checker = new CheckingPolicy();
        long accepted = 0;
        using var done = new CountdownEvent(readers);
        var threads = Enumerable.Range(0, readers).Select(r => new Thread(() =>
        {
            long mine = 0;
            for (int i = 0; i < perReader; i++)
            {
                int handle = (i * 7 + r) & 0xFFFF;
                if (buffer.TryRecordHit(handle, (ulong)handle * 31 + 7))
                {
                    mine++;
                }
            }
            Interlocked.Add(ref accepted, mine);
            done.Signal();
        })).ToList();
        threads.ForEach(t => t.Start());
        long drained = 0;
        var gate = new object();
        while (!done.IsSet)
        {
            lock (gate)
            {
                drained += buffer.DrainUnsynchronized(checker);
            }
        }
        threads.ForEach(t => t.Join());
        drained += buffer.DrainUnsynchronized(checker);
        Assert.That(checker.Torn, Is.Zero, "a record was torn");
        Assert.That(drained, Is.EqualTo(Interlocked.Read(ref accepted)), "every accepted record is drained exactly once");
        Assert.That(drained, Is.Positive);
    }

    private sealed class CheckingPolicy : IEvictionPolicy
    {
        public long Torn;
        public string Name => "checking";
        public long Capacity => 1;
        public int MaxHandles => 1 << 20;
        public int Count => 0;
        public long Weight => 0;
        public bool ConcurrentHits => false;
        public void OnHit(int handle, ulong keyHash)
        {
            if (keyHash != (ulong)handle * 31 + 7) Torn++;
        }
        public void OnMiss(ulong keyHash) => Torn++;
        public void OnAdd(int handle, ulong keyHash, long weight) { }
        public void OnUpdate(int handle, ulong keyHash, long newWeight) { }
        public void OnRemove(int handle) { }
        public int SelectVictim() => -1;
        public bool ShouldAdmit(ulong candidateKeyHash, long weight) => true;
        public void Clear() { }
    }

    [Test]
    public void AStripeKeepsDrainingAfterThePolicyThrowsMidBatch()
    {
        var buffer = new ReadBuffer(stripes: 1);
        var policy = new RecordingPolicy { ThrowAtHit = 2 };
        int records = ReadBuffer.ReplayBatch + 3;
        for (int i = 0; i < records; i++)
        {
            Assert.That(buffer.TryRecordHit(i, (ulong)i), Is.True);
        }

        Assert.Throws<InvalidOperationException>(() => buffer.DrainUnsynchronized(policy));
        Assert.That(policy.Hits.Select(h => h.Handle), Is.EqualTo(new[] { 0, 1 }));

        // The rest of the failed batch is lost (reads are lossy); the records after it are not.
        Assert.That(buffer.DrainUnsynchronized(policy), Is.EqualTo(3));
        Assert.That(policy.Hits.Skip(2).Select(h => h.Handle), Is.EqualTo(Enumerable.Range(ReadBuffer.ReplayBatch, 3)));
        for (int i = 0; i < ReadBuffer.SlotsPerStripe; i++)
        {
            Assert.That(buffer.TryRecordHit(100 + i, 1), Is.True, "the whole stripe is usable again");
        }
        Assert.That(buffer.DrainUnsynchronized(policy), Is.EqualTo(ReadBuffer.SlotsPerStripe));
    }
    /// <summary>Publishes one record in <paramref name="stripe"/> as an appender on that stripe's processor would.</summary>
    private static void PublishInStripe(ReadBuffer buffer, int stripe, long tag, ulong hash)
    {
        const int EdgePad = 16, PadLongs = 16;   // ReadBuffer's layout (private constants)
        const System.Reflection.BindingFlags Any = System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance;
        var tails = (long[])typeof(ReadBuffer).GetField("_tails", Any)!.GetValue(buffer)!;
        var tags = (long[])typeof(ReadBuffer).GetField("_tags", Any)!.GetValue(buffer)!;
        var hashes = (ulong[])typeof(ReadBuffer).GetField("_hashes", Any)!.GetValue(buffer)!;
        ref long tail = ref tails[EdgePad + stripe * PadLongs];
        int slot = EdgePad + stripe * ReadBuffer.SlotsPerStripe + (int)(tail & (ReadBuffer.SlotsPerStripe - 1));
        hashes[slot] = hash;
        tags[slot] = tag;
        tail++;
    }

    [Test]
    public void AFullDrainReplaysTheDrainersOwnStripeLastSoALookupMissThenItsAddCountOnce()
    {
        // An owner that drains everything before a write (the simulator's policy rows; the engine's writes drain only their
        // own stripe) drains just before it adds the key it has just missed: its own stripe goes last, so that key's
        // miss is the last miss W-TinyLFU sees before the add, which it then does not count a second time (a review
        // found other threads' records replayed in between made every such key count twice).
        const ulong K = 0x9E3779B97F4A7C15UL, J = 0xC2B2AE3D27D4EB4FUL;
        var order = new ReadBuffer(stripes: 4);
        for (int s = 0; s < 4; s++)
        {
            PublishInStripe(order, s, tag: 2 + s, hash: (ulong)s);   // a hit of handle s in stripe s
        }
        var recording = new RecordingPolicy();
        Assert.That(order.DrainAllEndingWith(recording, lastStripe: 2), Is.EqualTo(4));
        Assert.That(recording.Hits.Select(h => h.Handle), Is.EqualTo(new[] { 3, 0, 1, 2 }));

        foreach (int lastStripe in new[] { 2, 0 })
        {
            foreach (int others in new[] { 1, RecentMisses.Size - 1, RecentMisses.Size })
            {
                var policy = new WTinyLfuPolicy(new PolicyOptions { Capacity = 100, MaxHandles = 128, WindowFraction = 0.01 });
                var buffer = new ReadBuffer(stripes: 4);
                PublishInStripe(buffer, 2, tag: 1, hash: K);   // the writer's own miss of K, in its stripe (2)
                for (int i = 0; i < others; i++)
                {
                    PublishInStripe(buffer, 3, tag: 1, hash: J + (ulong)i);   // other threads' misses
                }
                buffer.DrainAllEndingWith(policy, lastStripe);
                policy.OnAdd(0, K, 1);
                // Own stripe last: K's miss is the last one, counted once. Drained before the others (the old order),
                // K is still remembered behind up to Size - 1 other misses (once only the last miss was: twice).
                int expected = lastStripe == 2 || others < RecentMisses.Size ? 1 : 2;
                Assert.That(policy.Sketch.Frequency(K), Is.EqualTo(expected), $"own stripe last = {lastStripe == 2}, {others} other misses");
            }
        }
    }

    [Test]
    public void AMissAndItsAddCountOnceWhenOtherThreadsMissesLandInTheSameStripeBetweenThem()
    {
        // The case the drain order cannot help: another reader's misses appended to the writer's own stripe after
        // the writer's miss. W-TinyLFU and the TinyLFU filter remember the last few misses, not only the last one.
        const ulong K = 0x9E3779B97F4A7C15UL, J = 0xC2B2AE3D27D4EB4FUL;
        foreach ((IEvictionPolicy policy, FrequencySketch sketch) in PoliciesWithASketch())
        {
            var buffer = new ReadBuffer(stripes: 1);
            PublishInStripe(buffer, 0, tag: 1, hash: K);
            PublishInStripe(buffer, 0, tag: 1, hash: J);
            PublishInStripe(buffer, 0, tag: 1, hash: J + 1);
            buffer.DrainUnsynchronized(policy);
            policy.OnAdd(0, K, 1);
            policy.OnAdd(1, J + 5, 1);   // a blind add (no lookup before it): counted by the add
            Assert.That((sketch.Frequency(K), sketch.Frequency(J + 5)), Is.EqualTo((1, 1)), policy.Name);
        }
    }

    [Test]
    public void AMissOfAnExpiredEntryThenTheSetThatReplacesItCountOnce()
    {
        // A lookup of an expired entry is a miss; the Set that follows replaces the entry in place (OnUpdate, not
        // OnAdd). That is one access, as a miss and its add are; a set of a live key still counts.
        const ulong K = 0x9E3779B97F4A7C15UL, L = 0xC2B2AE3D27D4EB4FUL;
        foreach ((IEvictionPolicy policy, FrequencySketch sketch) in PoliciesWithASketch())
        {
            policy.OnAdd(0, K, 1);       // a blind set: 1
            policy.OnAdd(1, L, 1);
            policy.OnMiss(K);            // the entry expired: 2
            policy.OnUpdate(0, K, 1);    // its replacement: still 2
            policy.OnUpdate(1, L, 1);    // an update of a live key without a lookup: counted, 2
            Assert.That((sketch.Frequency(K), sketch.Frequency(L)), Is.EqualTo((2, 2)), policy.Name);
        }
    }

    /// <summary>The two policies that count accesses in a sketch (W-TinyLFU, and LRU behind the TinyLFU filter), fresh, with their sketches.</summary>
    private static IEnumerable<(IEvictionPolicy Policy, FrequencySketch Sketch)> PoliciesWithASketch()
    {
        var wTinyLfu = new WTinyLfuPolicy(new PolicyOptions { Capacity = 100, MaxHandles = 128, WindowFraction = 0.01 });
        yield return (wTinyLfu, wTinyLfu.Sketch);
        var filtered = (TinyLfuAdmissionPolicy)PolicyFactory.Create(PolicyKind.Lru, new PolicyOptions { Capacity = 100, MaxHandles = 128, TinyLfuAdmission = true });
        yield return (filtered, filtered.Sketch);
    }
}

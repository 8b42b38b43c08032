using System.Buffers.Binary;

namespace CacheKit.OffHeap.Tests;

/// <summary>
/// Probes from a review of the engine's concurrency protocol (2026-11-27). The first two held on the code they
/// were written against; the others failed there (a destination overlapping the key; Thread.Interrupt at the
/// slab pool's lock or during Dispose's wait) and pass since the fixes of the same day.
/// </summary>
[TestFixture]
public sealed class EngineProtocolProbeTests
{
    private static OffHeapCacheOptions SmallIndexOptions() => new()
    {
        CapacityBytes = 4 << 20,
        PageSize = 64 * 1024,
        ShardCount = 1,
        AverageEntrySizeHint = 64 * 1024,   // a tiny index: 16 buckets
        HashSeed = 12345,
    };

    private static uint HomeOf(OffHeapCache cache, OffHeapCacheOptions options, byte[] key)
    {
        uint buckets = (uint)CacheLayout.Compute(options).BucketsPerShard;
        return (uint)(((ulong)(uint)cache.Hash(key) * buckets) >> 32);
    }

    /// <summary>
    /// K lives in the bucket after its home (the home bucket is full); other entries of the home bucket are
    /// removed and re-added, and K is updated, without pause. K is present at every instant, so every read hits.
    /// </summary>
    [Test]
    public void AKeyPresentThroughoutIsNeverMissedWhileItsWindowChurns()
    {
        OffHeapCacheOptions options = SmallIndexOptions();
        using var cache = new OffHeapCache(options);
        byte[] k = "the-key-K-000000"u8.ToArray();
        uint home = HomeOf(cache, options, k);
        var sameHome = new List<byte[]>();
        for (int i = 0; sameHome.Count < 12; i++)
        {
            byte[] key = System.Text.Encoding.ASCII.GetBytes($"filler-{i:D9}");
            if (HomeOf(cache, options, key) == home)
            {
                sameHome.Add(key);
            }
        }
        byte[] value = new byte[40];
        for (int i = 0; i < 7; i++)
        {
            Assert.That(cache.Set(sameHome[i], value), Is.True);
        }
        Assert.That(cache.Set(k, value), Is.True);   // home full: K goes one bucket further
        cache.ValidateInvariants();

        long misses = 0, reads = 0;
        var stop = 0;
        Exception? failure = null;
        var writer = new Thread(() =>
        {
            try
            {
                var rng = new Random(1);
                while (Volatile.Read(ref stop) == 0)
                {
                    byte[] f = sameHome[rng.Next(sameHome.Count)];
                    if (rng.Next(3) == 0)
                    {
                        cache.Remove(f);
                    }
                    else
                    {
                        cache.Set(f, value);
                    }
                    cache.Set(k, value.AsSpan(0, rng.Next(1, 40)));
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        writer.Start();
        var buffer = new byte[64];
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (sw.ElapsedMilliseconds < 3000)
        {
            reads++;
            if (!cache.TryGet(k, buffer, out _))
            {
                misses++;
            }
        }
        Volatile.Write(ref stop, 1);
        writer.Join();
        Assert.That(failure, Is.Null, failure?.ToString());
        cache.ValidateInvariants();
        Assert.That(misses, Is.Zero, $"{misses} of {reads} reads missed a key present throughout");
    }

    /// <summary>
    /// One writer stores versions 1, 2, 3 ... of a key and then publishes the version it completed; a reader that
    /// saw version n completed must then read n or later (never an older value), under churn and page reclaim.
    /// </summary>
    [Test]
    public void AReadNeverReturnsAValueOlderThanASetThatCompletedBeforeIt()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 4 << 20,
            PageSize = 64 * 1024,
            ShardCount = 2,
            HashSeed = 7,
        });
        byte[] k = "versioned-key-01"u8.ToArray();
        long completed = 0;
        int stop = 0;
        Exception? failure = null;
        var writer = new Thread(() =>
        {
            try
            {
                var rng = new Random(3);
                var v = new byte[4096];
                for (long version = 1; Volatile.Read(ref stop) == 0; version++)
                {
                    BinaryPrimitives.WriteInt64LittleEndian(v, version);
                    int length = 8 + (int)(version % 2 == 0 ? rng.Next(0, 100) : rng.Next(1000, 4000));
                    if (cache.Set(k, v.AsSpan(0, length)))
                    {
                        Volatile.Write(ref completed, version);
                    }
                    // churn other keys, with a shifting size mix (page reclaim)
                    byte[] other = System.Text.Encoding.ASCII.GetBytes($"other-{rng.Next(3000)}");
                    cache.Set(other, v.AsSpan(0, (version / 2000) % 2 == 0 ? rng.Next(8, 200) : rng.Next(1000, 3000)));
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        writer.Start();
        var buffer = new byte[4096];
        long stale = 0, reads = 0;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (sw.ElapsedMilliseconds < 3000)
        {
            long before = Volatile.Read(ref completed);
            if (cache.TryGet(k, buffer, out int written))
            {
                reads++;
                long got = BinaryPrimitives.ReadInt64LittleEndian(buffer);
                if (got < before)
                {
                    stale++;
                }
            }
        }
        Volatile.Write(ref stop, 1);
        writer.Join();
        Assert.That(failure, Is.Null, failure?.ToString());
        Assert.That(reads, Is.GreaterThan(0));
        Assert.That(stale, Is.Zero, $"{stale} of {reads} hits returned a version older than one whose Set had returned");
    }

    /// <summary>
    /// The span get's inlined overlap check agrees with the framework's <c>Overlaps</c> on every pair of slices of one
    /// buffer (empty ones included, at every position) and on slices of two buffers: a wrong "apart" would let a failed
    /// optimistic attempt write over the key being looked up (the two tests below).
    /// </summary>
    [Test]
    public void TheInlinedOverlapCheckAgreesWithTheFrameworksOnEverySliceOfABuffer()
    {
        var one = new byte[20];
        var other = new byte[20];
        int checkedPairs = 0;
        for (int keyStart = 0; keyStart <= one.Length; keyStart++)
        {
            for (int keyLength = 0; keyStart + keyLength <= one.Length; keyLength++)
            {
                for (int destinationStart = 0; destinationStart <= one.Length; destinationStart++)
                {
                    for (int destinationLength = 0; destinationStart + destinationLength <= one.Length; destinationLength++)
                    {
                        ReadOnlySpan<byte> key = one.AsSpan(keyStart, keyLength);
                        Span<byte> same = one.AsSpan(destinationStart, destinationLength);
                        Span<byte> apart = other.AsSpan(destinationStart, destinationLength);
                        Assert.That(OffHeapCache.SpansOverlap(key, same), Is.EqualTo(same.Overlaps(key)),
                            $"key [{keyStart}, +{keyLength}), destination [{destinationStart}, +{destinationLength})");
                        Assert.That(OffHeapCache.SpansOverlap(key, apart), Is.EqualTo(apart.Overlaps(key)));
                        checkedPairs++;
                    }
                }
            }
        }
        Assert.That(checkedPairs, Is.EqualTo(231 * 231));
    }

    /// <summary>
    /// A destination that overlaps the key (one buffer: the key at its start, the value read over it). A failed
    /// optimistic attempt copies (torn) value bytes over the key, and the retry then looks up those bytes: a key
    /// present at every instant is reported missing.
    /// </summary>
    [Test]
    public void ADestinationOverlappingTheKeyNeverMissesAKeyPresentThroughout()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 16 << 20, ShardCount = 1, HashSeed = 5 });
        byte[] key = "overlapping-key!"u8.ToArray();
        var v1 = new byte[64];
        var v2 = new byte[64];
        Array.Fill(v1, (byte)'a');
        Array.Fill(v2, (byte)'b');
        Assert.That(cache.Set(key, v1), Is.True);
        int stop = 0;
        var writer = new Thread(() =>
        {
            for (int i = 0; Volatile.Read(ref stop) == 0; i++)
            {
                cache.Set(key, (i & 1) == 0 ? v2 : v1);   // K is present at every instant
            }
        });
        writer.Start();
        var buffer = new byte[64];
        long misses = 0, reads = 0;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (sw.ElapsedMilliseconds < 3000)
        {
            key.CopyTo(buffer, 0);
            reads++;
            if (!cache.TryGet(buffer.AsSpan(0, key.Length), buffer, out _))
            {
                misses++;
            }
        }
        Volatile.Write(ref stop, 1);
        writer.Join();
        Assert.That(misses, Is.Zero, $"{misses} of {reads} reads missed a key present throughout");
    }

    /// <summary>
    /// The same aliasing, with K's value starting with the bytes of another key K2 that shares K's home bucket
    /// and tag: the retry after a failed attempt looks up K2's bytes under K's hash and returns K2's value as
    /// a hit for K.
    /// </summary>
    [Test]
    public void ADestinationOverlappingTheKeyNeverReturnsAnotherKeysValue()
    {
        OffHeapCacheOptions options = SmallIndexOptions();
        using var cache = new OffHeapCache(options);
        byte[] k = "overlapping-key!"u8.ToArray();
        ulong hk = cache.Hash(k);
        uint home = HomeOf(cache, options, k);
        byte[]? k2 = null;
        for (int i = 0; k2 is null; i++)
        {
            byte[] candidate = System.Text.Encoding.ASCII.GetBytes($"k2-{i:D13}");
            ulong h = cache.Hash(candidate);
            if (SlotWord.TagOf(h) == SlotWord.TagOf(hk) && HomeOf(cache, options, candidate) == home)
            {
                k2 = candidate;
            }
        }
        Assert.That(k2.Length, Is.EqualTo(k.Length));
        byte[] foreign = new byte[64];
        Array.Fill(foreign, (byte)'F');
        Assert.That(cache.Set(k2, foreign), Is.True);
        var v1 = new byte[64];
        var v2 = new byte[64];
        Array.Fill(v1, (byte)'a');
        Array.Fill(v2, (byte)'b');
        k2.CopyTo(v2, 0);   // K's value may legitimately start with any bytes
        Assert.That(cache.Set(k, v1), Is.True);
        int stop = 0;
        var writer = new Thread(() =>
        {
            for (int i = 0; Volatile.Read(ref stop) == 0; i++)
            {
                cache.Set(k, (i & 1) == 0 ? v2 : v1);
            }
        });
        writer.Start();
        var buffer = new byte[64];
        long foreignHits = 0, reads = 0;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (sw.ElapsedMilliseconds < 3000 && foreignHits == 0)
        {
            k.CopyTo(buffer, 0);
            reads++;
            if (cache.TryGet(buffer.AsSpan(0, k.Length), buffer, out int n) && buffer.AsSpan(0, n).SequenceEqual(foreign))
            {
                foreignHits++;
            }
        }
        Volatile.Write(ref stop, 1);
        writer.Join();
        Assert.That(foreignHits, Is.Zero, $"TryGet(K) returned K2's value as a hit (after {reads} reads)");
    }

    /// <summary>
    /// A thread interrupted (Thread.Interrupt) while it waits for the slab pool's lock inside a Remove that gives
    /// an emptied page back: the slot is already unpublished and the arena has already dropped the page, but the
    /// pool never takes it back, and the policy still tracks the slot. The cache is left inconsistent.
    /// </summary>
    [Test]
    public void AnInterruptWhileTheSlabPoolLockIsContendedLeavesTheCacheConsistent()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 8 << 20,
            PageSize = 64 * 1024,
            ShardCount = 1,
            HashSeed = 9,
            Policy = CachePolicy.Lru,
        });
        byte[] big = new byte[40_000];   // one chunk per page
        byte[] k1 = "interrupt-key-01"u8.ToArray(), k2 = "interrupt-key-02"u8.ToArray();
        Assert.That(cache.Set(k1, big), Is.True);
        Assert.That(cache.Set(k2, big), Is.True);
        Assert.That(cache.Remove(k1), Is.True);   // k1's page becomes the class's spare
        cache.ValidateInvariants();

        object gate = typeof(CacheKit.Slab.SlabPool).GetField("_gate", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(cache.Pool)!;
        Exception? thrown = null;
        var remover = new Thread(() =>
        {
            try
            {
                cache.Remove(k2);   // k2's page is emptied with a spare present: it goes back to the pool (pool lock)
            }
            catch (Exception e)
            {
                thrown = e;
            }
        });
        lock (gate)
        {
            remover.Start();
            var sw = System.Diagnostics.Stopwatch.StartNew();
            while ((remover.ThreadState & ThreadState.WaitSleepJoin) == 0 && sw.ElapsedMilliseconds < 5000)
            {
                Thread.Sleep(1);
            }
            Thread.Sleep(50);
            remover.Interrupt();
            Thread.Sleep(50);
        }
        remover.Join();
        TestContext.Out.WriteLine($"Remove threw: {thrown?.GetType().Name}; Count now {cache.Count}, OwnedBytes {cache.Pool.OwnedBytes}");
        try
        {
            for (int i = 0; i < 400; i++)
            {
                cache.Set(System.Text.Encoding.ASCII.GetBytes($"after-{i:D10}"), big);   // fills the budget: evictions start
            }
            TestContext.Out.WriteLine("later sets: no exception");
        }
        catch (Exception e)
        {
            TestContext.Out.WriteLine($"a later Set threw {e.GetType().Name}: {e.Message}");
        }
        Assert.DoesNotThrow(() => cache.ValidateInvariants(), "the cache is inconsistent after the interrupted Remove");
    }

    private sealed class WriterOver(byte[] memory) : System.Buffers.IBufferWriter<byte>
    {
        public int Advanced { get; private set; }
        public void Advance(int count) => Advanced += count;
        public Memory<byte> GetMemory(int sizeHint = 0) => memory;
        public Span<byte> GetSpan(int sizeHint = 0) => memory;
    }

    [Test]
    public void AnIBufferWriterWhoseSpanOverlapsTheKeyIsRefusedNamingTheDestination()
    {
        // The span path copies such a key first; a writer's memory is known only once it is asked for, so there
        // the lookup refuses before copying anything over the key.
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 16 << 20, ShardCount = 1, HashSeed = 5 });
        byte[] key = "overlapping-key!"u8.ToArray();
        Assert.That(cache.Set(key, new byte[64]), Is.True);
        var buffer = new byte[128];
        key.CopyTo(buffer, 0);
        var writer = new WriterOver(buffer);
        var ex = Assert.Throws<ArgumentException>(() => cache.TryGet(buffer.AsSpan(0, key.Length), writer));
        Assert.That(ex!.ParamName, Is.EqualTo("destination"));
        Assert.That(writer.Advanced, Is.Zero);
        Assert.That(buffer.AsSpan(0, key.Length).SequenceEqual(key), Is.True, "the key was not overwritten");
        Assert.That(cache.TryGet(key, new WriterOver(new byte[128])), Is.True, "a writer elsewhere reads as usual");
        Assert.That(cache.TryGet(buffer.AsSpan(0, key.Length), buffer, out int n), Is.True, "the span path copies the key");
        Assert.That(n, Is.EqualTo(64));
        cache.ValidateInvariants();
    }

    private sealed class BlockingWriter(ManualResetEventSlim entered, ManualResetEventSlim release) : System.Buffers.IBufferWriter<byte>
    {
        private readonly byte[] _buffer = new byte[1024];

        public void Advance(int count)
        {
        }

        public Memory<byte> GetMemory(int sizeHint = 0) => _buffer;

        public Span<byte> GetSpan(int sizeHint = 0)
        {
            entered.Set();
            release.Wait();
            return _buffer;
        }
    }

    /// <summary>
    /// Dispose interrupted while it waits for an operation in flight: the flag stays set, the pool is never
    /// disposed, and every later Dispose returns at once, so the native memory stays allocated.
    /// </summary>
    [Test]
    public void ADisposeInterruptedWhileWaitingStillFreesTheNativeMemoryOnALaterDispose()
    {
        var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 16 << 20, ShardCount = 1, HashSeed = 1 });
        byte[] key = "dispose-key-0001"u8.ToArray();
        Assert.That(cache.Set(key, new byte[100]), Is.True);
        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var reader = new Thread(() => cache.TryGet(key, new BlockingWriter(entered, release)));
        reader.Start();
        Assert.That(entered.Wait(5000), Is.True);
        Exception? disposeError = null;
        var disposer = new Thread(() =>
        {
            try
            {
                cache.Dispose();
            }
            catch (Exception e)
            {
                disposeError = e;
            }
        });
        disposer.Start();
        Thread.Sleep(300);   // Dispose is spinning/sleeping in WaitUntilIdle
        disposer.Interrupt();
        Assert.That(disposer.Join(300), Is.False, "the interrupt does not end Dispose's wait for the operation in flight");
        release.Set();
        reader.Join();
        Assert.That(disposer.Join(10_000), Is.True, "Dispose ends once the operation has left");
        Assert.That(disposeError, Is.Null, "the interrupt is re-armed after the wait, not thrown from Dispose");
        Assert.That(cache.Pool.OwnedBytes, Is.Zero, "native memory still allocated after Dispose returned");
        cache.Dispose();   // a second Dispose does nothing
    }
}

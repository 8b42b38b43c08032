using System.Buffers;

namespace CacheKit.OffHeap.Tests;

/// <summary>
/// What a caller's own races and callbacks must not do to the cache: a key buffer written by another
/// thread during a set, a destination that calls back into the cache, lock-free hits into a sketch that
/// is not thread-safe (a policy throwing mid-drain: ReadBufferTests). Each must end in an exception or a lost read, never in a corrupt index.
/// </summary>
[TestFixture]
public sealed class CallerRaceTests
{
    private static readonly byte[] Value = new byte[100];

    [Test]
    public void ASetWhoseKeyBytesNoLongerMatchTheirHashIsRefusedAndStoresNothing()
    {
        // What a set sees when another thread rewrites its key buffer between the hash (taken before the
        // shard lock) and the copy into the entry: key B arrives with key A's hash.
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 16 << 20, MaxEntries = 1000, HashSeed = 3 });
        byte[] a = "key-A-0123456789"u8.ToArray(), b = "key-B-0123456789"u8.ToArray();
        Assert.That(cache.Set(a, [1, 2, 3]), Is.True);
        ulong hashOfA = cache.Hash(a);
        Shard shard = cache.ShardOf(hashOfA);

        var ex = Assert.Throws<ArgumentException>(() =>
        {
            lock (shard.Gate)
            {
                shard.SetUnsynchronized(hashOfA, b, Value, 0);
            }
        });
        Assert.That(ex!.ParamName, Is.EqualTo("key"));
        Assert.That(ex.Message, Does.Contain("changed while the call was running"));

        cache.ValidateInvariants();   // the chunk taken for B was given back; nothing was published
        Assert.That(cache.Count, Is.EqualTo(1));
        Span<byte> destination = stackalloc byte[128];
        Assert.That(cache.TryGet(a, destination, out int length), Is.True, "A keeps its value");
        Assert.That(destination[..length].ToArray(), Is.EqualTo(new byte[] { 1, 2, 3 }));
        Assert.That(cache.ContainsKey(b), Is.False);
    }

    [Test]
    public void RefusedSetsIntoAFullIndexLeaveNoOverflowCountBehind()
    {
        // At the index's load (0.6) many home buckets are full, so a new key's slot is often one or more
        // buckets on, and claiming it raises the overflow counts of the buckets passed. A refused set must
        // refuse before it claims anything (a first version of the check refused after, leaving those counts).
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 16 << 20, ShardCount = 1, MaxEntries = 2000, HashSeed = 5 });
        for (int k = 0; k < 2000; k++)
        {
            cache.Set(BitConverter.GetBytes(k), Value);
        }
        Shard shard = cache.Shards[0];
        int refused = 0;
        for (int k = 0; k < 500; k++)
        {
            byte[] asHashed = BitConverter.GetBytes(100_000 + k), asStored = BitConverter.GetBytes(200_000 + k);
            try
            {
                lock (shard.Gate)
                {
                    shard.SetUnsynchronized(cache.Hash(asHashed), asStored, Value, 0);
                }
            }
            catch (ArgumentException)
            {
                refused++;
            }
        }
        Assert.That(refused, Is.EqualTo(500));
        cache.ValidateInvariants();
        Assert.That(cache.Count, Is.EqualTo(2000));
    }

    [Test]
    public void SetManyWhoseKeyIsRewrittenByAnEvictionListenerRefusesThatEntryAndStaysConsistent()
    {
        // SetMany hashes every key before it takes the shard lock. Here the first item's insert evicts,
        // and the listener rewrites the second item's key bytes before that item is stored.
        byte[] second = "second-key-00000"u8.ToArray();
        bool rewrite = false;
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 16 << 20,
            ShardCount = 1,
            MaxEntries = 4,
            Policy = CachePolicy.Lru,
            EvictionListener = (_, _) =>
            {
                if (rewrite)
                {
                    second[0] ^= 0xFF;
                }
            },
        });
        for (int k = 0; k < 4; k++)
        {
            Assert.That(cache.Set(BitConverter.GetBytes(k), Value), Is.True);
        }
        byte[] first = "first-key-000000"u8.ToArray();
        rewrite = true;
        KeyValuePair<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>>[] items = [new(first, Value), new(second, Value)];

        Assert.Throws<ArgumentException>(() => cache.SetMany(items));

        rewrite = false;
        cache.ValidateInvariants();
        Assert.That(cache.ContainsKey(first), Is.True, "the entry stored before the rewrite stays");
        Assert.That(cache.ContainsKey(second), Is.False, "the rewritten key was not stored");
        second[0] ^= 0xFF;
        Assert.That(cache.ContainsKey(second), Is.False, "nor the key as it was when hashed");
    }

    [Test]
    public void ConcurrentWritesToTheKeyBufferNeverCorruptTheIndexThroughLaterPageReclaims()
    {
        // A small budget, several size classes and one policy eviction per insert, so pages are reclaimed
        // (page reclaim finds an entry's slot by hashing the key stored in its chunk: a key stored under
        // another key's hash would not be found there). One thread keeps flipping the key buffer while
        // this one sets it.
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 2 << 20, ShardCount = 1, PageSize = 64 << 10, HashSeed = 11, Policy = CachePolicy.Lru, MaxEvictionsPerInsert = 1 });
        byte[] key = new byte[16];
        bool stop = false;
        var flipper = new Thread(() =>
        {
            byte i = 0;
            while (!Volatile.Read(ref stop))
            {
                key[i & 15] = i;
                i++;
            }
        });
        flipper.Start();
        int refused = 0, stored = 0;
        var rng = new Random(5);
        var deadline = DateTime.UtcNow.AddMilliseconds(300);
        try
        {
            while (DateTime.UtcNow < deadline)
            {
                try
                {
                    stored += cache.Set(key, Value.AsSpan(0, rng.Next(1, 100))) ? 1 : 0;
                }
                catch (ArgumentException)
                {
                    refused++;
                }
            }
        }
        finally
        {
            Volatile.Write(ref stop, true);
            flipper.Join();
        }
        cache.ValidateInvariants();

        // Now reclaim every page: fill the budget with entries of other sizes.
        byte[] big = new byte[3000];
        for (int k = 0; k < 20_000; k++)
        {
            cache.Set(BitConverter.GetBytes(k), big.AsSpan(0, 500 + (k % 5) * 600));
        }
        cache.ValidateInvariants();
        CacheStatistics stats = cache.GetStatistics();
        Assert.That(stats.PageReclaims, Is.GreaterThan(0), "the fill reclaimed pages");
        Assert.That(stats.CapacityEvictions, Is.GreaterThan(0), "and evicted policy victims");
        Assert.That(stats.CapacityEvictions + stats.PageReclaims, Is.EqualTo(stats.Evictions), "the two reasons make up the evictions");
        TestContext.Out.WriteLine($"sets stored {stored}, refused (key changed mid-call) {refused}");
    }

    [TestCase(CachePolicy.Clock)]
    [TestCase(CachePolicy.Sieve)]
    [TestCase(CachePolicy.S3Fifo)]
    public void TinyLfuAdmissionOverALockFreeHitPolicyBuffersItsHits(CachePolicy policy)
    {
        // The admission sketch is written on every hit and is not thread-safe: hits must go through the
        // read buffer (replayed under the lock) even when the inner policy takes them lock-free.
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 16 << 20, MaxEntries = 1000, Policy = policy, TinyLfuAdmission = true });
        Assert.That(cache.Shards[0].Policy.ConcurrentHits, Is.False);
        cache.Set("k"u8, Value);
        Span<byte> destination = stackalloc byte[128];
        Assert.That(cache.TryGet("k"u8, destination, out _), Is.True);
        Assert.That(cache.PendingReads, Is.EqualTo(1), "the hit waits in the read buffer");
    }

    /// <summary>A destination that disposes a cache from its GetSpan or its Advance (and otherwise appends normally).</summary>
    private sealed class DisposingWriter(Func<OffHeapCache> victim, bool inAdvance) : IBufferWriter<byte>
    {
        private readonly ArrayBufferWriter<byte> _inner = new();

        public List<Exception> Thrown { get; } = [];

        public void Advance(int count)
        {
            if (inAdvance)
            {
                DisposeVictim();
            }
            _inner.Advance(count);
        }

        public Memory<byte> GetMemory(int sizeHint = 0) => _inner.GetMemory(sizeHint);

        public Span<byte> GetSpan(int sizeHint = 0)
        {
            if (!inAdvance)
            {
                DisposeVictim();
            }
            return _inner.GetSpan(sizeHint);
        }

        private void DisposeVictim()
        {
            try
            {
                victim().Dispose();
            }
            catch (InvalidOperationException e)
            {
                Thrown.Add(e);
                throw;
            }
        }
    }

    /// <summary>A destination that looks the key up in another cache, into <paramref name="inner"/> (a lookup nested in a lookup).</summary>
    private sealed class NestingWriter(OffHeapCache other, byte[] key, IBufferWriter<byte> inner) : IBufferWriter<byte>
    {
        private readonly ArrayBufferWriter<byte> _own = new();

        public void Advance(int count) => _own.Advance(count);

        public Memory<byte> GetMemory(int sizeHint = 0) => _own.GetMemory(sizeHint);

        public Span<byte> GetSpan(int sizeHint = 0)
        {
            other.TryGet(key, inner);
            return _own.GetSpan(sizeHint);
        }
    }

    [TestCase(false)]
    [TestCase(true)]
    public void ADestinationThatDisposesTheCacheItReadsFromGetsAnExceptionInsteadOfWaitingForItself(bool inAdvance)
    {
        // A lookup's destination runs inside the lookup, an operation Dispose waits for: Dispose from there waited forever
        // in TryGetMany and GetOrAdd's hit (documented for TryGet alone; found by an adversarial review, 2026-11-30). Each
        // such Dispose now throws, and the cache is not disposed. Not `using`: should a Dispose hang again, the Join fails.
        var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 16 << 20, MaxEntries = 1000 });
        byte[] key = "dispose-me"u8.ToArray();
        cache.Set(key, Value);
        var other = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 16 << 20, MaxEntries = 1000 });
        other.Set(key, Value);
        var calls = new (string Name, Func<IBufferWriter<byte>, object> Call)[]
        {
            ("TryGet", w => cache.TryGet(key, w)),
            ("TryGetMany", w => cache.TryGetMany([key, key], w, new int[2])),
            ("GetOrAdd (a hit)", w => cache.GetOrAdd(key, 0, static (_, _, v) => v.Write<byte>([1]), w)),
            ("a lookup of another cache nested in this one's", w => cache.TryGet(key, new NestingWriter(other, key, w))),
        };
        var outcomes = new List<string>();
        var worker = new Thread(() =>
        {
            foreach ((string name, Func<IBufferWriter<byte>, object> call) in calls)
            {
                var writer = new DisposingWriter(() => cache, inAdvance);
                try
                {
                    call(writer);
                    outcomes.Add(name + ": returned");
                }
                catch (InvalidOperationException e) when (writer.Thrown.Contains(e))
                {
                    outcomes.Add(name + ": Dispose refused");
                }
            }
        })
        {
            IsBackground = true,
        };
        worker.Start();
        if (!worker.Join(TimeSpan.FromSeconds(30)))
        {
            Assert.Fail("a Dispose from a destination waited for the lookup that called it: " + string.Join("; ", outcomes));
        }
        Assert.That(outcomes, Is.EqualTo(calls.Select(c => c.Name + ": Dispose refused")));
        Assert.That(cache.ContainsKey(key), Is.True, "not disposed");
        cache.ValidateInvariants();
        var copy = new byte[Value.Length];
        Assert.That(cache.TryGet(key, copy, out _) && copy.SequenceEqual(Value), Is.True);
        cache.Dispose();
        Assert.That(() => cache.ContainsKey(key), Throws.InstanceOf<ObjectDisposedException>(), "a Dispose outside any lookup still disposes");
        // Disposing the other cache (the inner lookup's) from the inner destination is refused the same way.
        var innerWriter = new DisposingWriter(() => other, inAdvance);
        using var third = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 16 << 20, MaxEntries = 1000 });
        third.Set(key, Value);
        Assert.That(() => third.TryGet(key, new NestingWriter(other, key, innerWriter)), Throws.InvalidOperationException);
        Assert.That(innerWriter.Thrown, Has.Count.EqualTo(1));
        other.Dispose();
    }

    /// <summary>A destination whose GetSpan writes to the cache it is reading from.</summary>
    private sealed class ReentrantWriter(OffHeapCache cache, byte[] key) : IBufferWriter<byte>
    {
        private readonly byte[] _buffer = new byte[256];
        private byte _next;

        public void Advance(int count) { }
        public Memory<byte> GetMemory(int sizeHint = 0) => _buffer;

        public Span<byte> GetSpan(int sizeHint = 0)
        {
            cache.Set(key, [_next++]);   // moves the version of the very bucket being read
            return _buffer;
        }
    }

    [Test]
    public void ADestinationThatWritesToTheCacheDuringALookupGetsAnExceptionNotACorruptRead()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 16 << 20, MaxEntries = 1000 });
        byte[] key = "reentrant-key"u8.ToArray();
        cache.Set(key, Value);

        var ex = Assert.Throws<InvalidOperationException>(() => cache.TryGet(key, new ReentrantWriter(cache, key)));
        Assert.That(ex!.Message, Does.Contain("must not call back into the cache"));
        cache.ValidateInvariants();
        Assert.That(cache.ContainsKey(key), Is.True);
    }
}

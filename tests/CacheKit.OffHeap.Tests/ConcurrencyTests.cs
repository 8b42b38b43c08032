using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;

namespace CacheKit.OffHeap.Tests;

/// <summary>
/// Writers store values that carry their key id and a checksum; readers verify every byte they get.
/// Short by default; CACHEKIT_STRESS_OPS sets the operations per thread for a long local run.
/// </summary>
public class ConcurrencyTests
{
    private static readonly int OpsPerThread = int.TryParse(Environment.GetEnvironmentVariable("CACHEKIT_STRESS_OPS"), out int n) ? n : 40_000;

    /// <summary>Runs writers (seeds 0..) and readers (seeds after the writers') on threads of their own, released together
    /// (a barrier), and returns what they threw.</summary>
    internal static List<Exception> RunWritersAndReaders(int writers, Action<int> writer, int readers, Action<int> reader)
    {
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var threads = new List<Thread>();
        using var start = new Barrier(writers + readers);
        for (int t = 0; t < writers + readers; t++)
        {
            int seed = t;
            Action body = t < writers ? () => writer(seed) : () => reader(seed);
            threads.Add(new Thread(() =>
            {
                try
                {
                    start.SignalAndWait();
                    body();
                }
                catch (Exception e)
                {
                    failures.Enqueue(e);
                }
            }));
        }
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        return [.. failures];
    }

    private static byte[] MakeValue(int id, int seq, int payload, Random rng)
    {
        var v = new byte[8 + payload + 8];
        BinaryPrimitives.WriteInt32LittleEndian(v, id);
        BinaryPrimitives.WriteInt32LittleEndian(v.AsSpan(4), seq);
        rng.NextBytes(v.AsSpan(8, payload));
        BinaryPrimitives.WriteUInt64LittleEndian(v.AsSpan(8 + payload), XxHash3.HashToUInt64(v.AsSpan(0, 8 + payload)));
        return v;
    }

    private static bool IsValid(ReadOnlySpan<byte> v, int id)
        => v.Length >= 16
           && BinaryPrimitives.ReadInt32LittleEndian(v) == id
           && BinaryPrimitives.ReadUInt64LittleEndian(v[^8..]) == XxHash3.HashToUInt64(v[..^8]);

    [TestCase(64, 4 << 20, CachePolicy.WTinyLfu, TestName = "Stress_FewHotKeys_WTinyLfu")]
    [TestCase(6_000, 4 << 20, CachePolicy.WTinyLfu, TestName = "Stress_EvictingAndReclaiming_WTinyLfu")]
    [TestCase(6_000, 4 << 20, CachePolicy.Clock, TestName = "Stress_EvictingAndReclaiming_Clock")]
    public void ReadersNeverSeeTornOrForeignValues(int keySpace, long capacity, CachePolicy policy)
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = capacity,
            PageSize = 64 * 1024,
            ShardCount = 2,
            Policy = policy,
            MaxKeyBytes = 64,
        });
        var keys = Enumerable.Range(0, keySpace).Select(TestKeys.Key).ToArray();
        long mismatches = 0, hits = 0;

        void Writer(int seed)
        {
            var rng = new Random(seed);
            for (int i = 0; i < OpsPerThread; i++)
            {
                int id = rng.Next(keySpace);
                int r = rng.Next(100);
                if (r < 85)
                {
                    // the size mix shifts over time so pages move between classes under the readers
                    int payload = (i / 5000) % 2 == 0 ? rng.Next(0, 200) : rng.Next(500, 3000);
                    byte[] v = MakeValue(id, i, payload, rng);
                    if (r < 10)
                    {
                        cache.Set(keys[id], v, TimeSpan.FromMilliseconds(rng.Next(1, 50)));
                    }
                    else
                    {
                        cache.Set(keys[id], v);
                    }
                }
                else if (r < 99)
                {
                    cache.Remove(keys[id]);
                }
                else if (rng.Next(200) == 0)
                {
                    cache.Clear();
                }
            }
        }

        void Reader(int seed)
        {
            var rng = new Random(seed);
            var buffer = new byte[4096];
            var writer = new ArrayBufferWriter<byte>();
            for (int i = 0; i < OpsPerThread; i++)
            {
                int id = rng.Next(keySpace);
                if ((i & 1) == 0)
                {
                    if (cache.TryGet(keys[id], buffer, out int written))
                    {
                        Interlocked.Increment(ref hits);
                        if (!IsValid(buffer.AsSpan(0, written), id))
                        {
                            Interlocked.Increment(ref mismatches);
                        }
                    }
                }
                else
                {
                    writer.ResetWrittenCount();
                    if (cache.TryGet(keys[id], writer))
                    {
                        Interlocked.Increment(ref hits);
                        if (!IsValid(writer.WrittenSpan, id))
                        {
                            Interlocked.Increment(ref mismatches);
                        }
                    }
                    else if (writer.WrittenCount != 0)
                    {
                        Interlocked.Increment(ref mismatches);   // a miss must write nothing
                    }
                }
            }
        }

        var failures = RunWritersAndReaders(2, Writer, 2, Reader);
        Assert.That(failures, Is.Empty, string.Join("\n", failures));
        Assert.That(mismatches, Is.Zero, "a reader got bytes that were never the value of its key");
        cache.ValidateInvariants();
        CacheStatistics stats = cache.GetStatistics();
        TestContext.Out.WriteLine($"{keySpace} keys: {OpsPerThread} ops/thread, reader hits {hits}, evictions {stats.Evictions}, expirations {stats.Expirations}, count {stats.Count}, native {stats.NativeBytes}");
        Assert.That(hits, Is.GreaterThan(0));
        Assert.That(stats.NativeBytes, Is.LessThanOrEqualTo(capacity));
    }

    /// <summary>
    /// The exit of a lookup is its hit or miss count (OperationCounters): with threads sharing stripes,
    /// writers and a throwing buffer writer in the mix, the counts stay exact and every operation exits.
    /// </summary>
    [TestCase(CachePolicy.Sieve)]
    [TestCase(CachePolicy.WTinyLfu)]
    public void HitAndMissCountsStayExactAndEveryOperationExits(CachePolicy policy)
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 8 << 20, PageSize = 64 * 1024, ShardCount = 2, Policy = policy });
        var present = Enumerable.Range(0, 500).Select(TestKeys.Key).ToArray();
        var absent = Enumerable.Range(10_000, 500).Select(TestKeys.Key).ToArray();
        var other = Enumerable.Range(20_000, 500).Select(TestKeys.Key).ToArray();
        foreach (byte[] key in present)
        {
            Assert.That(cache.Set(key, key), Is.True);
        }
        int threads = Math.Max(4, Environment.ProcessorCount * 2);   // more threads than stripes: stripes are shared
        int opsPerThread = OpsPerThread / 4;
        long expectedHits = 0, expectedMisses = 0, thrown = 0;
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            var rng = new Random(t);
            var buffer = new byte[64];
            long hits = 0, misses = 0, throws = 0;
            for (int i = 0; i < opsPerThread; i++)
            {
                switch (rng.Next(8))
                {
                    case 0:
                        cache.Set(other[rng.Next(other.Length)], buffer.AsSpan(0, rng.Next(40)));   // never a lookup
                        break;
                    case 1:
                        cache.Remove(other[rng.Next(other.Length)]);
                        break;
                    case 2:
                        try
                        {
                            cache.TryGet(present[rng.Next(present.Length)], new ThrowingWriter());
                        }
                        catch (InvalidOperationException)
                        {
                            throws++;   // a lookup that threw is not counted
                        }
                        break;
                    case 3:
                        misses += cache.TryGet(absent[rng.Next(absent.Length)], buffer, out _) ? 0 : 1;
                        break;
                    default:
                        hits += cache.TryGet(present[rng.Next(present.Length)], buffer, out _) ? 1 : 0;
                        break;
                }
            }
            Interlocked.Add(ref expectedHits, hits);
            Interlocked.Add(ref expectedMisses, misses);
            Interlocked.Add(ref thrown, throws);
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());

        CacheStatistics stats = cache.GetStatistics();
        Assert.That(thrown, Is.GreaterThan(0), "the throwing writer ran");
        Assert.That(stats.Hits, Is.EqualTo(expectedHits), "hits");
        Assert.That(stats.Misses, Is.EqualTo(expectedMisses), "misses");
        Assert.That(cache.InFlightOperations, Is.Zero, "every operation exited, including the ones that threw");
        cache.ValidateInvariants();
    }

    private sealed class ThrowingWriter : IBufferWriter<byte>
    {
        public void Advance(int count) => throw new InvalidOperationException("not reached: GetSpan throws first");

        public Memory<byte> GetMemory(int sizeHint = 0) => throw new InvalidOperationException("buffer writer failure");

        public Span<byte> GetSpan(int sizeHint = 0) => throw new InvalidOperationException("buffer writer failure");
    }

    [Test]
    public void DisposeRacingWithReadersAndWritersOnlyEverThrowsObjectDisposed([Range(1, 5)] int round)
    {
        var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, PageSize = 64 * 1024, ShardCount = 2 });
        CacheKit.Slab.SlabPool pool = cache.Pool;
        var keys = Enumerable.Range(0, 2000).Select(TestKeys.Key).ToArray();
        var unexpected = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        long operations = 0;
        using var started = new CountdownEvent(5);

        void Loop(int seed, bool write, bool enumerate)
        {
            var rng = new Random(seed);
            var buffer = new byte[4096];
            byte[] value = new byte[300];
            started.Signal();
            try
            {
                while (true)
                {
                    int id = rng.Next(keys.Length);
                    if (enumerate)
                    {
                        // The enumerator, keys and entries in turn: each batch is an operation that Dispose must wait
                        // for or refuse (an entries batch also reads the values' native bytes).
                        IEnumerable<KeyValuePair<byte[], byte[]?>> listing = rng.Next(2) == 0
                            ? cache.Keys.Select(k => new KeyValuePair<byte[], byte[]?>(k, null))
                            : cache.Entries.Select(e => new KeyValuePair<byte[], byte[]?>(e.Key, e.Value));
                        foreach ((byte[] listed, byte[]? listedValue) in listing)
                        {
                            int listedId = TestKeys.IdOf(listed);
                            Assert.That((uint)listedId < keys.Length && listed.AsSpan().SequenceEqual(keys[listedId]), Is.True, "a key this test stores");
                            Assert.That(listedValue is null || (listedValue.Length < value.Length && !listedValue.AsSpan().ContainsAnyExcept((byte)0)), Is.True,
                                "a value this test stores");
                        }
                    }
                    else if (write)
                    {
                        cache.Set(keys[id], value.AsSpan(0, rng.Next(value.Length)));
                        if (rng.Next(10) == 0)
                        {
                            cache.Remove(keys[id]);
                        }
                    }
                    else
                    {
                        cache.TryGet(keys[id], buffer, out _);
                        cache.ContainsKey(keys[id]);
                    }
                    Interlocked.Increment(ref operations);
                }
            }
            catch (ObjectDisposedException)
            {
                // the only exception allowed
            }
            catch (Exception e)
            {
                unexpected.Enqueue(e);
            }
        }

        var threads = Enumerable.Range(0, 5).Select(t => new Thread(() => Loop(t + (round * 10), write: t < 2, enumerate: t == 4))).ToList();
        threads.ForEach(t => t.Start());
        started.Wait();
        bool ran = SpinWait.SpinUntil(() => Interlocked.Read(ref operations) > 2000 * round, TimeSpan.FromSeconds(10));
        cache.Dispose();   // also on a timeout: it ends the loops
        threads.ForEach(t => t.Join());
        Assert.That(ran, Is.True, "operations ran before Dispose");

        Assert.That(unexpected, Is.Empty, string.Join("\n", unexpected));
        Assert.That(pool.OwnedBytes, Is.Zero, "Dispose returns every native byte");
    }
}

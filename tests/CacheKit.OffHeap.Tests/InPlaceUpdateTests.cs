using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using Microsoft.Extensions.Time.Testing;

namespace CacheKit.OffHeap.Tests;

/// <summary>
/// An update whose new entry takes the same size class is written over the old one in its chunk (under the slot's bucket
/// sequence lock) instead of into a new chunk: it makes no room, so it evicts nothing, and lock-free readers racing it
/// still never see a torn value.
/// </summary>
public class InPlaceUpdateTests
{
    private const int ValueLength = 1_000;

    [TestCase(CachePolicy.WTinyLfu)]
    [TestCase(CachePolicy.Lru)]
    [TestCase(CachePolicy.Sieve)]
    public void UpdatingEveryEntryOfAFullSizeClassEvictsNothing(CachePolicy policy)
    {
        // 1,000-byte values (entries of 1,013-1,039 B, two size classes) fill the budget before the index's entry bound,
        // so after the fill their classes have no free chunk: an update that needed a new chunk evicted an entry.
        using OffHeapCache cache = TtlTests.Create(new FakeTimeProvider(), capacity: 1 << 20, policy: policy);
        for (int id = 0; id < 3_000; id++)
        {
            cache.Set(TestKeys.Key(id), TestKeys.Value(id, 0, ValueLength));
        }
        CacheStatistics filled = cache.GetStatistics();
        Assert.That(filled.Evictions, Is.GreaterThan(0), "the fill went past the budget");
        byte[][] resident = cache.Keys.ToArray();
        Assert.That(resident, Has.Length.EqualTo(filled.Count));
        long allocations = Allocations(cache);

        foreach (byte[] key in resident)
        {
            Assert.That(cache.Set(key, TestKeys.Value(TestKeys.IdOf(key), 1, ValueLength)), Is.True);
        }

        CacheStatistics updated = cache.GetStatistics();
        Assert.That(updated.Evictions, Is.EqualTo(filled.Evictions), "an update in its own chunk makes no room");
        Assert.That(updated.Count, Is.EqualTo(filled.Count));
        Assert.That(updated.NativeBytes, Is.EqualTo(filled.NativeBytes));
        Assert.That(Allocations(cache), Is.EqualTo(allocations), "every update rewrote its own chunk");
        var buffer = new byte[ValueLength];
        foreach (byte[] key in resident)
        {
            Assert.That(cache.TryGet(key, buffer, out int written), Is.True);
            Assert.That(buffer.AsSpan(0, written).SequenceEqual(TestKeys.Value(TestKeys.IdOf(key), 1, ValueLength)), Is.True);
        }
        cache.ValidateInvariants();
    }

    [Test]
    public void AnUpdateToAnotherSizeClassOrOver4KiBStillTakesANewChunk()
    {
        using OffHeapCache cache = TtlTests.Create(new FakeTimeProvider());
        byte[] key = TestKeys.Key(7);
        cache.Set(key, TestKeys.Value(7, 0, 100));
        long allocations = Allocations(cache);
        cache.Set(key, TestKeys.Value(7, 1, 5_000));   // a larger class
        Assert.That(Allocations(cache), Is.EqualTo(allocations + 1));
        cache.Set(key, TestKeys.Value(7, 2, 5_000));   // the same class, but over 4 KiB: a new chunk (readers never wait on a long copy)
        Assert.That(Allocations(cache), Is.EqualTo(allocations + 2));
        cache.Set(key, TestKeys.Value(7, 3, 104));     // back to a small class
        Assert.That(Allocations(cache), Is.EqualTo(allocations + 3));
        int atLimit = 4_096 - 8 - key.Length;           // header + key + value = 4,096 B: the longest entry rewritten in place
        cache.Set(key, TestKeys.Value(7, 4, atLimit));
        cache.Set(key, TestKeys.Value(7, 5, atLimit));
        Assert.That(Allocations(cache), Is.EqualTo(allocations + 4), "4,096 B: in place");
        cache.Set(key, TestKeys.Value(7, 6, atLimit + 1));
        cache.Set(key, TestKeys.Value(7, 7, atLimit + 1));
        Assert.That(Allocations(cache), Is.EqualTo(allocations + 6), "4,097 B: a new chunk each time");
        cache.Set(key, TestKeys.Value(7, 8, 104));
        Assert.That(LiveChunkSizes(cache), Is.EqualTo(new[] { cache.Pool.Classes[cache.Pool.Classes.ClassOf(EntryBytes(key, 104, header: 8))] }),
            "one live chunk, of the small value's class: the large chunk went back");
        var buffer = new byte[5_000];
        Assert.That(cache.TryGet(key, buffer, out int written), Is.True);
        Assert.That(buffer.AsSpan(0, written).SequenceEqual(TestKeys.Value(7, 8, 104)), Is.True);
        Assert.That(cache.GetStatistics().PayloadBytes, Is.EqualTo(key.Length + 104));
        cache.ValidateInvariants();
    }

    /// <summary>
    /// An entry stored before its shard held any expiry has an 8-byte header; the first time to live written to it (a
    /// <c>Set</c> with a TTL, or <c>Touch</c>) needs the 16-byte header, which moves the key and the value by 8 bytes. When
    /// that keeps the size class it is done in place too.
    /// </summary>
    [TestCase(false)]
    [TestCase(true)]
    public void TheFirstTimeToLiveGrowsTheHeaderInPlaceWhenTheClassIsKept(bool touch)
    {
        var time = new FakeTimeProvider();
        using OffHeapCache cache = TtlTests.Create(time);
        byte[] key = TestKeys.Key(11);
        int length = Enumerable.Range(100, 64).First(v =>
            cache.Pool.Classes.ClassOf(EntryBytes(key, v, header: 8)) == cache.Pool.Classes.ClassOf(EntryBytes(key, v, header: 16)));
        byte[] value = TestKeys.Value(11, 0, length);
        cache.Set(key, value);
        long allocations = Allocations(cache);

        if (touch)
        {
            Assert.That(cache.Touch(key, TimeSpan.FromSeconds(10)), Is.True);
        }
        else
        {
            value = TestKeys.Value(11, 1, length);
            Assert.That(cache.Set(key, value, TimeSpan.FromSeconds(10)), Is.True);
        }

        Assert.That(Allocations(cache), Is.EqualTo(allocations), "rewritten in its own chunk");
        cache.ValidateInvariants();
        var buffer = new byte[length];
        Assert.That(cache.TryGet(key, buffer, out int written), Is.True);
        Assert.That(buffer.AsSpan(0, written).SequenceEqual(value), Is.True, "key and value moved behind the longer header");
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.That(cache.ContainsKey(key), Is.False, "the time to live written in place applies");
        Assert.That(cache.RemoveExpired(), Is.EqualTo(1));
        cache.ValidateInvariants();
    }

    [Test]
    public void AnInPlaceUpdateThatAddsOrDropsATimeToLiveKeepsTheExpiryAndTheCountsRight()
    {
        var time = new FakeTimeProvider();
        using OffHeapCache cache = TtlTests.Create(time);
        byte[] key = TestKeys.Key(3), other = TestKeys.Key(4);
        cache.Set(other, TestKeys.Value(4, 0, 200), TimeSpan.FromMinutes(1));   // the shard now stores the expiry field
        cache.Set(key, TestKeys.Value(3, 0, 200));
        cache.Set(key, TestKeys.Value(3, 1, 200), TimeSpan.FromSeconds(10));   // same class: in place, now with a TTL
        cache.ValidateInvariants();
        var buffer = new byte[200];
        Assert.That(cache.TryGet(key, buffer, out _), Is.True);
        Assert.That(buffer.SequenceEqual(TestKeys.Value(3, 1, 200)), Is.True);

        time.Advance(TimeSpan.FromSeconds(11));
        Assert.That(cache.TryGet(key, buffer, out _), Is.False, "the TTL written in place applies");
        Assert.That(cache.RemoveExpired(), Is.EqualTo(1));

        cache.Set(other, TestKeys.Value(4, 1, 200));   // in place, the TTL dropped
        time.Advance(TimeSpan.FromMinutes(2));
        Assert.That(cache.TryGet(other, buffer, out _), Is.True, "an update without a TTL never expires");
        Assert.That(cache.RemoveExpired(), Is.Zero);
        cache.ValidateInvariants();
    }

    /// <summary>
    /// Writers rewrite a few keys with self-checking values of one length (so every update is in place) while readers copy
    /// them without a lock: a reader must get a whole value of its key every time. Without the bucket sequence lock around
    /// the rewrite this fails within a few thousand reads (the value is long, so copies overlap rewrites often).
    /// </summary>
    [TestCase(false, TestName = "ReadersRacingInPlaceUpdatesNeverSeeATornValue")]
    [TestCase(true, TestName = "ReadersRacingUpdatesOfMixedLengthsNeverSeeATornValue")]
    public void ReadersRacingInPlaceUpdatesNeverSeeATornValue(bool mixedLengths)
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1, PageSize = 64 * 1024 });
        const int Keys = 4, Payload = 2_000;
        byte[][] keys = Enumerable.Range(0, Keys).Select(TestKeys.Key).ToArray();
        for (int id = 0; id < Keys; id++)
        {
            cache.Set(keys[id], MakeValue(id, 0, Payload));
        }
        long reads = 0, readsWhileWriting = 0, torn = 0;
        long allocations = Allocations(cache);
        int writersDone = 0;

        void Writer(int seed)
        {
            try
            {
                var rng = new Random(seed);
                for (int i = 1; i <= 60_000; i++)
                {
                    int id = (i + seed) % Keys;
                    // Mixed: two length ranges in two size classes (this shard of 64 pages cuts 4 classes per doubling:
                    // 1,792 and 2,048 B), so in-place rewrites (with torn lengths between them) and chunk swaps race the
                    // same readers, and now and then a time to live.
                    int payload = !mixedLengths ? Payload : rng.Next(2) == 0 ? 1_700 + rng.Next(40) : Payload - rng.Next(40);
                    if (mixedLengths && rng.Next(50) == 0)
                    {
                        cache.Set(keys[id], MakeValue(id, i, payload), TimeSpan.FromHours(1));
                    }
                    else
                    {
                        cache.Set(keys[id], MakeValue(id, i, payload));
                    }
                }
            }
            finally
            {
                Interlocked.Increment(ref writersDone);   // also when it throws: the readers stop after both writers
            }
        }

        void Reader(int seed)
        {
            var buffer = new byte[Payload + 16];
            var writer = new ArrayBufferWriter<byte>();
            for (int i = 0; Volatile.Read(ref writersDone) < 2 || i < 1_000; i++)
            {
                int id = (i + seed) % Keys;
                ReadOnlySpan<byte> got;
                if ((i & 1) == 0)
                {
                    Assert.That(cache.TryGet(keys[id], buffer, out int written), Is.True);
                    got = buffer.AsSpan(0, written);
                }
                else
                {
                    writer.ResetWrittenCount();
                    Assert.That(cache.TryGet(keys[id], writer), Is.True);
                    got = writer.WrittenSpan;
                }
                Interlocked.Increment(ref reads);
                if (Volatile.Read(ref writersDone) < 2)
                {
                    Interlocked.Increment(ref readsWhileWriting);
                }
                if (!IsValid(got, id))
                {
                    Interlocked.Increment(ref torn);
                }
            }
        }

        List<Exception> failures = ConcurrencyTests.RunWritersAndReaders(2, Writer, 2, Reader);
        Assert.That(failures, Is.Empty, string.Join("\n", failures));
        Assert.That(torn, Is.Zero, $"torn values among {reads} reads");
        Assert.That(readsWhileWriting, Is.GreaterThan(100), "the readers overlapped the writers");
        long swaps = Allocations(cache) - allocations;
        if (mixedLengths)
        {
            Assert.That(swaps, Is.InRange(1, (2 * 60_000) - 1), "both paths ran: chunk swaps and in-place rewrites");
        }
        else
        {
            Assert.That(swaps, Is.Zero, "every update rewrote its chunk in place");
        }
        Assert.That(cache.GetStatistics().Evictions, Is.Zero);
        cache.ValidateInvariants();
    }

    /// <summary>Chunks handed out by the cache's slab so far (an in-place rewrite hands none out).</summary>
    private static long Allocations(OffHeapCache cache) => cache.Pool.GetStatistics().Classes.Sum(c => c.TotalAllocations);

    private static int[] LiveChunkSizes(OffHeapCache cache)
        => cache.Pool.GetStatistics().Classes.Where(c => c.LiveChunks > 0).SelectMany(c => Enumerable.Repeat(c.ChunkSize, (int)c.LiveChunks)).ToArray();

    private static int EntryBytes(byte[] key, int valueLength, int header) => header + key.Length + valueLength;

    private static byte[] MakeValue(int id, int seq, int payload)
    {
        var v = new byte[8 + payload + 8];
        BinaryPrimitives.WriteInt32LittleEndian(v, id);
        BinaryPrimitives.WriteInt32LittleEndian(v.AsSpan(4), seq);
        v.AsSpan(8, payload).Fill((byte)seq);
        BinaryPrimitives.WriteUInt64LittleEndian(v.AsSpan(8 + payload), XxHash3.HashToUInt64(v.AsSpan(0, 8 + payload)));
        return v;
    }

    private static bool IsValid(ReadOnlySpan<byte> v, int id)
        => v.Length >= 16 + 1_700 && v.Length <= 16 + 2_000
           && BinaryPrimitives.ReadInt32LittleEndian(v) == id
           && BinaryPrimitives.ReadUInt64LittleEndian(v[^8..]) == XxHash3.HashToUInt64(v[..^8]);
}

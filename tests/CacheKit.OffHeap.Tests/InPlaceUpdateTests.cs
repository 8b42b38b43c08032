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
        // One size class fills the whole budget (1,000-byte values: the byte budget binds before the index's entry
        // bound), so after the fill that class has no free chunk: an update that needed a new chunk evicted an entry.
        using OffHeapCache cache = TtlTests.Create(new FakeTimeProvider(), capacity: 1 << 20, policy: policy);
        for (int id = 0; id < 3_000; id++)
        {
            cache.Set(TestKeys.Key(id), TestKeys.Value(id, 0, ValueLength));
        }
        CacheStatistics filled = cache.GetStatistics();
        Assert.That(filled.Evictions, Is.GreaterThan(0), "the fill went past the budget");
        byte[][] resident = cache.Keys.ToArray();
        Assert.That(resident, Has.Length.EqualTo(filled.Count));

        foreach (byte[] key in resident)
        {
            Assert.That(cache.Set(key, TestKeys.Value(TestKeys.IdOf(key), 1, ValueLength)), Is.True);
        }

        CacheStatistics updated = cache.GetStatistics();
        Assert.That(updated.Evictions, Is.EqualTo(filled.Evictions), "an update in its own chunk makes no room");
        Assert.That(updated.Count, Is.EqualTo(filled.Count));
        Assert.That(updated.NativeBytes, Is.EqualTo(filled.NativeBytes));
        var buffer = new byte[ValueLength];
        foreach (byte[] key in resident)
        {
            Assert.That(cache.TryGet(key, buffer, out int written), Is.True);
            Assert.That(buffer.AsSpan(0, written).SequenceEqual(TestKeys.Value(TestKeys.IdOf(key), 1, ValueLength)), Is.True);
        }
        cache.ValidateInvariants();
    }

    [Test]
    public void AnUpdateToAnotherSizeClassStillMovesTheEntry()
    {
        using OffHeapCache cache = TtlTests.Create(new FakeTimeProvider());
        byte[] key = TestKeys.Key(7);
        cache.Set(key, TestKeys.Value(7, 0, 100));
        cache.Set(key, TestKeys.Value(7, 1, 5_000));   // a larger class
        cache.Set(key, TestKeys.Value(7, 2, 104));     // back to a small class
        var buffer = new byte[5_000];
        Assert.That(cache.TryGet(key, buffer, out int written), Is.True);
        Assert.That(buffer.AsSpan(0, written).SequenceEqual(TestKeys.Value(7, 2, 104)), Is.True);
        Assert.That(cache.GetStatistics().PayloadBytes, Is.EqualTo(key.Length + 104));
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
    [Test]
    public void ReadersRacingInPlaceUpdatesNeverSeeATornValue()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1, PageSize = 64 * 1024 });
        const int Keys = 4, Payload = 2_000;
        byte[][] keys = Enumerable.Range(0, Keys).Select(TestKeys.Key).ToArray();
        for (int id = 0; id < Keys; id++)
        {
            cache.Set(keys[id], MakeValue(id, 0, Payload));
        }
        long reads = 0, torn = 0;
        int writersDone = 0;

        void Writer(int seed)
        {
            try
            {
                for (int i = 1; i <= 60_000; i++)
                {
                    int id = (i + seed) % Keys;
                    cache.Set(keys[id], MakeValue(id, i, Payload));
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
                if (!IsValid(got, id))
                {
                    Interlocked.Increment(ref torn);
                }
            }
        }

        List<Exception> failures = ConcurrencyTests.RunWritersAndReaders(2, Writer, 2, Reader);
        Assert.That(failures, Is.Empty, string.Join("\n", failures));
        Assert.That(torn, Is.Zero, $"torn values among {reads} reads");
        Assert.That(reads, Is.GreaterThan(2_000));
        Assert.That(cache.GetStatistics().Evictions, Is.Zero);
        cache.ValidateInvariants();
    }

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
        => v.Length == 16 + 2_000
           && BinaryPrimitives.ReadInt32LittleEndian(v) == id
           && BinaryPrimitives.ReadUInt64LittleEndian(v[^8..]) == XxHash3.HashToUInt64(v[..^8]);
}

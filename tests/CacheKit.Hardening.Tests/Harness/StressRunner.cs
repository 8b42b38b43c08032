using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Hashing;
using CacheKit.OffHeap;

namespace CacheKit.Hardening.Harness;

/// <summary>Figures of one stress run.</summary>
internal sealed record StressResult(
    CachePolicy Policy,
    bool Poison,
    double Seconds,
    long Operations,
    long VerifiedReads,
    long Mismatches,
    long BudgetSamples,
    long BudgetOverruns,
    long MaxNativeBytes,
    long Capacity,
    long Evictions,
    long LeakedBytes,
    string? FirstMismatch)
{
    public override string ToString() =>
        $"{Policy}{(Poison ? " (poison)" : "")}: {Operations:N0} ops in {Seconds:F1} s, {VerifiedReads:N0} verified reads, " +
        $"{Mismatches} mismatches, {BudgetSamples:N0} budget samples, {BudgetOverruns} overruns (max {MaxNativeBytes:N0} of {Capacity:N0} B), " +
        $"{Evictions:N0} evictions, {LeakedBytes} B leaked after Dispose";
}

/// <summary>
/// Concurrent stress: N threads of mixed operations over a key space far larger than the budget. Every value
/// carries its key id, its length and an XxHash64 checksum, and every value read is verified; a sampler thread
/// checks the native bytes against the budget continuously; at the end the invariants are validated, the cache
/// disposed, and the native bytes it still owns (must be 0) reported.
/// </summary>
internal static class StressRunner
{
    private const int ValueHeader = 12;   // [key id u32][length u32][version u32] ... [XxHash64 of the rest u64]
    private const int MinValue = ValueHeader + 8;

    public static StressResult Run(CachePolicy policy, bool poison, TimeSpan duration, int threads, long capacity = 8 << 20, bool backgroundReadReplay = false)
    {
        const int KeySpace = 40_000;
        const int HotKeys = 400;
        var keys = new byte[KeySpace][];
        for (int i = 0; i < KeySpace; i++)
        {
            keys[i] = Keys.Of(i, 24);
        }

        var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = capacity,
            PageSize = 64 * 1024,
            ShardCount = 4,
            Policy = policy,
            MaxKeyBytes = 28,
            PoisonFreedMemory = poison,
            BackgroundReadReplay = backgroundReadReplay,
        });
        int maxValue = Math.Min(cache.MaxValueBytes, 40_000);

        long operations = 0, verified = 0, mismatches = 0, samples = 0, overruns = 0, maxNative = 0;
        string? firstMismatch = null;
        void Mismatch(string what)
        {
            Interlocked.Increment(ref mismatches);
            Interlocked.CompareExchange(ref firstMismatch, what, null);
        }

        var stop = new CancellationTokenSource();
        var sampler = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                long native = cache.GetStatistics().NativeBytes;
                samples++;
                maxNative = Math.Max(maxNative, native);
                if (native > capacity)
                {
                    overruns++;
                }
                Thread.Yield();
            }
        });

        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            int seed = t;
            workers[t] = new Thread(() =>
            {
                var rng = new Random(seed * 7919 + (int)policy);
                var buffer = new byte[maxValue];
                var scratch = new byte[maxValue];
                var writer = new ArrayBufferWriter<byte>(maxValue);
                var lengths = new int[4];
                var batch = new ReadOnlyMemory<byte>[4];
                var items = new KeyValuePair<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>>[3];
                long ops = 0, reads = 0;
                int version = seed << 24;
                while (!stop.IsCancellationRequested)
                {
                    int id = rng.Next(2) == 0 ? rng.Next(HotKeys) : rng.Next(KeySpace);   // half the operations on hot keys
                    byte[] key = keys[id];
                    int roll = rng.Next(1000);
                    try
                    {
                        if (roll < 420)
                        {
                            if (cache.TryGet(key, buffer, out int n))
                            {
                                reads++;
                                Verify(id, buffer.AsSpan(0, n), Mismatch);
                            }
                        }
                        else if (roll < 460)
                        {
                            // Too small: never a hit (values are at least 20 bytes), and the length must be told.
                            bool hit = cache.TryGet(key, buffer.AsSpan(0, 10), out int n);
                            if (hit || (n != 0 && n < MinValue))
                            {
                                Mismatch($"k{id}: a 10-byte destination gave hit={hit}, bytesWritten={n}");
                            }
                        }
                        else if (roll < 500)
                        {
                            writer.ResetWrittenCount();
                            if (cache.TryGet(key, writer))
                            {
                                reads++;
                                Verify(id, writer.WrittenSpan, Mismatch);
                            }
                        }
                        else if (roll < 760)
                        {
                            int length = Fill(scratch, id, ++version, rng, maxValue);
                            cache.Set(key, scratch.AsSpan(0, length));
                        }
                        else if (roll < 820)
                        {
                            int length = Fill(scratch, id, ++version, rng, maxValue);
                            cache.Set(key, scratch.AsSpan(0, length), TimeSpan.FromMilliseconds(1 + rng.Next(50)));
                        }
                        else if (roll < 835)
                        {
                            cache.Remove(key);
                        }
                        else if (roll < 860)
                        {
                            // Remove-and-return, into a span or a buffer writer: the value handed back is whole (never a
                            // racing set's partial write, never another key's).
                            writer.ResetWrittenCount();
                            int n = 0;
                            bool removed = roll < 850 ? cache.Remove(key, buffer, out n) : cache.Remove(key, writer);
                            if (removed)
                            {
                                reads++;
                                Verify(id, roll < 850 ? buffer.AsSpan(0, n) : writer.WrittenSpan, Mismatch);
                            }
                        }
                        else if (roll < 870)
                        {
                            // Compare-and-delete of the value just read (a racing set may have replaced it: then false).
                            // With its last byte flipped the comparison matches nothing ever stored (the checksum breaks),
                            // so that one must never remove.
                            if (cache.TryGet(key, buffer, out int n))
                            {
                                buffer[n - 1] ^= 1;
                                if (cache.RemoveIfEquals(key, buffer.AsSpan(0, n)))
                                {
                                    Mismatch($"k{id}: RemoveIfEquals removed the entry for a value no set ever stored");
                                }
                                buffer[n - 1] ^= 1;
                                cache.RemoveIfEquals(key, buffer.AsSpan(0, n));
                            }
                        }
                        else if (roll < 900)
                        {
                            cache.ContainsKey(key);
                        }
                        else if (roll < 940)
                        {
                            writer.ResetWrittenCount();
                            int v = ++version;
                            int length = MinValue + rng.Next(Math.Min(4000, maxValue - MinValue));
                            cache.GetOrAdd(key, (id, v, length), static (_, s, w) =>
                            {
                                Span<byte> span = w.GetSpan(s.length)[..s.length];
                                WriteValue(span, s.id, s.v);
                                w.Advance(s.length);
                            }, writer);
                            reads++;
                            Verify(id, writer.WrittenSpan, Mismatch);
                        }
                        else if (roll < 965)
                        {
                            for (int i = 0; i < items.Length; i++)
                            {
                                int k = rng.Next(KeySpace);
                                var value = new byte[MinValue + rng.Next(2000)];
                                WriteValue(value, k, ++version);
                                items[i] = new(keys[k], value);
                            }
                            cache.SetMany(items);
                        }
                        else if (roll < 999)
                        {
                            var ids = new int[batch.Length];
                            for (int i = 0; i < batch.Length; i++)
                            {
                                ids[i] = rng.Next(HotKeys);
                                batch[i] = keys[ids[i]];
                            }
                            writer.ResetWrittenCount();
                            cache.TryGetMany(batch, writer, lengths);
                            int offset = 0;
                            for (int i = 0; i < batch.Length; i++)
                            {
                                if (lengths[i] >= 0)
                                {
                                    reads++;
                                    Verify(ids[i], writer.WrittenSpan.Slice(offset, lengths[i]), Mismatch);
                                    offset += lengths[i];
                                }
                            }
                        }
                        else
                        {
                            int rare = rng.Next(50);   // one draw, as before the Keys branch: each seed's other operations stay
                            if (rare == 0)
                            {
                                cache.Clear();
                            }
                            else if (rare == 1 && (ops & 1) == 0)
                            {
                                // Every listed key is one this run stores, while the other threads write (one removed and
                                // added again meanwhile may be listed twice: weakly consistent).
                                foreach (byte[] listedKey in cache.Keys)
                                {
                                    int listedId = Keys.IdOf(listedKey);
                                    if ((uint)listedId >= KeySpace || !listedKey.AsSpan().SequenceEqual(keys[listedId]))
                                    {
                                        Mismatch($"keys: listed {Convert.ToHexString(listedKey)}, which this run never stores");
                                    }
                                }
                            }
                            else if (rare == 1)
                            {
                                // The same for the entries, and each value is one whole version written for its key.
                                foreach (KeyValuePair<byte[], byte[]> entry in cache.Entries)
                                {
                                    int listedId = Keys.IdOf(entry.Key);
                                    if ((uint)listedId >= KeySpace || !entry.Key.AsSpan().SequenceEqual(keys[listedId]))
                                    {
                                        Mismatch($"entries: listed {Convert.ToHexString(entry.Key)}, which this run never stores");
                                    }
                                    else
                                    {
                                        Verify(listedId, entry.Value, Mismatch);
                                    }
                                }
                            }
                            else if (rare == 2)
                            {
                                // The expiry sweep beside the writers (the 1-50 ms sets above keep some entries expiring).
                                cache.RemoveExpired();
                            }
                        }
                        ops++;
                    }
                    catch (Exception e)
                    {
                        Mismatch($"k{id}: {e.GetType().Name}: {e.Message}");
                    }
                }
                Interlocked.Add(ref operations, ops);
                Interlocked.Add(ref verified, reads);
            });
        }

        var clock = Stopwatch.StartNew();
        sampler.Start();
        foreach (Thread w in workers)
        {
            w.Start();
        }
        Thread.Sleep(duration);
        stop.Cancel();
        foreach (Thread w in workers)
        {
            w.Join();
        }
        sampler.Join();
        double seconds = clock.Elapsed.TotalSeconds;

        cache.ValidateInvariants();
        cache.Pool.ValidateInvariants();
        long evictions = cache.GetStatistics().Evictions;
        long chunks = cache.Pool.GetStatistics().Classes.Sum(c => c.LiveChunks);
        if (chunks != cache.Count)
        {
            Mismatch($"chunk leak: {chunks} live chunks for {cache.Count} entries");
        }
        var pool = cache.Pool;
        cache.Dispose();
        return new StressResult(policy, poison, seconds, operations, verified, mismatches, samples, overruns, maxNative,
            capacity, evictions, pool.OwnedBytes, firstMismatch);
    }

    private static int Fill(byte[] scratch, int id, int version, Random rng, int maxValue)
    {
        int kind = rng.Next(10);
        int length = kind switch
        {
            < 5 => MinValue + rng.Next(200),
            < 9 => MinValue + rng.Next(4000),
            _ => MinValue + rng.Next(maxValue - MinValue),
        };
        WriteValue(scratch.AsSpan(0, length), id, version);
        return length;
    }

    /// <summary>[id][length][version][bytes from the version][XxHash64 of everything before it].</summary>
    public static void WriteValue(Span<byte> value, int id, int version)
    {
        BinaryPrimitives.WriteInt32LittleEndian(value, id);
        BinaryPrimitives.WriteInt32LittleEndian(value[4..], value.Length);
        BinaryPrimitives.WriteInt32LittleEndian(value[8..], version);
        Span<byte> body = value[ValueHeader..^8];
        uint x = (uint)version | 1;
        for (int i = 0; i < body.Length; i++)
        {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            body[i] = (byte)x;
        }
        BinaryPrimitives.WriteUInt64LittleEndian(value[^8..], XxHash64.HashToUInt64(value[..^8]));
    }

    public static void Verify(int id, ReadOnlySpan<byte> value, Action<string> mismatch)
    {
        if (value.Length < MinValue)
        {
            mismatch($"k{id}: value of {value.Length} bytes is shorter than any value written");
            return;
        }
        int storedId = BinaryPrimitives.ReadInt32LittleEndian(value);
        int storedLength = BinaryPrimitives.ReadInt32LittleEndian(value[4..]);
        ulong checksum = BinaryPrimitives.ReadUInt64LittleEndian(value[^8..]);
        if (storedId != id || storedLength != value.Length || checksum != XxHash64.HashToUInt64(value[..^8]))
        {
            mismatch($"k{id}: got a value of key {storedId}, length field {storedLength} for {value.Length} bytes, checksum {(checksum == XxHash64.HashToUInt64(value[..^8]) ? "ok" : "BAD")}");
        }
    }
}

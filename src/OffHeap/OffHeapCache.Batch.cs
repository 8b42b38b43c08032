using System.Buffers;

namespace CacheKit.OffHeap;

public sealed partial class OffHeapCache
{
    /// <summary>
    /// Stores many entries, taking each shard's write lock once for all of that shard's entries.
    /// Entries of one key are applied in order (the last wins). Every key and value is checked before
    /// anything is stored, so bad input leaves the cache unchanged.
    /// </summary>
    /// <param name="items">Keys and values.</param>
    /// <param name="timeToLive">Time to live of every entry; null = the default, <see cref="Timeout.InfiniteTimeSpan"/> = never expires.</param>
    /// <returns>How many items were stored (see <see cref="Set(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/> for the ones that are not);
    /// a key given twice counts twice, although only its last value remains.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A key or value is too long (ParamName <c>items</c>; the message names the item, <c>items[i]</c>), or the time to live is not positive (other than <see cref="Timeout.InfiniteTimeSpan"/>); nothing was stored.</exception>
    /// <exception cref="ArgumentException">Another thread wrote to a key's bytes while the call ran. The call stops at that
    /// item: the items applied before it stay (they are applied shard by shard, not in input order), that item and all
    /// not yet applied are not stored, and the cache stays consistent. An exception from the eviction listener stops the
    /// call the same way.</exception>
    /// <exception cref="InvalidOperationException">Called from this cache's eviction listener; or from another cache's, after
    /// waiting 5 s for a shard lock (see <see cref="EvictionListener"/>): the items stored before that stay stored.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public int SetMany(ReadOnlySpan<KeyValuePair<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>>> items, TimeSpan? timeToLive = null)
    {
        long ttlTicks = timeToLive is { } ttl ? ToTimestampTicks(ttl, nameof(timeToLive)) : _defaultTtlTicks;
        ThrowIfDisposed();
        Shard.ThrowIfInListenerOf(this);
        for (int i = 0; i < items.Length; i++)
        {
            CheckKey(items[i].Key.Span, nameof(items), i);   // a refusal names the item: "items[3]: key is ..."
            CheckValue(items[i].Key.Span, items[i].Value.Span, nameof(items), i);
        }
        if (items.IsEmpty)
        {
            return 0;
        }

        // Stable counting sort of the items by shard, so each shard is locked once.
        ulong[] hashes = ArrayPool<ulong>.Shared.Rent(items.Length);
        int[] order = ArrayPool<int>.Shared.Rent(items.Length);
        int[] starts = ArrayPool<int>.Shared.Rent(_shards.Length + 1);
        try
        {
            Array.Clear(starts, 0, _shards.Length + 1);
            for (int i = 0; i < items.Length; i++)
            {
                hashes[i] = Hash(items[i].Key.Span);
                starts[ShardIndex(hashes[i]) + 1]++;
            }
            for (int s = 0; s < _shards.Length; s++)
            {
                starts[s + 1] += starts[s];
            }
            for (int i = 0; i < items.Length; i++)
            {
                order[starts[ShardIndex(hashes[i])]++] = i;
            }
            // starts[s] is now the end of shard s's run (and the start of shard s + 1's).

            int stored = 0, begin = 0;
            for (int s = 0; s < _shards.Length; s++)
            {
                int end = starts[s];
                if (end == begin)
                {
                    continue;
                }
                ref OperationCounters.Stripe stripe = ref Enter();
                Shard shard = ShardOf(hashes[order[begin]]);
                try
                {
                    long expiresAt = ExpiresAt(ttlTicks);
                    using (shard.EnterGate())
                    {
                        for (int k = begin; k < end; k++)
                        {
                            int i = order[k];
                            // The set copies the key, refuses a copy that no longer hashes to hashes[i] (the caller's
                            // buffer may be changing), and marks a running GetOrAdd of the key with that copy, as a
                            // single Set does.
                            if (shard.SetUnsynchronized(hashes[i], items[i].Key.Span, items[i].Value.Span, expiresAt, invalidateFlightsOf: this))
                            {
                                stored++;
                            }
                        }
                    }
                }
                finally
                {
                    Exit(ref stripe);
                }
                begin = end;
            }
            return stored;
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(hashes);
            ArrayPool<int>.Shared.Return(order);
            ArrayPool<int>.Shared.Return(starts);
        }
    }

    /// <summary>
    /// Looks many keys up (lock-free, like <see cref="TryGet(ReadOnlySpan{byte}, IBufferWriter{byte})"/>),
    /// appending each value found to <paramref name="destination"/> in key order.
    /// </summary>
    /// <param name="keys">The keys.</param>
    /// <param name="destination">Receives the values found, one after another.</param>
    /// <param name="valueLengths">Per key: the length of its value in <paramref name="destination"/>, or -1 on a miss. At least as long as <paramref name="keys"/>.</param>
    /// <returns>Number of hits.</returns>
    /// <exception cref="ArgumentException"><paramref name="valueLengths"/> is shorter than <paramref name="keys"/>; or
    /// <paramref name="destination"/>'s <c>GetSpan</c> returned memory overlapping the key being read (the values and lengths of
    /// the keys before it are written).</exception>
    /// <exception cref="ArgumentOutOfRangeException">A key is too long (checked before any lookup; ParamName <c>keys</c>, and the message names the item, <c>keys[i]</c>).</exception>
    /// <exception cref="InvalidOperationException"><paramref name="destination"/> wrote to this cache from <c>GetSpan</c>, or
    /// disposed it from <c>GetSpan</c> or <c>Advance</c> (as for <see cref="TryGet(ReadOnlySpan{byte}, IBufferWriter{byte})"/>).</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/>'s <c>GetSpan</c> returned fewer bytes than it was
    /// asked for (ParamName <c>destination</c>; the values before it are written).</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public int TryGetMany(ReadOnlySpan<ReadOnlyMemory<byte>> keys, IBufferWriter<byte> destination, Span<int> valueLengths)
    {
        ArgumentNullException.ThrowIfNull(destination);
        if (valueLengths.Length < keys.Length)
        {
            throw new ArgumentException($"valueLengths must hold at least keys.Length ({keys.Length}) items, not {valueLengths.Length}.", nameof(valueLengths));
        }
        ThrowIfDisposed();   // each lookup checks too, but an empty batch makes none (as SetMany: every member throws after Dispose)
        for (int i = 0; i < keys.Length; i++)
        {
            CheckKey(keys[i].Span, nameof(keys), i);   // a refusal names the item: "keys[3]: key is ..."
        }
        int hits = 0;
        var sink = new BufferWriterSink(destination, this);
        for (int i = 0; i < keys.Length; i++)
        {
            bool hit = Read(keys[i].Span, ref sink, out int length) == ReadResult.Hit;
            valueLengths[i] = hit ? length : -1;
            hits += hit ? 1 : 0;
        }
        return hits;
    }

    private int ShardIndex(ulong hash) => (int)(hash >> 56) >> _shardShift;
}

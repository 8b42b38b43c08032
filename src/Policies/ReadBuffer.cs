using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace CacheKit.Policies;

/// <summary>
/// A lossy, striped, allocation-free buffer of policy accesses (hits and misses) for policies whose
/// <see cref="IEvictionPolicy.ConcurrentHits"/> is false: readers append without a lock and drop
/// the record when their stripe is full; the holder of the owner's write lock drains the buffer
/// into the policy. As in Caffeine's read buffer, losing a few accesses costs little hit ratio and
/// keeps reads from queueing on a lock.
/// </summary>
/// <remarks>
/// <para><b>Layout.</b> <c>stripes x SlotsPerStripe</c> slots. A slot is a (hash, tag) pair of
/// 64-bit words; the tag is 0 when the slot is empty, <c>handle + 2</c> for a hit, 1 for a miss.
/// Each stripe has a write counter (<c>_tails</c>) and a read counter (<c>_heads</c>), each on its own
/// pair of cache lines (128 bytes apart, and 128 bytes after the array header), and <c>head &lt;= tail &lt;= head + SlotsPerStripe</c>. An appender uses the stripe of
/// the processor it runs on (<see cref="Thread.GetCurrentProcessorId"/>).</para>
/// <para><b>Concurrency notes.</b> A writer claims slot <c>tail</c> with a compare-and-swap on the
/// stripe's tail, writes the hash, then publishes the tag with a release store. The single drainer
/// (it holds the owner's lock) reads tags with acquire loads from head to tail, stops at the first
/// slot not yet published (its writer is mid-way; it is picked up next drain), clears each slot it
/// consumed, and then advances head with a release store, which lets writers reuse those slots.
/// A claimed slot is never reused before it is drained, so a record is never torn.</para>
/// </remarks>
public sealed class ReadBuffer
{
    /// <summary>Records per stripe (a power of two).</summary>
    public const int SlotsPerStripe = 64;

    // Padding, in 8-byte elements. 128 bytes, not 64: the adjacent-line prefetcher pairs 64-byte lines,
    // so a counter needs its own pair. Every array also starts its data 128 bytes after the header: the
    // length word there is read by every bounds check on every core, so no element that an appender
    // writes may share its line (with stripe 0's tail right after the length, two threads on two stripes
    // moved that line between cores on every append).
    private const int PadLongs = 16;       // between two stripes' counters
    private const int EdgePad = 16;        // before the first and after the last element in use
    private const int DiscardOffset = 1;   // _heads[CounterIndex(s) + 1]: the stripe's discard mark (see ClearUnsynchronized)
    private const long MissTag = 1;
    internal const int MissRecord = -1;      // a drained miss, decoded
    internal const int IgnoredRecord = -2;   // a drained hit of a handle beyond the policy's range (ignored)

    /// <summary>Records announced to the policy (<see cref="IEvictionPolicy.Prefetch"/>) before they are replayed.</summary>
    internal const int ReplayBatch = 8;

    private readonly long[] _tags;         // EdgePad + stripe * SlotsPerStripe + index (SlotBase)
    private readonly ulong[] _hashes;      // same indexing
    private readonly long[] _tails;        // EdgePad + stripe * PadLongs (CounterIndex)
    private readonly long[] _heads;        // same indexing; the discard mark beside each head (DiscardOffset)
    private readonly int _stripeMask;
    private readonly IReadRecordFilter? _hitFilter;

    /// <summary>Creates a buffer with <paramref name="stripes"/> stripes (rounded up to a power of two), by default one per processor up to 64.</summary>
    /// <param name="stripes">Number of stripes, 1 to 1024, or 0 for the default.</param>
    public ReadBuffer(int stripes = 0)
        : this(stripes, hitFilter: null)
    {
    }

    /// <summary>Creates a buffer with <paramref name="stripes"/> stripes and the owner's check of hit records.</summary>
    /// <param name="stripes">Number of stripes, 1 to 1024, or 0 for the default.</param>
    /// <param name="hitFilter">The owner's check that a hit record's handle still holds the key that was read (see
    /// <see cref="IReadRecordFilter"/>); null when handles are never reused while records may be pending.</param>
    public ReadBuffer(int stripes, IReadRecordFilter? hitFilter)
    {
        _hitFilter = hitFilter;
        if (stripes < 0 || stripes > 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(stripes), stripes, "stripes must be in [0, 1024] (0 picks one per processor).");
        }
        if (stripes == 0)
        {
            stripes = Math.Min(64, Environment.ProcessorCount);
        }
        int count = (int)BitOperations.RoundUpToPowerOf2((uint)stripes);
        _stripeMask = count - 1;
        _tags = new long[EdgePad + count * SlotsPerStripe + EdgePad];
        _hashes = new ulong[EdgePad + count * SlotsPerStripe + EdgePad];
        _tails = new long[EdgePad + count * PadLongs + EdgePad];
        _heads = new long[EdgePad + count * PadLongs + EdgePad];
    }

    /// <summary>Number of stripes.</summary>
    public int StripeCount => _stripeMask + 1;

    /// <summary>Records that a tracked entry was read. Lock-free; returns false when the record was dropped.</summary>
    /// <param name="handle">The entry's handle (non-negative).</param>
    /// <param name="keyHash">The entry's key hash.</param>
    public bool TryRecordHit(int handle, ulong keyHash)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(handle);
        return TryAppend(handle + 2L, keyHash) != AppendOutcome.Dropped;
    }

    /// <summary>Records a lookup that missed. Lock-free; returns false when the record was dropped.</summary>
    /// <param name="keyHash">The key hash that missed.</param>
    public bool TryRecordMiss(ulong keyHash) => TryAppend(MissTag, keyHash) != AppendOutcome.Dropped;

    /// <summary>What an append did, for an owner that replays the buffer before it fills (the engine's background replay).</summary>
    internal enum AppendOutcome
    {
        /// <summary>The stripe was full (or another reader won the slot): nothing recorded.</summary>
        Dropped,

        /// <summary>Recorded; the stripe is less than half full.</summary>
        Recorded,

        /// <summary>Recorded, and the stripe is now at least half full: time to replay it.</summary>
        RecordedHalfFull,
    }

    /// <summary><see cref="TryRecordHit"/> that also says whether the stripe is half full (<paramref name="handle"/> must be non-negative).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal AppendOutcome RecordHit(int handle, ulong keyHash)
    {
        Debug.Assert(handle >= 0, "handles are non-negative");
        return TryAppend(handle + 2L, keyHash);
    }

    /// <summary><see cref="TryRecordMiss"/> that also says whether the stripe is half full.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal AppendOutcome RecordMiss(ulong keyHash) => TryAppend(MissTag, keyHash);

    /// <summary>
    /// Replays every published record into <paramref name="policy"/> (hits as <see cref="IEvictionPolicy.OnHit"/>,
    /// misses as <see cref="IEvictionPolicy.OnMiss"/>). Call with the owner's lock held, from one thread at a time.
    /// Records of handles removed meanwhile are ignored by the policy; records of handles given to another key
    /// meanwhile are dropped by the hit filter (without one, the new key's entry would take the hit); with a filter and a
    /// policy that cancels late misses (<see cref="IEvictionPolicy.CancelsLateMisses"/>), a miss of a key added meanwhile
    /// by an add that counted the access itself is dropped, as in <see cref="DrainOwnStripeUnsynchronized"/>.
    /// </summary>
    /// <param name="policy">The policy to feed.</param>
    /// <returns>The number of records replayed.</returns>
    public int DrainUnsynchronized(IEvictionPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        return DrainAllEndingWith(policy, CurrentStripe);
    }

    /// <summary>
    /// Drains every stripe, <paramref name="lastStripe"/> last. The drainer's own stripe goes last because, for an
    /// owner that drains everything before a write (the simulator's policy rows do; the engine's writes drain only their
    /// own stripe, below), that drain usually precedes the add of a key its caller has just missed: that miss record is then among
    /// the last misses replayed, which is how W-TinyLFU tells a lookup-then-add (one access) from a blind add (it
    /// counts the add; the policy remembers the last <see cref="RecentMisses.Size"/> misses). Drained first, the other
    /// stripes' misses would sit between the two, and with more than a few of them the key would count twice. (The
    /// engine's writes drain only their own stripe: <see cref="DrainOwnStripeUnsynchronized"/>.)
    /// </summary>
    internal int DrainAllEndingWith(IEvictionPolicy policy, int lastStripe)
    {
        int drained = 0;
        for (int k = 1; k <= _stripeMask + 1; k++)
        {
            drained += DrainStripe(policy, (lastStripe + k) & _stripeMask, int.MaxValue);
        }
        return drained;
    }

    /// <summary>
    /// Replays at most <paramref name="maxRecords"/> of the oldest published records of the calling
    /// thread's stripe (the one its <see cref="TryRecordHit"/> and <see cref="TryRecordMiss"/> append
    /// to) into <paramref name="policy"/>. A reader that finds its stripe full calls this, so the
    /// work one read does under the lock is bounded (a full drain replays up to 64 records per
    /// stripe, each touching the policy's memory at random); the engine's writes call it with
    /// <see cref="SlotsPerStripe"/>, their whole stripe. Same locking rule as
    /// <see cref="DrainUnsynchronized"/>. A miss record of a key added meanwhile by an add that counted the access
    /// itself is dropped (<see cref="IReadRecordFilter.HandleOfLiveKey"/>, <see cref="IEvictionPolicy.TryCancelLateMiss"/>).
    /// </summary>
    /// <param name="policy">The policy to feed.</param>
    /// <param name="maxRecords">The most records to replay, at least 1.</param>
    /// <returns>The number of records replayed.</returns>
    public int DrainOwnStripeUnsynchronized(IEvictionPolicy policy, int maxRecords)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRecords, 1);
        return DrainStripe(policy, CurrentStripe, maxRecords);
    }

    private int DrainStripe(IEvictionPolicy policy, int s, int maxRecords)
    {
        long head = _heads[CounterIndex(s)];
        long tail = Volatile.Read(ref _tails[CounterIndex(s)]);
        long discardBelow = _heads[CounterIndex(s) + DiscardOffset];   // records claimed before the last Clear
        int baseSlot = SlotBase(s);
        int maxHandles = policy.MaxHandles;
        // A miss is looked up only for a policy that can cancel one (one read of the owner's index per miss record).
        bool checkLateMisses = _hitFilter is not null && policy.CancelsLateMisses;
        Span<int> handles = stackalloc int[ReplayBatch];   // a hit's handle, or MissRecord / IgnoredRecord
        Span<ulong> hashes = stackalloc ulong[ReplayBatch];
        int drained = 0;
        bool blocked = false;
        try
        {
            while (!blocked && head < tail && drained < maxRecords)
            {
                // Take a batch of published records (clearing their tags: head moves only at the end, so
                // no appender reuses these slots meanwhile).
                int n = 0;
                int batch = Math.Min(ReplayBatch, maxRecords - drained);
                while (n < batch && head < tail)
                {
                    int slot = baseSlot + (int)(head & (SlotsPerStripe - 1));
                    long tag = Volatile.Read(ref _tags[slot]);
                    if (tag == 0)
                    {
                        blocked = true;   // claimed but not yet published: next drain
                        break;
                    }
                    ulong hash = _hashes[slot];
                    int handle = tag == MissTag ? MissRecord : tag - 2 < maxHandles ? (int)(tag - 2) : IgnoredRecord;
                    if (head < discardBelow)
                    {
                        handle = IgnoredRecord;   // claimed before a Clear (its appender was mid-way then): cleared with the rest
                    }
                    else if (handle >= 0 && _hitFilter is not null && !_hitFilter.IsCurrent(handle, hash))
                    {
                        handle = IgnoredRecord;   // the entry read is gone; the handle may hold another key now
                    }
                    else if (handle == MissRecord && checkLateMisses && IsLateMissOfACountedAdd(policy, hash))
                    {
                        // Added since it missed, by an add that counted the access itself (usually the very caller
                        // that missed, whose add was replayed first because its miss sat in another core's stripe).
                        handle = IgnoredRecord;
                    }
                    handles[n] = handle;
                    hashes[n] = hash;
                    _tags[slot] = 0;
                    head++;
                    n++;
                }

                // Announce the whole batch, so its cache misses overlap, then replay it in order (the
                // hints change nothing, so the policy sees exactly the calls of a record-by-record drain).
                if (policy is WTinyLfuPolicy wTinyLfu)
                {
                    // The default policy replays the batch itself: one call, no interface dispatch per record.
                    wTinyLfu.ReplayBatch(handles[..n], hashes[..n]);
                    drained += n;
                    continue;
                }
                if (n > 1)
                {
                    for (int i = 0; i < n; i++)
                    {
                        policy.Prefetch(Math.Max(handles[i], -1), hashes[i]);
                    }
                    for (int i = 0; i < n; i++)
                    {
                        if (handles[i] >= 0)
                        {
                            policy.PrefetchDependent(handles[i]);
                        }
                    }
                }
                for (int i = 0; i < n; i++)
                {
                    if (handles[i] >= 0)
                    {
                        policy.OnHit(handles[i], hashes[i]);
                    }
                    else if (handles[i] == MissRecord)
                    {
                        policy.OnMiss(hashes[i]);
                    }
                }
                drained += n;
            }
        }
        finally
        {
            // In a finally: the tags of the records taken are already cleared, so if the policy throws
            // mid-batch, a head left behind would stop every later drain at a cleared tag and the
            // stripe would drop its records for good. The rest of that batch is lost (reads are lossy).
            Volatile.Write(ref _heads[CounterIndex(s)], head);
        }
        return drained;
    }

    /// <summary>Whether a miss of <paramref name="hash"/> is replayed after the add of its key, which counted the access
    /// (the policy forgets that it did: the pair counts once).</summary>
    private bool IsLateMissOfACountedAdd(IEvictionPolicy policy, ulong hash)
    {
        int handle = _hitFilter!.HandleOfLiveKey(hash);
        return handle >= 0 && handle < policy.MaxHandles && policy.TryCancelLateMiss(handle);
    }

    /// <summary>Records appended and not yet drained, over all stripes (exact only while nothing appends or drains).</summary>
    internal long PendingRecords
    {
        get
        {
            long sum = 0;
            for (int s = 0; s <= _stripeMask; s++)
            {
                sum += Volatile.Read(ref _tails[CounterIndex(s)]) - Volatile.Read(ref _heads[CounterIndex(s)]);
            }
            return sum;
        }
    }

    /// <summary>Drops every record claimed before the call, published or not. Each stripe's published records up to
    /// its first claimed-but-unpublished slot (its appender is mid-way) are cleared now; the ones from that slot up to
    /// the tail read here are dropped by the drain that meets them once published (the stripe's discard mark), so no
    /// record from before a Clear is ever replayed, even one whose handle holds a key with the same hash again by then.
    /// Call with the owner's lock held.</summary>
    public void ClearUnsynchronized()
    {
        for (int s = 0; s <= _stripeMask; s++)
        {
            long head = _heads[CounterIndex(s)];
            long tail = Volatile.Read(ref _tails[CounterIndex(s)]);
            // Only the drainer (the lock holder) reads or writes the mark; it only grows (tails only grow).
            Debug.Assert(tail >= _heads[CounterIndex(s) + DiscardOffset], "a stripe's tail never moves back");
            _heads[CounterIndex(s) + DiscardOffset] = tail;
            int baseSlot = SlotBase(s);
            while (head < tail)
            {
                int slot = baseSlot + (int)(head & (SlotsPerStripe - 1));
                if (Volatile.Read(ref _tags[slot]) == 0)
                {
                    break;
                }
                _tags[slot] = 0;
                head++;
            }
            Volatile.Write(ref _heads[CounterIndex(s)], head);
        }
    }

    // The current processor's stripe: threads running on different cores append to different stripes
    // (by managed thread id, two threads with ids of the same parity shared one of 2 stripes, and its
    // tail's cache line). A thread that migrates just appends to, or drains, another stripe; every
    // stripe is safe for any number of appenders (the tail is claimed with a compare-and-swap).
    private int CurrentStripe => Thread.GetCurrentProcessorId() & _stripeMask;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int CounterIndex(int stripe) => EdgePad + stripe * PadLongs;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int SlotBase(int stripe) => EdgePad + stripe * SlotsPerStripe;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private AppendOutcome TryAppend(long tag, ulong keyHash)
    {
        int stripe = CurrentStripe;
        ref long tailRef = ref _tails[CounterIndex(stripe)];
        long tail = Volatile.Read(ref tailRef);
        long head = Volatile.Read(ref _heads[CounterIndex(stripe)]);
        if (tail - head >= SlotsPerStripe || Interlocked.CompareExchange(ref tailRef, tail + 1, tail) != tail)
        {
            return AppendOutcome.Dropped;   // full, or another reader won the slot: drop (the buffer is lossy by design)
        }
        int slot = SlotBase(stripe) + (int)(tail & (SlotsPerStripe - 1));
        Debug.Assert(Volatile.Read(ref _tags[slot]) == 0, "a claimed slot must have been drained");
        _hashes[slot] = keyHash;
        Volatile.Write(ref _tags[slot], tag);
        return tail + 1 - head >= SlotsPerStripe / 2 ? AppendOutcome.RecordedHalfFull : AppendOutcome.Recorded;
    }
}

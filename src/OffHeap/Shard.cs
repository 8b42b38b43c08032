using System.Buffers;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.IO.Hashing;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using CacheKit.Policies;
using CacheKit.Slab;

namespace CacheKit.OffHeap;

/// <summary>
/// One shard of an <see cref="OffHeapCache"/>: an open-addressing index of 64-byte buckets in
/// native memory, a slab arena holding the entries, and an eviction policy over the index slots.
/// </summary>
/// <remarks>
/// <para><b>Handles.</b> The policy handle of an entry is its slot number in the index
/// (<c>bucket * 7 + slot</c>). Entries never move between slots while they live (an update replaces
/// or rewrites the chunk in the same slot), so the handle is stable from OnAdd to OnRemove.</para>
/// <para><b>Probing.</b> A key's window is its home bucket and the next <see cref="ProbeBuckets"/> - 1
/// buckets (wrapping). Inserts take the first empty slot of the window and raise the overflow count
/// of every bucket they passed; a full window evicts one of its entries. Lookups stop at the first
/// bucket whose overflow count is 0. Bounded by construction: no key set can make a lookup read more
/// than <see cref="ProbeBuckets"/> cache lines.</para>
/// <para><b>Concurrency notes.</b> Every mutation happens under <see cref="Gate"/> (methods ending in
/// <c>Unsynchronized</c> need it). Lookups take no lock: per bucket they read the version (even),
/// the slots, the entry bytes, then after a read barrier (<c>Volatile.ReadBarrier</c>) the version
/// again, and accept only if it is unchanged. A writer bumps a bucket's version to odd before changing one of its slots and to even
/// after, and frees a chunk only after unpublishing its slot. So a validated read saw a slot that
/// pointed at its chunk during the whole copy, and that chunk could not be freed, reused or written
/// meanwhile (a chunk is written only while free or before its slot is published, with two exceptions that
/// keep the argument: Touch rewrites a published entry's expiry field, and an update that keeps its size class
/// rewrites the whole entry, each inside an odd version of the bucket holding its slot, like a slot change). Pages are never
/// returned to the system before Dispose, and every read is bounded by the bytes to the page end that
/// <see cref="SlabArena.ResolveForReader"/> gives (0 for a value naming no allocated page), so even a stale
/// pointer reads inside a live page. ResolveForReader skips the disposed check: the cache's Enter/Exit
/// registration keeps the pool alive while any operation is inside.
/// After <see cref="MaxOptimisticReads"/> failed validations a reader takes the lock (progress).
/// The argument in full is in docs/engine.md.</para>
/// </remarks>
internal sealed unsafe class Shard : IReadRecordFilter
{
    /// <summary>Buckets in a key's probe window.</summary>
    public const int ProbeBuckets = 8;

    /// <summary>Optimistic attempts before a reader falls back to the lock.</summary>
    public const int MaxOptimisticReads = 8;

    /// <summary>TryReadOnce's answer when a bucket changed under it (low bits 3: no <see cref="ReadResult"/>).</summary>
    private const long RetryRead = -1;

    /// <summary>Low bits of a read outcome: the <see cref="ReadResult"/>; the bits above (arithmetic shift) hold the slot.</summary>
    private const long ReadOutcomeResultMask = 3;
    private const int ReadOutcomeSlotShift = 2;

    /// <summary>A validated miss: slot -1, <see cref="ReadResult.Miss"/>.</summary>
    private const long ReadMissOutcome = (-1L << ReadOutcomeSlotShift) | (long)ReadResult.Miss;

    /// <summary>Records a reader replays from its full read-buffer stripe.</summary>
    public const int ReaderDrainRecords = 8;

    /// <summary>Buckets the expiry hand examines per step, and steps per insert that needs room.</summary>
    private const int ExpiryScanBuckets = 16;
    private const int ExpiryScanSteps = 4;

    private readonly SlabArena _arena;
    private readonly SizeClassTable _classes;

    // SAFETY invariant: _buckets points at _bucketCount * 64 bytes from _pool.TryAllocateBlock, alive
    // until the pool is disposed, which happens only after no operation is inside the cache.
    private readonly IndexBucket* _buckets;
    private readonly uint _bucketCount;
    private readonly IEvictionPolicy _policy;
    private readonly ReadBuffer? _readBuffer;      // null when the policy takes concurrent hits
    private readonly HitSkipFilter? _skippableHits; // hits the policy would ignore: not buffered (null: none)
    private readonly TimeProvider _time;
    private readonly EvictionListener? _listener;
    private readonly long _seed;
    private readonly int _maxEvictionsPerInsert;
    private readonly SlabHandle[] _reclaimScratch;  // page reclaim: live chunks of one page
    private readonly ReplayWorkItem? _replayWorkItem;  // null: readers replay a full stripe themselves
    private int _replayQueued;                         // 1 from queuing _replayWorkItem until its replay ended
    private long _backgroundReplays;                   // background replays run (tests), written under Gate
    // 1 once a background replay threw: every later full stripe is replayed inline again, so that the same
    // failure reaches a caller instead of being lost on a pool thread (it would end the process there).
    private int _replayFaulted;

    /// <summary>The shard's write lock. Every operation that can run inside an eviction listener takes it through
    /// <see cref="EnterGate"/>; the background replay (a pool thread), the reader's own-stripe drain (<c>TryEnter</c>, never
    /// waits) and the test-only invariant check take it directly.</summary>
    public readonly Lock Gate = new();

    /// <summary>
    /// How long an operation made from inside an eviction listener (of any cache) waits for a shard lock, or for a
    /// <c>GetOrAdd</c> flight, before it gives up. The listener's thread holds its own cache's shard lock, so two caches
    /// whose listeners write to each other from two threads would otherwise wait for each other forever (each thread
    /// holding one lock and waiting for the other's; found by an adversarial review, 2026-11-30). As long as the cycle
    /// detection of <c>GetOrAdd</c>'s factories: a real cycle waits that long instead of forever; a lock or factory held
    /// longer than that by another thread also ends the wait (the bound cannot tell the two apart).
    /// </summary>
    internal static readonly TimeSpan ListenerWaitLimit = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Takes <see cref="Gate"/> for an operation of the cache (dispose the result to release it). Outside eviction
    /// listeners it waits as <c>lock</c> does; inside one it waits at most <see cref="ListenerWaitLimit"/>, then throws
    /// <see cref="InvalidOperationException"/>, having changed nothing under this lock. One thread-static read more than <c>lock</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal Lock.Scope EnterGate() => t_listeners.Innermost is null ? Gate.EnterScope() : EnterGateFromListener();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private Lock.Scope EnterGateFromListener()
    {
        // Re-entrant: a listener reading its own shard (a contended read) gets the lock it already holds at once.
        if (!Gate.TryEnter(ListenerWaitLimit))
        {
            ThrowListenerWaitedTooLong("a shard lock (of another cache, or of another shard of its own)");
        }
        // The lock is held: a scope re-enters it at once, and the hold taken above is given back, so the scope's
        // Dispose releases it (the only way to get a Lock.Scope for a lock taken with a timeout).
        Lock.Scope scope = Gate.EnterScope();
        Gate.Exit();
        return scope;
    }

    /// <summary>Throws the refusal of an operation that an eviction listener made and that waited past <see cref="ListenerWaitLimit"/>.</summary>
    [DoesNotReturn]
    internal static void ThrowListenerWaitedTooLong(string waitedFor)
        => throw new InvalidOperationException(
            $"An operation called from an eviction listener waited {ListenerWaitLimit.TotalSeconds:0} s for {waitedFor} and gave up there: it made no change " +
            "after that wait (Clear, RemoveExpired and SetMany keep what they did under the locks taken before it). " +
            "A listener runs under its own cache's shard lock, so most likely the listeners of two caches write to each other from two threads and wait " +
            "for each other (a cycle); or a lock or a GetOrAdd factory was held for longer than that. " +
            "Hand such work from the listener to another thread (a queue), or let only one of the caches' listeners write to the other.");

    // Counters written only under Gate and read without it (Volatile), so a snapshot may be a few
    // operations behind. Hits and misses are the cache's (OperationCounters, striped per processor).
    private long _evictions;
    private long _expirations;
    private long _pageReclaims;   // the part of _evictions whose reason was PageReclaimed
    private long _capacityEvictions;   // the rest of _evictions (reason Capacity): its own counter, monotonic for readers
    private long _rejections;
    private long _count;          // == entries published in the index == _policy.Count
    private long _payloadBytes;   // == sum of key + value lengths of published entries
    private long _ttlCount;       // == published entries with ExpiresAt != 0
    private bool _expiryFieldInEveryEntry;   // set at the first set with an expiry (stored or refused), never cleared (EntryHeader)
    private uint _expiryHand;     // next bucket the expiry scan examines
    private int _longestProbe;    // largest ProbeDistance any insert used (0..ProbeBuckets - 1); never lowered
    private long _fullWindowEvictions;  // inserts that found their whole probe window full (one entry of it was then removed)
    // > 0 while the eviction listener runs (under Gate, which is re-entrant). Writes from it are refused
    // (ThrowIfInListener): the slot being evicted is still published, and a page reclaim may be half done, with
    // its chunk list in _reclaimScratch; a nested write could evict that slot, or reclaim the same page again
    // and leave the outer loop with stale handles.
    private int _listenerDepth;

    // The caches whose eviction listeners this thread is running (entered and left around each call, so a listener of
    // one cache may use another cache). Every write entry point of the cache checks it before taking any shard lock
    // (ThrowIfInListenerOf): a listener writing to another shard of its cache took that shard's lock while holding its
    // own, and two threads doing that toward each other's shards deadlocked (found by review).
    [ThreadStatic]
    private static CacheNesting t_listeners;

    private readonly OffHeapCache _owner;

    // owner: the cache; with background read replay, the work item runs as one of the cache's operations
    // (OffHeapCache.RunBackgroundReplay), so that Dispose waits for it.
    public Shard(OffHeapCache owner, SlabPool pool, NativeBlock indexBlock, uint bucketCount, IEvictionPolicy policy, TimeProvider time,
        EvictionListener? listener, long seed, int maxEvictionsPerInsert, bool backgroundReadReplay, int readBufferStripes = 0)
    {
        Debug.Assert(indexBlock.Length >= (nuint)bucketCount * (nuint)sizeof(IndexBucket), "index block too small");
        Debug.Assert(policy.MaxHandles >= (long)bucketCount * IndexBucket.SlotCount, "policy handles must cover every slot");
        _owner = owner;
        _arena = pool.CreateArena();
        _classes = pool.Classes;
        _buckets = (IndexBucket*)indexBlock.Pointer;
        _bucketCount = bucketCount;
        _policy = policy;
        _readBuffer = policy.ConcurrentHits ? null : new ReadBuffer(readBufferStripes, hitFilter: this);
        _skippableHits = _readBuffer is not null ? (policy as PolicyBase)?.SkippableHits : null;
        _replayWorkItem = _readBuffer is not null && backgroundReadReplay ? new ReplayWorkItem(owner, this) : null;
        _time = time;
        _listener = listener;
        _seed = seed;
        _maxEvictionsPerInsert = maxEvictionsPerInsert;
        _reclaimScratch = new SlabHandle[_arena.MaxChunksPerPage];
    }

    public long Evictions => Volatile.Read(ref _evictions);
    public long Expirations => Volatile.Read(ref _expirations);
    public long PageReclaims => Volatile.Read(ref _pageReclaims);
    public long CapacityEvictions => Volatile.Read(ref _capacityEvictions);
    public long Rejections => Volatile.Read(ref _rejections);
    public long Count => Volatile.Read(ref _count);
    public long PayloadBytes => Volatile.Read(ref _payloadBytes);
    public IEvictionPolicy Policy => _policy;

    /// <summary>Largest probe distance (buckets past the home bucket) any insert has used; bounded by <see cref="ProbeBuckets"/> - 1.</summary>
    public int LongestProbe => Volatile.Read(ref _longestProbe);

    /// <summary>Inserts that found their whole probe window full, so one entry of the window was evicted (colliding keys).</summary>
    public long FullWindowEvictions => Volatile.Read(ref _fullWindowEvictions);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint HomeBucket(ulong hash) => (uint)(((ulong)(uint)hash * _bucketCount) >> 32);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint Wrap(uint bucket) => bucket >= _bucketCount ? bucket - _bucketCount : bucket;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private IndexBucket* BucketAt(uint index)
    {
        Debug.Assert(index < _bucketCount, "bucket index out of range");
        // SAFETY: index < _bucketCount and the index block holds _bucketCount buckets (see _buckets).
        return _buckets + index;
    }

    /// <summary>The bucket holding index slot <paramref name="slot"/> (a policy handle), and the slot's place in it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private IndexBucket* BucketOfSlot(int slot, out int slotInBucket)
    {
        uint bucketIndex = (uint)slot / IndexBucket.SlotCount;
        slotInBucket = slot - (int)(bucketIndex * IndexBucket.SlotCount);
        return BucketAt(bucketIndex);
    }

    // ------------------------------------------------------------------ reads (lock-free)

    /// <summary>Looks the key up without a lock; copies the value into <paramref name="sink"/> on a hit.</summary>
    /// <remarks><paramref name="recordAccess"/> is false for an internal re-check (GetOrAdd's flight leader): the policy is not told.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadResult Read<TSink>(ulong hash, ReadOnlySpan<byte> key, ref TSink sink, out int valueLength, bool recordAccess = true)
        where TSink : IValueSink, allows ref struct
    {
        long outcome = TryReadOnce(hash, key, ref sink, out valueLength);
        if (outcome == RetryRead)
        {
            outcome = ReadContended(hash, key, ref sink, out valueLength);
        }
        ReadResult result = (ReadResult)(outcome & ReadOutcomeResultMask);
        if (recordAccess && result != ReadResult.DestinationTooSmall)   // a too-small read is retried; the retry is the access
        {
            RecordRead(result, (int)(outcome >> ReadOutcomeSlotShift), hash);
        }
        // This shard (and through its arena the pool, whose finalizer frees the pages) stays reachable until
        // the copy above is done, even on an uncounted read whose caller holds no other reference to the cache.
        GC.KeepAlive(this);
        return result;
    }

    /// <summary>
    /// The first optimistic pass failed validation: retry up to <see cref="MaxOptimisticReads"/> passes in
    /// all, then read under the lock, where versions cannot move (progress). Kept out of line so that the
    /// uncontended read stays small.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private long ReadContended<TSink>(ulong hash, ReadOnlySpan<byte> key, ref TSink sink, out int valueLength)
        where TSink : IValueSink, allows ref struct
    {
        for (int attempt = 1; attempt < MaxOptimisticReads; attempt++)
        {
            long outcome = TryReadOnce(hash, key, ref sink, out valueLength);
            if (outcome != RetryRead)
            {
                return outcome;
            }
        }

        using (EnterGate())
        {
            long outcome = TryReadOnce(hash, key, ref sink, out valueLength);
            if (outcome == RetryRead)
            {
                // Under the lock no writer moves a version, unless the caller's IBufferWriter (called while we
                // hold the lock, the lock being re-entrant) wrote to this cache.
                throw new InvalidOperationException("The destination IBufferWriter wrote to this cache from inside GetSpan; a lookup's destination must not call back into the cache.");
            }
            return outcome;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void RecordRead(ReadResult result, int slot, ulong hash)
    {
        ReadBuffer? readBuffer = _readBuffer;
        if (readBuffer is not null)
        {
            // A hit the policy would ignore (its entry was just moved to its segment's head) is not buffered: the
            // replay would drop it. Read without the lock: a stale answer buffers a record the replay ignores, or
            // drops one hit (lossy, as a full stripe is).
            if (result == ReadResult.Miss || _skippableHits is not { } skippable || !skippable.IsSkippable(slot, hash))
            {
                RecordBufferedRead(readBuffer, result, slot, hash);
            }
        }
        else if (result == ReadResult.Miss)
        {
            _policy.OnMiss(hash);
        }
        else
        {
            _policy.OnHit(slot, hash);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ReadBuffer.AppendOutcome Append(ReadBuffer readBuffer, ReadResult result, int slot, ulong hash)
        => result == ReadResult.Miss ? readBuffer.RecordMiss(hash) : readBuffer.RecordHit(slot, hash);

    private void RecordBufferedRead(ReadBuffer readBuffer, ReadResult result, int slot, ulong hash)
    {
        ReadBuffer.AppendOutcome outcome = Append(readBuffer, result, slot, hash);
        if (outcome == ReadBuffer.AppendOutcome.Dropped)
        {
            OnStripeFull(readBuffer, result, slot, hash);
        }
        else if (outcome == ReadBuffer.AppendOutcome.RecordedHalfFull && _replayWorkItem is not null)
        {
            QueueReplay();
        }
    }

    /// <summary>
    /// The reader's stripe was full, so its record was not taken (with background replay: the queued replay
    /// is late, or it faulted). If the lock is free the reader replays part of its stripe itself and records
    /// again; else the record is dropped (the buffer is lossy).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void OnStripeFull(ReadBuffer readBuffer, ReadResult result, int slot, ulong hash)
    {
        if (TryDrainOwnStripe())
        {
            _ = Append(readBuffer, result, slot, hash);
        }
    }

    /// <summary>
    /// Background replay: a reader's stripe is half full, so queue the shard's one replay work item unless
    /// it is queued or running already (or a replay faulted: then full stripes are replayed inline again).
    /// Half full, not full, so that the pool thread usually starts before the stripe fills. A reader that
    /// appends between the replay's last record and the flag's reset queues nothing; the next append to a
    /// half-full stripe queues it again.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void QueueReplay()
    {
        if (Volatile.Read(ref _replayQueued) == 0 && Volatile.Read(ref _replayFaulted) == 0
            && Interlocked.CompareExchange(ref _replayQueued, 1, 0) == 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(_replayWorkItem!, preferLocal: false);
        }
    }

    /// <summary>Background replays that have run (tests).</summary>
    internal long BackgroundReplays => Volatile.Read(ref _backgroundReplays);

    /// <summary>Records waiting in the read buffer (tests; exact only while no reader appends).</summary>
    internal long PendingReads => _readBuffer?.PendingRecords ?? 0;

    /// <summary>The background replay: the whole read buffer into the policy, under the shard's lock; nothing
    /// (the queued flag is only reset) when <paramref name="cacheAlive"/> is false.</summary>
    /// <remarks>The drain's hit filter (<see cref="IsCurrent"/>) reads the native index, so the replay runs as an
    /// operation of the cache (<see cref="OffHeapCache.RunBackgroundReplay"/>: registered before it tests for
    /// Dispose, which then waits for it) and does nothing once the cache is disposed.</remarks>
    internal void ReplayInBackground(bool cacheAlive)
    {
        try
        {
            if (cacheAlive)
            {
                lock (Gate)
                {
                    _readBuffer!.DrainUnsynchronized(_policy);
                    _backgroundReplays++;
                }
            }
        }
        catch (Exception e)
        {
            // A handled path (the shard goes back to inline replay, whose caller sees the failure): not Debug.Fail, which
            // ends a Debug build's process, the very thing this catch prevents on a pool thread.
            Debug.WriteLine("background replay failed: " + e);
            Volatile.Write(ref _replayFaulted, 1);
        }
        finally
        {
            Volatile.Write(ref _replayQueued, 0);
        }
    }

    [DoesNotReturn]
    private static void ThrowDestinationOverlapsKey()
        => throw new ArgumentException("The destination IBufferWriter's GetSpan returned memory that overlaps the key; a copy there could overwrite the key being looked up. Pass a key the destination does not write over.", "destination");

    /// <summary>Whether a background replay is queued or running (tests).</summary>
    internal bool BackgroundReplayQueued => Volatile.Read(ref _replayQueued) != 0;

    /// <summary>The shard's reusable thread-pool work item (queuing it allocates nothing).</summary>
    private sealed class ReplayWorkItem(OffHeapCache owner, Shard shard) : IThreadPoolWorkItem
    {
        public void Execute() => owner.RunBackgroundReplay(shard);
    }

    /// <summary>
    /// The read buffer's hit filter: whether slot <paramref name="handle"/> still holds a key with
    /// <paramref name="keyHash"/>'s tag. A hit record can be replayed after its key's removal: it waited in another
    /// core's stripe, which a write here does not replay (a set's evictions follow only its own stripe's replay), or
    /// the reader was between its validated lookup and its append when the drain before the removal ran; by then the
    /// slot may hold another key, which was not read. (The 16-bit tag lets 1 in 65,536 such
    /// records through: a misplaced hit, harmless to the structures.)
    /// </summary>
    /// <remarks>Called by drains only, which hold <see cref="Gate"/> inside an operation of the cache (a
    /// caller's, or a background replay's), so the index is alive and its slots do not move.</remarks>
    public bool IsCurrent(int handle, ulong keyHash)
    {
        Debug.Assert(Gate.IsHeldByCurrentThread, "drains hold the shard's lock");
        if ((uint)handle / IndexBucket.SlotCount >= _bucketCount)
        {
            return false;
        }
        ulong word = SlotWordUnsynchronized(handle);   // in range (checked); the index is alive (see remarks)
        return word != 0 && SlotWord.TagMatches(word, keyHash);
    }

    /// <summary>
    /// Before a write, under the lock: replays every record of the read-buffer stripe of the core the writer runs on,
    /// and no other stripe. A write used to drain every stripe; on 16 cores that made the 90/10 mix stop at 10-12 Mops/s
    /// (2026-11-30, docs/benchmarks/scaling-16-cores.md): each other stripe's records were written on another core, so
    /// the lock holder pulled their cache lines over (and clearing them sent them back) while every other writer of
    /// the shard waited; draining only its own stripe gave 1.3-1.5× from 4 threads on (17.7 against 12.0 Mops/s at
    /// 16), hit ratio the same within 0.1 point. Another core's stripe is drained by that core's next write, by its
    /// readers once full (<see cref="TryDrainOwnStripe"/>), or by a full drain (a remove, the expiry sweep, the
    /// background replay). The writer's own miss of the key it adds is usually in
    /// this stripe and so replayed just before the add, which counts the pair once (W-TinyLFU's recent misses); when
    /// it sits in another core's stripe (the thread moved; an <c>await</c> between the lookup and the add), the add
    /// counts the access, and the miss, replayed later, finds the key present (<see cref="HandleOfLiveKey"/>) and is
    /// dropped if that add counted itself (<see cref="IEvictionPolicy.TryCancelLateMiss"/>). Used by the sets,
    /// <c>Touch</c> and the conditional writes; a remove replays every stripe (<see cref="RemoveUnsynchronized"/>).
    /// </summary>
    private void DrainOwnStripeBeforeWrite() => _readBuffer?.DrainOwnStripeUnsynchronized(_policy, ReadBuffer.SlotsPerStripe);

    /// <summary>
    /// The read buffer's check of a miss record: the slot (policy handle) of a live entry with <paramref name="keyHash"/>'s
    /// tag in that hash's probe window, or -1. Not an expired one: a get that found its key expired missed with the
    /// entry still there, and that miss counts. (1 in 65,536 other keys' entries match the tag too: the policy then
    /// answers for that entry's add, harmless to the structures.) Only a tag match reads an entry's header, for its expiry.
    /// </summary>
    /// <remarks>Called by drains only, as <see cref="IsCurrent"/>.</remarks>
    public int HandleOfLiveKey(ulong keyHash)
    {
        Debug.Assert(Gate.IsHeldByCurrentThread, "drains hold the shard's lock");
        ulong tag = SlotWord.TagOf(keyHash);
        uint home = HomeBucket(keyHash);
        for (uint d = 0; d < ProbeBuckets; d++)
        {
            uint bucketIndex = Wrap(home + d);
            IndexBucket* bucket = BucketAt(bucketIndex);
            // SAFETY: the bucket pointer comes from BucketAt (index < _bucketCount); the index is alive (see IsCurrent).
            for (uint candidates = IndexBucket.MatchTags(bucket, tag); candidates != 0; candidates &= candidates - 1)
            {
                int s = BitOperations.TrailingZeroCount(candidates);
                // SAFETY: s < SlotCount (MatchTags sets bits 0..6 only); the bucket is live (as above). An empty slot
                // matches tag 0: only a used one counts, and its entry is published (we hold the lock).
                int slot = (int)(bucketIndex * IndexBucket.SlotCount) + s;
                if (bucket->Slots[s] != 0 && !IsExpiredUnsynchronized(slot))
                {
                    return slot;
                }
            }
            // SAFETY: as above.
            if (bucket->Overflow == 0)
            {
                return -1;
            }
        }
        return -1;
    }

    /// <summary>
    /// The reader's stripe is full: if the lock is free, replay its oldest <see cref="ReaderDrainRecords"/>
    /// records (true: the caller may record again); else false and the record is dropped (the
    /// buffer is lossy). Bounded so that one read in <see cref="ReaderDrainRecords"/> pays for that
    /// many replays, not one read in 64 for 64 (each replay touches the policy's memory at random:
    /// the whole stripe cost 20-60 µs, the p99.9 of a get).
    /// </summary>
    /// <remarks>Not from this shard's eviction listener: the lock is re-entrant, so a listener that reads the cache
    /// would otherwise replay records into the policy in the middle of the eviction that called it (between a
    /// victim's selection and its removal, inside W-TinyLFU's eviction round). <c>_listenerDepth</c> is non-zero only
    /// while the lock's holder runs the listener, so a successful TryEnter that sees it is that thread re-entering.</remarks>
    private bool TryDrainOwnStripe()
    {
        if (!Gate.TryEnter())
        {
            return false;
        }
        try
        {
            if (_listenerDepth != 0)
            {
                return false;   // the record is dropped, as when the lock is busy
            }
            _readBuffer!.DrainOwnStripeUnsynchronized(_policy, ReaderDrainRecords);
        }
        finally
        {
            Gate.Exit();
        }
        return true;
    }

    /// <summary>
    /// One optimistic pass over the key's probe window. Returns <see cref="RetryRead"/> when a bucket
    /// changed under it; else the validated outcome <c>(slot &lt;&lt; ReadOutcomeSlotShift) | (int)result</c>
    /// (slot -1 on a miss), which a caller decodes with <see cref="ReadOutcomeResultMask"/> and an arithmetic shift.
    /// </summary>
    private long TryReadOnce<TSink>(ulong hash, ReadOnlySpan<byte> key, ref TSink sink, out int valueLength)
        where TSink : IValueSink, allows ref struct
    {
        valueLength = 0;
        // Loop invariants in locals: the JIT cannot keep fields of `this` in registers across the
        // volatile reads below.
        SlabArena arena = _arena;
        IndexBucket* buckets = _buckets;
        uint bucketCount = _bucketCount;
        ulong tag = SlotWord.TagOf(hash);
        uint bucketIndex = HomeBucket(hash);
        for (uint d = 0; d < ProbeBuckets; d++)
        {
            Debug.Assert(bucketIndex < bucketCount, "bucket index out of range");
            // SAFETY: bucketIndex < bucketCount (HomeBucket, then wrapped below), and the index block holds
            // bucketCount buckets, alive until Dispose, which waits for this operation (see _buckets).
            IndexBucket* bucket = buckets + bucketIndex;
            uint version = Volatile.Read(ref bucket->Version);
            if ((version & 1) != 0)
            {
                Thread.SpinWait(4);
                return RetryRead;   // a writer is inside this bucket
            }

            // SAFETY: as above, the 64 bytes of the bucket are inside the live index block.
            uint candidates = IndexBucket.MatchTags(bucket, tag);
            while (candidates != 0)
            {
                int s = BitOperations.TrailingZeroCount(candidates);
                candidates &= candidates - 1;
                // Re-read the one slot atomically: the scan above may have seen a slot mid-change (then
                // the version check below fails), but the handle used must be one word a writer stored.
                // SAFETY: s < SlotCount (MatchTags sets only bits 0..6); the bucket is live (as above).
                ulong word = Volatile.Read(ref bucket->Slots[s]);
                if (word == 0 || !SlotWord.TagMatches(word, hash))
                {
                    continue;
                }

                byte* entry = arena.ResolveForReader(word & SlotWord.HandleMask, out int available);
                // SAFETY: entry points into a live page (pages live until Dispose, and Dispose waits for
                // us) with `available` bytes to the page end; the header may be stale or torn, so it is
                // decoded reading only inside them and every length from it is checked against them.
                if (!EntryHeader.TryReadBounded(entry, available, out EntryHeader header) || header.KeyLength != key.Length)
                {
                    continue;   // a torn read or another key; the version check below decides
                }
                int keyOffset = header.Size;

                // SAFETY: header + KeyLength + ValueLength <= available (TryReadBounded), KeyLength == key.Length.
                if (!KeyEquals(entry + keyOffset, key))
                {
                    continue;
                }

                int length = (int)header.ValueLength;
                ReadResult found;
                if (header.ExpiresAt != 0 && _time.GetTimestamp() >= header.ExpiresAt)
                {
                    found = ReadResult.Miss;   // expired: never returned; a writer reclaims it
                }
                else if (!sink.CopiesValue)
                {
                    found = ReadResult.Hit;
                }
                else
                {
                    if (sink.ValidatesBeforeBuffer)
                    {
                        // The sink is asked for `length` bytes (a caller's IBufferWriter, or an array of that size):
                        // validate first, so that it never sees a length decoded from a header being rewritten.
                        Volatile.ReadBarrier();
                        // SAFETY: the bucket is live (as above).
                        if (Volatile.Read(ref bucket->Version) != version)
                        {
                            return RetryRead;
                        }
                    }
                    Span<byte> buffer = sink.GetBuffer(length);
                    if (sink.CallsCallerCode && buffer.Overlaps(key))
                    {
                        ThrowDestinationOverlapsKey();
                    }
                    if (buffer.Length < length && !sink.TakesPrefix)
                    {
                        found = ReadResult.DestinationTooSmall;
                    }
                    else
                    {
                        // TakesPrefix is a constant per sink type, so every other sink copies `length` as before.
                        int copied = sink.TakesPrefix ? Math.Min(length, buffer.Length) : length;
                        // SAFETY: copied <= length, and header + KeyLength + ValueLength <= available (TryReadBounded).
                        new ReadOnlySpan<byte>(entry + keyOffset + key.Length, copied).CopyTo(buffer);
                        found = ReadResult.Hit;
                    }
                }

                // Read-ReadWrite barrier: the copy's reads complete before the version re-read (the
                // seqlock's acquire fence; free on x64, `dmb ishld` on Arm64; a full fence is not needed).
                Volatile.ReadBarrier();
                // SAFETY: the bucket is live (as above).
                if (Volatile.Read(ref bucket->Version) != version)
                {
                    return RetryRead;
                }

                if (found == ReadResult.Hit && sink.CopiesValue)
                {
                    sink.Commit(length);
                }
                if (found == ReadResult.Miss)
                {
                    return ReadMissOutcome;
                }
                valueLength = length;
                return ((((long)bucketIndex * IndexBucket.SlotCount) + s) << ReadOutcomeSlotShift) | (long)found;
            }

            // SAFETY: the bucket is live (as above).
            uint overflow = Volatile.Read(ref bucket->Overflow);
            Volatile.ReadBarrier();   // the slot reads above complete before the version re-read
            if (Volatile.Read(ref bucket->Version) != version)
            {
                return RetryRead;
            }
            if (overflow == 0)
            {
                break;
            }
            bucketIndex = bucketIndex + 1 == bucketCount ? 0 : bucketIndex + 1;
        }
        return ReadMissOutcome;   // validated miss
    }

    /// <summary>
    /// Whether the <c>key.Length</c> bytes at <paramref name="stored"/> equal <paramref name="key"/>. Keys of
    /// 8 to 16 bytes (the common short key) compare as two overlapping 8-byte words, inline; others call
    /// SequenceEqual. The caller guarantees that <c>key.Length</c> bytes at <paramref name="stored"/> are readable.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool KeyEquals(byte* stored, ReadOnlySpan<byte> key)
    {
        int length = key.Length;
        if ((uint)(length - 8) <= 8)
        {
            ref byte first = ref MemoryMarshal.GetReference(key);
            // SAFETY: 8 <= length <= 16, so bytes [0, 8) and [length - 8, length) lie inside both keys.
            return Unsafe.ReadUnaligned<ulong>(stored) == Unsafe.ReadUnaligned<ulong>(ref first)
                && Unsafe.ReadUnaligned<ulong>(stored + length - 8) == Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref first, length - 8));
        }
        // SAFETY: the caller guarantees length readable bytes at stored.
        return new ReadOnlySpan<byte>(stored, length).SequenceEqual(key);
    }

    // ------------------------------------------------------------------ writes (under Gate)

    /// <summary>Stores key -> value. Returns false when it was not stored (then no older value of the key remains).</summary>
    /// <remarks>
    /// The caller (SetMany) hashed <paramref name="key"/> before taking the lock. If another thread writes to that buffer
    /// meanwhile (the caller's race, but it must not corrupt the cache), the bytes would no longer match the
    /// hash: stored, such a key sits in a window where page reclaim, which finds an entry's slot by hashing its
    /// stored key, cannot find it (it used to free the chunk anyway: a slot pointing at a reused chunk, then a
    /// double free), and a lookup that saw other bytes could miss the existing entry and add a duplicate. So
    /// the key is copied once, checked against the hash before anything changes, and only the copy is used.
    /// </remarks>
    /// <param name="hash">The hash the caller computed from <paramref name="key"/> before taking the lock.</param>
    /// <param name="key">The caller's key buffer.</param>
    /// <param name="value">The value.</param>
    /// <param name="expiresAt">The expiry timestamp, 0 = never.</param>
    /// <param name="invalidateFlightsOf">The cache whose running <c>GetOrAdd</c> of the key to mark (with the checked copy,
    /// after the check), as every write of a key does; null for none.</param>
    /// <exception cref="ArgumentException">The key's bytes no longer hash to <paramref name="hash"/>; nothing changed.</exception>
    [SkipLocalsInit]
    public bool SetUnsynchronized(ulong hash, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long expiresAt, OffHeapCache? invalidateFlightsOf = null)
    {
        using var stable = new StableCopy(key, stackalloc byte[StableCopy.StackBytes]);
        if (XxHash3.HashToUInt64(stable.Bytes, _seed) != hash)
        {
            throw new ArgumentException("The key's bytes changed while the call was running (another thread wrote to the key's buffer); nothing was stored.", nameof(key));
        }
        invalidateFlightsOf?.InvalidateFlightUnderShardLock(stable.Bytes, hash);
        return SetStableKeyUnsynchronized(hash, stable.Bytes, value, expiresAt) == SetOutcome.Stored;
    }

    /// <summary><see cref="SetUnsynchronized"/> for a key no other thread can change, known to hash to <paramref name="hash"/>
    /// (the caller's own copy, hashed after it was copied). <paramref name="recordAccess"/> false: replacing a stored
    /// key is not shown to the policy as an access (Touch writing an entry again with room for its expiry).
    /// <paramref name="comparisonValue"/>: with <see cref="SetCondition.IfValueEquals"/>, the value the live entry must hold. Invariant
    /// that makes skipping <c>OnUpdate</c> exact: every entry has weight 1 and a replaced entry keeps its slot (the policy's handle).</summary>
    internal SetOutcome SetStableKeyUnsynchronized(ulong hash, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long expiresAt,
                                                   bool recordAccess = true, SetCondition condition = SetCondition.Always,
                                                   ReadOnlySpan<byte> comparisonValue = default)
    {
        ThrowIfInListener();
        Debug.Assert(XxHash3.HashToUInt64(key, _seed) == hash, "a stable key hashes to the hash it is stored under");
        DrainOwnStripeBeforeWrite();
        uint home = HomeBucket(hash);
        // A plain set replaces whatever entry the key has, expired or not; the conditional sets ask whether the key is
        // there, so an expired entry leaves first and counts as absent.
        int existing = condition == SetCondition.Always ? FindSlotUnsynchronized(hash, key, home) : FindLiveSlotUnsynchronized(hash, key);
        bool conditionHolds = condition switch
        {
            SetCondition.Always => true,
            SetCondition.IfAbsent => existing < 0,
            SetCondition.IfPresent => existing >= 0,
            SetCondition.IfValueEquals => existing >= 0 && StoredValueUnsynchronized(existing).SequenceEqual(comparisonValue),
            _ => throw new ArgumentOutOfRangeException(nameof(condition), condition, "Unknown set condition."),
        };
        if (!conditionHolds)
        {
            return SetOutcome.ConditionFailed;   // TryAdd of a live key, TryUpdate of an absent one or of another value: no value written
        }
        // Once this shard stores an expiry, every entry carries the field (see EntryHeader): entries with and
        // without one then share a size class, so the chunk of an expired entry can serve either.
        _expiryFieldInEveryEntry |= expiresAt != 0;
        bool withExpiryField = _expiryFieldInEveryEntry;
        int headerSize = EntryHeader.SizeFor(withExpiryField);
        int entrySize = headerSize + key.Length + value.Length;

        if (existing >= 0 && TryRewriteInPlaceUnsynchronized(existing, hash, key, value, expiresAt, withExpiryField, entrySize, recordAccess))
        {
            return SetOutcome.Stored;
        }

        long removedBefore = _evictions + _expirations;
        bool admitted = false;
        if (existing < 0 && _policy.Weight >= _policy.Capacity)
        {
            // At the entry-count bound: expired entries make room for free; else admission decides
            // (the same protocol the simulator drives: ShouldAdmit when the newcomer needs room).
            for (int step = 0; step < ExpiryScanSteps && _ttlCount > 0 && _policy.Weight >= _policy.Capacity; step++)
            {
                ReclaimExpiredStepUnsynchronized();
            }
            if (_policy.Weight >= _policy.Capacity)
            {
                if (!_policy.ShouldAdmit(hash, 1))
                {
                    _rejections++;
                    return SetOutcome.Refused;   // a new key: no older value to drop
                }
                admitted = true;
            }
        }

        if (!TryAllocateWithRoomUnsynchronized(entrySize, hash, existing < 0 && !admitted, out SlabHandle handle))
        {
            _rejections++;   // first: the listener below may throw
            existing = FindSlotUnsynchronized(hash, key, home);
            if (existing >= 0)
            {
                // A reader must never get a value older than the last set, so the key's entry goes. Past its time to
                // live it leaves as an expiration (counted, reported to the listener, as when the expiry hand, a policy
                // victim or a page reclaim removes it); a live older value is the caller's own write being replaced and
                // leaves unreported, as a Remove.
                if (IsExpiredUnsynchronized(existing))
                {
                    EvictSlotUnsynchronized(existing, EvictionReason.Expired);
                }
                else
                {
                    RemoveSlotUnsynchronized(existing);
                }
            }
            return SetOutcome.Refused;
        }
        if (existing >= 0 && _evictions + _expirations != removedBefore)
        {
            existing = FindSlotUnsynchronized(hash, key, home);   // making room may have evicted it (a new key stays new: making room only removes, and the listener may not call back into the cache)
            if (existing < 0 && condition != SetCondition.Always)
            {
                // The entry being updated (TryUpdate, or Touch's rewrite) was itself evicted to make room: it is gone, as
                // the listener was told, and an update does not bring a key back. Linearizable as "evicted, then the
                // update found no key": a failed condition (room was made, so no rejection), which also lets the typed
                // AddOrUpdate retry and add. A plain Set stores its key whether or not it was there, so it adds it.
                _arena.Free(handle);
                return SetOutcome.ConditionFailed;
            }
        }

        int slot;
        try
        {
            slot = existing >= 0 ? existing : AcquireSlotUnsynchronized(hash, home);
        }
        catch
        {
            _arena.Free(handle);   // a throwing eviction listener: give the unpublished chunk back
            throw;
        }
        uint bucketIndex = (uint)slot / IndexBucket.SlotCount;
        uint distance = bucketIndex >= home ? bucketIndex - home : bucketIndex + _bucketCount - home;
        Debug.Assert(distance < ProbeBuckets, "slot outside the key's window");

        // SAFETY: handle was just allocated from our arena with a chunk of at least entrySize bytes,
        // and no slot points at it yet, so no reader validates against it and we are its only writer.
        byte* entry = EntryUnsynchronized(handle);
        Debug.Assert(_arena.GetChunkSize(handle) >= entrySize, "chunk smaller than the entry");
        EntryHeader.Write(entry, (uint)value.Length, (ushort)key.Length, (byte)distance, expiresAt, withExpiryField);
        key.CopyTo(new Span<byte>(entry + headerSize, key.Length));
        value.CopyTo(new Span<byte>(entry + headerSize + key.Length, value.Length));

        IndexBucket* bucket = BucketAt(bucketIndex);
        int s = slot - (int)(bucketIndex * IndexBucket.SlotCount);
        if (existing >= 0)
        {
            // SAFETY: the bucket pointer comes from BucketAt (index < _bucketCount, block alive until Dispose).
            ulong oldWord = bucket->Slots[s];
            SlabHandle oldHandle = SlotWord.Handle(oldWord);
            EntryHeader old = ReadHeaderUnsynchronized(oldHandle);
            PublishUnsynchronized(bucket, s, SlotWord.Make(hash, handle));
            _arena.Free(oldHandle);   // after unpublishing: readers of the old word fail validation
            _payloadBytes += value.Length - (long)old.ValueLength;
            _ttlCount += (expiresAt != 0 ? 1 : 0) - (old.ExpiresAt != 0 ? 1 : 0);
            if (recordAccess)
            {
                _policy.OnUpdate(slot, hash, 1);   // weight stays 1 and the slot is kept: skipping it changes only the access count
            }
            return SetOutcome.Stored;
        }

        PublishUnsynchronized(bucket, s, SlotWord.Make(hash, handle));
        _count++;
        _payloadBytes += key.Length + value.Length;
        if (expiresAt != 0)
        {
            _ttlCount++;
        }
        _policy.OnAdd(slot, hash, 1);

        // Entry-count bound: expired entries go first; then the policy picks, and it may pick the
        // newcomer (admission said no).
        for (int step = 0; step < ExpiryScanSteps && _ttlCount > 0 && _policy.Weight > _policy.Capacity; step++)
        {
            ReclaimExpiredStepUnsynchronized();
        }
        // Up to MaxEvictionsPerInsert + 1: normally one eviction (the add went one over the bound), but when a listener
        // that threw left the shard over its bound, each insert must remove more than it adds for the shard to come
        // back under it, even with MaxEvictionsPerInsert = 1.
        for (int guard = 0; _policy.Weight > _policy.Capacity && guard <= _maxEvictionsPerInsert; guard++)
        {
            int victim = _policy.SelectVictim();
            if (victim < 0)
            {
                break;
            }
            if (victim == slot)
            {
                RemoveSlotUnsynchronized(slot);
                _rejections++;
                return SetOutcome.Refused;
            }
            EvictSlotUnsynchronized(victim, EvictionReason.Capacity);
        }
        return SetOutcome.Stored;
    }

    /// <summary>
    /// The longest entry an update rewrites in place (<see cref="TryRewriteInPlaceUnsynchronized"/>). The bucket's version
    /// stays odd for the whole copy, and a reader of any key of that bucket (or probing through it) retries meanwhile and,
    /// after <see cref="MaxOptimisticReads"/> tries, waits on the shard's lock: a 4 KiB copy takes ~0.1 µs, a value of
    /// tens of KiB would turn lock-free reads into lock waits. Longer entries go to a new chunk, written before the slot
    /// changes, as before.
    /// </summary>
    internal const int InPlaceRewriteMaxBytes = 4096;

    /// <summary>
    /// Replaces the entry in <paramref name="slot"/> (the key's, found under the lock) by writing the new header, key and
    /// value over the old ones in its chunk, when the new entry takes the same size class and is at most
    /// <see cref="InPlaceRewriteMaxBytes"/> long: no chunk is allocated or freed, so an update neither touches a fresh
    /// chunk's cache lines nor makes room (before, an update whose class had no free chunk evicted another entry for a
    /// chunk it held already). The arena counts the rewrite as its class's demand, as it counted the allocation
    /// (<see cref="SlabArena.TryKeepChunkFor"/>). False, changing nothing, otherwise.
    /// </summary>
    /// <remarks>
    /// Readers are lock-free, so the rewrite runs inside the slot's bucket sequence lock, as <see cref="TouchUnsynchronized"/>'s
    /// in-place expiry does: the version is odd while the bytes change, so a reader that starts then retries and one that
    /// copied across the change fails its version check and retries; a torn header is read only within the chunk's page
    /// (<see cref="EntryHeader.TryReadBounded"/>). The slot, its word and the policy's handle stay, and so does the probe
    /// distance (same slot); the key's bytes are equal (the lookup compared them), so they are written again only when the
    /// header grows (the first expiry stored in the shard) and moves them.
    /// </remarks>
    private bool TryRewriteInPlaceUnsynchronized(int slot, ulong hash, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value,
        long expiresAt, bool withExpiryField, int entrySize, bool recordAccess)
    {
        IndexBucket* bucket = BucketOfSlot(slot, out int s);
        // SAFETY: the bucket pointer comes from BucketAt (index < _bucketCount, block alive until Dispose).
        SlabHandle handle = SlotWord.Handle(bucket->Slots[s]);
        if (entrySize > InPlaceRewriteMaxBytes || !_arena.TryKeepChunkFor(handle, entrySize))
        {
            return false;   // another size class, or long enough to keep readers waiting: a new chunk, as for a new key
        }
        byte* entry = EntryUnsynchronized(handle);
        EntryHeader old = EntryHeader.Read(entry);   // same slot, so the same probe distance is written back
        int headerSize = EntryHeader.SizeFor(withExpiryField);
        Debug.Assert(headerSize >= old.Size, "the expiry field, once stored in a shard, is in every entry written after");
        Debug.Assert(old.KeyLength == key.Length && new ReadOnlySpan<byte>(entry + old.Size, key.Length).SequenceEqual(key), "the slot holds this key");
        Debug.Assert(entrySize <= _arena.GetChunkSize(handle), "the new entry fits the chunk it keeps");

        uint odd = BeginBucketWrite(bucket);
        // SAFETY: header + key + value = entrySize <= the size of the live chunk this slot names (the class an allocation of
        // entrySize takes); we hold the shard's lock, so no other writer touches it, and readers validate against the odd version.
        EntryHeader.Write(entry, (uint)value.Length, (ushort)key.Length, old.ProbeDistance, expiresAt, withExpiryField);
        if (headerSize != old.Size)
        {
            key.CopyTo(new Span<byte>(entry + headerSize, key.Length));
        }
        value.CopyTo(new Span<byte>(entry + headerSize + key.Length, value.Length));
        EndBucketWrite(bucket, odd);

        _payloadBytes += value.Length - (long)old.ValueLength;
        _ttlCount += (expiresAt != 0 ? 1 : 0) - (old.ExpiresAt != 0 ? 1 : 0);
        if (recordAccess)
        {
            _policy.OnUpdate(slot, hash, 1);   // weight stays 1 and the slot is kept (as the chunk-replacing update)
        }
        return true;
    }

    /// <summary>
    /// Removes the key's live entry, if <paramref name="compareValue"/> is false or its value equals
    /// <paramref name="comparisonValue"/>; with <paramref name="copyValue"/>, only if the value fits
    /// <paramref name="destination"/>, into which it is copied first. Nothing changes unless the outcome is
    /// <see cref="RemoveOutcome.Removed"/> (an expired entry leaves as an expiration and counts as absent).
    /// </summary>
    /// <param name="hash">The hash of <paramref name="key"/>.</param>
    /// <param name="key">The key, a copy no other thread can change.</param>
    /// <param name="compareValue">Whether to remove only an entry whose value is <paramref name="comparisonValue"/>.</param>
    /// <param name="comparisonValue">See <paramref name="compareValue"/>.</param>
    /// <param name="copyValue">Whether to copy the value into <paramref name="destination"/> before removing it.</param>
    /// <param name="destination">See <paramref name="copyValue"/>: caller's memory, no caller code runs under the lock.</param>
    /// <param name="valueLength">The removed value's length; on <see cref="RemoveOutcome.DestinationTooSmall"/> the length needed.</param>
    public RemoveOutcome RemoveUnsynchronized(ulong hash, ReadOnlySpan<byte> key, bool compareValue, ReadOnlySpan<byte> comparisonValue,
        bool copyValue, Span<byte> destination, out int valueLength)
    {
        ThrowIfInListener();
        valueLength = 0;
        // Every stripe, not only this core's: a hit of the key recorded on another core and left pending would otherwise
        // be replayed after the key is added again (an invalidate-then-reload usually takes the same slot, which the
        // hit filter cannot tell from the old entry's) and credit the new entry with its predecessor's read.
        _readBuffer?.DrainUnsynchronized(_policy);
        int slot = FindLiveSlotUnsynchronized(hash, key);
        if (slot < 0)
        {
            return RemoveOutcome.Absent;
        }
        if (compareValue || copyValue)
        {
            // Read before the removal frees the chunk (the span is valid only until the entry changes).
            ReadOnlySpan<byte> stored = StoredValueUnsynchronized(slot);
            if (compareValue && !stored.SequenceEqual(comparisonValue))
            {
                return RemoveOutcome.ConditionFailed;
            }
            valueLength = stored.Length;
            if (copyValue)
            {
                if (destination.Length < stored.Length)
                {
                    return RemoveOutcome.DestinationTooSmall;
                }
                stored.CopyTo(destination);
            }
        }
        RemoveSlotUnsynchronized(slot);
        return RemoveOutcome.Removed;
    }

    /// <summary>
    /// The slot of the key's live entry, or -1. An entry past its time to live is absent for every reader (ContainsKey,
    /// TryGet), so the writers that ask whether a key is there (Remove, Touch, TryAdd, TryUpdate) see it absent too,
    /// and it leaves here as what it is: an expiration (counted, reported to the listener, whose exception propagates
    /// after the entry is gone).
    /// </summary>
    private int FindLiveSlotUnsynchronized(ulong hash, ReadOnlySpan<byte> key)
    {
        int slot = FindSlotUnsynchronized(hash, key, HomeBucket(hash));
        if (slot >= 0 && IsExpiredUnsynchronized(slot))
        {
            EvictSlotUnsynchronized(slot, EvictionReason.Expired);
            return -1;
        }
        return slot;
    }

    /// <summary>
    /// Gives the key's live entry a new expiry (<paramref name="expiresAt"/>, 0 = never) without touching its key, value
    /// or place in the policy; false if absent or expired (an expired entry leaves as an expiration, as in Remove).
    /// </summary>
    /// <remarks>
    /// An entry that carries the expiry field is changed in place (<see cref="WriteExpiryInPlaceUnsynchronized"/>):
    /// nothing is allocated or evicted. One stored before this shard held any expiry has no field; a finite expiry then
    /// needs the longer header, so the entry is written again (its own key and value, copied out first), a set in
    /// everything but the policy access: in place when the 8 more bytes keep its size class (up to
    /// <see cref="InPlaceRewriteMaxBytes"/>), else into a new chunk, which may make room like any set, and if there is
    /// none the entry is gone and the result is false (as a failed set drops the key's older value).
    /// </remarks>
    /// <param name="hash">The hash of <paramref name="key"/>, a key no other thread can change (the caller's copy).</param>
    /// <param name="key">The key, stable.</param>
    /// <param name="expiresAt">The new expiry timestamp, 0 = never.</param>
    [SkipLocalsInit]
    public bool TouchUnsynchronized(ulong hash, ReadOnlySpan<byte> key, long expiresAt)
    {
        ThrowIfInListener();
        Debug.Assert(XxHash3.HashToUInt64(key, _seed) == hash, "a stable key hashes to the hash it is looked up under");
        DrainOwnStripeBeforeWrite();
        int slot = FindLiveSlotUnsynchronized(hash, key);
        if (slot < 0)
        {
            return false;
        }
        SlabHandle handle = HandleOfSlotUnsynchronized(slot);
        EntryHeader header = ReadHeaderUnsynchronized(handle);
        if ((header.Flags & EntryHeader.HasExpiryFlag) != 0)
        {
            WriteExpiryInPlaceUnsynchronized(slot, handle, expiresAt);
            _ttlCount += (expiresAt != 0 ? 1 : 0) - (header.ExpiresAt != 0 ? 1 : 0);
            return true;
        }
        if (expiresAt == 0)
        {
            return true;   // no field, no expiry: already what was asked
        }

        // Written again with the field. The copy is of the stored key and value: the chunk may be freed while making
        // room, or rewritten in place (the longer header moves the key and value over the bytes they are copied from),
        // and the stored key (not the caller's buffer, which another thread may be changing) is what `hash` names.
        // SAFETY: a published entry's chunk holds its header (BaseSize: no field), key and value.
        using var copy = new StableCopy(new ReadOnlySpan<byte>(EntryUnsynchronized(handle) + EntryHeader.BaseSize, header.KeyLength + (int)header.ValueLength),
                                        stackalloc byte[StableCopy.StackBytes]);
        ReadOnlySpan<byte> storedKey = copy.Bytes[..header.KeyLength];
        Debug.Assert(storedKey.SequenceEqual(key), "the entry found holds the (stable) key, so its key hashes to `hash`");
        // IfPresent: exact (the entry was just found live under this lock), and an update never brings back a key that
        // making room evicted.
        return SetStableKeyUnsynchronized(hash, storedKey, copy.Bytes[header.KeyLength..], expiresAt, recordAccess: false,
                                          condition: SetCondition.IfPresent) == SetOutcome.Stored;
    }

    /// <summary>
    /// Rewrites the expiry field of the published entry <paramref name="handle"/> in <paramref name="slot"/> (one of the two
    /// in-place changes of a published chunk, with <see cref="TryRewriteInPlaceUnsynchronized"/>). Safe for lock-free readers because it happens inside an odd version of
    /// the bucket holding the slot, the bucket every reader of this entry validates against (a reader that read any
    /// of the entry's bytes across the write sees the version move and retries), exactly as a slot change does.
    /// </summary>
    private void WriteExpiryInPlaceUnsynchronized(int slot, SlabHandle handle, long expiresAt)
    {
        uint bucketIndex = (uint)slot / IndexBucket.SlotCount;
        IndexBucket* bucket = BucketAt(bucketIndex);
        Debug.Assert(SlotWord.Handle(SlotWordUnsynchronized(slot)).Value == handle.Value, "the handle is the slot's");
        byte* entry = EntryUnsynchronized(handle);
        uint odd = BeginBucketWrite(bucket);
        EntryHeader.WriteExpiry(entry, expiresAt);
        EndBucketWrite(bucket, odd);
    }

    /// <summary>Whether the published entry in <paramref name="slot"/> is past its time to live.</summary>
    private bool IsExpiredUnsynchronized(int slot) => IsPastTimeToLive(ReadHeaderUnsynchronized(HandleOfSlotUnsynchronized(slot)));

    /// <summary>The value of the published entry in <paramref name="slot"/> (under the lock; valid until the entry is
    /// replaced, removed or evicted, so read it before any change).</summary>
    private ReadOnlySpan<byte> StoredValueUnsynchronized(int slot)
    {
        SlabHandle handle = HandleOfSlotUnsynchronized(slot);
        EntryHeader header = ReadHeaderUnsynchronized(handle);
        // SAFETY: a published entry's chunk holds its header, key and value (ValueLength bytes), and it stays allocated
        // while the shard lock is held and nothing in this shard changes.
        return new ReadOnlySpan<byte>(EntryUnsynchronized(handle) + header.Size + header.KeyLength, (int)header.ValueLength);
    }

    /// <summary>The handle published in <paramref name="slot"/> (under the lock).</summary>
    private SlabHandle HandleOfSlotUnsynchronized(int slot) => SlotWord.Handle(SlotWordUnsynchronized(slot));

    /// <summary>The word of index slot <paramref name="slot"/> (bucket <c>slot / SlotCount</c>, which must exist).</summary>
    private ulong SlotWordUnsynchronized(int slot)
    {
        // SAFETY: BucketAt asserts the bucket index < _bucketCount; callers hold Gate inside an operation (index alive).
        return BucketOfSlot(slot, out int s)->Slots[s];
    }

    /// <summary>The readers' expiry test (now ≥ ExpiresAt), for writers that hold the lock.</summary>
    private bool IsPastTimeToLive(in EntryHeader header) => header.ExpiresAt != 0 && _time.GetTimestamp() >= header.ExpiresAt;

    /// <summary><see cref="IsPastTimeToLive(in EntryHeader)"/> at a time read once for many entries (a sweep under the lock).</summary>
    private static bool IsPastTimeToLive(in EntryHeader header, long now) => header.ExpiresAt != 0 && now >= header.ExpiresAt;

    /// <summary>Removes every entry. Counters of hits and misses are kept.</summary>
    public void ClearUnsynchronized()
    {
        ThrowIfInListener();
        _readBuffer?.ClearUnsynchronized();
        for (uint b = 0; b < _bucketCount; b++)
        {
            IndexBucket* bucket = BucketAt(b);
            for (int s = 0; s < IndexBucket.SlotCount; s++)
            {
                // SAFETY: the bucket pointer comes from BucketAt (index < _bucketCount, block alive until Dispose).
                if (bucket->Slots[s] != 0)
                {
                    RemoveSlotUnsynchronized((int)(b * IndexBucket.SlotCount) + s);
                }
            }
        }
        Debug.Assert(_count == 0 && _payloadBytes == 0 && _ttlCount == 0, "clear left entries");
        _policy.Clear();
    }

    /// <summary>Index slots in this shard (the range <see cref="CopyEntriesUnsynchronized"/> walks: bucket <c>slot / 7</c>,
    /// slot <c>slot % 7</c> in it).</summary>
    public int SlotCount => (int)(_bucketCount * IndexBucket.SlotCount);

    /// <summary>Most index slots <see cref="CopyEntriesUnsynchronized"/> visits per call (one lock hold): bounds the hold
    /// by work, not only by entries copied, since empty slots and expired entries fill no room (4,096 buckets' worth:
    /// about 256 KiB of index lines, 4,097 buckets when the walk resumes inside one, and up to 28,672 entry headers).</summary>
    internal const int MaxSlotsPerBatch = 4096 * IndexBucket.SlotCount;

    /// <summary>
    /// Appends the live (unexpired) entries of slots <paramref name="slot"/>, <paramref name="slot"/> + 1, ... to
    /// <paramref name="batch"/> (keys, and values when the batch takes them), until the batch refuses one or
    /// <see cref="MaxSlotsPerBatch"/> slots were visited; returns the first slot not taken (<see cref="SlotCount"/> when the
    /// index is done). Entries never move between slots while they live, so a caller that resumes at the returned slot
    /// sees every entry that stayed, once. Under the lock, inside an operation (the index and pages are alive); changes
    /// nothing (not a lookup: no hit, no policy record, no time to live renewed).
    /// </summary>
    public int CopyEntriesUnsynchronized(int slot, EntryBatch batch)
    {
        Debug.Assert(Gate.IsHeldByCurrentThread, "entries are copied under the shard's lock");
        int slotCount = SlotCount;
        Debug.Assert(slot >= 0 && slot <= slotCount, "the walk resumes inside the index");
        int end = slotCount - slot > MaxSlotsPerBatch ? slot + MaxSlotsPerBatch : slotCount;
        long now = _time.GetTimestamp();   // once per batch: the whole batch is one moment under the lock
        for (; slot < end; slot++)
        {
            ulong word = SlotWordUnsynchronized(slot);
            if (word == 0)
            {
                continue;
            }
            SlabHandle handle = SlotWord.Handle(word);
            EntryHeader header = ReadHeaderUnsynchronized(handle);
            if (IsPastTimeToLive(header, now))
            {
                continue;   // expired (the readers' test): not live, though a writer has not reclaimed it yet
            }
            // SAFETY: a published entry under the lock is consistent: header + key + value fit its chunk, and the chunk
            // stays allocated while we hold the lock. The batch copies out of these spans before the lock is released.
            Debug.Assert(header.TotalBytes <= _arena.GetChunkSize(handle), "a published entry fits its chunk");
            byte* key = EntryUnsynchronized(handle) + header.Size;
            if (!batch.TryAdd(new ReadOnlySpan<byte>(key, header.KeyLength), new ReadOnlySpan<byte>(key + header.KeyLength, (int)header.ValueLength)))
            {
                break;   // full: this slot is the next batch's first
            }
        }
        return slot;
    }

    /// <summary>The slot holding <paramref name="key"/>, or -1.</summary>
    private int FindSlotUnsynchronized(ulong hash, ReadOnlySpan<byte> key, uint home)
    {
        ulong tag = SlotWord.TagOf(hash);
        for (uint d = 0; d < ProbeBuckets; d++)
        {
            uint bucketIndex = Wrap(home + d);
            IndexBucket* bucket = BucketAt(bucketIndex);
            // SAFETY: the bucket pointer comes from BucketAt (index < _bucketCount, block alive until Dispose).
            for (uint candidates = IndexBucket.MatchTags(bucket, tag); candidates != 0; candidates &= candidates - 1)
            {
                int s = BitOperations.TrailingZeroCount(candidates);
                // SAFETY: s < SlotCount (MatchTags sets bits 0..6 only); the bucket is live (as above).
                ulong word = bucket->Slots[s];
                if (word == 0)
                {
                    continue;   // an empty slot matches tag 0
                }
                SlabHandle handle = SlotWord.Handle(word);
                EntryHeader header = ReadHeaderUnsynchronized(handle);
                // SAFETY: a published entry under the lock is consistent: header + key + value fit its chunk.
                if (header.KeyLength == key.Length && KeyEquals(EntryUnsynchronized(handle) + header.Size, key))
                {
                    return (int)(bucketIndex * IndexBucket.SlotCount) + s;
                }
            }
            // SAFETY: the bucket pointer comes from BucketAt (index < _bucketCount, block alive until Dispose).
            if (bucket->Overflow == 0)
            {
                break;
            }
        }
        return -1;
    }

    /// <summary>An empty slot in the key's window (evicting one entry of the window if it is full), overflow counts raised.</summary>
    private int AcquireSlotUnsynchronized(ulong hash, uint home)
    {
        for (int round = 0; round < 2; round++)
        {
            for (uint d = 0; d < ProbeBuckets; d++)
            {
                IndexBucket* bucket = BucketAt(Wrap(home + d));
                for (int s = 0; s < IndexBucket.SlotCount; s++)
                {
                    // SAFETY: the bucket pointer comes from BucketAt (index < _bucketCount, block alive until Dispose).
                    if (bucket->Slots[s] != 0)
                    {
                        continue;
                    }
                    for (uint k = 0; k < d; k++)
                    {
                        IndexBucket* passed = BucketAt(Wrap(home + k));
                        // SAFETY: the bucket pointer comes from BucketAt (index < _bucketCount, block alive until Dispose).
                        Volatile.Write(ref passed->Overflow, passed->Overflow + 1);
                    }
                    if ((int)d > _longestProbe)
                    {
                        _longestProbe = (int)d;
                    }
                    return (int)(Wrap(home + d) * IndexBucket.SlotCount) + s;
                }
            }

            // The window is full (rare at the load the index is sized for): free one of its slots,
            // an expired entry if there is one, else a slot of the home bucket chosen by the hash.
            _fullWindowEvictions++;
            int victim = FindExpiredInWindowUnsynchronized(home);
            if (victim >= 0)
            {
                EvictSlotUnsynchronized(victim, EvictionReason.Expired);
            }
            else
            {
                int s = (int)((hash >> 20) % IndexBucket.SlotCount);
                EvictSlotUnsynchronized((int)(home * IndexBucket.SlotCount) + s, EvictionReason.Capacity);
            }
        }
        throw new InvalidOperationException("Index window still full after an eviction: internal invariant broken.");
    }

    private int FindExpiredInWindowUnsynchronized(uint home)
    {
        if (_ttlCount == 0)
        {
            return -1;
        }
        long now = _time.GetTimestamp();
        for (uint d = 0; d < ProbeBuckets; d++)
        {
            uint bucketIndex = Wrap(home + d);
            IndexBucket* bucket = BucketAt(bucketIndex);
            for (int s = 0; s < IndexBucket.SlotCount; s++)
            {
                // SAFETY: the bucket pointer comes from BucketAt (index < _bucketCount, block alive until Dispose).
                ulong word = bucket->Slots[s];
                if (word != 0)
                {
                    EntryHeader header = ReadHeaderUnsynchronized(SlotWord.Handle(word));
                    if (IsPastTimeToLive(header, now))
                    {
                        return (int)(bucketIndex * IndexBucket.SlotCount) + s;
                    }
                }
            }
        }
        return -1;
    }

    /// <summary>
    /// A chunk for <paramref name="size"/> bytes: free chunk or new page; else reclaim expired entries; else give back
    /// another class's spare empty page; else (admission permitting) evict policy victims, at most the per-insert cap; else take one page
    /// from another size class if the arena says one should move; else evict policy victims up to the
    /// cap once more; else, for a class holding no page and if no page was reclaimed, empty the page of another class
    /// with the fewest live chunks (at most the cap of them). False when none of that made room.
    /// </summary>
    private bool TryAllocateWithRoomUnsynchronized(int size, ulong hash, bool askAdmission, out SlabHandle handle)
    {
        if (_arena.TryAllocate(size, out handle))
        {
            return true;
        }

        for (int step = 0; step < ExpiryScanSteps && _ttlCount > 0; step++)
        {
            if (ReclaimExpiredStepUnsynchronized() > 0 && _arena.TryAllocate(size, out handle))
            {
                return true;
            }
        }

        // Another class's idle empty page: room without evicting anything (the pool takes it back, the allocation takes it).
        // Several if another shard takes the released page from the pool before this allocation does.
        int classIndex = _classes.ClassOf(size);
        while (_arena.TryReleaseForeignSpare(classIndex, out _))
        {
            if (_arena.TryAllocate(size, out handle))
            {
                return true;
            }
        }

        // The byte budget binds (usually below the policy's entry bound): the segmented policies take their shares of
        // the entries held now, not of the bound (IEvictionPolicy.OnRoomNeededBelowCapacity; docs/engine.md).
        _policy.OnRoomNeededBelowCapacity();
        if (askAdmission && !_policy.ShouldAdmit(hash, 1))
        {
            return false;
        }

        for (int i = 0; i < _maxEvictionsPerInsert; i++)
        {
            int victim = _policy.SelectVictim();
            if (victim < 0)
            {
                break;
            }
            EvictSlotUnsynchronized(victim, EvictionReason.Capacity);
            if (_arena.TryAllocate(size, out handle))
            {
                return true;
            }
        }

        // The victims freed chunks of other classes only: the size mix may have shifted. If this class
        // holds less than its fair share of pages (the arena judges by recent demand), take one page
        // of the class furthest above its share and evict what still lives on it.
        bool reclaimedAPage = _arena.TryPickPageToReclaim(classIndex, out int pageId);
        if (reclaimedAPage && TryEmptyPageAndAllocateUnsynchronized(pageId, size, out handle))
        {
            return true;
        }

        // No page should move: the class has its share, so room must come from inside it. Keep
        // following the policy's order, at most the cap once more, until one of its chunks frees.
        for (int i = 0; i < _maxEvictionsPerInsert; i++)
        {
            int victim = _policy.SelectVictim();
            if (victim < 0)
            {
                break;
            }
            EvictSlotUnsynchronized(victim, EvictionReason.Capacity);
            if (_arena.TryAllocate(size, out handle))
            {
                return true;
            }
        }

        // Still nothing. A class that holds a page is refused here (the per-insert cap; on a trace this keeps what the
        // cache holds, as admission would). A class with no page at all, in an arena where every class in use holds
        // one (few pages per shard), would be refused for good: the share rules take only from a class of two or
        // more pages, and victims spread over other classes rarely empty one. For it, and if no page was reclaimed
        // above (at most one per insert), empty the page of another class with the fewest live chunks (a spare the
        // victims left first) when it holds no more than the per-insert cap. A differential run found a shard of 15
        // pages holding 8 entries refusing every set of a class it had no page for.
        return !reclaimedAPage
            && _arena.TryPickPageForAClassWithNone(classIndex, _maxEvictionsPerInsert, out pageId)
            && TryEmptyPageAndAllocateUnsynchronized(pageId, size, out handle);
    }

    /// <summary>Evicts every entry on the page the arena picked to reclaim (the last free gives the page to the pool), then
    /// allocates <paramref name="size"/> bytes, from that page if no other shard took it first.</summary>
    private bool TryEmptyPageAndAllocateUnsynchronized(int pageId, int size, out SlabHandle handle)
    {
        int live = _arena.GetLiveChunks(pageId, _reclaimScratch);
        for (int i = 0; i < live; i++)
        {
            EvictChunkUnsynchronized(_reclaimScratch[i]);
        }
        return _arena.TryAllocate(size, out handle);
    }

    /// <summary>Refuses a write made from this shard's eviction listener (see <see cref="_listenerDepth"/>); the cache's entry
    /// points refuse writes from any of its listeners earlier, before a lock (<see cref="ThrowIfInListenerOf"/>).</summary>
    private void ThrowIfInListener()
    {
        if (_listenerDepth != 0)
        {
            ThrowWriteFromListener();
        }
    }

    /// <summary>Refuses a write to <paramref name="cache"/> (or its Dispose) made from one of its eviction listeners on this
    /// thread. Called by every write entry point before it takes a shard lock: one thread-static read.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void ThrowIfInListenerOf(OffHeapCache cache)
    {
        if (t_listeners.Innermost is not null && t_listeners.Contains(cache))
        {
            ThrowWriteFromListener();
        }
    }

    /// <summary>Whether this thread is inside any cache's eviction listener (and so holds that cache's shard lock).</summary>
    internal static bool IsInAnyListener => t_listeners.Innermost is not null;

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowWriteFromListener()
        => throw new InvalidOperationException("The eviction listener changed the cache (Set, TryAdd, TryUpdate, Touch, Remove, Clear, RemoveExpired, SetMany, a GetOrAdd that missed, or Dispose); an EvictionListener must not call back into its cache to write (reads are allowed).");

    /// <summary>Examines the next buckets of the expiry hand and evicts expired entries; returns how many.</summary>
    private int ReclaimExpiredStepUnsynchronized()
    {
        long now = _time.GetTimestamp();
        int reclaimed = 0;
        uint scan = Math.Min(ExpiryScanBuckets, _bucketCount);
        for (uint i = 0; i < scan; i++)
        {
            uint bucketIndex = _expiryHand;
            _expiryHand = Wrap(_expiryHand + 1);
            reclaimed += EvictExpiredInBucketUnsynchronized(bucketIndex, now);
        }
        return reclaimed;
    }

    /// <summary>Buckets of this shard's index (the range of <see cref="RemoveExpiredUnsynchronized"/>).</summary>
    public uint BucketCount => _bucketCount;

    /// <summary>
    /// One batch of <see cref="OffHeapCache.RemoveExpired"/>: evicts, as expirations, the entries of buckets
    /// [<paramref name="firstBucket"/>, <paramref name="firstBucket"/> + <paramref name="buckets"/>) (clipped to the index)
    /// that are past their time to live now; returns how many. Nothing to do while the shard holds no entry with one.
    /// </summary>
    public int RemoveExpiredUnsynchronized(uint firstBucket, uint buckets)
    {
        ThrowIfInListener();
        if (_ttlCount == 0)
        {
            return 0;
        }
        // As before a Remove (a set's own removals follow only its own stripe's replay): the records of the slots about to
        // be emptied are replayed while they still name their entries.
        _readBuffer?.DrainUnsynchronized(_policy);
        long now = _time.GetTimestamp();
        uint end = (uint)Math.Min((ulong)firstBucket + buckets, _bucketCount);
        int removed = 0;
        for (uint b = firstBucket; b < end && _ttlCount > 0; b++)
        {
            removed += EvictExpiredInBucketUnsynchronized(b, now);
        }
        return removed;
    }

    /// <summary>Evicts the entries of bucket <paramref name="bucketIndex"/> past their time to live at <paramref name="now"/>.
    /// A removal never moves another entry (slots are only emptied), so every slot is examined once.</summary>
    private int EvictExpiredInBucketUnsynchronized(uint bucketIndex, long now)
    {
        int evicted = 0;
        IndexBucket* bucket = BucketAt(bucketIndex);
        for (int s = 0; s < IndexBucket.SlotCount; s++)
        {
            // SAFETY: the bucket pointer comes from BucketAt (index < _bucketCount, block alive until Dispose).
            ulong word = bucket->Slots[s];
            if (word == 0)
            {
                continue;
            }
            EntryHeader header = ReadHeaderUnsynchronized(SlotWord.Handle(word));
            if (IsPastTimeToLive(header, now))
            {
                EvictSlotUnsynchronized((int)(bucketIndex * IndexBucket.SlotCount) + s, EvictionReason.Expired);
                evicted++;
            }
        }
        return evicted;
    }

    /// <summary>Evicts the entry living in chunk <paramref name="handle"/> (page reclaim starts from chunks).</summary>
    private void EvictChunkUnsynchronized(SlabHandle handle)
    {
        EntryHeader header = ReadHeaderUnsynchronized(handle);
        // SAFETY: a live chunk of this arena holds a published entry: header + key + value fit the chunk.
        ReadOnlySpan<byte> key = new(EntryUnsynchronized(handle) + header.Size, header.KeyLength);
        int slot = SlotOfHandleUnsynchronized(handle, HomeBucket(XxHash3.HashToUInt64(key, _seed)), ProbeBuckets);
        if (slot < 0)
        {
            // Unreachable while every stored key hashes to its slot's window (SetUnsynchronized checks the key
            // first). Should it ever happen, freeing the chunk could leave a slot pointing at a reused chunk (a
            // double free later), so look in the whole index instead; only an unindexed chunk is freed.
            Debug.Fail("a live chunk is not in its key's probe window");
            slot = SlotOfHandleUnsynchronized(handle, 0, _bucketCount);
        }
        if (slot >= 0)
        {
            EvictSlotUnsynchronized(slot, EvictionReason.PageReclaimed);
        }
        else
        {
            _arena.Free(handle);
        }
    }

    /// <summary>The slot holding <paramref name="handle"/> among <paramref name="buckets"/> buckets from <paramref name="first"/> (wrapping), or -1.</summary>
    private int SlotOfHandleUnsynchronized(SlabHandle handle, uint first, uint buckets)
    {
        for (uint d = 0; d < buckets; d++)
        {
            uint bucketIndex = Wrap(first + d);
            IndexBucket* bucket = BucketAt(bucketIndex);
            for (int s = 0; s < IndexBucket.SlotCount; s++)
            {
                // SAFETY: the bucket pointer comes from BucketAt (index < _bucketCount, block alive until Dispose).
                if ((bucket->Slots[s] & SlotWord.HandleMask) == handle.Value)
                {
                    return (int)(bucketIndex * IndexBucket.SlotCount) + s;
                }
            }
        }
        return -1;
    }

    private void EvictSlotUnsynchronized(int slot, EvictionReason reason)
    {
        SlabHandle handle = HandleOfSlotUnsynchronized(slot);
        EntryHeader header = ReadHeaderUnsynchronized(handle);
        // An entry whose time to live has passed leaves as an expiration whichever path removes it: the expiry
        // hand scans only a few buckets per insert, so a policy victim or an entry of a reclaimed page or a full
        // window may have expired too. Evictions counts live entries only (CacheStatistics), and the listener
        // must hear Expired for it (the reader already treated it as absent).
        if (reason != EvictionReason.Expired && IsPastTimeToLive(header))
        {
            reason = EvictionReason.Expired;
        }
        if (reason == EvictionReason.Expired)
        {
            _expirations++;
        }
        else
        {
            _evictions++;
            if (reason == EvictionReason.PageReclaimed)
            {
                _pageReclaims++;
            }
            else
            {
                _capacityEvictions++;
            }
        }
        if (_listener is null)
        {
            RemoveSlotUnsynchronized(slot);
            return;
        }

        _listenerDepth++;
        OffHeapCache? outerListenerOf = t_listeners.Enter(_owner);
        try
        {
            // SAFETY: published entry under the lock; the chunk is freed only after the listener returns.
            _listener(new ReadOnlySpan<byte>(EntryUnsynchronized(handle) + header.Size, header.KeyLength), reason);
        }
        finally
        {
            t_listeners.Exit(outerListenerOf);
            _listenerDepth--;
            // Even if the listener throws, the eviction completes: the cache stays consistent and the
            // exception reaches the caller of the operation that evicted.
            RemoveSlotUnsynchronized(slot);
        }
    }

    /// <summary>Unpublishes a slot, fixes the overflow counts, frees the chunk, tells the policy.</summary>
    private void RemoveSlotUnsynchronized(int slot)
    {
        uint bucketIndex = (uint)slot / IndexBucket.SlotCount;
        int s = slot - (int)(bucketIndex * IndexBucket.SlotCount);
        IndexBucket* bucket = BucketAt(bucketIndex);
        // SAFETY: the bucket pointer comes from BucketAt (index < _bucketCount, block alive until Dispose).
        ulong word = bucket->Slots[s];
        Debug.Assert(word != 0, "removing an empty slot");
        SlabHandle handle = SlotWord.Handle(word);
        EntryHeader header = ReadHeaderUnsynchronized(handle);

        PublishUnsynchronized(bucket, s, 0);
        for (uint k = 1; k <= header.ProbeDistance; k++)
        {
            IndexBucket* passed = BucketAt(Wrap(bucketIndex + _bucketCount - k));
            // SAFETY: the bucket pointer comes from BucketAt (index < _bucketCount, block alive until Dispose).
            Debug.Assert(passed->Overflow > 0, "overflow count underflow");
            Volatile.Write(ref passed->Overflow, passed->Overflow - 1);
        }
        _arena.Free(handle);   // after unpublishing (see Concurrency notes)
        _policy.OnRemove(slot);
        _count--;
        _payloadBytes -= header.KeyLength + (long)header.ValueLength;
        if (header.ExpiresAt != 0)
        {
            _ttlCount--;
        }
    }

    /// <summary>Changes one slot inside the bucket's sequence lock.</summary>
    private static void PublishUnsynchronized(IndexBucket* bucket, int s, ulong word)
    {
        uint odd = BeginBucketWrite(bucket);
        // SAFETY: the bucket pointer comes from BucketAt (index < _bucketCount, block alive until Dispose); s < SlotCount.
        Volatile.Write(ref bucket->Slots[s], word);
        EndBucketWrite(bucket, odd);
    }

    /// <summary>Makes the bucket's version odd before a writer changes what its readers validate (a slot, or Touch's
    /// expiry field of an entry whose slot it holds). Returns the odd version for <see cref="EndBucketWrite"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint BeginBucketWrite(IndexBucket* bucket)
    {
        // SAFETY: the bucket pointer comes from BucketAt (index < _bucketCount, block alive until Dispose).
        uint odd = Interlocked.Increment(ref bucket->Version);   // full fence: odd is visible before the change
        Debug.Assert((odd & 1) == 1, "bucket version must be even outside a write");
        return odd;
    }

    /// <summary>Ends a <see cref="BeginBucketWrite"/>: the version becomes even again, after the change.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void EndBucketWrite(IndexBucket* bucket, uint odd)
    {
        // SAFETY: as in BeginBucketWrite.
        Volatile.Write(ref bucket->Version, odd + 1);            // release: the change is visible before even
    }

    private EntryHeader ReadHeaderUnsynchronized(SlabHandle handle)
    {
        // SAFETY: handle names a live chunk of this arena (we hold the lock) holding a published entry.
        return EntryHeader.Read(EntryUnsynchronized(handle));
    }

    /// <summary>
    /// The entry of a live chunk's handle (a published slot's, or one just allocated), under the lock: the writer's
    /// form of the reader's single page-table read (<see cref="SlabArena.ResolveForReader"/>), without the public
    /// API's disposed and range checks. Safe because the handle names a live chunk of this arena (at least a header
    /// long) and the pool is alive (the operation holds the cache's Enter registration, so Dispose waits for it).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte* EntryUnsynchronized(SlabHandle handle)
    {
        byte* entry = _arena.ResolveForReader(handle.Value, out int available);
        Debug.Assert(available >= EntryHeader.BaseSize && entry == _arena.GetPointer(handle), "a published handle names a chunk of at least a header in an allocated page");
        return entry;
    }

    /// <summary>
    /// Checks every invariant of the index against the entries and counters (tests call it after
    /// each step). Throws <see cref="InvalidOperationException"/> naming the first one broken.
    /// </summary>
    internal void ValidateInvariantsUnsynchronized()
    {
        long count = 0, payload = 0, ttl = 0;
        var overflow = new uint[_bucketCount];
        for (uint b = 0; b < _bucketCount; b++)
        {
            IndexBucket* bucket = BucketAt(b);
            // SAFETY: the bucket pointer comes from BucketAt (index < _bucketCount, block alive until Dispose).
            Check((bucket->Version & 1) == 0, "bucket version odd outside a write");
            for (int s = 0; s < IndexBucket.SlotCount; s++)
            {
                // SAFETY: the bucket pointer comes from BucketAt (index < _bucketCount, block alive until Dispose).
                ulong word = bucket->Slots[s];
                if (word == 0)
                {
                    continue;
                }
                SlabHandle handle = SlotWord.Handle(word);
                EntryHeader header = ReadHeaderUnsynchronized(handle);
                long size = header.TotalBytes;
                Check(size <= _arena.GetChunkSize(handle), "entry larger than its chunk");
                Check((header.Flags & ~EntryHeader.HasExpiryFlag) == 0 && (header.ExpiresAt == 0 || (header.Flags & EntryHeader.HasExpiryFlag) != 0), "header flags disagree with the expiry");
                // SAFETY: size <= chunk size, checked just above.
                ReadOnlySpan<byte> key = new(_arena.GetPointer(handle) + header.Size, header.KeyLength);
                ulong hash = XxHash3.HashToUInt64(key, _seed);
                Check(SlotWord.TagMatches(word, hash), "slot tag does not match the key's hash");
                uint home = HomeBucket(hash);
                Check(Wrap(home + header.ProbeDistance) == b, "probe distance does not lead to the slot");
                for (uint k = 0; k < header.ProbeDistance; k++)
                {
                    overflow[Wrap(home + k)]++;
                }
                count++;
                payload += header.KeyLength + (long)header.ValueLength;
                ttl += header.ExpiresAt != 0 ? 1 : 0;
            }
        }
        for (uint b = 0; b < _bucketCount; b++)
        {
            Check(BucketAt(b)->Overflow == overflow[b], "bucket overflow count differs from the entries passing it");
        }
        Check(count == _count, "entry count differs from the index");
        Check(payload == _payloadBytes, "payload bytes differ from the index");
        Check(ttl == _ttlCount, "TTL entry count differs from the index");
        Check(_policy.Count == _count, "policy tracks a different number of entries");

        static void Check(bool condition, string what)
        {
            if (!condition)
            {
                throw new InvalidOperationException("Shard invariant broken: " + what);
            }
        }
    }
}

/// <summary>When a set stores its value: always (Set), only for a key with no live entry (TryAdd), only for one with a live
/// entry (TryUpdate), or only for one whose live entry holds a given value (TryUpdate with a comparison value).</summary>
internal enum SetCondition
{
    Always,
    IfAbsent,
    IfPresent,
    IfValueEquals,
}

/// <summary>What a set did: stored the value, found its condition false (nothing changed), or was refused (admission, or no
/// room: then no older value of the key remains).</summary>
internal enum SetOutcome
{
    Stored,
    ConditionFailed,
    Refused,
}

/// <summary>What a remove did: removed the live entry, found none (or an expired one, now gone as an expiration), found
/// its value other than the comparison value, or found it longer than the destination (the last two change nothing).</summary>
internal enum RemoveOutcome
{
    Removed,
    Absent,
    ConditionFailed,
    DestinationTooSmall,
}

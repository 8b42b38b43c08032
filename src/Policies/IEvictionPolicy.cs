namespace CacheKit.Policies;

/// <summary>
/// An eviction (and optionally admission) policy that tracks cache entries by integer handles.
/// </summary>
/// <remarks>
/// <para><b>Handles.</b> The owner (the engine, or the simulator) hands out dense handles in
/// <c>[0, <see cref="PolicyOptions.MaxHandles"/>)</c>. A handle is tracked at most once: it is
/// added with <see cref="OnAdd"/>, may be hit and updated, and leaves with <see cref="OnRemove"/>;
/// after that the owner may reuse it for another key. Per-entry metadata lives in arrays
/// allocated once in the constructor, indexed by handle: no object per entry, no allocation per call.</para>
/// <para><b>Weights.</b> Every entry has a weight: 1 when capacity counts entries, its size in bytes
/// when capacity counts bytes, at most <see cref="PolicyOptions.MaxWeight"/> (a larger one throws
/// <see cref="ArgumentOutOfRangeException"/> before anything changes). <see cref="Weight"/> is the sum of the weights tracked.
/// The least weight differs by family: the list policies (FIFO, CLOCK, LRU, SLRU, SIEVE, S3-FIFO, W-TinyLFU) accept 0,
/// the others refuse it (1 is their least: GDSF divides by it, the ghost and frequency structures count it). The engine
/// passes 1 (it counts entries; the slab holds the byte budget).</para>
/// <para><b>Eviction protocol.</b> The owner adds the newcomer, then, while it needs room
/// (<see cref="Weight"/> above <see cref="Capacity"/>, or any reason of its own such as memory),
/// asks <see cref="SelectVictim"/>, evicts that entry and reports it with <see cref="OnRemove"/>.
/// <see cref="SelectVictim"/> must return a tracked handle whenever <see cref="Count"/> is above
/// zero, whatever the weight, and must do bounded work (a CLOCK sweep has a hard bound).
/// It may return the newcomer itself (an admission policy rejecting it).</para>
/// <para><b>Admission.</b> Before writing a newcomer that will need room, the owner may ask
/// <see cref="ShouldAdmit"/>; a policy without an admission filter answers true.</para>
/// <para><b>Concurrency.</b> All members except <see cref="OnHit"/> and <see cref="OnMiss"/>
/// require the owner's lock (they end the call chain of a write). When
/// <see cref="ConcurrentHits"/> is true, <see cref="OnHit"/> and <see cref="OnMiss"/> may be
/// called from many threads without the lock, concurrently with each other and with a lock
/// holder; races may lose an update but never corrupt the structure or throw. When it is false,
/// the owner must serialise those calls too (for example by buffering hits and replaying them
/// under the lock, see <c>ReadBuffer</c>).</para>
/// </remarks>
public interface IEvictionPolicy
{
    /// <summary>Short name used in tables and charts, e.g. "W-TinyLFU".</summary>
    string Name { get; }

    /// <summary>The weight budget: entries, or bytes.</summary>
    long Capacity { get; }

    /// <summary>Handles accepted are in [0, MaxHandles).</summary>
    int MaxHandles { get; }

    /// <summary>Number of entries tracked.</summary>
    int Count { get; }

    /// <summary>Sum of the weights of the entries tracked.</summary>
    long Weight { get; }

    /// <summary>True when <see cref="OnHit"/> and <see cref="OnMiss"/> are safe without the owner's lock.</summary>
    bool ConcurrentHits { get; }

    /// <summary>A tracked entry was read.</summary>
    /// <param name="handle">The entry's handle (tracked).</param>
    /// <param name="keyHash">The 64-bit hash of the entry's key (the same value given to <see cref="OnAdd"/>).</param>
    void OnHit(int handle, ulong keyHash);

    /// <summary>A lookup missed: frequency-based policies count the key; others ignore it.</summary>
    void OnMiss(ulong keyHash);

    /// <summary>A new entry was stored under <paramref name="handle"/>.</summary>
    void OnAdd(int handle, ulong keyHash, long weight);

    /// <summary>A tracked entry's value was replaced; its weight may have changed. Counts as an access.</summary>
    void OnUpdate(int handle, ulong keyHash, long newWeight);

    /// <summary>A tracked entry left the cache (evicted, expired, removed); the handle may be reused.</summary>
    void OnRemove(int handle);

    /// <summary>The handle of the entry to evict next, or -1 when nothing is tracked. Does not remove it.</summary>
    int SelectVictim();

    /// <summary>
    /// Whether a newcomer with this key hash is worth storing when room must be made for it.
    /// Policies without admission return true.
    /// </summary>
    bool ShouldAdmit(ulong candidateKeyHash, long weight);

    /// <summary>Forgets every entry (the owner cleared the cache). Frequency history may be kept.</summary>
    void Clear();

    /// <summary>
    /// Hint, first stage: a record for this key (and, when <paramref name="handle"/> ≥ 0, this entry)
    /// will be replayed soon with <see cref="OnHit"/> or <see cref="OnMiss"/>; the policy may prefetch
    /// the memory that call will touch. Changes no state and has no observable effect; the default
    /// does nothing. Called under the same rule as <see cref="OnHit"/>.
    /// </summary>
    /// <param name="handle">The entry's handle, or -1 for a miss. May be out of range or untracked (ignored).</param>
    /// <param name="keyHash">The key hash of the record.</param>
    void Prefetch(int handle, ulong keyHash)
    {
    }

    /// <summary>
    /// The owner's own bound (an engine's byte budget) binds before <see cref="Capacity"/>: it is about to ask for
    /// victims (and admission) with <see cref="Weight"/> below the capacity. Segmented policies then take their shares
    /// (a window, a protected segment, a LIR set, a ghost history's bound) of the weight held now rather than of the
    /// capacity, until adds take the weight past it again; without this a cache whose budget fills first kept shares
    /// of a capacity it never reached (an 80 % protected segment held every entry ever read twice). Owners that
    /// evict only over the capacity never call it. The default does nothing.
    /// </summary>
    void OnRoomNeededBelowCapacity()
    {
    }

    /// <summary>
    /// Hint, second stage, after <see cref="Prefetch"/> was called for a whole batch: prefetch what can
    /// be found only by reading the first stage's memory (e.g. the list neighbours of the entry).
    /// No state change, no observable effect; the default does nothing.
    /// </summary>
    /// <param name="handle">The entry's handle (may be out of range or untracked: ignored).</param>
    void PrefetchDependent(int handle)
    {
    }

    /// <summary>
    /// The owner is about to replay a miss of the key it now tracks under <paramref name="handle"/>: the miss was
    /// recorded before that key's add but is replayed after it (an owner whose read buffer replays each core's
    /// records separately; the lookup and the add ran on different cores). True when the add counted the access
    /// itself, because no miss of the key had been replayed before it: the policy forgets that, and the owner drops
    /// the miss, so the lookup and its add count once. False: the owner replays the miss as usual
    /// (<see cref="OnMiss"/>). Called under the same rule as <see cref="OnMiss"/>. The default returns false.
    /// </summary>
    /// <param name="handle">A tracked handle (the owner found the key under it); an untracked one has nothing to cancel (false).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="handle"/> is outside [0, <see cref="MaxHandles"/>) (policies
    /// that can cancel; the default checks nothing).</exception>
    bool TryCancelLateMiss(int handle) => false;

    /// <summary>
    /// Whether <see cref="TryCancelLateMiss"/> can ever return true. An owner looks a replayed miss's key up (a read of
    /// its index) only for a policy that says so, so the policies that never cancel pay nothing for the check. A policy
    /// that overrides <see cref="TryCancelLateMiss"/> must override this too. The default returns false.
    /// </summary>
    bool CancelsLateMisses => false;
}

namespace CacheKit.Policies;

/// <summary>
/// TinyLFU admission in front of any eviction policy: a newcomer is kept only when the frequency
/// sketch says it is more popular than the victim the inner policy would evict for it.
/// </summary>
/// <remarks>
/// <para><b>Protocol.</b> <see cref="ShouldAdmit"/> duels the candidate's estimated frequency with that
/// of the inner policy's next victim. Owners that do not ask <see cref="ShouldAdmit"/> still get
/// admission: after <see cref="OnAdd"/>, while the owner is making room, <see cref="SelectVictim"/>
/// duels the newcomer against each victim the inner policy proposes and returns the newcomer itself
/// when it loses (the contract allows rejecting the newcomer this way). The duel is for an add that takes
/// the weight over capacity, and ends when the newcomer is removed, or when the weight is back within
/// capacity (until 2026-11-29 an add within capacity opened one too, so an engine making room below
/// capacity for its next insert duelled, and could evict, the entry added before: found by a review).</para>
/// <para><b>Counting.</b> Every access is recorded once: a hit, a miss, an update; an add (or an update)
/// counts unless one of the last <see cref="RecentMisses.Size"/> unconsumed misses was of the same key hash (the usual
/// lookup-miss-then-add sequence), and an add that counted itself is marked, so that a miss of its key replayed after
/// it (recorded on another core) cancels instead of counting again (<see cref="TryCancelLateMiss"/>).</para>
/// <para><b>Concurrency.</b> <see cref="ConcurrentHits"/> is false whatever the inner policy says: a hit
/// writes the sketch, and the sketch is not safe to write from several threads (two readers ending a
/// sample period together would halve it twice, or flip the doorkeeper's current generation twice and
/// clear both). The owner buffers hits and replays them under its lock.</para>
/// <para>Invariant: <c>_newcomer</c> is -1 or a handle tracked by the inner policy.</para>
/// </remarks>
internal sealed class TinyLfuAdmissionPolicy : IEvictionPolicy
{
    private readonly IEvictionPolicy _inner;
    private readonly FrequencySketch _sketch;
    private readonly ulong[] _hashes;        // key hash per tracked handle
    private int _newcomer = -1;              // the last added handle while its admission is undecided
    private RecentMisses _recentMisses;      // misses replayed and not yet followed by their add (OnAdd)
    private readonly BlindAddMarks _blindAdds;   // adds that counted themselves (TryCancelLateMiss)
    private ShareCapacityTracker _share;     // the sketch's sample period follows it (OnRoomNeededBelowCapacity)

    public TinyLfuAdmissionPolicy(IEvictionPolicy inner, PolicyOptions options)
    {
        ArgumentNullException.ThrowIfNull(inner);
        PolicyBase.ValidateOptions(options);
        _inner = inner;
        _hashes = new ulong[inner.MaxHandles];
        _blindAdds = new BlindAddMarks(inner.MaxHandles);
        _sketch = WTinyLfuPolicy.CreateSketch(inner.Capacity, inner.MaxHandles, options.Seed);
        _share = new ShareCapacityTracker(inner.Capacity);
        Name = inner.Name + "+TinyLFU";
    }

    public string Name { get; }

    public long Capacity => _inner.Capacity;

    public int MaxHandles => _inner.MaxHandles;

    public int Count => _inner.Count;

    public long Weight => _inner.Weight;

    public bool ConcurrentHits => false;   // the sketch is written on every hit (see Concurrency)

    internal FrequencySketch Sketch => _sketch;

    public void OnHit(int handle, ulong keyHash)
    {
        _inner.OnHit(handle, keyHash);   // validates the handle first
        _sketch.Increment(keyHash);
    }

    public void OnMiss(ulong keyHash)
    {
        _inner.OnMiss(keyHash);
        _sketch.Increment(keyHash);
        _recentMisses.Add(keyHash);
    }

    public void OnAdd(int handle, ulong keyHash, long weight)
    {
        _inner.OnAdd(handle, keyHash, weight);
        _sketch.EnsureCapacity(_inner.Count);
        _hashes[handle] = keyHash;
        bool countedItself = !_recentMisses.TryConsume(keyHash);
        if (countedItself)
        {
            _sketch.Increment(keyHash);   // a put without a lookup before it (or whose lookup's miss is replayed later)
        }
        _blindAdds.Mark(handle, countedItself);
        _newcomer = _inner.Weight > _inner.Capacity ? handle : -1;
        if (_share.NoteAdded(_inner.Weight, _inner.Capacity))
        {
            _sketch.SetSamplePeriodFor(_share.Value);
        }
    }

    /// <inheritdoc/>
    public void OnRoomNeededBelowCapacity()
    {
        _inner.OnRoomNeededBelowCapacity();
        if (_share.NoteRoomRequest(_inner.Weight, _inner.Capacity))
        {
            _sketch.SetSamplePeriodFor(_share.Value);   // the counts age at the pace of the entries held
        }
    }

    public void OnUpdate(int handle, ulong keyHash, long newWeight)
    {
        _inner.OnUpdate(handle, keyHash, newWeight);
        _hashes[handle] = keyHash;
        bool countedItself = !_recentMisses.TryConsume(keyHash);
        if (countedItself)
        {
            _sketch.Increment(keyHash);   // as in OnAdd: after the key's own miss (an expired entry replaced) it is that one access
        }
        _blindAdds.Mark(handle, countedItself);
    }

    public void OnRemove(int handle)
    {
        _inner.OnRemove(handle);
        _blindAdds.Clear(handle);
        if (handle == _newcomer || _inner.Weight <= _inner.Capacity)
        {
            _newcomer = -1;
        }
    }

    public int SelectVictim()
    {
        int victim = _inner.SelectVictim();
        if (_newcomer >= 0 && victim >= 0 && victim != _newcomer && !Admit(_hashes[_newcomer], _hashes[victim]))
        {
            return _newcomer;
        }
        return victim;
    }

    public bool ShouldAdmit(ulong candidateKeyHash, long weight)
    {
        if (!_inner.ShouldAdmit(candidateKeyHash, weight))
        {
            return false;
        }
        int victim = _inner.SelectVictim();
        return victim < 0 || Admit(candidateKeyHash, _hashes[victim]);
    }

    public void Clear()
    {
        _inner.Clear();
        _newcomer = -1;
        if (_share.Reset(_inner.Capacity))
        {
            _sketch.SetSamplePeriodFor(_share.Value);
        }
        _recentMisses.Clear();
        _blindAdds.ClearAll();
    }

    /// <inheritdoc/>
    public bool TryCancelLateMiss(int handle) => _blindAdds.TryConsume(handle);

    /// <inheritdoc/>
    public bool CancelsLateMisses => true;

    private bool Admit(ulong candidateHash, ulong victimHash) =>
        _sketch.Frequency(candidateHash) > _sketch.Frequency(victimHash);

    /// <summary>Debug check of the wrapper and the inner policy.</summary>
    internal void ValidateInvariants()
    {
        if (_inner is PolicyBase b)
        {
            b.ValidateInvariants();
        }
        _sketch.ValidateInvariants();
    }
}

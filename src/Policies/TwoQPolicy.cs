namespace CacheKit.Policies;

/// <summary>
/// 2Q, the full version (Johnson and Shasha, VLDB 1994): newcomers enter A1in, a FIFO of about a
/// quarter of the capacity; entries evicted from A1in leave their key hash in A1out, a ghost FIFO
/// of about half the capacity; a newcomer whose hash is in A1out has been seen twice and enters
/// Am, an LRU. Hits in A1in change nothing (correlated references), hits in Am move to its head.
/// </summary>
/// <remarks>Invariants: every tracked handle is in A1in or Am; <c>_inWeight</c> is the weight of
/// A1in; A1out never weighs more than <see cref="OutTarget"/> (and never holds more than its
/// fixed number of slots). Hits move nodes, so they need the owner's lock.</remarks>
internal sealed class TwoQPolicy : IEvictionPolicy
{
    private const int A1In = 0, Am = 1;

    private readonly EntryWeights _entries;
    private readonly HandleLists _lists;
    private readonly GhostHistory _a1Out;
    private long _inWeight;

    private ShareCapacityTracker _share;

    public TwoQPolicy(PolicyOptions options)
    {
        EntryWeights.ValidateOptions(options);
        Capacity = options.Capacity;
        _share = new ShareCapacityTracker(options.Capacity);
        InTarget = Math.Max(1, options.Capacity / 4);
        OutTarget = Math.Max(1, options.Capacity / 2);
        _entries = new EntryWeights(options.MaxHandles);
        _lists = new HandleLists(options.MaxHandles, 2);
        _a1Out = new GhostHistory((int)Math.Max(1, Math.Min(OutTarget, options.MaxHandles)), 1);
    }

    public string Name => "2Q";
    public long Capacity { get; }
    public int MaxHandles => _entries.MaxHandles;
    public int Count => _entries.Count;
    public long Weight => _entries.Total;
    public bool ConcurrentHits => false;

    /// <summary>Kin: A1in's share of the capacity (25 %; of <see cref="ShareCapacityTracker"/>'s value).</summary>
    internal long InTarget { get; private set; }

    /// <summary>Kout: the weight of history A1out remembers (50 % of the capacity; of <see cref="ShareCapacityTracker"/>'s value).</summary>
    internal long OutTarget { get; private set; }

    /// <summary>Kin and Kout follow the share capacity; A1out forgets what no longer fits.</summary>
    private void ApplyShare()
    {
        InTarget = Math.Max(1, _share.Value / 4);
        OutTarget = Math.Max(1, _share.Value / 2);
        while (_a1Out.Weight(0) > OutTarget && _a1Out.RemoveOldest(0)) { }
    }

    /// <summary>Whether a tracked handle is in Am (for tests).</summary>
    internal bool IsInAm(int handle) => _lists.ListOf(handle) == Am;

    /// <summary>Whether a key hash is remembered in A1out (for tests).</summary>
    internal bool IsGhost(ulong keyHash) => _a1Out.Find(keyHash) >= 0;

    public void OnHit(int handle, ulong keyHash)
    {
        if (_entries.AcceptHit(handle) && _lists.ListOf(handle) == Am) _lists.MoveToFirst(Am, handle);
    }

    public void OnMiss(ulong keyHash) { }

    public void OnAdd(int handle, ulong keyHash, long weight)
    {
        _entries.Add(handle, keyHash, weight);
        if (_share.NoteAdded(_entries.Total, Capacity)) ApplyShare();
        int ghost = _a1Out.Find(keyHash);
        if (ghost >= 0)
        {
            _a1Out.Remove(ghost);
            _lists.AddFirst(Am, handle);
        }
        else
        {
            _lists.AddFirst(A1In, handle);
            _inWeight += weight;
        }
    }

    public void OnUpdate(int handle, ulong keyHash, long newWeight)
    {
        long old = _entries.Update(handle, keyHash, newWeight);
        if (_lists.ListOf(handle) == A1In) _inWeight += newWeight - old;
        else _lists.MoveToFirst(Am, handle);
    }

    public void OnRemove(int handle)
    {
        bool evicted = _entries.CheckRemove(handle);
        long weight = _entries.WeightOf(handle);
        bool fromIn = _lists.ListOf(handle) == A1In;
        _lists.Remove(handle);
        if (fromIn)
        {
            _inWeight -= weight;
            if (evicted)
            {
                _a1Out.Add(0, _entries.HashOf(handle), weight, 0);
                while (_a1Out.Weight(0) > OutTarget && _a1Out.RemoveOldest(0)) { }
            }
        }
        _entries.Forget(handle);
    }

    /// <inheritdoc/>
    public void OnRoomNeededBelowCapacity()
    {
        if (_share.NoteRoomRequest(_entries.Total, Capacity)) ApplyShare();
    }

    public int SelectVictim()
    {
        int newest = _entries.Count > 1 ? _entries.Newest : -1;
        // The classical 2Q reclaims before it inserts: leave the newcomer out of A1in's size.
        long inWeight = _inWeight - (newest >= 0 && _lists.ListOf(newest) == A1In ? _entries.WeightOf(newest) : 0);
        int victim = inWeight > InTarget
            ? First(Tail(A1In, newest), Tail(Am, newest))
            : First(Tail(Am, newest), Tail(A1In, newest));
        if (victim < 0) victim = _entries.Newest;   // the newcomer is all there is
        _entries.LastVictim = victim;
        return victim;
    }

    public bool ShouldAdmit(ulong candidateKeyHash, long weight) => true;

    public void Clear()
    {
        _entries.Clear();
        _lists.Clear();
        _a1Out.Clear();
        _inWeight = 0;
        if (_share.Reset(Capacity)) ApplyShare();
    }

    private int Tail(int list, int skip)
    {
        int t = _lists.Last(list);
        return t == skip && t >= 0 ? _lists.Previous(t) : t;
    }

    private static int First(int a, int b) => a >= 0 ? a : b;

    internal void ValidateInvariants()
    {
        _entries.ValidateInvariants();
        _lists.ValidateInvariants();
        _a1Out.ValidateInvariants();
        if (_lists.Count(A1In) + _lists.Count(Am) != _entries.Count) throw new InvalidOperationException("lists and entries disagree");
        long w = 0;
        for (int h = _lists.First(A1In); h >= 0; h = _lists.Next(h)) w += _entries.WeightOf(h);
        if (w != _inWeight) throw new InvalidOperationException($"A1in weighs {w} but counts {_inWeight}");
        if (_a1Out.Weight(0) > OutTarget) throw new InvalidOperationException("A1out over its target");
    }
}

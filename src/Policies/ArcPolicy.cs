namespace CacheKit.Policies;

/// <summary>
/// Adaptive Replacement Cache (Megiddo and Modha, FAST 2003). T1 holds entries seen once
/// recently, T2 entries seen at least twice; B1 and B2 remember the key hashes evicted from each.
/// A newcomer found in B1 says T1 was too small, so the target p for T1 grows; one found in B2
/// shrinks it. Eviction takes T1's LRU end while T1 is above p, else T2's.
/// </summary>
/// <remarks>
/// <para>Weights generalise the counts of the paper: c is <see cref="Capacity"/>, |X| is the
/// weight of list X, and a ghost hit moves p by the newcomer's weight times max(1, |B2|/|B1|)
/// (or |B1|/|B2|). With unit weights this is the paper's algorithm exactly.</para>
/// <para>Invariants: every tracked handle is in T1 or T2 and <c>_t1Weight</c>/<c>_t2Weight</c>
/// are their weights; 0 &lt;= p &lt;= c; after each eviction |T1| + |B1| &lt;= c and
/// |T1| + |T2| + |B1| + |B2| &lt;= 2c whenever ghosts can be dropped to make it so.
/// Hits move nodes, so they need the owner's lock.</para>
/// </remarks>
internal sealed class ArcPolicy : IEvictionPolicy
{
    private const int T1 = 0, T2 = 1;     // resident lists
    private const int B1 = ArcDirectory.B1, B2 = ArcDirectory.B2;     // ghost lists

    private readonly EntryWeights _entries;
    private readonly HandleLists _lists;
    private readonly GhostHistory _ghosts;
    private long _t1Weight, _t2Weight;
    private long _p;
    private bool _newcomerFromB2;

    public ArcPolicy(PolicyOptions options)
    {
        EntryWeights.ValidateOptions(options);
        Capacity = options.Capacity;
        _share = new ShareCapacityTracker(options.Capacity);
        _entries = new EntryWeights(options.MaxHandles);
        _lists = new HandleLists(options.MaxHandles, 2);
        _ghosts = new GhostHistory(EntryWeights.GhostSlots(options), 2);
    }

    public string Name => "ARC";
    public long Capacity { get; }

    public int MaxHandles => _entries.MaxHandles;
    public int Count => _entries.Count;
    public long Weight => _entries.Total;
    public bool ConcurrentHits => false;

    private ShareCapacityTracker _share;

    /// <summary>The paper's c: the capacity, or the weight held when room was last made below it
    /// (<see cref="ShareCapacityTracker"/>: an engine whose byte budget binds first).</summary>
    private long C => _share.Value;

    /// <summary>c moved: p stays within [0, c] and the histories are trimmed to c's bounds.</summary>
    private void ApplyShare()
    {
        _p = Math.Min(_p, C);
        ArcDirectory.Trim(_ghosts, _t1Weight, _t2Weight, C);
    }

    /// <summary>The adaptive target weight of T1 (for tests).</summary>
    internal long TargetT1 => _p;

    /// <summary>0 when a tracked handle is in T1, 1 in T2 (for tests).</summary>
    internal int ListOf(int handle) => _lists.ListOf(handle);

    /// <summary>0 when the hash is a ghost in B1, 1 in B2, -1 when not remembered (for tests).</summary>
    internal int GhostListOf(ulong keyHash)
    {
        int slot = _ghosts.Find(keyHash);
        return slot < 0 ? -1 : _ghosts.ListOf(slot);
    }

    public void OnHit(int handle, ulong keyHash)
    {
        if (_entries.AcceptHit(handle)) Promote(handle);
    }

    public void OnMiss(ulong keyHash) { }

    public void OnAdd(int handle, ulong keyHash, long weight)
    {
        _entries.Add(handle, keyHash, weight);
        if (_share.NoteAdded(_entries.Total, Capacity)) ApplyShare();
        _newcomerFromB2 = false;
        int ghost = _ghosts.Find(keyHash);
        if (ghost >= 0)
        {
            long b1 = _ghosts.Weight(B1), b2 = _ghosts.Weight(B2);
            if (_ghosts.ListOf(ghost) == B1)
            {
                long step = ArcDirectory.AdaptationStep(weight, b2 / b1, C);
                _p = step >= C - _p ? C : _p + step;   // min(c, p + step) without overflow
            }
            else
            {
                long step = ArcDirectory.AdaptationStep(weight, b1 / b2, C);
                _p = step >= _p ? 0 : _p - step;                     // max(0, p - step) without overflow
                _newcomerFromB2 = true;
            }
            _ghosts.Remove(ghost);
            _lists.AddFirst(T2, handle);
            _t2Weight += weight;
            return;
        }
        // A complete miss (case IV): make room in the directory before inserting.
        if (_t1Weight + _ghosts.Weight(B1) + weight > C)
        {
            // Case A, |L1| = c: drop B1's LRU (when T1 fills L1 alone, its LRU leaves unremembered,
            // which OnRemove's trim does).
            while (_t1Weight + _ghosts.Weight(B1) + weight > C && _ghosts.RemoveOldest(B1)) { }
        }
        else
        {
            // Case B, |L1| < c: when the directory is full, drop B2's LRU.
            while (OverDirectoryBound(weight) && _ghosts.RemoveOldest(B2)) { }
        }
        _lists.AddFirst(T1, handle);
        _t1Weight += weight;
    }

    public void OnUpdate(int handle, ulong keyHash, long newWeight)
    {
        long old = _entries.Update(handle, keyHash, newWeight);
        if (_lists.ListOf(handle) == T1) _t1Weight += newWeight - old; else _t2Weight += newWeight - old;
        Promote(handle);
    }

    public void OnRemove(int handle)
    {
        bool evicted = _entries.CheckRemove(handle);
        long weight = _entries.WeightOf(handle);
        int list = _lists.ListOf(handle);
        _lists.Remove(handle);
        if (list == T1) _t1Weight -= weight; else _t2Weight -= weight;
        if (evicted)
        {
            int ghostList = list == T1 ? B1 : B2;
            _ghosts.Add(ghostList, _entries.HashOf(handle), weight, ghostList);
            ArcDirectory.Trim(_ghosts, _t1Weight, _t2Weight, C);
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
        // REPLACE(x, p) runs before the paper inserts x: leave the newcomer out of |T1|.
        long t1 = _t1Weight - (newest >= 0 && _lists.ListOf(newest) == T1 ? _entries.WeightOf(newest) : 0);
        bool fromT1 = t1 > 0 && (t1 > _p || (_newcomerFromB2 && t1 == _p));
        int victim = fromT1 ? First(Tail(T1, newest), Tail(T2, newest)) : First(Tail(T2, newest), Tail(T1, newest));
        if (victim < 0) victim = _entries.Newest;
        _entries.LastVictim = victim;
        return victim;
    }

    public bool ShouldAdmit(ulong candidateKeyHash, long weight) => true;

    public void Clear()
    {
        _entries.Clear();
        _lists.Clear();
        _ghosts.Clear();
        _t1Weight = _t2Weight = 0;
        _p = 0;
        _share.Reset(Capacity);
        _newcomerFromB2 = false;
    }

    private bool OverDirectoryBound(long extra) => ArcDirectory.OverBound(_ghosts, _t1Weight + _t2Weight, extra, C);

    private void Promote(int handle)
    {
        if (_lists.ListOf(handle) == T1)
        {
            long w = _entries.WeightOf(handle);
            _t1Weight -= w;
            _t2Weight += w;
        }
        _lists.MoveToFirst(T2, handle);
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
        _ghosts.ValidateInvariants();
        if (_lists.Count(T1) + _lists.Count(T2) != _entries.Count) throw new InvalidOperationException("lists and entries disagree");
        long w1 = 0;
        for (int h = _lists.First(T1); h >= 0; h = _lists.Next(h)) w1 += _entries.WeightOf(h);
        if (w1 != _t1Weight || w1 + _t2Weight != _entries.Total) throw new InvalidOperationException("list weights are wrong");
        if (_p < 0 || _p > C) throw new InvalidOperationException($"p = {_p} outside [0, {C}]");
    }
}

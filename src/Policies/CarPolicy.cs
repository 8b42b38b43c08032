namespace CacheKit.Policies;

/// <summary>
/// CLOCK with Adaptive Replacement (Bansal and Modha, FAST 2004): ARC's adaptation with two
/// clocks instead of two LRU lists, so a hit only sets a reference bit and needs no lock.
/// T1 holds entries seen once recently, T2 entries seen again; B1 and B2 remember the key hashes
/// evicted from each and steer the target p for T1.
/// </summary>
/// <remarks>
/// <para>Each clock is a <see cref="HandleLists"/> list whose tail is the hand (oldest) and whose
/// head is where entries join. The sweep moves a referenced T1 entry to T2 and gives a referenced
/// T2 entry a second chance; it stops at the first unreferenced entry of the chosen clock, so it
/// takes at most about 2 × Count steps, and a hard cap of <see cref="MaxSweep"/> ends it sooner.</para>
/// <para>Invariants: every tracked handle is in T1 or T2 and <c>_t1Weight</c>/<c>_t2Weight</c>
/// are their weights; 0 &lt;= p &lt;= c; after each eviction |T1| + |B1| &lt;= c and
/// |T1| + |T2| + |B1| + |B2| &lt;= 2c whenever ghosts can be dropped to make it so.</para>
/// </remarks>
internal sealed class CarPolicy : IEvictionPolicy
{
    /// <summary>The most clock steps one eviction takes.</summary>
    internal const int MaxSweep = 4096;

    private const int T1 = 0, T2 = 1;
    private const int B1 = ArcDirectory.B1, B2 = ArcDirectory.B2;

    private readonly EntryWeights _entries;
    private readonly HandleLists _clocks;
    private readonly GhostHistory _ghosts;
    private readonly byte[] _referenced;   // written by lock-free hits
    private long _t1Weight, _t2Weight;
    private long _p;
    private int _pendingGhostList = -1;   // the ghost list the newcomer came from, until p adapts
    private long _pendingWeight;

    public CarPolicy(PolicyOptions options)
    {
        EntryWeights.ValidateOptions(options);
        Capacity = options.Capacity;
        _share = new ShareCapacityTracker(options.Capacity);
        _entries = new EntryWeights(options.MaxHandles);
        _clocks = new HandleLists(options.MaxHandles, 2);
        _ghosts = new GhostHistory(EntryWeights.GhostSlots(options), 2);
        _referenced = new byte[options.MaxHandles];
    }

    public string Name => "CAR";
    public long Capacity { get; }

    public int MaxHandles => _entries.MaxHandles;
    public int Count => _entries.Count;
    public long Weight => _entries.Total;
    public bool ConcurrentHits => true;   // a hit is one byte store

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

    /// <summary>The adaptive target weight of T1 (for tests; a ghost hit counts once its evictions are done).</summary>
    internal long TargetT1 => _p;

    public void OnHit(int handle, ulong keyHash)
    {
        if (_entries.AcceptHit(handle) && _referenced[handle] == 0) _referenced[handle] = 1;
    }

    public void OnMiss(ulong keyHash) { }

    public void OnAdd(int handle, ulong keyHash, long weight)
    {
        _entries.Add(handle, keyHash, weight);
        if (_share.NoteAdded(_entries.Total, Capacity)) ApplyShare();
        AdaptTarget();
        _referenced[handle] = 0;
        int ghost = _ghosts.Find(keyHash);
        if (ghost >= 0)
        {
            // The paper adapts p after REPLACE: remember the hit until the evictions are done.
            _pendingGhostList = _ghosts.ListOf(ghost);
            _pendingWeight = weight;
            _ghosts.Remove(ghost);
            _clocks.AddFirst(T2, handle);
            _t2Weight += weight;
        }
        else
        {
            _clocks.AddFirst(T1, handle);
            _t1Weight += weight;
        }
    }

    public void OnUpdate(int handle, ulong keyHash, long newWeight)
    {
        long old = _entries.Update(handle, keyHash, newWeight);
        AdaptTarget();
        if (_clocks.ListOf(handle) == T1) _t1Weight += newWeight - old; else _t2Weight += newWeight - old;
        _referenced[handle] = 1;
    }

    public void OnRemove(int handle)
    {
        bool evicted = _entries.CheckRemove(handle);
        if (!evicted) AdaptTarget();
        long weight = _entries.WeightOf(handle);
        int list = _clocks.ListOf(handle);
        _clocks.Remove(handle);
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
        int n = _entries.Count;
        if (n <= 1)
        {
            int only = n == 0 ? -1 : _entries.Newest >= 0 ? _entries.Newest : First(_clocks.Last(T1), _clocks.Last(T2));
            _entries.LastVictim = only;
            return only;
        }
        int newest = _entries.Newest;
        int victim = -1;
        for (int step = 0; step < MaxSweep; step++)
        {
            // The paper's REPLACE runs before the newcomer joins: leave it out of |T1|.
            bool newcomerInT1 = newest >= 0 && _clocks.ListOf(newest) == T1;
            long t1 = _t1Weight - (newcomerInT1 ? _entries.WeightOf(newest) : 0);
            int othersT1 = _clocks.Count(T1) - (newcomerInT1 ? 1 : 0);
            int othersT2 = _clocks.Count(T2) - (newest >= 0 && !newcomerInT1 ? 1 : 0);
            bool useT1 = othersT1 > 0 && (t1 >= Math.Max(1, _p) || othersT2 == 0);
            int list = useT1 ? T1 : T2;
            int x = _clocks.Last(list);
            victim = x;
            if (x == newest)
            {
                // The newcomer stands where it would have joined: pass it by.
                _clocks.MoveToFirst(list, x);
                continue;
            }
            if (_referenced[x] == 0) break;
            _referenced[x] = 0;
            if (useT1)
            {
                long w = _entries.WeightOf(x);
                _t1Weight -= w;
                _t2Weight += w;
            }
            _clocks.MoveToFirst(T2, x);
        }
        if (victim == newest) victim = First(Tail(T1, newest), Tail(T2, newest));
        // The paper appends the newcomer after REPLACE: keep it behind everything the sweep moved.
        if (newest >= 0) _clocks.MoveToFirst(_clocks.ListOf(newest), newest);
        _entries.LastVictim = victim;
        return victim;
    }

    public bool ShouldAdmit(ulong candidateKeyHash, long weight) => true;

    public void Clear()
    {
        _entries.Clear();
        _clocks.Clear();
        _ghosts.Clear();
        _t1Weight = _t2Weight = 0;
        _p = 0;
        _share.Reset(Capacity);
        _pendingGhostList = -1;
    }

    /// <summary>Applies a pending ghost hit to p, counting the newcomer in its ghost list as the
    /// paper does (it is still there when p adapts).</summary>
    private void AdaptTarget()
    {
        if (_pendingGhostList < 0) return;
        long w = _pendingWeight;
        // min(c, p + δ) and max(0, p - δ), written so they cannot overflow: with c above 2^62 p can sit near
        // long.MaxValue, and δ (up to |B2|, 2^49 with 2^17 ghosts of 2^32 bytes) wrapped p + δ negative. δ is
        // capped at c first (p lives in [0, c], so a larger step changes nothing); the results are otherwise
        // those of the plain formulas.
        if (_pendingGhostList == B1)
        {
            long b1 = _ghosts.Weight(B1) + w, b2 = _ghosts.Weight(B2);
            long step = ArcDirectory.AdaptationStep(w, b2 / b1, C);
            _p = step >= C - _p ? C : _p + step;
        }
        else
        {
            long b1 = _ghosts.Weight(B1), b2 = _ghosts.Weight(B2) + w;
            long step = ArcDirectory.AdaptationStep(w, b1 / b2, C);
            _p = step >= _p ? 0 : _p - step;
        }
        _pendingGhostList = -1;
    }

    private int Tail(int list, int skip)
    {
        int t = _clocks.Last(list);
        return t == skip && t >= 0 ? _clocks.Previous(t) : t;
    }

    private static int First(int a, int b) => a >= 0 ? a : b;

    internal void ValidateInvariants()
    {
        _entries.ValidateInvariants();
        _clocks.ValidateInvariants();
        _ghosts.ValidateInvariants();
        if (_clocks.Count(T1) + _clocks.Count(T2) != _entries.Count) throw new InvalidOperationException("clocks and entries disagree");
        long w1 = 0;
        for (int h = _clocks.First(T1); h >= 0; h = _clocks.Next(h)) w1 += _entries.WeightOf(h);
        if (w1 != _t1Weight || w1 + _t2Weight != _entries.Total) throw new InvalidOperationException("clock weights are wrong");
        if (_p < 0 || _p > C) throw new InvalidOperationException($"p = {_p} outside [0, {C}]");
    }
}

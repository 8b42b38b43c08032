using System.Diagnostics;

namespace CacheKit.Policies;

/// <summary>
/// CLOCK-Pro (Jiang, Chen and Zhang, USENIX 2005): LIRS's idea on a clock, so a hit only sets a
/// reference bit and needs no lock. One circular list holds hot and cold resident entries and
/// non-resident cold entries in their test period (key hashes of evicted cold entries). Three
/// hands sweep it: the cold hand evicts unreferenced cold entries (promoting referenced ones to
/// hot), the hot hand demotes unreferenced hot entries while hot ones exceed their share, and the
/// test hand ends test periods. A cold entry re-accessed during its test period turns hot and
/// grows the cold target; a test period that ends unused shrinks it. The hands follow the compact
/// three-hand formulation of the pure-Python implementation that go-clockpro ports, with weights
/// in place of counts; unlike it, newcomers start hot while the cache warms up and the cold target
/// stays within 1 % to 99 % of the capacity (as the Caffeine simulator's CLOCK-Pro does).
/// </summary>
/// <remarks>
/// <para>Protocol mapping: the reference implementation evicts, then inserts the newcomer just
/// behind the hot hand. Here the owner inserts first, so the newcomer waits outside the clock
/// (<c>_pending</c>) until the next structural call; the eviction loop never sees it.</para>
/// <para>The ring is private (not <see cref="HandleLists"/>) because entries are inserted behind a
/// hand, not at an end, and an evicted entry is replaced in place by a ghost node. Nodes
/// <c>[0, MaxHandles)</c> are resident handles, nodes <c>[MaxHandles, MaxHandles + ghosts)</c> are
/// ghost slots, indexed by key hash in a fixed <see cref="HashIndex"/>.</para>
/// <para>Invariants: every tracked handle except <c>_pending</c> is in the ring; every used ghost
/// node is in the ring and indexed; <c>_hotWeight</c>/<c>_coldWeight</c>/<c>_testWeight</c> are
/// the weights of hot, resident cold and ghost nodes; the cold target stays in [1 %, 99 %] of c;
/// hands are ring nodes, or all -1 when the ring is empty. A cold sweep takes at most
/// <see cref="MaxSweep"/> steps.</para>
/// </remarks>
internal sealed class ClockProPolicy : IEvictionPolicy
{
    /// <summary>The most cold-hand steps one eviction takes.</summary>
    internal const int MaxSweep = 4096;

    private readonly int _maxHandles;
    private readonly EntryWeights _entries;
    private readonly int[] _next;    // -1 when not in the ring
    private readonly int[] _prev;
    private readonly byte[] _hot;        // per handle
    private readonly byte[] _referenced; // per handle, written by lock-free hits
    private readonly ulong[] _ghostHash; // per ghost slot
    private readonly long[] _ghostWeight;
    private readonly int[] _freeGhosts;
    private readonly HashIndex _ghostIndex;
    private int _freeGhostCount;
    private int _handHot = -1, _handCold = -1, _handTest = -1;
    private int _pending = -1;
    private bool _pendingHot;
    private long _hotWeight, _coldWeight, _testWeight;
    private long _coldTarget;
    private ShareCapacityTracker _share;

    /// <summary>Cold-hand steps taken by <see cref="SelectVictim"/> (tests bound a sweep's length with it).</summary>
    internal long SweepSteps { get; set; }

    public ClockProPolicy(PolicyOptions options)
    {
        EntryWeights.ValidateOptions(options);
        Capacity = options.Capacity;
        _maxHandles = options.MaxHandles;
        int ghosts = EntryWeights.GhostSlots(options);
        _entries = new EntryWeights(_maxHandles);
        _next = new int[_maxHandles + ghosts];
        _prev = new int[_maxHandles + ghosts];
        _hot = new byte[_maxHandles];
        _referenced = new byte[_maxHandles];
        _ghostHash = new ulong[ghosts];
        _ghostWeight = new long[ghosts];
        _freeGhosts = new int[ghosts];
        _ghostIndex = new HashIndex(ghosts);
        _share = new ShareCapacityTracker(options.Capacity);
        MinColdTarget = Math.Max(1, options.Capacity / 100);
        MaxColdTarget = Math.Max(MinColdTarget, options.Capacity - MinColdTarget);
        Reset();
    }

    public string Name => "CLOCK-Pro";
    public long Capacity { get; }
    public int MaxHandles => _maxHandles;
    public int Count => _entries.Count;
    public long Weight => _entries.Total;
    public bool ConcurrentHits => true;   // a hit is one byte store

    /// <summary>The adaptive target weight of resident cold entries (for tests).</summary>
    internal long ColdTarget => _coldTarget;

    /// <summary>The cold target's floor: 1 % of the capacity, at least 1 (as LIRS's HIR share); of
    /// <see cref="ShareCapacityTracker"/>'s value, as the ceiling, the hot share and the test periods' weight.</summary>
    internal long MinColdTarget { get; private set; }

    /// <summary>The cold target's ceiling: 99 % of the capacity (of the share capacity, as the floor).</summary>
    internal long MaxColdTarget { get; private set; }

    /// <summary>The cold target's bounds, the hot share and the ghosts' weight follow the share capacity.</summary>
    private void ApplyShare()
    {
        long share = _share.Value;
        MinColdTarget = Math.Max(1, share / 100);
        MaxColdTarget = Math.Max(MinColdTarget, share - MinColdTarget);
        _coldTarget = Math.Clamp(_coldTarget, MinColdTarget, MaxColdTarget);
        while (_testWeight > share && _handTest >= 0) RunHandTest();
        RunHandHotWhileOver();
    }

    /// <summary>Whether a tracked handle is hot (for tests).</summary>
    internal bool IsHot(int handle) => _hot[handle] != 0 || (handle == _pending && _pendingHot);

    public void OnHit(int handle, ulong keyHash)
    {
        if (_entries.AcceptHit(handle) && _referenced[handle] == 0) _referenced[handle] = 1;
    }

    public void OnMiss(ulong keyHash) { }

    public void OnAdd(int handle, ulong keyHash, long weight)
    {
        _entries.Add(handle, keyHash, weight);
        LinkPending();
        if (_share.NoteAdded(_entries.Total, Capacity)) ApplyShare();
        _referenced[handle] = 0;
        _hot[handle] = 0;
        _pending = handle;
        // Warm-up: while the cache has more free room than the cold floor, newcomers start hot.
        _pendingHot = _hotWeight + _coldWeight + weight <= _share.Value - MinColdTarget;
        int ghost = _ghostIndex.Find(keyHash);
        if (ghost >= 0)
        {
            // Re-accessed during its test period: a small reuse distance, so it comes back hot
            // and the cold share grows.
            _coldTarget = Math.Min(MaxColdTarget, _coldTarget + weight);
            RemoveNode(_maxHandles + ghost);
            _pendingHot = true;
        }
    }

    public void OnUpdate(int handle, ulong keyHash, long newWeight)
    {
        _entries.RequireTracked(handle, nameof(handle));
        EntryWeights.ThrowIfBadWeight(newWeight, nameof(newWeight));   // before LinkPending: a refused call changes nothing
        LinkPending();   // first, so the newcomer joins with its old weight and the delta below applies once
        long old = _entries.Update(handle, keyHash, newWeight);
        if (_next[handle] >= 0)
        {
            if (_hot[handle] != 0) _hotWeight += newWeight - old; else _coldWeight += newWeight - old;
        }
        _referenced[handle] = 1;
    }

    public void OnRemove(int handle)
    {
        bool evicted = _entries.CheckRemove(handle);
        if (handle == _pending)
        {
            _pending = -1;   // never joined the clock
            _entries.Forget(handle);
            return;
        }
        if (!evicted) LinkPending();
        long weight = _entries.WeightOf(handle);
        // A second live key with the same 64-bit hash already left a ghost: keep that one (as LIRS does). Two ghosts of
        // one hash broke the index (an assert in Debug; in Release a ghost left unindexed, then an IndexOutOfRangeException
        // and a tracked handle outside the ring; found by review, 2026-11-30).
        if (evicted && _hot[handle] == 0 && _ghostIndex.Find(_entries.HashOf(handle)) < 0)
        {
            // An unreferenced cold entry leaves: it stays in the clock as a ghost in its test period.
            _coldWeight -= weight;
            bool atHand = _handCold == handle;
            int ghost = AllocGhost();
            _ghostHash[ghost] = _entries.HashOf(handle);
            _ghostWeight[ghost] = weight;
            _ghostIndex.Add(_ghostHash[ghost], ghost);
            Replace(handle, _maxHandles + ghost);
            _testWeight += weight;
            while (_testWeight > _share.Value && _handTest >= 0) RunHandTest();
            if (atHand && _handCold >= 0) _handCold = _next[_handCold];
            RunHandHotWhileOver();
        }
        else
        {
            if (_hot[handle] != 0) _hotWeight -= weight; else _coldWeight -= weight;
            RemoveNode(handle);
        }
        _hot[handle] = 0;
        _entries.Forget(handle);
    }

    /// <inheritdoc/>
    public void OnRoomNeededBelowCapacity()
    {
        if (_share.NoteRoomRequest(_entries.Total, Capacity)) ApplyShare();
    }

    public int SelectVictim()
    {
        int victim = -1;
        // A whole turn of the cold hand without a victim means every resident is hot: the hot hand demotes none while hot
        // weight is within its limit, which leaves out the waiting newcomer, so the sweep ran all MaxSweep steps and fell
        // back to AnyResident (15.6 us per eviction; found by review, 2026-11-30). After a turn (at most half the cap, so
        // that a large ring gets there too) the hot hand's next demotion is the victim: it is what the cold hand would
        // evict on reaching it, a turn later.
        int turn = Math.Min(RingLength(), MaxSweep / 2);
        for (int step = 0; step < MaxSweep && _handCold >= 0; step++)
        {
            if (step == turn)
            {
                int demoted = DemoteOneHot();
                if (demoted >= 0)
                {
                    victim = demoted;
                    break;
                }
            }
            SweepSteps++;
            int x = _handCold;
            if (x < _maxHandles && _hot[x] == 0)
            {
                if (_referenced[x] == 0)
                {
                    victim = x;
                    break;
                }
                // Referenced cold entry: promote to hot.
                _referenced[x] = 0;
                _hot[x] = 1;
                long w = _entries.WeightOf(x);
                _coldWeight -= w;
                _hotWeight += w;
            }
            _handCold = _next[_handCold];
            RunHandHotWhileOver();
        }
        if (victim < 0) victim = AnyResident();
        _entries.LastVictim = victim;
        return victim;
    }

    public bool ShouldAdmit(ulong candidateKeyHash, long weight) => true;

    public void Clear()
    {
        _entries.Clear();
        _ghostIndex.Clear();
        _share.Reset(Capacity);
        MinColdTarget = Math.Max(1, Capacity / 100);
        MaxColdTarget = Math.Max(MinColdTarget, Capacity - MinColdTarget);
        Reset();
    }

    private void Reset()
    {
        Array.Fill(_next, -1);
        Array.Fill(_prev, -1);
        Array.Clear(_hot);
        _freeGhostCount = _freeGhosts.Length;
        for (int i = 0; i < _freeGhosts.Length; i++) _freeGhosts[i] = _freeGhosts.Length - 1 - i;
        _handHot = _handCold = _handTest = -1;
        _pending = -1;
        _pendingHot = false;
        _hotWeight = _coldWeight = _testWeight = 0;
        _coldTarget = MinColdTarget;
    }

    /// <summary>Puts the waiting newcomer into the clock just behind the hot hand.</summary>
    private void LinkPending()
    {
        int h = _pending;
        if (h < 0) return;
        _pending = -1;
        long w = _entries.WeightOf(h);
        if (_pendingHot)
        {
            _hot[h] = 1;
            _hotWeight += w;
        }
        else
        {
            _coldWeight += w;
        }
        if (_handHot < 0)
        {
            _next[h] = _prev[h] = h;
            _handHot = _handCold = _handTest = h;
        }
        else
        {
            int after = _handHot, before = _prev[after];
            _next[h] = after;
            _prev[h] = before;
            _next[before] = h;
            _prev[after] = h;
            if (_handCold == _handHot) _handCold = h;
        }
        if (_pendingHot) RunHandHotWhileOver();
    }

    private void RunHandHotWhileOver()
    {
        // Each pass clears reference bits, so two passes over the ring always suffice.
        for (int guard = 2 * _next.Length + 2; _share.Value - _coldTarget < _hotWeight && _handHot >= 0 && guard > 0; guard--)
        {
            RunHandHot();
        }
    }

    private void RunHandHot()
    {
        if (_handHot == _handTest) RunHandTest();
        if (_handHot < 0) return;
        int x = _handHot;
        if (x < _maxHandles && _hot[x] != 0)
        {
            if (_referenced[x] != 0)
            {
                _referenced[x] = 0;
            }
            else
            {
                Demote(x);
            }
        }
        _handHot = _next[_handHot];
    }

    /// <summary>A hot resident turns cold (its weight moves from the hot share to the cold one).</summary>
    private void Demote(int handle)
    {
        _hot[handle] = 0;
        long w = _entries.WeightOf(handle);
        _hotWeight -= w;
        _coldWeight += w;
    }

    private void RunHandTest()
    {
        int x = _handTest;
        if (x >= _maxHandles)
        {
            // The test period ends unused: forget the ghost and shrink the cold share.
            int prev = _prev[x] == x ? -1 : _prev[x];
            long w = _ghostWeight[x - _maxHandles];
            RemoveNode(x);
            _coldTarget = Math.Max(MinColdTarget, _coldTarget - w);
            _handTest = prev;
        }
        if (_handTest >= 0) _handTest = _next[_handTest];
    }

    private int AllocGhost()
    {
        // Every ghost slot in use: end test periods until one frees (the ring holds them all).
        for (int guard = _next.Length; _freeGhostCount == 0 && guard > 0; guard--) RunHandTest();
        Debug.Assert(_freeGhostCount > 0, "no ghost slot freed");
        return _freeGhosts[--_freeGhostCount];
    }

    /// <summary>Unlinks a node; hands on it step back. Ghost nodes are freed.</summary>
    private void RemoveNode(int node)
    {
        int n = _next[node], p = _prev[node];
        if (n == node)
        {
            _handHot = _handCold = _handTest = -1;
        }
        else
        {
            _next[p] = n;
            _prev[n] = p;
            if (_handHot == node) _handHot = p;
            if (_handCold == node) _handCold = p;
            if (_handTest == node) _handTest = p;
        }
        _next[node] = _prev[node] = -1;
        if (node >= _maxHandles)
        {
            int g = node - _maxHandles;
            _testWeight -= _ghostWeight[g];
            _ghostIndex.Remove(_ghostHash[g]);
            _freeGhosts[_freeGhostCount++] = g;
        }
    }

    /// <summary>Puts <paramref name="replacement"/> where <paramref name="node"/> stands; hands follow.</summary>
    private void Replace(int node, int replacement)
    {
        int n = _next[node], p = _prev[node];
        if (n == node)
        {
            _next[replacement] = _prev[replacement] = replacement;
        }
        else
        {
            _next[replacement] = n;
            _prev[replacement] = p;
            _next[p] = replacement;
            _prev[n] = replacement;
        }
        if (_handHot == node) _handHot = replacement;
        if (_handCold == node) _handCold = replacement;
        if (_handTest == node) _handTest = replacement;
        _next[node] = _prev[node] = -1;
    }

    /// <summary>Ghosts in their test period (for tests).</summary>
    internal int GhostCount => _freeGhosts.Length - _freeGhostCount;

    /// <summary>Nodes in the ring: the tracked residents but the waiting newcomer, and the ghosts in their test period.</summary>
    private int RingLength() => _entries.Count - (_pending >= 0 ? 1 : 0) + (_freeGhosts.Length - _freeGhostCount);

    /// <summary>
    /// Moves the hot hand to the next unreferenced hot entry, clearing reference bits on the way, and demotes it; returns it,
    /// or -1 when none is found within <see cref="MaxSweep"/> steps (no hot resident, or all referenced twice over). Unlike
    /// <see cref="RunHandHot"/> it does not push the test hand: this is one eviction's fallback, and a ring of ghosts alone
    /// lost every ghost when it did (found by review, 2026-11-30).
    /// </summary>
    private int DemoteOneHot()
    {
        for (int step = 0; step < MaxSweep && _handHot >= 0; step++)
        {
            SweepSteps++;
            int x = _handHot;
            _handHot = _next[x];
            if (x < _maxHandles && _hot[x] != 0)
            {
                if (_referenced[x] != 0)
                {
                    _referenced[x] = 0;
                    continue;
                }
                Demote(x);
                return x;
            }
        }
        return -1;
    }

    /// <summary>A resident entry when the sweep found none (only reachable with huge weights or a
    /// ring of ghosts): the first resident after the cold hand, else the waiting newcomer.</summary>
    private int AnyResident()
    {
        if (_handCold >= 0)
        {
            int x = _handCold;
            do
            {
                if (x < _maxHandles) return x;
                x = _next[x];
            }
            while (x != _handCold);
        }
        return _pending;
    }

    internal void ValidateInvariants()
    {
        _entries.ValidateInvariants();
        _ghostIndex.ValidateInvariants();
        long hot = 0, cold = 0, test = 0;
        int residents = 0, ghosts = 0;
        if (_handHot >= 0)
        {
            int x = _handHot, steps = 0;
            do
            {
                if (_prev[_next[x]] != x) throw new InvalidOperationException($"ring broken at {x}");
                if (x < _maxHandles)
                {
                    if (!_entries.IsTracked(x)) throw new InvalidOperationException($"untracked handle {x} in the ring");
                    residents++;
                    if (_hot[x] != 0) hot += _entries.WeightOf(x); else cold += _entries.WeightOf(x);
                }
                else
                {
                    ghosts++;
                    test += _ghostWeight[x - _maxHandles];
                    if (_ghostIndex.Find(_ghostHash[x - _maxHandles]) != x - _maxHandles) throw new InvalidOperationException("ghost not indexed");
                }
                if (++steps > _next.Length) throw new InvalidOperationException("ring cycle too long");
                x = _next[x];
            }
            while (x != _handHot);
            foreach (int hand in (ReadOnlySpan<int>)[_handCold, _handTest])
            {
                if (hand < 0 || _next[hand] < 0) throw new InvalidOperationException("a hand is off the ring");
            }
        }
        else if (_handCold >= 0 || _handTest >= 0)
        {
            throw new InvalidOperationException("hands set on an empty ring");
        }
        int expected = _entries.Count - (_pending >= 0 ? 1 : 0);
        if (residents != expected) throw new InvalidOperationException($"ring holds {residents} residents, expected {expected}");
        if (hot != _hotWeight || cold != _coldWeight || test != _testWeight) throw new InvalidOperationException("ring weights are wrong");
        if (ghosts != _ghostIndex.Count || ghosts + _freeGhostCount != _freeGhosts.Length) throw new InvalidOperationException("ghost counts disagree");
        if (_coldTarget < MinColdTarget || _coldTarget > MaxColdTarget) throw new InvalidOperationException("cold target out of range");
    }
}

using System.Diagnostics;

namespace CacheKit.Policies;

/// <summary>
/// Low Inter-reference Recency Set (Jiang and Zhang, SIGMETRICS 2002). Entries whose last two
/// accesses were close (low inter-reference recency, LIR) hold about 99 % of the capacity; the
/// rest is a small FIFO queue Q of resident HIR entries, the only ones evicted. The LIRS stack S
/// orders recent accesses, including key hashes of evicted HIR entries (non-resident HIR); a HIR
/// entry accessed again while still in S has a smaller reuse distance than the oldest LIR entry
/// and takes its place. Stack pruning keeps a LIR entry at the bottom of S.
/// </summary>
/// <remarks>
/// <para>Structure: S is a <see cref="HandleLists"/> list over <i>stack slots</i>, not handles, so
/// an entry evicted while in S keeps its slot as a non-resident ghost and the handle is free for
/// reuse. Q is a list over handles. Ghost slots are indexed by key hash in a fixed
/// <see cref="HashIndex"/>; their number is bounded by the capacity (at most one per handle), the
/// oldest being dropped first (a second list keeps their age).</para>
/// <para>Invariants: the bottom of S is a LIR entry (or S is empty); every LIR entry is in S; every
/// resident HIR entry is in Q and maybe in S; every ghost slot is in S and indexed;
/// <c>_lirWeight</c> is the weight of the LIR entries and stays within <see cref="LirTarget"/>
/// except when a single entry is heavier. Hits move nodes, so they need the owner's lock.</para>
/// </remarks>
internal sealed class LirsPolicy : IEvictionPolicy
{
    private readonly int _maxHandles;
    private readonly int _ghostLimit;
    private readonly EntryWeights _entries;
    private readonly HandleLists _stack;     // over slots, top = head
    private readonly HandleLists _queue;     // over handles, oldest = head
    private readonly HandleLists _ghostAge;  // over slots, newest ghost = head
    private readonly HashIndex _ghostIndex;  // key hash -> ghost slot
    private readonly int[] _slotOf;          // handle -> slot in S, or -1
    private readonly int[] _handleOf;        // slot -> resident handle, or -1 (ghost or free)
    private readonly ulong[] _slotHash;      // ghost slot -> key hash
    private readonly int[] _freeSlots;
    private readonly bool[] _isLir;
    private int _freeCount;
    private long _lirWeight;

    private ShareCapacityTracker _share;

    public LirsPolicy(PolicyOptions options)
    {
        EntryWeights.ValidateOptions(options);
        Capacity = options.Capacity;
        // 1 % of the capacity for resident HIR entries, at least one unit (the paper's Lhirs).
        _share = new ShareCapacityTracker(options.Capacity);
        LirTarget = LirTargetFor(options.Capacity);
        _maxHandles = options.MaxHandles;
        _ghostLimit = EntryWeights.GhostSlots(options);
        int slots = _maxHandles + _ghostLimit;
        _entries = new EntryWeights(_maxHandles);
        _stack = new HandleLists(slots, 1);
        _queue = new HandleLists(_maxHandles, 1);
        _ghostAge = new HandleLists(slots, 1);
        _ghostIndex = new HashIndex(_ghostLimit);
        _slotOf = new int[_maxHandles];
        _handleOf = new int[slots];
        _slotHash = new ulong[slots];
        _freeSlots = new int[slots];
        _isLir = new bool[_maxHandles];
        Reset();
    }

    public string Name => "LIRS";
    public long Capacity { get; }
    public int MaxHandles => _maxHandles;
    public int Count => _entries.Count;
    public long Weight => _entries.Total;
    public bool ConcurrentHits => false;

    /// <summary>Llirs: the weight LIR entries may hold (99 % of the capacity; of <see cref="ShareCapacityTracker"/>'s value).</summary>
    internal long LirTarget { get; private set; }

    private static long LirTargetFor(long capacity) => Math.Max(1, capacity - Math.Max(1, capacity / 100));

    /// <summary>Llirs follows the share capacity; a smaller one demotes the bottom LIR entries now.</summary>
    private void ApplyShare()
    {
        LirTarget = LirTargetFor(_share.Value);
        Balance(-1);
    }

    /// <summary>Whether a tracked handle is LIR (for tests).</summary>
    internal bool IsLir(int handle) => _isLir[handle];

    /// <summary>Whether a tracked handle is in the stack S (for tests).</summary>
    internal bool InStack(int handle) => _slotOf[handle] >= 0;

    /// <summary>Whether a key hash is remembered as a non-resident HIR entry (for tests).</summary>
    internal bool IsGhost(ulong keyHash) => _ghostIndex.Find(keyHash) >= 0;

    public void OnHit(int handle, ulong keyHash)
    {
        if (_entries.AcceptHit(handle)) Access(handle);
    }

    public void OnMiss(ulong keyHash) { }

    public void OnAdd(int handle, ulong keyHash, long weight)
    {
        _entries.Add(handle, keyHash, weight);
        if (_share.NoteAdded(_entries.Total, Capacity)) ApplyShare();   // grows only (Balance then demotes only a LIR set over even the larger target)
        int ghost = _ghostIndex.Find(keyHash);
        if (ghost >= 0)
        {
            // A non-resident HIR entry came back while in S: its reuse distance beats the oldest LIR.
            _ghostIndex.Remove(keyHash);
            _ghostAge.Remove(ghost);
            Bind(ghost, handle);
            _stack.MoveToFirst(0, ghost);
            MakeLir(handle);
        }
        else if (_lirWeight + weight <= LirTarget || _lirWeight == 0)
        {
            // Warm-up (or room left by removals): newcomers are LIR until the LIR set is full.
            // With no LIR entry at all the newcomer is LIR whatever its weight: S needs a LIR bottom.
            int slot = AllocSlot();
            Bind(slot, handle);
            _stack.AddFirst(0, slot);
            _isLir[handle] = true;
            _lirWeight += weight;
        }
        else
        {
            int slot = AllocSlot();
            Bind(slot, handle);
            _stack.AddFirst(0, slot);
            _queue.AddLast(0, handle);
        }
    }

    public void OnUpdate(int handle, ulong keyHash, long newWeight)
    {
        long old = _entries.Update(handle, keyHash, newWeight);
        if (_isLir[handle]) _lirWeight += newWeight - old;
        Access(handle);
        Balance(handle);
    }

    public void OnRemove(int handle)
    {
        bool evicted = _entries.CheckRemove(handle);
        long weight = _entries.WeightOf(handle);
        int slot = _slotOf[handle];
        _slotOf[handle] = -1;
        if (_isLir[handle])
        {
            _isLir[handle] = false;
            _lirWeight -= weight;
            bool wasBottom = _stack.Last(0) == slot;
            _stack.Remove(slot);
            FreeSlot(slot);
            if (wasBottom) Prune();
        }
        else
        {
            _queue.Remove(handle);
            if (slot >= 0)
            {
                if (evicted)
                {
                    // Evicted while in S: the slot stays as a non-resident HIR entry.
                    ulong hash = _entries.HashOf(handle);
                    int same = _ghostIndex.Find(hash);
                    if (same >= 0) RemoveGhost(same);   // a 64-bit hash collision: keep one
                    if (_ghostIndex.Count == _ghostLimit) RemoveGhost(_ghostAge.Last(0));
                    _handleOf[slot] = -1;
                    _slotHash[slot] = hash;
                    _ghostIndex.Add(hash, slot);
                    _ghostAge.AddFirst(0, slot);
                }
                else
                {
                    _stack.Remove(slot);   // never the bottom: the bottom is LIR
                    FreeSlot(slot);
                }
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
        int victim = _queue.First(0);
        if (victim >= 0 && victim == newest) victim = _queue.Next(victim);
        if (victim < 0)
        {
            // No resident HIR entry besides the newcomer: the oldest LIR entry goes.
            int bottom = _stack.Last(0);
            victim = bottom >= 0 ? _handleOf[bottom] : -1;
            if (victim == newest) victim = -1;
        }
        if (victim < 0) victim = _entries.Newest;
        Debug.Assert(victim < 0 || _entries.IsTracked(victim), "victim must be tracked");
        _entries.LastVictim = victim;
        return victim;
    }

    public bool ShouldAdmit(ulong candidateKeyHash, long weight) => true;

    public void Clear()
    {
        _entries.Clear();
        _stack.Clear();
        _queue.Clear();
        _ghostAge.Clear();
        _ghostIndex.Clear();
        Reset();
        if (_share.Reset(Capacity)) ApplyShare();
    }

    private void Reset()
    {
        Array.Fill(_slotOf, -1);
        Array.Fill(_handleOf, -1);
        Array.Clear(_isLir);
        _freeCount = _freeSlots.Length;
        for (int i = 0; i < _freeSlots.Length; i++) _freeSlots[i] = _freeSlots.Length - 1 - i;
        _lirWeight = 0;
    }

    private void Access(int handle)
    {
        int slot = _slotOf[handle];
        if (_isLir[handle])
        {
            bool wasBottom = _stack.Last(0) == slot;
            _stack.MoveToFirst(0, slot);
            if (wasBottom) Prune();
        }
        else if (slot >= 0)
        {
            // A resident HIR entry hit while in S becomes LIR.
            _stack.MoveToFirst(0, slot);
            _queue.Remove(handle);
            MakeLir(handle);
        }
        else if (_lirWeight + _entries.WeightOf(handle) <= LirTarget || _lirWeight == 0)
        {
            // Room in the LIR set (after removals): a re-accessed HIR entry takes it.
            slot = AllocSlot();
            Bind(slot, handle);
            _stack.AddFirst(0, slot);
            _queue.Remove(handle);
            _isLir[handle] = true;
            _lirWeight += _entries.WeightOf(handle);
        }
        else
        {
            slot = AllocSlot();
            Bind(slot, handle);
            _stack.AddFirst(0, slot);
            _queue.MoveToLast(0, handle);
        }
    }

    private void MakeLir(int handle)
    {
        _isLir[handle] = true;
        _lirWeight += _entries.WeightOf(handle);
        Balance(handle);
    }

    /// <summary>Demotes the bottom LIR entries to HIR while the LIR set is over its target.</summary>
    private void Balance(int keep)
    {
        while (_lirWeight > LirTarget)
        {
            int bottom = _stack.Last(0);
            int h = _handleOf[bottom];
            Debug.Assert(h >= 0 && _isLir[h], "the bottom of S is LIR");
            if (h == keep) break;
            _isLir[h] = false;
            _lirWeight -= _entries.WeightOf(h);
            _stack.Remove(bottom);
            FreeSlot(bottom);
            _slotOf[h] = -1;
            _queue.AddLast(0, h);
            Prune();
        }
    }

    /// <summary>Removes HIR slots from the bottom of S until a LIR entry is there.</summary>
    private void Prune()
    {
        for (int bottom = _stack.Last(0); bottom >= 0; bottom = _stack.Last(0))
        {
            int h = _handleOf[bottom];
            if (h >= 0 && _isLir[h]) return;
            if (h >= 0)
            {
                _stack.Remove(bottom);
                FreeSlot(bottom);
                _slotOf[h] = -1;   // stays in Q
            }
            else
            {
                RemoveGhost(bottom);
            }
        }
    }

    private void RemoveGhost(int slot)
    {
        _ghostIndex.Remove(_slotHash[slot]);
        _ghostAge.Remove(slot);
        _stack.Remove(slot);
        FreeSlot(slot);
    }

    private void Bind(int slot, int handle)
    {
        _handleOf[slot] = handle;
        _slotOf[handle] = slot;
    }

    private int AllocSlot()
    {
        Debug.Assert(_freeCount > 0, "slot pool exhausted");
        return _freeSlots[--_freeCount];
    }

    private void FreeSlot(int slot)
    {
        _handleOf[slot] = -1;
        _freeSlots[_freeCount++] = slot;
    }

    internal void ValidateInvariants()
    {
        _entries.ValidateInvariants();
        _stack.ValidateInvariants();
        _queue.ValidateInvariants();
        _ghostAge.ValidateInvariants();
        _ghostIndex.ValidateInvariants();
        int bottom = _stack.Last(0);
        if (bottom >= 0 && (_handleOf[bottom] < 0 || !_isLir[_handleOf[bottom]])) throw new InvalidOperationException("the bottom of S is not LIR");
        long lir = 0;
        int lirCount = 0, inStack = 0;
        for (int h = 0; h < _maxHandles; h++)
        {
            if (!_entries.IsTracked(h))
            {
                if (_isLir[h] || _slotOf[h] >= 0 || _queue.IsLinked(h)) throw new InvalidOperationException($"untracked handle {h} still linked");
                continue;
            }
            int s = _slotOf[h];
            if (s >= 0)
            {
                inStack++;
                if (_handleOf[s] != h || !_stack.IsLinked(s)) throw new InvalidOperationException($"slot of {h} is wrong");
            }
            if (_isLir[h])
            {
                lir += _entries.WeightOf(h);
                lirCount++;
                if (s < 0 || _queue.IsLinked(h)) throw new InvalidOperationException($"LIR handle {h} misplaced");
            }
            else if (!_queue.IsLinked(h)) throw new InvalidOperationException($"HIR handle {h} is not in Q");
        }
        if (lir != _lirWeight) throw new InvalidOperationException($"LIR weight {_lirWeight} but sums {lir}");
        if (lirCount > 1 && _lirWeight > LirTarget) throw new InvalidOperationException("LIR set over its target");
        if (inStack + _ghostIndex.Count != _stack.Count(0)) throw new InvalidOperationException("S holds something that is neither resident nor ghost");
        if (_ghostAge.Count(0) != _ghostIndex.Count || _ghostIndex.Count > _ghostLimit) throw new InvalidOperationException("ghost counts disagree");
        if (_freeCount + _stack.Count(0) != _freeSlots.Length) throw new InvalidOperationException("slot pool leak");
    }
}

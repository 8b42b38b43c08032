namespace CacheKit.Policies;

/// <summary>
/// Not recently used: each entry has a referenced bit R (set by a read, without a lock) and a
/// modified bit M (set by an update). The victim is the first entry of the lowest class
/// (R,M) = (0,0) &lt; (0,1) &lt; (1,0) &lt; (1,1) found in a bounded window of
/// <see cref="ScanWindow"/> entries from a rotating hand over the entries in insertion order.
/// R bits age like the operating-system timer: every eviction clears the R bits of the next
/// <see cref="ClearPerEviction"/> entries at a separate cursor, so each bit is cleared once every
/// Count/2 evictions. Unlike CLOCK, passing an entry does not clear its bit.
/// </summary>
/// <remarks>Invariants: every tracked handle is in the single list (insertion order);
/// <c>_hand</c> and <c>_clearCursor</c> are tracked handles, or -1 when nothing is tracked.</remarks>
internal sealed class NruPolicy : IEvictionPolicy
{
    /// <summary>Entries examined per eviction at most: a hard bound on the work.</summary>
    internal const int ScanWindow = 32;

    /// <summary>R bits cleared per eviction (the "timer").</summary>
    internal const int ClearPerEviction = 2;

    private readonly EntryWeights _entries;
    private readonly HandleLists _ring;
    private readonly byte[] _referenced;  // written by lock-free hits
    private readonly byte[] _modified;
    private int _hand = -1;
    private int _clearCursor = -1;

    public NruPolicy(PolicyOptions options)
    {
        EntryWeights.ValidateOptions(options);
        Capacity = options.Capacity;
        _entries = new EntryWeights(options.MaxHandles);
        _ring = new HandleLists(options.MaxHandles, 1);
        _referenced = new byte[options.MaxHandles];
        _modified = new byte[options.MaxHandles];
    }

    public string Name => "NRU";
    public long Capacity { get; }
    public int MaxHandles => _entries.MaxHandles;
    public int Count => _entries.Count;
    public long Weight => _entries.Total;
    public bool ConcurrentHits => true;   // a hit is one byte store

    public void OnHit(int handle, ulong keyHash)
    {
        if (_entries.AcceptHit(handle) && _referenced[handle] == 0) _referenced[handle] = 1;
    }

    public void OnMiss(ulong keyHash) { }

    public void OnAdd(int handle, ulong keyHash, long weight)
    {
        _entries.Add(handle, keyHash, weight);
        _ring.AddLast(0, handle);
        _referenced[handle] = 0;
        _modified[handle] = 0;
        if (_hand < 0) _hand = handle;
        if (_clearCursor < 0) _clearCursor = handle;
    }

    public void OnUpdate(int handle, ulong keyHash, long newWeight)
    {
        _entries.Update(handle, keyHash, newWeight);
        _referenced[handle] = 1;
        _modified[handle] = 1;
    }

    public void OnRemove(int handle)
    {
        _entries.CheckRemove(handle);
        if (_hand == handle) _hand = Step(handle);
        if (_clearCursor == handle) _clearCursor = Step(handle);
        _ring.Remove(handle);
        if (_ring.Count(0) == 0) _hand = _clearCursor = -1;
        _entries.Forget(handle);
    }

    public int SelectVictim()
    {
        int n = _entries.Count;
        if (n == 0)
        {
            _entries.LastVictim = -1;
            return -1;
        }
        int newest = n > 1 ? _entries.Newest : -1;
        int best = -1, bestClass = int.MaxValue;
        int window = Math.Min(n, ScanWindow);
        for (int k = 0, h = _hand; k < window; k++, h = Step(h))
        {
            if (h == newest) continue;
            int cls = (_referenced[h] << 1) | _modified[h];
            if (cls < bestClass)
            {
                best = h;
                bestClass = cls;
                if (cls == 0) break;
            }
        }
        if (best < 0) best = Step(newest);   // the window held only the newcomer (n == 2)
        // The hand rests on the victim; its removal moves the hand on.
        _hand = best;
        for (int k = 0; k < ClearPerEviction && k < n; k++)
        {
            _referenced[_clearCursor] = 0;
            _clearCursor = Step(_clearCursor);
        }
        _entries.LastVictim = best;
        return best;
    }

    public bool ShouldAdmit(ulong candidateKeyHash, long weight) => true;

    public void Clear()
    {
        _entries.Clear();
        _ring.Clear();
        _hand = _clearCursor = -1;
    }

    /// <summary>The next handle around the ring.</summary>
    private int Step(int handle)
    {
        int next = _ring.Next(handle);
        return next >= 0 ? next : _ring.First(0);
    }

    internal void ValidateInvariants()
    {
        _entries.ValidateInvariants();
        _ring.ValidateInvariants();
        if (_ring.Count(0) != _entries.Count) throw new InvalidOperationException("ring and entries disagree");
        bool empty = _entries.Count == 0;
        if (empty ? (_hand != -1 || _clearCursor != -1) : (!_ring.IsLinked(_hand) || !_ring.IsLinked(_clearCursor)))
        {
            throw new InvalidOperationException("hand or cursor off the ring");
        }
    }
}

namespace CacheKit.Policies;

/// <summary>
/// Greedy-Dual-Size-Frequency (Cherkasova, 1998): each entry has priority
/// H = L + frequency × cost / size, with cost 1 and size its weight; the lowest H leaves, and the
/// inflation value L rises to the H of each evicted entry, so old favourites age out. Favours
/// small, popular objects: the policy for byte budgets over mixed sizes (object hit ratio).
/// </summary>
/// <remarks>Invariants: every tracked handle is in the heap keyed by the bit pattern of its
/// non-negative H (which orders like the double) and, for ties, the time of its last access;
/// <c>_inflation</c> never decreases.</remarks>
internal sealed class GdsfPolicy : IEvictionPolicy
{
    private readonly EntryWeights _entries;
    private readonly IndexedHeap _heap;
    private readonly long[] _frequency;
    private double _inflation;
    private long _clock;
    private int _freshNewcomer = -1;   // added and not touched since: re-keyed when L rises

    public GdsfPolicy(PolicyOptions options)
    {
        EntryWeights.ValidateOptions(options);
        Capacity = options.Capacity;
        _entries = new EntryWeights(options.MaxHandles);
        _heap = new IndexedHeap(options.MaxHandles);
        _frequency = new long[options.MaxHandles];
    }

    public string Name => "GDSF";
    public long Capacity { get; }
    public int MaxHandles => _entries.MaxHandles;
    public int Count => _entries.Count;
    public long Weight => _entries.Total;
    public bool ConcurrentHits => false;

    /// <summary>The inflation value L (for tests).</summary>
    internal double Inflation => _inflation;

    /// <summary>The priority H of a tracked handle (for tests).</summary>
    internal double PriorityOf(int handle) => BitConverter.Int64BitsToDouble(_heap.KeyOf(handle));

    public void OnHit(int handle, ulong keyHash)
    {
        if (_entries.AcceptHit(handle)) Touch(handle);
    }

    public void OnMiss(ulong keyHash) { }

    public void OnAdd(int handle, ulong keyHash, long weight)
    {
        _entries.Add(handle, keyHash, weight);
        _frequency[handle] = 1;
        _heap.Insert(handle, Key(handle), ++_clock);
        _freshNewcomer = handle;
    }

    public void OnUpdate(int handle, ulong keyHash, long newWeight)
    {
        _entries.Update(handle, keyHash, newWeight);
        Touch(handle);
    }

    public void OnRemove(int handle)
    {
        bool evicted = _entries.CheckRemove(handle);
        double priority = PriorityOf(handle);
        _heap.Remove(handle);
        if (handle == _freshNewcomer) _freshNewcomer = -1;
        if (evicted && priority > _inflation)
        {
            // An eviction: inflate L to the victim's priority (never backwards). The paper evicts
            // before it inserts, so a newcomer not touched since is priced with the new L.
            _inflation = priority;
            if (_freshNewcomer >= 0) _heap.Update(_freshNewcomer, Key(_freshNewcomer), _heap.TieOf(_freshNewcomer));
        }
        _entries.Forget(handle);
    }

    public int SelectVictim()
    {
        int victim = _heap.Min;
        // The newcomer is shielded: the classical policy evicts before it inserts.
        if (victim >= 0 && victim == _entries.Newest && _entries.Count > 1) victim = _heap.SecondMin;
        _entries.LastVictim = victim;
        return victim;
    }

    public bool ShouldAdmit(ulong candidateKeyHash, long weight) => true;

    public void Clear()
    {
        _entries.Clear();
        _heap.Clear();
        _inflation = 0;
        _freshNewcomer = -1;
    }

    private void Touch(int handle)
    {
        if (handle == _freshNewcomer) _freshNewcomer = -1;
        _frequency[handle]++;
        _heap.Update(handle, Key(handle), ++_clock);
    }

    private long Key(int handle)
    {
        double h = _inflation + (double)_frequency[handle] / _entries.WeightOf(handle);
        return BitConverter.DoubleToInt64Bits(h);
    }

    internal void ValidateInvariants()
    {
        _entries.ValidateInvariants();
        _heap.ValidateInvariants();
        if (_heap.Count != _entries.Count) throw new InvalidOperationException("heap and entries disagree");
        if (_inflation < 0) throw new InvalidOperationException("inflation went negative");
    }
}

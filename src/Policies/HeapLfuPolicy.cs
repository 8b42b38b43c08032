namespace CacheKit.Policies;

/// <summary>
/// Least frequently used over an indexed binary heap keyed by (frequency, last access): the
/// textbook O(log n) LFU, kept beside the O(1) bucket version for comparison.
/// </summary>
/// <remarks>Invariants: every tracked handle is in the heap keyed by its in-cache frequency
/// (1 + reads and updates since it was added) and, for ties, the logical time of its last access.</remarks>
internal sealed class HeapLfuPolicy : IEvictionPolicy
{
    private readonly EntryWeights _entries;
    private readonly IndexedHeap _heap;
    private long _clock;

    public HeapLfuPolicy(PolicyOptions options)
    {
        EntryWeights.ValidateOptions(options);
        Capacity = options.Capacity;
        _entries = new EntryWeights(options.MaxHandles);
        _heap = new IndexedHeap(options.MaxHandles);
    }

    public string Name => "HeapLFU";
    public long Capacity { get; }
    public int MaxHandles => _entries.MaxHandles;
    public int Count => _entries.Count;
    public long Weight => _entries.Total;
    public bool ConcurrentHits => false;

    public void OnHit(int handle, ulong keyHash)
    {
        if (_entries.AcceptHit(handle)) _heap.Update(handle, _heap.KeyOf(handle) + 1, ++_clock);
    }

    public void OnMiss(ulong keyHash) { }

    public void OnAdd(int handle, ulong keyHash, long weight)
    {
        _entries.Add(handle, keyHash, weight);
        _heap.Insert(handle, 1, ++_clock);
    }

    public void OnUpdate(int handle, ulong keyHash, long newWeight)
    {
        _entries.Update(handle, keyHash, newWeight);
        _heap.Update(handle, _heap.KeyOf(handle) + 1, ++_clock);
    }

    public void OnRemove(int handle)
    {
        _entries.CheckRemove(handle);
        _heap.Remove(handle);
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
    }

    internal void ValidateInvariants()
    {
        _entries.ValidateInvariants();
        _heap.ValidateInvariants();
        if (_heap.Count != _entries.Count) throw new InvalidOperationException("heap and entries disagree");
    }
}

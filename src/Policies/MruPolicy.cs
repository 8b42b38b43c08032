namespace CacheKit.Policies;

/// <summary>
/// Most recently used: the entry read or written most recently (other than the newcomer) leaves
/// first. Good for cyclic scans larger than the cache, where the oldest is the next one needed.
/// </summary>
/// <remarks>Invariants: every tracked handle is in the single list in recency order, most recent
/// at the head. A hit moves a node, so hits need the owner's lock.</remarks>
internal sealed class MruPolicy : IEvictionPolicy
{
    private readonly EntryWeights _entries;
    private readonly HandleLists _recency;

    public MruPolicy(PolicyOptions options)
    {
        EntryWeights.ValidateOptions(options);
        Capacity = options.Capacity;
        _entries = new EntryWeights(options.MaxHandles);
        _recency = new HandleLists(options.MaxHandles, 1);
    }

    public string Name => "MRU";
    public long Capacity { get; }
    public int MaxHandles => _entries.MaxHandles;
    public int Count => _entries.Count;
    public long Weight => _entries.Total;
    public bool ConcurrentHits => false;

    public void OnHit(int handle, ulong keyHash)
    {
        if (_entries.AcceptHit(handle)) _recency.MoveToFirst(0, handle);
    }

    public void OnMiss(ulong keyHash) { }

    public void OnAdd(int handle, ulong keyHash, long weight)
    {
        _entries.Add(handle, keyHash, weight);
        _recency.AddFirst(0, handle);
    }

    public void OnUpdate(int handle, ulong keyHash, long newWeight)
    {
        _entries.Update(handle, keyHash, newWeight);
        _recency.MoveToFirst(0, handle);
    }

    public void OnRemove(int handle)
    {
        _entries.CheckRemove(handle);
        _recency.Remove(handle);
        _entries.Forget(handle);
    }

    public int SelectVictim()
    {
        int victim = _recency.First(0);
        // The newcomer is shielded: the classical MRU evicts before it inserts.
        if (victim >= 0 && victim == _entries.Newest && _entries.Count > 1) victim = _recency.Next(victim);
        _entries.LastVictim = victim;
        return victim;
    }

    public bool ShouldAdmit(ulong candidateKeyHash, long weight) => true;

    public void Clear()
    {
        _entries.Clear();
        _recency.Clear();
    }

    internal void ValidateInvariants()
    {
        _entries.ValidateInvariants();
        _recency.ValidateInvariants();
        if (_recency.Count(0) != _entries.Count) throw new InvalidOperationException("list and entries disagree");
    }
}

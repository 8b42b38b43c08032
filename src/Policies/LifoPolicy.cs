namespace CacheKit.Policies;

/// <summary>
/// Last in, first out: the entry stored most recently (before the newcomer) leaves first. Reads
/// change nothing, so hits are free and lock-free.
/// </summary>
/// <remarks>Invariants: every tracked handle is in the single list, newest at the head.</remarks>
internal sealed class LifoPolicy : IEvictionPolicy
{
    private readonly EntryWeights _entries;
    private readonly HandleLists _stack;

    public LifoPolicy(PolicyOptions options)
    {
        EntryWeights.ValidateOptions(options);
        Capacity = options.Capacity;
        _entries = new EntryWeights(options.MaxHandles);
        _stack = new HandleLists(options.MaxHandles, 1);
    }

    public string Name => "LIFO";
    public long Capacity { get; }
    public int MaxHandles => _entries.MaxHandles;
    public int Count => _entries.Count;
    public long Weight => _entries.Total;
    public bool ConcurrentHits => true;   // a hit changes nothing

    public void OnHit(int handle, ulong keyHash) => _entries.AcceptHit(handle);

    public void OnMiss(ulong keyHash) { }

    public void OnAdd(int handle, ulong keyHash, long weight)
    {
        _entries.Add(handle, keyHash, weight);
        _stack.AddFirst(0, handle);
    }

    public void OnUpdate(int handle, ulong keyHash, long newWeight) => _entries.Update(handle, keyHash, newWeight);

    public void OnRemove(int handle)
    {
        _entries.CheckRemove(handle);
        _stack.Remove(handle);
        _entries.Forget(handle);
    }

    public int SelectVictim()
    {
        int victim = _stack.First(0);
        // The newcomer is shielded: the classical LIFO evicts before it inserts.
        if (victim >= 0 && victim == _entries.Newest && _entries.Count > 1) victim = _stack.Next(victim);
        _entries.LastVictim = victim;
        return victim;
    }

    public bool ShouldAdmit(ulong candidateKeyHash, long weight) => true;

    public void Clear()
    {
        _entries.Clear();
        _stack.Clear();
    }

    internal void ValidateInvariants()
    {
        _entries.ValidateInvariants();
        _stack.ValidateInvariants();
        if (_stack.Count(0) != _entries.Count) throw new InvalidOperationException("stack and entries disagree");
    }
}

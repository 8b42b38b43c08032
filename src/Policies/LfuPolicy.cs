namespace CacheKit.Policies;

/// <summary>
/// Least frequently used with O(1) frequency buckets (Shah, Mitra and Matani): the entry with the
/// fewest reads since it was stored leaves first, the least recently touched among equals.
/// With <c>evictMostFrequent</c> it is MFU: the entry with the most reads leaves first (the least
/// recently touched among equals), on the idea that a much-read entry has had its turn.
/// </summary>
/// <remarks>Invariants: every tracked handle is in exactly one frequency bucket; its frequency is
/// 1 plus its reads and updates since it was added (in-cache frequency: history is not kept after
/// eviction). Hits move nodes between buckets, so they need the owner's lock.</remarks>
internal sealed class LfuPolicy : IEvictionPolicy
{
    private readonly EntryWeights _entries;
    private readonly FrequencyBuckets _buckets;
    private readonly bool _evictMostFrequent;

    public LfuPolicy(PolicyOptions options, bool evictMostFrequent = false)
    {
        _evictMostFrequent = evictMostFrequent;
        EntryWeights.ValidateOptions(options);
        Capacity = options.Capacity;
        _entries = new EntryWeights(options.MaxHandles);
        _buckets = new FrequencyBuckets(options.MaxHandles);
    }

    public string Name => _evictMostFrequent ? "MFU" : "LFU";
    public long Capacity { get; }
    public int MaxHandles => _entries.MaxHandles;
    public int Count => _entries.Count;
    public long Weight => _entries.Total;
    public bool ConcurrentHits => false;

    /// <summary>The frequency of a tracked handle (for tests).</summary>
    internal long FrequencyOf(int handle) => _buckets.FrequencyOf(handle);

    public void OnHit(int handle, ulong keyHash)
    {
        if (_entries.AcceptHit(handle)) _buckets.Increment(handle);
    }

    public void OnMiss(ulong keyHash) { }

    public void OnAdd(int handle, ulong keyHash, long weight)
    {
        _entries.Add(handle, keyHash, weight);
        _buckets.Add(handle, 1);
    }

    public void OnUpdate(int handle, ulong keyHash, long newWeight)
    {
        _entries.Update(handle, keyHash, newWeight);
        _buckets.Increment(handle);
    }

    public void OnRemove(int handle)
    {
        _entries.CheckRemove(handle);
        _buckets.Remove(handle);
        _entries.Forget(handle);
    }

    public int SelectVictim()
    {
        int victim = _evictMostFrequent ? _buckets.MostFrequent : _buckets.LeastFrequent;
        // The newcomer is shielded: the classical policy evicts before it inserts.
        if (victim >= 0 && victim == _entries.Newest && _entries.Count > 1)
        {
            victim = _evictMostFrequent ? _buckets.NextForMfu(victim) : _buckets.NextForLfu(victim);
        }
        _entries.LastVictim = victim;
        return victim;
    }

    public bool ShouldAdmit(ulong candidateKeyHash, long weight) => true;

    public void Clear()
    {
        _entries.Clear();
        _buckets.Clear();
    }

    internal void ValidateInvariants()
    {
        _entries.ValidateInvariants();
        _buckets.ValidateInvariants(_entries.Count);
    }
}

namespace CacheKit.Policies;

/// <summary>
/// LRU-K (O'Neil, O'Neil and Weikum, SIGMOD 1993): the victim is the entry whose K-th most recent
/// access is oldest (largest backward K-distance). Entries seen fewer than K times have an
/// infinite distance and go first, least recently used first (the paper's subsidiary policy).
/// The access times of evicted keys are retained (the paper's HIST) in a ghost history keyed by
/// hash, bounded by the capacity, so a key that returns soon keeps its history.
/// </summary>
/// <remarks>
/// <para>Structure: entries with K accesses sit in an indexed min-heap keyed by their K-th most
/// recent access time (O(log n)); entries with fewer sit in an LRU list (O(1)). The correlated
/// reference period of the paper is not modelled: every access counts.</para>
/// <para>Invariants: <c>_times[h*K .. h*K+K)</c> holds a tracked handle's last K access times,
/// newest first, 0 for none; a handle is in the heap exactly when its K-th time is set, else in
/// the list. Hits move nodes, so they need the owner's lock.</para>
/// </remarks>
internal sealed class LruKPolicy : IEvictionPolicy
{
    /// <summary>The largest K accepted.</summary>
    internal const int MaxK = 16;

    private readonly int _k;
    private readonly EntryWeights _entries;
    private readonly HandleLists _young;      // fewer than K accesses, most recent at the head
    private readonly IndexedHeap _heap;       // K accesses, keyed by the K-th most recent time
    private readonly long[] _times;
    private readonly GhostHistory _history;
    private readonly long[] _historyTimes;
    private long _clock;

    public LruKPolicy(PolicyOptions options)
    {
        EntryWeights.ValidateOptions(options);
        if (options.K < 1 || options.K > MaxK)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.K, $"K must be in [1, {MaxK}].");
        }
        if ((long)options.MaxHandles * options.K > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxHandles, $"MaxHandles × K must be at most {Array.MaxLength}.");
        }
        _k = options.K;
        Capacity = options.Capacity;
        _entries = new EntryWeights(options.MaxHandles);
        _young = new HandleLists(options.MaxHandles, 1);
        _heap = new IndexedHeap(options.MaxHandles);
        _times = new long[(long)options.MaxHandles * _k];
        int slots = EntryWeights.GhostSlots(options);
        _history = new GhostHistory(slots, 1);
        _historyTimes = new long[(long)slots * _k];
    }

    public string Name => _k == 2 ? "LRU-2" : $"LRU-{_k}";
    public long Capacity { get; }
    public int MaxHandles => _entries.MaxHandles;
    public int Count => _entries.Count;
    public long Weight => _entries.Total;
    public bool ConcurrentHits => false;

    /// <summary>The K-th most recent access time of a tracked handle, 0 when it has fewer than K (for tests).</summary>
    internal long KthTime(int handle) => _times[handle * _k + _k - 1];

    public void OnHit(int handle, ulong keyHash)
    {
        if (_entries.AcceptHit(handle)) Access(handle, isNew: false);
    }

    public void OnMiss(ulong keyHash) { }

    public void OnAdd(int handle, ulong keyHash, long weight)
    {
        _entries.Add(handle, keyHash, weight);
        Span<long> times = _times.AsSpan(handle * _k, _k);
        int slot = _history.Find(keyHash);
        if (slot >= 0)
        {
            _historyTimes.AsSpan(slot * _k, _k).CopyTo(times);
            _history.Remove(slot);
        }
        else
        {
            times.Clear();
        }
        Access(handle, isNew: true);
    }

    public void OnUpdate(int handle, ulong keyHash, long newWeight)
    {
        _entries.Update(handle, keyHash, newWeight);
        Access(handle, isNew: false);
    }

    public void OnRemove(int handle)
    {
        bool evicted = _entries.CheckRemove(handle);
        if (_heap.Contains(handle)) _heap.Remove(handle); else _young.Remove(handle);
        if (evicted)
        {
            int slot = _history.Add(0, _entries.HashOf(handle), 1, 0);
            _times.AsSpan(handle * _k, _k).CopyTo(_historyTimes.AsSpan(slot * _k, _k));
        }
        _entries.Forget(handle);
    }

    public int SelectVictim()
    {
        int newest = _entries.Count > 1 ? _entries.Newest : -1;
        int victim = _young.Last(0);
        if (victim >= 0 && victim == newest) victim = _young.Previous(victim);
        if (victim < 0)
        {
            victim = _heap.Min;
            if (victim >= 0 && victim == newest) victim = _heap.SecondMin;
        }
        if (victim < 0) victim = _entries.Newest;
        _entries.LastVictim = victim;
        return victim;
    }

    public bool ShouldAdmit(ulong candidateKeyHash, long weight) => true;

    public void Clear()
    {
        _entries.Clear();
        _young.Clear();
        _heap.Clear();
        _history.Clear();
    }

    private void Access(int handle, bool isNew)
    {
        Span<long> times = _times.AsSpan(handle * _k, _k);
        for (int i = _k - 1; i > 0; i--) times[i] = times[i - 1];
        times[0] = ++_clock;
        long kth = times[_k - 1];
        if (kth == 0)
        {
            if (isNew) _young.AddFirst(0, handle); else _young.MoveToFirst(0, handle);
        }
        else if (_heap.Contains(handle))
        {
            _heap.Update(handle, kth, times[0]);
        }
        else
        {
            if (!isNew) _young.Remove(handle);
            _heap.Insert(handle, kth, times[0]);
        }
    }

    internal void ValidateInvariants()
    {
        _entries.ValidateInvariants();
        _young.ValidateInvariants();
        _heap.ValidateInvariants();
        _history.ValidateInvariants();
        if (_young.Count(0) + _heap.Count != _entries.Count) throw new InvalidOperationException("young list and heap disagree with entries");
        for (int h = _young.First(0); h >= 0; h = _young.Next(h))
        {
            if (KthTime(h) != 0) throw new InvalidOperationException($"handle {h} has K accesses but is in the young list");
        }
    }
}

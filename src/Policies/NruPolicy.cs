namespace CacheKit.Policies;

/// <summary>
/// Not recently used: each entry has a referenced bit R (set by a read, without a lock) and a
/// modified bit M (set by an update). The victim is the first entry of the lowest class
/// (R,M) = (0,0) &lt; (0,1) &lt; (1,0) &lt; (1,1) found in a bounded window of
/// <see cref="ScanWindow"/> entries from a rotating hand. R bits age like the operating-system
/// timer: every eviction clears the R bits of the next <see cref="ClearPerEviction"/> entries at a
/// separate cursor, so each bit is cleared once every Count/2 evictions.
/// </summary>
/// <remarks>Invariants: <c>_dense[0.._count)</c> holds each tracked handle once and
/// <c>_pos[_dense[i]] == i</c>; <c>_hand</c> and <c>_clearCursor</c> are below Count (0 when empty).</remarks>
internal sealed class NruPolicy : IEvictionPolicy
{
    /// <summary>Entries examined per eviction at most: a hard bound on the work.</summary>
    internal const int ScanWindow = 32;

    /// <summary>R bits cleared per eviction (the "timer").</summary>
    internal const int ClearPerEviction = 2;

    private readonly EntryWeights _entries;
    private readonly int[] _dense;
    private readonly int[] _pos;
    private readonly byte[] _referenced;  // written by lock-free hits
    private readonly byte[] _modified;
    private int _hand;
    private int _clearCursor;

    public NruPolicy(PolicyOptions options)
    {
        EntryWeights.ValidateOptions(options);
        Capacity = options.Capacity;
        _entries = new EntryWeights(options.MaxHandles);
        _dense = new int[options.MaxHandles];
        _pos = new int[options.MaxHandles];
        _referenced = new byte[options.MaxHandles];
        _modified = new byte[options.MaxHandles];
        Array.Fill(_pos, -1);
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
        int i = _entries.Count - 1;
        _dense[i] = handle;
        _pos[handle] = i;
        _referenced[handle] = 0;
        _modified[handle] = 0;
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
        int i = _pos[handle];
        int last = _entries.Count - 1;
        int moved = _dense[last];
        _dense[i] = moved;
        _pos[moved] = i;
        _pos[handle] = -1;
        _entries.Forget(handle);
        int n = _entries.Count;
        if (_hand >= n) _hand = 0;
        if (_clearCursor >= n) _clearCursor = 0;
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
        int best = -1, bestClass = int.MaxValue, bestAt = 0;
        int window = Math.Min(n, ScanWindow);
        for (int k = 0, i = _hand; k < window; k++, i = i + 1 == n ? 0 : i + 1)
        {
            int h = _dense[i];
            if (h == newest) continue;
            int cls = (_referenced[h] << 1) | _modified[h];
            if (cls < bestClass)
            {
                best = h;
                bestClass = cls;
                bestAt = i;
                if (cls == 0) break;
            }
        }
        if (best < 0)
        {
            // Only the newcomer was in the window (n == 2 and it came first): take the other.
            bestAt = _hand + 1 == n ? 0 : _hand + 1;
            best = _dense[bestAt];
        }
        // The slot of the victim is refilled by swap-remove, so the hand stays there.
        _hand = bestAt;
        for (int k = 0; k < ClearPerEviction && k < n; k++)
        {
            _referenced[_dense[_clearCursor]] = 0;
            _clearCursor = _clearCursor + 1 == n ? 0 : _clearCursor + 1;
        }
        _entries.LastVictim = best;
        return best;
    }

    public bool ShouldAdmit(ulong candidateKeyHash, long weight) => true;

    public void Clear()
    {
        for (int i = 0; i < _entries.Count; i++) _pos[_dense[i]] = -1;
        _entries.Clear();
        _hand = 0;
        _clearCursor = 0;
    }

    internal void ValidateInvariants()
    {
        _entries.ValidateInvariants();
        int n = _entries.Count;
        for (int i = 0; i < n; i++)
        {
            if (_pos[_dense[i]] != i || !_entries.IsTracked(_dense[i])) throw new InvalidOperationException($"dense slot {i} is wrong");
        }
        if ((n > 0 && (_hand >= n || _clearCursor >= n)) || (n == 0 && (_hand != 0 || _clearCursor != 0)))
        {
            throw new InvalidOperationException("hand out of range");
        }
    }
}

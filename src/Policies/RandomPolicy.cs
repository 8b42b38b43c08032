using System.Diagnostics;

namespace CacheKit.Policies;

/// <summary>
/// Uniformly random victim, seeded by <see cref="PolicyOptions.Seed"/> so runs repeat. The
/// tracked handles sit in a dense array (swap-remove), so choosing is O(1). Hits change nothing.
/// </summary>
/// <remarks>Invariants: <c>_dense[0.._count)</c> holds each tracked handle once and
/// <c>_pos[_dense[i]] == i</c>; <c>_pos[h] == -1</c> for untracked handles.</remarks>
internal sealed class RandomPolicy : IEvictionPolicy
{
    private readonly EntryWeights _entries;
    private readonly int[] _dense;
    private readonly int[] _pos;
    private readonly ulong _seedState;
    private ulong _rng;   // xorshift64* state, never 0

    public RandomPolicy(PolicyOptions options)
    {
        EntryWeights.ValidateOptions(options);
        Capacity = options.Capacity;
        _entries = new EntryWeights(options.MaxHandles);
        _dense = new int[options.MaxHandles];
        _pos = new int[options.MaxHandles];
        Array.Fill(_pos, -1);
        _seedState = SplitMix((ulong)(uint)options.Seed) | 1;
        _rng = _seedState;
    }

    public string Name => "Random";
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
        int i = _entries.Count - 1;
        _dense[i] = handle;
        _pos[handle] = i;
    }

    public void OnUpdate(int handle, ulong keyHash, long newWeight) => _entries.Update(handle, keyHash, newWeight);

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
    }

    public int SelectVictim()
    {
        int n = _entries.Count;
        if (n == 0)
        {
            _entries.LastVictim = -1;
            return -1;
        }
        int newest = _entries.Newest;
        int victim;
        if (n > 1 && newest >= 0)
        {
            // Draw among the others: the classical policy evicts before inserting the newcomer.
            int i = Draw(n - 1);
            if (i >= _pos[newest]) i++;
            victim = _dense[i];
        }
        else
        {
            victim = _dense[Draw(n)];
        }
        Debug.Assert(_entries.IsTracked(victim), "victim must be tracked");
        _entries.LastVictim = victim;
        return victim;
    }

    public bool ShouldAdmit(ulong candidateKeyHash, long weight) => true;

    public void Clear()
    {
        for (int i = 0; i < _entries.Count; i++) _pos[_dense[i]] = -1;
        _entries.Clear();
        _rng = _seedState;
    }

    private int Draw(int bound)
    {
        _rng ^= _rng >> 12;
        _rng ^= _rng << 25;
        _rng ^= _rng >> 27;
        ulong r = _rng * 0x2545F4914F6CDD1DUL;
        return (int)(((r >> 32) * (ulong)bound) >> 32);
    }

    private static ulong SplitMix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    internal void ValidateInvariants()
    {
        _entries.ValidateInvariants();
        for (int i = 0; i < _entries.Count; i++)
        {
            if (_pos[_dense[i]] != i || !_entries.IsTracked(_dense[i])) throw new InvalidOperationException($"dense slot {i} is wrong");
        }
        int positioned = 0;
        foreach (int p in _pos) if (p >= 0) positioned++;
        if (positioned != _entries.Count) throw new InvalidOperationException("positions and count disagree");
    }
}

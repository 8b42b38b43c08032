using System.Diagnostics;

namespace CacheKit.Policies;

/// <summary>
/// Non-resident history ("ghosts") keyed by 64-bit key hash, in fixed-size structures allocated
/// once: a <see cref="HashIndex"/> from hash to slot, and <see cref="HandleLists"/> threaded over
/// the slots so a policy can keep several ordered ghost lists (ARC's B1 and B2, 2Q's A1out).
/// </summary>
/// <remarks>Invariants: a slot is either free (on the free stack, in no list, not indexed) or used
/// (in exactly one list and indexed by its hash); list weights are the sums of their slots'
/// weights. New ghosts go to the head of a list, so <see cref="Oldest"/> is the tail.</remarks>
internal sealed class GhostHistory
{
    private readonly HashIndex _index;
    private readonly HandleLists _lists;
    private readonly ulong[] _hash;
    private readonly long[] _weight;
    private readonly long[] _listWeight;
    private readonly int[] _free;     // stack of free slots
    private int _freeCount;

    public GhostHistory(int slots, int listCount)
    {
        _index = new HashIndex(slots);
        _lists = new HandleLists(slots, listCount);
        _hash = new ulong[slots];
        _weight = new long[slots];
        _listWeight = new long[listCount];
        _free = new int[slots];
        Clear();
    }

    public int Slots => _hash.Length;

    public int Used => _hash.Length - _freeCount;

    public bool IsFull => _freeCount == 0;

    public long FootprintBytes => _index.FootprintBytes + _lists.FootprintBytes + _hash.Length * (sizeof(ulong) + sizeof(long) + sizeof(int));

    public int Count(int list) => _lists.Count(list);

    public long Weight(int list) => _listWeight[list];

    /// <summary>The slot holding <paramref name="keyHash"/>, or -1.</summary>
    public int Find(ulong keyHash) => _index.Find(keyHash);

    public int ListOf(int slot) => _lists.ListOf(slot);

    public long WeightOf(int slot) => _weight[slot];

    public ulong HashOf(int slot) => _hash[slot];

    /// <summary>The oldest ghost of <paramref name="list"/>, or -1.</summary>
    public int Oldest(int list) => _lists.Last(list);

    /// <summary>Records a ghost at the head of <paramref name="list"/>. When every slot is used the
    /// oldest ghost of <paramref name="overflowList"/> (or of any non-empty list) is dropped first.
    /// A hash already present is moved instead. Returns the slot.</summary>
    public int Add(int list, ulong keyHash, long weight, int overflowList)
    {
        int existing = _index.Find(keyHash);
        if (existing >= 0) Remove(existing);
        if (_freeCount == 0)
        {
            int victim = _lists.Last(overflowList);
            for (int l = 0; victim < 0 && l < _listWeight.Length; l++) victim = _lists.Last(l);
            Remove(victim);
        }
        int slot = _free[--_freeCount];
        _hash[slot] = keyHash;
        _weight[slot] = weight;
        _listWeight[list] += weight;
        _lists.AddFirst(list, slot);
        _index.Add(keyHash, slot);
        return slot;
    }

    /// <summary>Drops a used slot.</summary>
    public void Remove(int slot)
    {
        Debug.Assert(_lists.IsLinked(slot), "removing a free ghost slot");
        _listWeight[_lists.ListOf(slot)] -= _weight[slot];
        _lists.Remove(slot);
        _index.Remove(_hash[slot]);
        _free[_freeCount++] = slot;
    }

    /// <summary>Drops the oldest ghost of <paramref name="list"/>; returns false when it is empty.</summary>
    public bool RemoveOldest(int list)
    {
        int slot = _lists.Last(list);
        if (slot < 0) return false;
        Remove(slot);
        return true;
    }

    public void Clear()
    {
        _index.Clear();
        _lists.Clear();
        Array.Clear(_listWeight);
        _freeCount = _free.Length;
        for (int i = 0; i < _free.Length; i++) _free[i] = _free.Length - 1 - i;
    }

    public void ValidateInvariants()
    {
        _index.ValidateInvariants();
        _lists.ValidateInvariants();
        long[] sums = new long[_listWeight.Length];
        int used = 0;
        for (int s = 0; s < _hash.Length; s++)
        {
            if (!_lists.IsLinked(s)) continue;
            used++;
            sums[_lists.ListOf(s)] += _weight[s];
            if (_index.Find(_hash[s]) != s) throw new InvalidOperationException($"ghost slot {s} is not indexed");
        }
        if (used != Used || _index.Count != used) throw new InvalidOperationException("ghost slot counts disagree");
        for (int l = 0; l < sums.Length; l++)
        {
            if (sums[l] != _listWeight[l]) throw new InvalidOperationException($"ghost list {l} weight {_listWeight[l]} but sums {sums[l]}");
        }
    }
}

using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace CacheKit.Policies;

/// <summary>
/// A fixed-capacity open-addressing map from a 64-bit key hash to a small non-negative integer
/// (a ghost slot), allocated once: linear probing, deletion by backward shift (no tombstones), so
/// every operation is O(1) expected and the table never degrades.
/// </summary>
/// <remarks>Invariants: the table has at least 1.5 times as many buckets as <see cref="Capacity"/>
/// (load at most 2/3; with power-of-two rounding, usually less); every stored key is reachable from its home bucket without crossing an
/// empty bucket; <c>_values[i] == 0</c> marks an empty bucket, else it holds value + 1.</remarks>
internal sealed class HashIndex
{
    private readonly ulong[] _keys;
    private readonly int[] _values;  // value + 1; 0 = empty
    private readonly int _mask;
    private readonly int _shift;

    public HashIndex(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        // 1.5x, not 2x, before rounding: the window shadows' 2,049 handles took 8,192 buckets (48 bytes per
        // shadow entry, 2.8 MB over 8 shards' shadows), now 4,096. Nothing iterates the buckets, so the
        // bucket count changes no answer, only probe lengths.
        int buckets = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(4, capacity + ((capacity + 1) / 2)));
        _keys = new ulong[buckets];
        _values = new int[buckets];
        _mask = buckets - 1;
        _shift = 64 - BitOperations.Log2((uint)buckets);
        Capacity = capacity;
    }

    public int Capacity { get; }

    public int Count { get; private set; }

    public long FootprintBytes => _keys.Length * (sizeof(ulong) + sizeof(int));

    /// <summary>The value stored for <paramref name="key"/>, or -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Find(ulong key)
    {
        for (int i = Home(key); ; i = (i + 1) & _mask)
        {
            int v = _values[i];
            if (v == 0) return -1;
            if (_keys[i] == key) return v - 1;
        }
    }

    /// <summary>Stores a key that is not present. The caller keeps <see cref="Count"/> below <see cref="Capacity"/>.</summary>
    public void Add(ulong key, int value)
    {
        Debug.Assert(Count < Capacity, "hash index full");
        Debug.Assert(value >= 0, "values are non-negative");
        Debug.Assert(Find(key) < 0, "key already present");
        int i = Home(key);
        while (_values[i] != 0) i = (i + 1) & _mask;
        _keys[i] = key;
        _values[i] = value + 1;
        Count++;
    }

    /// <summary>Removes <paramref name="key"/> if present; returns whether it was.</summary>
    public bool Remove(ulong key)
    {
        int i = Home(key);
        while (true)
        {
            if (_values[i] == 0) return false;
            if (_keys[i] == key) break;
            i = (i + 1) & _mask;
        }
        // Backward shift: pull later members of the probe run into the hole when their home
        // bucket does not lie (cyclically) strictly between the hole and their position.
        int hole = i;
        for (int j = (hole + 1) & _mask; _values[j] != 0; j = (j + 1) & _mask)
        {
            int home = Home(_keys[j]);
            bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
            if (movable)
            {
                _keys[hole] = _keys[j];
                _values[hole] = _values[j];
                hole = j;
            }
        }
        _values[hole] = 0;
        _keys[hole] = 0;
        Count--;
        return true;
    }

    public void Clear()
    {
        Array.Clear(_values);
        Array.Clear(_keys);
        Count = 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Home(ulong key) => (int)((key * 0x9E3779B97F4A7C15UL) >> _shift);

    public void ValidateInvariants()
    {
        int n = 0;
        for (int i = 0; i < _values.Length; i++)
        {
            if (_values[i] == 0) continue;
            n++;
            // Every bucket from home to i must be occupied.
            for (int k = Home(_keys[i]); k != i; k = (k + 1) & _mask)
            {
                if (_values[k] == 0) throw new InvalidOperationException($"key at bucket {i} unreachable from its home");
            }
        }
        if (n != Count) throw new InvalidOperationException($"hash index holds {n} keys but counts {Count}");
    }
}

using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace CacheKit.Policies;

/// <summary>
/// A binary min-heap of handles ordered by (key, tie), with the position of each handle kept so
/// any member can be re-keyed or removed in O(log n). Arrays are allocated once.
/// </summary>
/// <remarks>Invariants: <c>_pos[_heap[i]] == i</c> for every i below <see cref="Count"/>;
/// <c>_pos[h] == -1</c> for handles not in the heap; every parent orders at or below its children.</remarks>
internal sealed class IndexedHeap
{
    private readonly int[] _heap;
    private readonly int[] _pos;
    private readonly long[] _key;
    private readonly long[] _tie;

    public IndexedHeap(int maxHandles)
    {
        _heap = new int[maxHandles];
        _pos = new int[maxHandles];
        _key = new long[maxHandles];
        _tie = new long[maxHandles];
        Array.Fill(_pos, -1);
    }

    public int Count { get; private set; }

    public long FootprintBytes => _heap.Length * (2L * sizeof(int) + 2L * sizeof(long));

    public bool Contains(int handle) => _pos[handle] >= 0;

    public long KeyOf(int handle) => _key[handle];

    public long TieOf(int handle) => _tie[handle];

    /// <summary>The minimum, or -1 when empty.</summary>
    public int Min => Count > 0 ? _heap[0] : -1;

    /// <summary>The smallest member other than the root (the smaller child of the root), or -1.</summary>
    public int SecondMin
    {
        get
        {
            if (Count < 2) return -1;
            if (Count == 2) return _heap[1];
            return Less(_heap[1], _heap[2]) ? _heap[1] : _heap[2];
        }
    }

    public void Insert(int handle, long key, long tie)
    {
        Debug.Assert(_pos[handle] < 0, "handle already in heap");
        _key[handle] = key;
        _tie[handle] = tie;
        int i = Count++;
        _heap[i] = handle;
        _pos[handle] = i;
        SiftUp(i);
    }

    public void Update(int handle, long key, long tie)
    {
        int i = _pos[handle];
        Debug.Assert(i >= 0, "handle not in heap");
        _key[handle] = key;
        _tie[handle] = tie;
        SiftUp(i);
        SiftDown(_pos[handle]);
    }

    public void Remove(int handle)
    {
        int i = _pos[handle];
        Debug.Assert(i >= 0, "handle not in heap");
        int last = --Count;
        _pos[handle] = -1;
        if (i == last) return;
        int moved = _heap[last];
        _heap[i] = moved;
        _pos[moved] = i;
        SiftUp(i);
        SiftDown(_pos[moved]);
    }

    public void Clear()
    {
        for (int i = 0; i < Count; i++) _pos[_heap[i]] = -1;
        Count = 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Less(int a, int b) => _key[a] < _key[b] || (_key[a] == _key[b] && _tie[a] < _tie[b]);

    private void SiftUp(int i)
    {
        int h = _heap[i];
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            int p = _heap[parent];
            if (!Less(h, p)) break;
            _heap[i] = p;
            _pos[p] = i;
            i = parent;
        }
        _heap[i] = h;
        _pos[h] = i;
    }

    private void SiftDown(int i)
    {
        int h = _heap[i];
        int n = Count;
        while (true)
        {
            int c = 2 * i + 1;
            if (c >= n) break;
            if (c + 1 < n && Less(_heap[c + 1], _heap[c])) c++;
            int ch = _heap[c];
            if (!Less(ch, h)) break;
            _heap[i] = ch;
            _pos[ch] = i;
            i = c;
        }
        _heap[i] = h;
        _pos[h] = i;
    }

    public void ValidateInvariants()
    {
        int inHeap = 0;
        foreach (int p in _pos) if (p >= 0) inHeap++;
        if (inHeap != Count) throw new InvalidOperationException($"heap has {Count} members but {inHeap} positions");
        for (int i = 0; i < Count; i++)
        {
            if (_pos[_heap[i]] != i) throw new InvalidOperationException($"heap position of {_heap[i]} is wrong");
            if (i > 0 && Less(_heap[i], _heap[(i - 1) >> 1])) throw new InvalidOperationException($"heap order broken at {i}");
        }
    }
}

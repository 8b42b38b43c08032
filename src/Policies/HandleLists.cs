using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CacheKit.Policies;

/// <summary>
/// Several intrusive doubly linked lists threaded through one array of (next, previous) pairs indexed by handle:
/// the building block of every list-ordered policy (LRU, SLRU, 2Q, ARC, S3-FIFO, ...).
/// </summary>
/// <remarks>
/// <para>Layout: nodes <c>[0, maxHandles)</c> are entries; nodes <c>[maxHandles, maxHandles + listCount)</c>
/// are one sentinel per list, so every list is circular and no operation branches on "empty".</para>
/// <para>Invariants: a handle is in at most one list (<see cref="ListOf"/> is -1 when it is in none);
/// <c>next[prev[n]] == n</c> and <c>prev[next[n]] == n</c> for every linked node; counts equal the
/// number of handles linked. Every operation is O(1) and allocates nothing. Not thread-safe.</para>
/// </remarks>
internal sealed class HandleLists
{
    private readonly Link[] _links;   // next and previous of each node side by side: one cache line per node
    private readonly sbyte[] _list;   // list id per handle, -1 when unlinked
    private readonly int[] _counts;
    private readonly int _maxHandles;

    /// <summary>Creates <paramref name="listCount"/> empty lists over handles in [0, maxHandles).</summary>
    public HandleLists(int maxHandles, int listCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxHandles);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(listCount);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(listCount, sbyte.MaxValue);
        _maxHandles = maxHandles;
        _links = new Link[maxHandles + listCount];
        _list = new sbyte[maxHandles];
        _counts = new int[listCount];
        Array.Fill(_list, (sbyte)-1);
        for (int l = 0; l < listCount; l++)
        {
            int s = maxHandles + l;
            _links[s].Next = s;
            _links[s].Prev = s;
        }
    }

    /// <summary>Bytes of managed memory these arrays hold (for reporting per-entry cost).</summary>
    public long FootprintBytes => (long)_links.Length * 2 * sizeof(int) + _list.Length + _counts.Length * sizeof(int);

    /// <summary>Number of handles in list <paramref name="list"/>.</summary>
    public int Count(int list) => _counts[list];

    /// <summary>The list holding <paramref name="handle"/>, or -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int ListOf(int handle) => _list[handle];

    /// <summary>Whether <paramref name="handle"/> is linked in any list.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsLinked(int handle) => _list[handle] >= 0;

    /// <summary>The head (most recently inserted at the front) of <paramref name="list"/>, or -1.</summary>
    public int First(int list)
    {
        int n = _links[_maxHandles + list].Next;
        return n >= _maxHandles ? -1 : n;
    }

    /// <summary>The tail of <paramref name="list"/>, or -1.</summary>
    public int Last(int list)
    {
        int n = _links[_maxHandles + list].Prev;
        return n >= _maxHandles ? -1 : n;
    }

    /// <summary>The node after <paramref name="handle"/> towards the tail, or -1 at the tail.</summary>
    public int Next(int handle)
    {
        int n = _links[handle].Next;
        return n >= _maxHandles ? -1 : n;
    }

    /// <summary>The node before <paramref name="handle"/> towards the head, or -1 at the head.</summary>
    public int Previous(int handle)
    {
        int n = _links[handle].Prev;
        return n >= _maxHandles ? -1 : n;
    }

    /// <summary>Prefetch hint: the node's own words (list id, next, previous). Ignores a handle out of range.</summary>
    public void PrefetchNode(int handle)
    {
        if ((uint)handle < (uint)_maxHandles)
        {
            MemoryPrefetch.Element(_list, handle);
            MemoryPrefetch.Element(_links, handle);
        }
    }

    /// <summary>
    /// Prefetch hint: the words an unlink of <paramref name="handle"/> writes in its neighbours
    /// (<c>next[prev]</c> and <c>prev[next]</c>). Reads the node's own links, so call it after
    /// <see cref="PrefetchNode"/> has had time to bring them in. Ignores a handle out of range or unlinked.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PrefetchNeighbours(int handle)
    {
        if ((uint)handle < (uint)_maxHandles && _list[handle] >= 0)
        {
            // SAFETY: handle < _maxHandles <= _links.Length (checked above), and the Next/Prev of a linked
            // node are node indices (the ring invariant), so all three references are inside _links.
            ref Link links = ref MemoryMarshal.GetArrayDataReference(_links);
            ref Link node = ref Unsafe.Add(ref links, handle);
            MemoryPrefetch.At(ref Unsafe.Add(ref links, node.Prev));
            MemoryPrefetch.At(ref Unsafe.Add(ref links, node.Next));
        }
    }

    /// <summary>Links an unlinked handle at the head of <paramref name="list"/>.</summary>
    public void AddFirst(int list, int handle) => InsertAfter(list, _maxHandles + list, handle);

    /// <summary>Links an unlinked handle at the tail of <paramref name="list"/>.</summary>
    public void AddLast(int list, int handle) => InsertAfter(list, _links[_maxHandles + list].Prev, handle);

    /// <summary>Unlinks a linked handle from whatever list holds it.</summary>
    public void Remove(int handle)
    {
        int list = _list[handle];
        Debug.Assert(list >= 0, "handle is not linked");
        int p = _links[handle].Prev, n = _links[handle].Next;
        _links[p].Next = n;
        _links[n].Prev = p;
        _list[handle] = -1;
        _counts[list]--;
    }

    /// <summary>Moves a linked handle to the head of <paramref name="list"/> (possibly another list).</summary>
    /// <remarks>One pass (the same links as <see cref="Remove"/> then <see cref="AddFirst"/>): nothing to do for
    /// the head of its own list, and the list id and counts change only when the list does.</remarks>
    public void MoveToFirst(int list, int handle)
    {
        int from = _list[handle];
        Debug.Assert(from >= 0, "handle is not linked");
        Debug.Assert((uint)list < (uint)_counts.Length, "list out of range");
        RelinkFirst(list, handle);
        if (from != list)
        {
            _list[handle] = (sbyte)list;
            _counts[from]--;
            _counts[list]++;
        }
    }

    /// <summary>Moves a handle linked in <paramref name="list"/> to that list's head (the list id and counts stay).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void MoveToFirstWithin(int list, int handle)
    {
        Debug.Assert(_list[handle] == list, "handle is linked in this list");
        RelinkFirst(list, handle);
    }

    /// <summary>The link surgery of a move to the head of <paramref name="list"/>: unlink, then insert after the sentinel.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void RelinkFirst(int list, int handle)
    {
        Debug.Assert((uint)handle < (uint)_maxHandles && _list[handle] >= 0, "a linked handle");
        Debug.Assert((uint)list < (uint)_counts.Length, "list out of range");
        // SAFETY: every index below is a node of _links: `handle` is a linked handle (< _maxHandles), the
        // sentinel is _maxHandles + list with list < the list count, and Next/Prev of a linked node or of a
        // sentinel always hold node indices (the ring invariant, checked by ValidateInvariants); _links is a
        // readonly field, alive as long as this object.
        ref Link links = ref MemoryMarshal.GetArrayDataReference(_links);
        int sentinel = _maxHandles + list;
        ref Link head = ref Unsafe.Add(ref links, sentinel);
        int first = head.Next;
        if (first == handle)
        {
            return;   // already the head of this list (a head belongs to its own list only)
        }
        ref Link node = ref Unsafe.Add(ref links, handle);
        int p = node.Prev, n = node.Next;
        Unsafe.Add(ref links, p).Next = n;
        Unsafe.Add(ref links, n).Prev = p;
        // `first` is still the head: it is not the moved node, and the unlink wrote only the neighbours'
        // links (when the node was right after the head, p == first and only first.Next changed).
        node.Next = first;
        node.Prev = sentinel;
        Unsafe.Add(ref links, first).Prev = handle;
        head.Next = handle;
    }

    /// <summary>Moves a linked handle to the tail of <paramref name="list"/> (possibly another list).</summary>
    public void MoveToLast(int list, int handle)
    {
        Remove(handle);
        AddLast(list, handle);
    }

    /// <summary>Unlinks every handle of every list.</summary>
    public void Clear()
    {
        Array.Fill(_list, (sbyte)-1);
        Array.Clear(_counts);
        for (int s = _maxHandles; s < _links.Length; s++)
        {
            _links[s].Next = s;
            _links[s].Prev = s;
        }
    }

    private void InsertAfter(int list, int node, int handle)
    {
        Debug.Assert((uint)handle < (uint)_maxHandles, "handle out of range");
        Debug.Assert(_list[handle] < 0, "handle is already linked");
        int n = _links[node].Next;
        _links[handle].Next = n;
        _links[handle].Prev = node;
        _links[node].Next = handle;
        _links[n].Prev = handle;
        _list[handle] = (sbyte)list;
        _counts[list]++;
    }

    /// <summary>A node's two links, adjacent so that an unlink or a move reads one cache line per node.</summary>
    private struct Link
    {
        public int Next;
        public int Prev;
    }

    /// <summary>Debug check of the structural invariants; throws on the first violation.</summary>
    internal void ValidateInvariants()
    {
        int total = 0;
        for (int l = 0; l < _counts.Length; l++)
        {
            int s = _maxHandles + l, seen = 0;
            for (int n = _links[s].Next; n != s; n = _links[n].Next)
            {
                if (n >= _maxHandles || _list[n] != l || _links[_links[n].Prev].Next != n || _links[_links[n].Next].Prev != n)
                {
                    throw new InvalidOperationException($"list {l} is corrupt at node {n}");
                }
                if (++seen > _maxHandles)
                {
                    throw new InvalidOperationException($"list {l} has a cycle");
                }
            }
            if (seen != _counts[l])
            {
                throw new InvalidOperationException($"list {l} counts {_counts[l]} but links {seen}");
            }
            total += seen;
        }
        int linked = 0;
        foreach (sbyte l in _list)
        {
            if (l >= 0) linked++;
        }
        if (linked != total)
        {
            throw new InvalidOperationException($"{linked} handles marked linked, {total} found in lists");
        }
    }
}

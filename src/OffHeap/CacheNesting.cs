namespace CacheKit.OffHeap;

/// <summary>
/// The caches whose code of one kind a thread is inside, innermost first: their eviction listeners (<see cref="Shard"/>),
/// or a lookup's caller code (<see cref="OffHeapCache"/>: a destination's <c>GetSpan</c>/<c>Advance</c>). Kept in a
/// <c>[ThreadStatic]</c> field and changed in place. <see cref="Enter"/> returns what <see cref="Exit"/> restores (in a
/// finally block), so calls nest across caches (A's listener writes to B, whose listener runs), and <see cref="Contains"/>
/// sees the outer ones too (without them B's listener could write to A, or dispose it, unrefused; found by review).
/// The outer list is allocated on the first nesting only, so a call that does not nest allocates nothing.
/// </summary>
internal struct CacheNesting
{
    private OffHeapCache? _innermost;
    private OffHeapCache?[]? _outer;
    private int _outerCount;

    /// <summary>The innermost cache, or null when the thread is inside none.</summary>
    public readonly OffHeapCache? Innermost => _innermost;

    /// <summary>Enters <paramref name="cache"/>; returns the cache to pass to <see cref="Exit"/>.</summary>
    public OffHeapCache? Enter(OffHeapCache cache)
    {
        OffHeapCache? outer = _innermost;
        if (outer is not null)
        {
            OffHeapCache?[] list = _outer ??= new OffHeapCache?[4];
            if (_outerCount == list.Length)
            {
                Array.Resize(ref list, list.Length * 2);
                _outer = list;
            }
            list[_outerCount++] = outer;
        }
        _innermost = cache;
        return outer;
    }

    /// <summary>Leaves the innermost cache, back to <paramref name="outer"/> (what <see cref="Enter"/> returned).</summary>
    public void Exit(OffHeapCache? outer)
    {
        _innermost = outer;
        if (outer is not null)
        {
            _outer![--_outerCount] = null;
        }
    }

    /// <summary>Whether the thread is inside <paramref name="cache"/>'s code of this kind, at any depth.</summary>
    public readonly bool Contains(OffHeapCache cache)
    {
        if (_innermost is null)
        {
            return false;
        }
        if (ReferenceEquals(_innermost, cache))
        {
            return true;
        }
        for (int i = 0; i < _outerCount; i++)
        {
            if (ReferenceEquals(_outer![i], cache))
            {
                return true;
            }
        }
        return false;
    }
}

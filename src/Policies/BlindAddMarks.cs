namespace CacheKit.Policies;

/// <summary>
/// A bit per handle: the entry's add (or update) counted its key's access itself, because no miss of the key had been
/// replayed before it (<see cref="RecentMisses"/>). An owner whose read buffer replays each core's records separately
/// can replay a caller's miss after that caller's add (the miss sat in another core's stripe); the late miss then
/// consumes the mark instead of counting again (<see cref="IEvictionPolicy.TryCancelLateMiss"/>), so the lookup and its
/// add count once, while other callers' misses of the key still count. Allocation-free after construction; used under
/// the policy's lock.
/// </summary>
internal sealed class BlindAddMarks
{
    private readonly ulong[] _bits;
    private readonly int _maxHandles;

    public BlindAddMarks(int maxHandles)
    {
        _maxHandles = maxHandles;
        _bits = new ulong[(maxHandles + 63) >> 6];
    }

    /// <summary>Records whether the add (or update) of <paramref name="handle"/> counted the access itself.</summary>
    public void Mark(int handle, bool countedItself)
    {
        if (countedItself)
        {
            _bits[handle >> 6] |= 1UL << handle;
        }
        else
        {
            Clear(handle);
        }
    }

    /// <summary>Unmarks <paramref name="handle"/> (its entry left, or its add followed its own miss).</summary>
    public void Clear(int handle) => _bits[handle >> 6] &= ~(1UL << handle);

    /// <summary>Whether <paramref name="handle"/> was marked; unmarks it. An untracked handle has no mark (its removal cleared it).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="handle"/> is outside [0, maxHandles): the public
    /// <see cref="IEvictionPolicy.TryCancelLateMiss"/> reaches here with the caller's handle (an index outside the bit array
    /// leaked an <see cref="IndexOutOfRangeException"/>; found by review, 2026-11-30).</exception>
    public bool TryConsume(int handle)
    {
        if ((uint)handle >= (uint)_maxHandles)
        {
            throw new ArgumentOutOfRangeException(nameof(handle), handle, $"A handle must be in [0, {_maxHandles}).");
        }
        ref ulong word = ref _bits[handle >> 6];
        ulong bit = 1UL << handle;
        if ((word & bit) == 0)
        {
            return false;
        }
        word &= ~bit;
        return true;
    }

    /// <summary>Unmarks every handle.</summary>
    public void ClearAll() => Array.Clear(_bits);
}

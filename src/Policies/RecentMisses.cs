using System.Runtime.CompilerServices;

namespace CacheKit.Policies;

/// <summary>
/// The key hashes of the last few misses a frequency-counting policy replayed, so that an add can tell a
/// lookup-then-add (its miss was already counted: one access) from a blind add (count it now).
/// </summary>
/// <remarks>
/// Remembering only the last miss was exact where the miss and the add come in order (the simulator), but in the
/// engine records from other threads can be replayed between a writer's own miss and its add (the read buffer is
/// drained just before the add, and other readers' records can land in the writer's stripe behind its miss): the
/// last miss was then another key's and the added key counted twice. Each add consumes at most one matching miss;
/// a miss never followed by its add (admission refused it) is overwritten after <see cref="Size"/> more misses.
/// Allocation-free: a value type held in a field of its policy, used under the policy's lock.
/// </remarks>
internal struct RecentMisses
{
    /// <summary>Misses remembered (the ring below wraps by counting, so any size works).</summary>
    public const int Size = 4;

    private Hashes _hashes;
    private int _valid;   // bit i: _hashes[i] holds an unconsumed miss
    private int _next;    // where the next miss goes (the oldest one)

    /// <summary>Remembers a replayed miss of <paramref name="keyHash"/>, forgetting the oldest.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Add(ulong keyHash)
    {
        _hashes[_next] = keyHash;
        _valid |= 1 << _next;
        if (++_next == Size)
        {
            _next = 0;
        }
    }

    /// <summary>Whether a remembered miss of <paramref name="keyHash"/> was still unconsumed; consumes it.</summary>
    public bool TryConsume(ulong keyHash)
    {
        int i = IndexOf(keyHash);
        if (i < 0)
        {
            return false;
        }
        _valid &= ~(1 << i);
        return true;
    }

    /// <summary>Whether a miss of <paramref name="keyHash"/> is remembered and unconsumed (assertions).</summary>
    public readonly bool Contains(ulong keyHash) => IndexOf(keyHash) >= 0;

    private readonly int IndexOf(ulong keyHash)
    {
        for (int i = 0; i < Size; i++)
        {
            if ((_valid & (1 << i)) != 0 && _hashes[i] == keyHash)
            {
                return i;
            }
        }
        return -1;
    }

    /// <summary>Forgets every miss.</summary>
    public void Clear() => _valid = 0;

    [InlineArray(Size)]
    private struct Hashes
    {
        private ulong _element;
    }
}

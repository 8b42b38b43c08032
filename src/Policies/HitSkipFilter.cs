using System.Numerics;
using System.Runtime.CompilerServices;

namespace CacheKit.Policies;

/// <summary>
/// Which hits a policy ignores now: entries it moved to the head of their segment so recently that another move
/// would change nothing that matters. The policy consults it on every hit (a stamped entry's hit is neither moved
/// nor counted), and an owner that buffers reads consults it before buffering (<see cref="IsSkippable"/>), so those
/// reads never reach the buffer, its drain or the replay: the owner's shortcut is the policy's own rule.
/// </summary>
/// <remarks>
/// <para><b>Stamps.</b> One bit per handle, set when the policy moves the entry to the head of the segment the filter
/// covers (<see cref="Stamp"/>). The policy ends an epoch after a given number of moves (<see cref="NextEpoch"/>),
/// which clears the bits set in it (their handles are listed as they are set), so a stamped entry has fewer than that
/// many entries moved in front of it since its own move. The policy clears a bit when its entry leaves the segment
/// (<see cref="Clear(int)"/>), so only entries of the segment are stamped. A bit, not an epoch number per handle: the
/// bitmap a reader tests is an eighth of a byte per handle (208 KB at 1M entries of the engine, 5/3 slots each), so
/// it stays in a core's cache where a byte array (1.7 MB) cost a 2 MiB cache 0.2 more misses per get.</para>
/// <para><b>Sampled keys.</b> The policy may still need a stamped entry's hits for something other than the move and
/// the count: W-TinyLFU's window shadows replay a sampled share of the requests. Those keys are never skippable
/// (<see cref="SetSample"/>), so their hits reach the policy, which then passes them to its shadows only.</para>
/// <para><b>Concurrency.</b> Written only by the policy's owner under its lock; readers of an owner that buffers
/// reads call <see cref="IsSkippable"/> without it. A racing reader sees an old or a new bit or sample: it may buffer
/// a hit that the replay ignores, or skip one hit the policy would have taken (a lossy read, as the read buffer's
/// drops are). Every index is checked, so a stale handle never reads out of bounds. The fields readers read (the bitmap's
/// reference and the sample) change only when the sample does; the log of an epoch's stamps, written at every move,
/// is an object of its own, so a move does not take this object's cache line from the cores that read it.</para>
/// <para>Invariants: the handles logged in this epoch hold every set bit (the first <c>Count</c> of the log's
/// <c>Handles</c>, a handle logged again after it left and came back); a set bit belongs to an entry of the
/// segment.</para>
/// </remarks>
internal sealed class HitSkipFilter
{
    private readonly ulong[] _bits;             // bit h % 64 of word h / 64: handle h stamped in this epoch
    private readonly StampLog _log;             // the handles stamped since the epoch began (owner only)
    private ulong _sampleSalt;
    private ulong _sampleThreshold;   // keys whose mixed hash's top 24 bits are below it are sampled; 0: none

    /// <summary>Creates a filter for handles in [0, <paramref name="maxHandles"/>), nothing stamped, no key sampled.</summary>
    public HitSkipFilter(int maxHandles)
    {
        _bits = new ulong[(maxHandles + 63) >> 6];
        _log = new StampLog(MaxEpochMoves(maxHandles));
    }

    /// <summary>The handles stamped in this epoch, in order: written at every move, read only by the owner.</summary>
    private sealed class StampLog(int capacity)
    {
        public readonly int[] Handles = new int[capacity];
        public int Count;
    }

    /// <summary>The most moves an epoch may last for a policy over <paramref name="maxHandles"/> handles: a quarter of them
    /// (the policy ends an epoch after a quarter of its segment's count), at least 1.</summary>
    public static int MaxEpochMoves(int maxHandles) => Math.Max(1, maxHandles >> 2);

    /// <summary>The sample's salt (<see cref="SetSample"/>).</summary>
    internal ulong SampleSalt => _sampleSalt;

    /// <summary>The sample's threshold (<see cref="SetSample"/>); 0 when no key is sampled.</summary>
    internal ulong SampleThreshold => _sampleThreshold;

    /// <summary>Bytes of managed memory held.</summary>
    public long FootprintBytes => (long)_bits.Length * sizeof(ulong) + (long)_log.Handles.Length * sizeof(int);

    /// <summary>Whether the policy moved <paramref name="handle"/> to its segment's head in this epoch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsStamped(int handle)
    {
        ulong[] bits = _bits;
        int word = handle >> 6;
        return (uint)word < (uint)bits.Length && (bits[word] & (1UL << handle)) != 0;   // the shift count is taken mod 64
    }

    /// <summary>Whether a hit of <paramref name="handle"/> (key hash <paramref name="keyHash"/>) changes nothing in the
    /// policy now: stamped, and not a key the policy samples.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsSkippable(int handle, ulong keyHash)
        => IsStamped(handle) && (_sampleThreshold == 0 || !WindowShadows.InSample(keyHash, _sampleSalt, _sampleThreshold));

    /// <summary>The keys the policy samples: those <see cref="WindowShadows.InSample"/> finds in the sample of this salt and
    /// threshold (0: none).</summary>
    public void SetSample(ulong salt, ulong threshold)
    {
        if (salt != _sampleSalt || threshold != _sampleThreshold)   // written only on a change: readers read this line
        {
            _sampleSalt = salt;
            _sampleThreshold = threshold;
        }
    }

    /// <summary>The policy moved <paramref name="handle"/> to its segment's head: stamped until the epoch ends. The
    /// policy calls it at most <see cref="MaxEpochMoves"/> times per epoch.</summary>
    public void Stamp(int handle)
    {
        ref ulong word = ref _bits[handle >> 6];
        ulong bit = 1UL << handle;
        if ((word & bit) == 0)
        {
            word |= bit;
            _log.Handles[_log.Count++] = handle;   // in range: one entry per move, at most MaxEpochMoves moves
        }
    }

    /// <summary>Ends the epoch: nothing is stamped. O(handles stamped in it).</summary>
    public void NextEpoch()
    {
        StampLog log = _log;
        for (int i = 0; i < log.Count; i++)
        {
            int handle = log.Handles[i];
            _bits[handle >> 6] &= ~(1UL << handle);
        }
        log.Count = 0;
    }

    /// <summary>The entry left the segment (or the cache): not stamped.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Clear(int handle) => _bits[handle >> 6] &= ~(1UL << handle);

    /// <summary>Nothing stamped (the sample stays).</summary>
    public void Clear()
    {
        Array.Clear(_bits);
        _log.Count = 0;
    }

    /// <summary>Debug check: every stamped handle is listed and satisfies <paramref name="inSegment"/>.</summary>
    internal void ValidateInvariants(Func<int, bool> inSegment)
    {
        var listed = new HashSet<int>(_log.Handles.AsSpan(0, _log.Count).ToArray());
        for (int word = 0; word < _bits.Length; word++)
        {
            for (ulong rest = _bits[word]; rest != 0; rest &= rest - 1)
            {
                int h = (word << 6) + BitOperations.TrailingZeroCount(rest);
                if (!listed.Contains(h))
                {
                    throw new InvalidOperationException($"HitSkipFilter: handle {h} is stamped but not logged in this epoch");
                }
                if (!inSegment(h))
                {
                    throw new InvalidOperationException($"HitSkipFilter: handle {h} is stamped but not in the segment");
                }
            }
        }
    }
}

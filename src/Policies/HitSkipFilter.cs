using System.Runtime.CompilerServices;

namespace CacheKit.Policies;

/// <summary>
/// Which hits a policy ignores now: entries it moved to the head of their segment so recently that another move
/// would change nothing that matters. The policy consults it on every hit (a stamped entry's hit is neither moved
/// nor counted), and an owner that buffers reads consults it before buffering (<see cref="IsSkippable"/>), so those
/// reads never reach the buffer, its drain or the replay: the owner's shortcut is the policy's own rule.
/// </summary>
/// <remarks>
/// <para><b>Stamps.</b> One byte per handle: the epoch in which the policy last moved the entry to the head of the
/// segment the filter covers, or 0. An entry is stamped while its stamp equals the current epoch. The policy ends an
/// epoch after a given number of moves, so a stamped entry has fewer than that many entries moved in front of it
/// since its own move; it clears a stamp when its entry leaves the segment (<see cref="Clear(int)"/>), so only
/// entries of the segment hold stamps, and at the epoch number's wrap it clears every stamp of the segment
/// (<see cref="NextEpoch"/>).</para>
/// <para><b>Sampled keys.</b> The policy may still need a stamped entry's hits for something other than the move and
/// the count: W-TinyLFU's window shadows replay a sampled share of the requests. Those keys are never skippable
/// (<see cref="SetSample"/>), so their hits reach the policy, which then passes them to its shadows only.</para>
/// <para><b>Concurrency.</b> Written only by the policy's owner under its lock; readers of an owner that buffers
/// reads call <see cref="IsSkippable"/> without it. A racing reader sees an old or a new stamp, epoch or sample: it
/// may buffer a hit that the replay ignores, or skip one hit the policy would have taken (a lossy read, as the read
/// buffer's drops are). Every index is checked, so a stale handle never reads out of bounds. The fields readers
/// read change at most once per epoch (the policy counts the epoch's moves itself), so readers on other cores do not
/// pull this object's line on every move.</para>
/// <para>Invariants: <c>_epoch</c> is in [1, 255]; a nonzero stamp belongs to an entry of the segment.</para>
/// </remarks>
internal sealed class HitSkipFilter
{
    private readonly byte[] _stamps;
    private byte _epoch = 1;
    private ulong _sampleSalt;
    private ulong _sampleThreshold;   // keys whose mixed hash's top 24 bits are below it are sampled; 0: none

    /// <summary>Creates a filter for handles in [0, <paramref name="maxHandles"/>), nothing stamped, no key sampled.</summary>
    public HitSkipFilter(int maxHandles) => _stamps = new byte[maxHandles];

    /// <summary>The sample's salt (<see cref="SetSample"/>).</summary>
    internal ulong SampleSalt => _sampleSalt;

    /// <summary>The sample's threshold (<see cref="SetSample"/>); 0 when no key is sampled.</summary>
    internal ulong SampleThreshold => _sampleThreshold;

    /// <summary>Bytes of managed memory held.</summary>
    public long FootprintBytes => _stamps.Length;

    /// <summary>Whether the policy moved <paramref name="handle"/> to its segment's head in this epoch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsStamped(int handle)
    {
        byte[] stamps = _stamps;
        return (uint)handle < (uint)stamps.Length && stamps[handle] == _epoch;
    }

    /// <summary>Whether a hit of <paramref name="handle"/> (key hash <paramref name="keyHash"/>) changes nothing in the
    /// policy now: stamped, and not a key the policy samples.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsSkippable(int handle, ulong keyHash)
        => IsStamped(handle) && (_sampleThreshold == 0 || (HashMix.Mix(keyHash ^ _sampleSalt) >> 40) >= _sampleThreshold);

    /// <summary>The keys the policy samples: those whose <c>HashMix.Mix(keyHash ^ salt) &gt;&gt; 40</c> is below
    /// <paramref name="threshold"/> (0: none).</summary>
    public void SetSample(ulong salt, ulong threshold)
    {
        _sampleSalt = salt;
        _sampleThreshold = threshold;
    }

    /// <summary>The policy moved <paramref name="handle"/> to its segment's head: stamped until the epoch ends.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Stamp(int handle) => _stamps[handle] = _epoch;

    /// <summary>Ends the epoch. True when the epoch number wrapped: the policy must then <see cref="Clear(int)"/>
    /// every handle of its segment (only those hold stamps), or a stamp 255 epochs old would read as current.</summary>
    public bool NextEpoch()
    {
        if (_epoch < byte.MaxValue)
        {
            _epoch++;
            return false;
        }
        _epoch = 1;
        return true;
    }

    /// <summary>The entry left the segment (or the cache): not stamped.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Clear(int handle) => _stamps[handle] = 0;

    /// <summary>Nothing stamped (the sample stays).</summary>
    public void Clear()
    {
        Array.Clear(_stamps);
        _epoch = 1;
    }

    /// <summary>Debug check: every handle with a nonzero stamp satisfies <paramref name="inSegment"/>.</summary>
    internal void ValidateInvariants(Func<int, bool> inSegment)
    {
        if (_epoch == 0)
        {
            throw new InvalidOperationException("HitSkipFilter epoch 0");
        }
        for (int h = 0; h < _stamps.Length; h++)
        {
            if (_stamps[h] != 0 && !inSegment(h))
            {
                throw new InvalidOperationException($"HitSkipFilter: handle {h} holds a stamp but is not in the segment");
            }
        }
    }
}

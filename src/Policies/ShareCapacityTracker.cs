namespace CacheKit.Policies;

/// <summary>
/// The capacity a segmented policy's shares are shares of (through <c>PolicyBase</c>: W-TinyLFU's segments, sketch
/// period and window shadows, SLRU's protected segment, S3-FIFO's small queue; its own: LIRS's LIR set, 2Q's A1in and
/// A1out, CLOCK-Pro's cold-target bounds and hot share, ARC's and CAR's c, TinyLFU admission's sketch period): the policy's capacity while the capacity is what binds, and the weight
/// held when the owner last said its own bound binds first (<see cref="IEvictionPolicy.OnRoomNeededBelowCapacity"/>)
/// otherwise. An engine whose byte budget fills before its entry bound asks for victims with fewer entries than the
/// bound; shares of the bound then overran the entries held (an 80 %
/// protected segment held every entry read twice, a 99 % LIR set every entry), and after a workload shift the
/// engine's hit ratio fell by up to half (found 2026-11-29). It grows back with the weight when the owner adds past
/// it without asking for room. Always between 1 and the capacity. Owners pass the capacity in, as a W-TinyLFU
/// window shadow's capacity can change.
/// </summary>
internal struct ShareCapacityTracker
{
    /// <summary>Starts at <paramref name="capacity"/>.</summary>
    public ShareCapacityTracker(long capacity) => Value = capacity;

    /// <summary>The capacity the shares are of now.</summary>
    public long Value { get; private set; }

    /// <summary>The owner's own bound binds with <paramref name="weight"/> held: that weight, at most the capacity, becomes
    /// the value. True when it moved.</summary>
    public bool NoteRoomRequest(long weight, long capacity) => Set(Math.Clamp(weight, 1, capacity));

    /// <summary>An add brought the weight to <paramref name="weight"/>: past the value, the cache grew (its other bound has
    /// room again), and the value follows, up to the capacity. True when it moved.</summary>
    public bool NoteAdded(long weight, long capacity) => weight > Value && Value < capacity && Set(Math.Min(capacity, weight));

    /// <summary>Back to <paramref name="capacity"/> (the policy was cleared). True when it moved.</summary>
    public bool Reset(long capacity) => Set(capacity);

    private bool Set(long value)
    {
        if (value == Value)
        {
            return false;
        }
        Value = value;
        return true;
    }
}

namespace CacheKit.Policies;

/// <summary>CLOCK (second chance): a reference bit per entry, set by reads without a lock; the
/// sweep clears set bits and gives those entries another round.</summary>
/// <remarks>
/// The clock is the list itself: the tail is under the hand; a second chance moves the entry to
/// the head, which is the same as advancing the hand past it. A sweep takes at most
/// <see cref="PolicyBase.Count"/> + 2 steps (the loop's bound; single-threaded Count + 1 suffice: after one full turn
/// every bit is clear, and passing a pending newcomer is one step).
/// Concurrency notes: <see cref="HitCore"/> writes one byte; a race with the sweep loses at most
/// that one reference.
/// </remarks>
internal sealed class ClockPolicy : PolicyBase
{
    private const int Ring = 0;
    private readonly byte[] _referenced;   // 1 when read since the hand last passed; 0 for untracked handles

    public ClockPolicy(PolicyOptions options)
        : base(options, listCount: 1)
    {
        _referenced = new byte[MaxHandles];
    }

    public override string Name => "CLOCK";

    public override bool ConcurrentHits => true;

    public override int SelectVictim()
    {
        // CLOCK evicts before it inserts: the newcomer (added first by the owner's protocol) is not
        // yet on the ring. Pass it by, and keep it behind every entry the hand clears, where it
        // would have taken the victim's slot.
        int newest = PendingNewcomer();
        int victim = -1;
        int limit = Count + 2;
        for (int step = 0; step < limit; step++)
        {
            int h = Lists.Last(Ring);
            if (h < 0)
            {
                return -1;
            }
            if (h == newest)
            {
                MoveFirst(Ring, h);
                continue;
            }
            if (_referenced[h] == 0)
            {
                victim = h;
                break;
            }
            _referenced[h] = 0;
            MoveFirst(Ring, h);
        }
        if (newest >= 0)
        {
            MoveFirst(Ring, newest);
        }
        // victim < 0 is unreachable unless readers keep setting bits during the sweep: take the tail anyway.
        return victim >= 0 ? victim : (Lists.Last(Ring) == newest ? Lists.Previous(newest) : Lists.Last(Ring));
    }

    protected override void AddCore(int handle, ulong keyHash)
    {
        _referenced[handle] = 0;
        LinkFirst(Ring, handle);
    }

    protected override void HitCore(int handle, ulong keyHash) => _referenced[handle] = 1;

    protected override void RemoveCore(int handle) => _referenced[handle] = 0;

    protected override void ClearCore() => Array.Clear(_referenced);
}

namespace CacheKit.Policies;

/// <summary>SIEVE (Zhang et al., NSDI 2024): a FIFO queue with a visited bit per entry and a hand
/// that moves from the tail towards the head; visited entries are passed over (bit cleared)
/// but never moved, new entries go in at the head.</summary>
/// <remarks>
/// Invariant: <c>_hand</c> is -1 or a tracked handle; -1 means "start at the tail". A sweep
/// visits at most <see cref="PolicyBase.Count"/> + 1 entries. Hits write one byte (lock-free).
/// </remarks>
internal sealed class SievePolicy : PolicyBase
{
    private const int Queue = 0;
    private readonly byte[] _visited;
    private int _hand = -1;

    public SievePolicy(PolicyOptions options)
        : base(options, listCount: 1)
    {
        _visited = new byte[MaxHandles];
    }

    public override string Name => "SIEVE";

    public override bool ConcurrentHits => true;

    public override int SelectVictim()
    {
        // SIEVE evicts before it inserts: the newcomer (added first by the owner's protocol) is not
        // yet in the queue, so a hand reaching it has passed the head and wraps to the tail.
        int newest = PendingNewcomer();
        int h = _hand >= 0 && _hand != newest ? _hand : Lists.Last(Queue);
        if (h < 0)
        {
            return -1;
        }
        int limit = Count + 1;
        for (int step = 0; step < limit && _visited[h] != 0; step++)
        {
            _visited[h] = 0;
            h = Lists.Previous(h);
            if (h < 0 || h == newest)
            {
                h = Lists.Last(Queue);
            }
        }
        _hand = h;
        return h;
    }

    protected override void AddCore(int handle, ulong keyHash)
    {
        _visited[handle] = 0;
        LinkFirst(Queue, handle);
    }

    protected override void HitCore(int handle, ulong keyHash) => _visited[handle] = 1;

    protected override void RemoveCore(int handle)
    {
        if (handle == _hand)
        {
            // The hand moves on towards the head, as after a SIEVE eviction; past the head (the
            // newcomer is not in the paper's queue yet) it starts again at the tail.
            int next = Lists.Previous(handle);
            _hand = next == NewestHandle ? -1 : next;
        }
        _visited[handle] = 0;
    }

    protected override void ClearCore()
    {
        Array.Clear(_visited);
        _hand = -1;
    }

    internal override void ValidateInvariants()
    {
        base.ValidateInvariants();
        if (_hand >= 0 && !IsTracked(_hand))
        {
            throw new InvalidOperationException($"SIEVE hand {_hand} is not tracked");
        }
    }
}

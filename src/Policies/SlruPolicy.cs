namespace CacheKit.Policies;

/// <summary>Segmented LRU (Karedla, Love and Wherry, 1994): newcomers enter a probation segment;
/// a second access promotes them to a protected segment (80% of capacity by weight; of
/// <see cref="PolicyBase.ShareCapacity"/> once the owner's own bound binds first) whose
/// overflow is demoted back to probation. The probation tail is evicted.</summary>
/// <remarks>Two lists, head = most recent. Reads reorder, so <see cref="ConcurrentHits"/> is false.
/// Invariant: protected weight is at most <c>_maxProtected</c> after every call, unless a single
/// entry alone outweighs it.</remarks>
internal sealed class SlruPolicy : PolicyBase
{
    private const int Probation = 0;
    private const int Protected = 1;
    private const double ProtectedFraction = 0.80;
    private long _maxProtected;

    public SlruPolicy(PolicyOptions options)
        : base(options, listCount: 2)
    {
        _maxProtected = (long)(Capacity * ProtectedFraction);
    }

    protected override void ShareCapacityChanged()
    {
        _maxProtected = (long)(ShareCapacity * ProtectedFraction);
        DemoteOverflow();
    }

    public override string Name => "SLRU";

    public override bool ConcurrentHits => false;

    public override int SelectVictim()
    {
        int h = Lists.Last(Probation);
        return h >= 0 ? h : Lists.Last(Protected);
    }

    protected override void AddCore(int handle, ulong keyHash) => LinkFirst(Probation, handle);

    protected override void HitCore(int handle, ulong keyHash)
    {
        MoveFirst(Protected, handle);
        DemoteOverflow();
    }

    private void DemoteOverflow()
    {
        while (ListWeight(Protected) > _maxProtected && Lists.Count(Protected) > 1)
        {
            MoveFirst(Probation, Lists.Last(Protected));
        }
    }
}

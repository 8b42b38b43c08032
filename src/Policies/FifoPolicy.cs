namespace CacheKit.Policies;

/// <summary>First in, first out: evicts the oldest insertion; reads change nothing.</summary>
/// <remarks>One list, newest at the head. Hits are no-ops, so they are safe from any thread.</remarks>
internal sealed class FifoPolicy : PolicyBase
{
    private const int Queue = 0;

    public FifoPolicy(PolicyOptions options)
        : base(options, listCount: 1)
    {
    }

    public override string Name => "FIFO";

    public override bool ConcurrentHits => true;

    public override int SelectVictim() => Lists.Last(Queue);

    protected override void AddCore(int handle, ulong keyHash) => LinkFirst(Queue, handle);

    protected override void HitCore(int handle, ulong keyHash)
    {
    }
}

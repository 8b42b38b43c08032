namespace CacheKit.Policies;

/// <summary>Least recently used: every access moves the entry to the head; the tail is evicted.</summary>
/// <remarks>Reads reorder the list, so <see cref="ConcurrentHits"/> is false: the owner buffers hits
/// (see <see cref="ReadBuffer"/>) and replays them under its lock.</remarks>
internal sealed class LruPolicy : PolicyBase
{
    private const int Queue = 0;

    public LruPolicy(PolicyOptions options)
        : base(options, listCount: 1)
    {
    }

    public override string Name => "LRU";

    public override bool ConcurrentHits => false;

    public override int SelectVictim() => Lists.Last(Queue);

    protected override void AddCore(int handle, ulong keyHash) => LinkFirst(Queue, handle);

    protected override void HitCore(int handle, ulong keyHash) => MoveFirst(Queue, handle);
}

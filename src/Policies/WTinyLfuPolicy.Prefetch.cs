namespace CacheKit.Policies;

/// <summary>W-TinyLFU's prefetch hints for the read buffer's batched replay (see <see cref="ReadBuffer"/>).</summary>
internal sealed partial class WTinyLfuPolicy
{
    /// <summary>A replay of this record will read the key's sketch block and doorkeeper words, and the entry's metadata.</summary>
    public override void Prefetch(int handle, ulong keyHash)
    {
        _sketch.Prefetch(keyHash);
        if (handle >= 0)
        {
            PrefetchEntry(handle);
        }
    }

    /// <summary>A hit moves the entry to a list head: the unlink writes its neighbours' links.</summary>
    public override void PrefetchDependent(int handle) => Lists.PrefetchNeighbours(handle);
}

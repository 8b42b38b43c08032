using System.Diagnostics;

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

    /// <summary>
    /// Replays a batch of drained read-buffer records exactly as <see cref="ReadBuffer"/> does through the
    /// interface (announce every record, then the hits' neighbours, then each record in order), with direct calls.
    /// </summary>
    /// <param name="handles">Per record: a hit's handle (in range), <see cref="ReadBuffer.MissRecord"/> or <see cref="ReadBuffer.IgnoredRecord"/>.</param>
    /// <param name="hashes">Per record: the key hash.</param>
    internal void ReplayBatch(ReadOnlySpan<int> handles, ReadOnlySpan<ulong> hashes)
    {
        Debug.Assert(handles.Length == hashes.Length, "one hash per record");
        if (handles.Length > 1)
        {
            for (int i = 0; i < handles.Length; i++)
            {
                Prefetch(Math.Max(handles[i], -1), hashes[i]);
            }
            for (int i = 0; i < handles.Length; i++)
            {
                if (handles[i] >= 0)
                {
                    PrefetchDependent(handles[i]);
                }
            }
        }
        for (int i = 0; i < handles.Length; i++)
        {
            int handle = handles[i];
            if (handle >= 0)
            {
                OnHit(handle, hashes[i]);
            }
            else if (handle == ReadBuffer.MissRecord)
            {
                OnMiss(hashes[i]);
            }
        }
    }
}

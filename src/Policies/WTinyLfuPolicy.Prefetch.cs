using System.Diagnostics;

namespace CacheKit.Policies;

/// <summary>W-TinyLFU's prefetch hints for the read buffer's batched replay (see <see cref="ReadBuffer"/>).</summary>
internal sealed partial class WTinyLfuPolicy
{
    /// <summary>A replay of this record will read the key's sketch block and doorkeeper block (one line each), and the entry's list node.</summary>
    /// <remarks>Not the entry's weight: a hit reads it only when the window shadows sample the request.</remarks>
    public override void Prefetch(int handle, ulong keyHash)
    {
        _sketch.Prefetch(keyHash);
        if (handle >= 0)
        {
            Lists.PrefetchNode(handle);
        }
    }

    /// <summary>A hit moves the entry to a list head: the unlink writes its neighbours' links.</summary>
    public override void PrefetchDependent(int handle) => Lists.PrefetchNeighbours(handle);

    /// <summary>
    /// Replays a batch of drained read-buffer records exactly as <see cref="ReadBuffer"/> does through the
    /// interface (announce every record, then the hits' neighbours, then each record in order), with direct
    /// calls and each key's sketch hash mixed once for the prefetch and the increment.
    /// </summary>
    /// <param name="handles">Per record: a hit's handle (in range), <see cref="ReadBuffer.MissRecord"/> or <see cref="ReadBuffer.IgnoredRecord"/>.</param>
    /// <param name="hashes">Per record: the key hash.</param>
    internal void ReplayBatch(ReadOnlySpan<int> handles, ReadOnlySpan<ulong> hashes)
    {
        Debug.Assert(handles.Length == hashes.Length && handles.Length <= ReadBuffer.ReplayBatch, "one hash per record, one batch");
        Span<ulong> mixed = stackalloc ulong[ReadBuffer.ReplayBatch];
        for (int i = 0; i < hashes.Length; i++)
        {
            mixed[i] = _sketch.Mix(hashes[i]);
        }
        if (handles.Length > 1)
        {
            for (int i = 0; i < handles.Length; i++)
            {
                _sketch.PrefetchMixed(mixed[i]);
                if (handles[i] >= 0)
                {
                    Lists.PrefetchNode(handles[i]);
                }
            }
            for (int i = 0; i < handles.Length; i++)
            {
                if (handles[i] >= 0)
                {
                    Lists.PrefetchNeighbours(handles[i]);
                }
            }
        }
        for (int i = 0; i < handles.Length; i++)
        {
            int handle = handles[i];
            if (handle >= 0)
            {
                // As OnHit: the read buffer keeps handles in range; a handle removed since its record is ignored.
                Debug.Assert(handle < MaxHandles, "the read buffer drops handles out of range");
                if (Lists.IsLinked(handle))
                {
                    HitMixed(handle, hashes[i], mixed[i]);
                }
            }
            else if (handle == ReadBuffer.MissRecord)
            {
                MissMixed(hashes[i], mixed[i]);
            }
        }
    }
}

using System.Buffers;
using System.Diagnostics;

namespace CacheKit.OffHeap;

/// <summary>
/// Entries copied out of a shard under its lock for <see cref="OffHeapCache.Keys"/> and <see cref="OffHeapCache.Entries"/>:
/// one pooled byte buffer holding each entry's key (and value, when the batch takes values) back to back, and their end
/// offsets. The buffer bounds the bytes one lock hold copies (<see cref="BufferBytes"/>). An entry larger than the whole
/// buffer is refused with its size noted (<see cref="NeededBytes"/>); the caller grows the buffer outside the lock
/// (<see cref="GrowForRefusedEntry"/>) and resumes at the same slot, so a walk always makes progress and never allocates
/// under a shard's lock. Not thread-safe; <see cref="Dispose"/> clears the bytes it wrote and returns the buffers to the pool.
/// </summary>
internal sealed class EntryBatch : IDisposable
{
    /// <summary>Most entries one batch (one lock hold) copies.</summary>
    public const int MaxEntries = 4096;

    /// <summary>Bytes of keys and values one batch copies, unless its first entry alone is larger.</summary>
    public const int BufferBytes = 64 * 1024;

    private byte[] _bytes;
    private int[] _ends;          // entry i: key ends at _ends[2i], value at _ends[2i + 1] (= key end without values)
    private int _highWater;       // bytes of _bytes ever written (over every fill), cleared before the pool gets them back

    public EntryBatch(bool withValues)
    {
        WithValues = withValues;
        _bytes = ArrayPool<byte>.Shared.Rent(BufferBytes);
        _ends = ArrayPool<int>.Shared.Rent(2 * MaxEntries);
    }

    /// <summary>Whether <see cref="TryAdd"/> copies values too (otherwise keys only).</summary>
    public bool WithValues { get; }

    /// <summary>Entries in the batch.</summary>
    public int Count { get; private set; }

    /// <summary>The size of the entry an empty batch refused because the buffer is smaller (0 when none was).</summary>
    public int NeededBytes { get; private set; }

    private int Used => Count == 0 ? 0 : _ends[2 * Count - 1];

    /// <summary>
    /// Appends a copy of <paramref name="key"/> (and of <paramref name="value"/> when <see cref="WithValues"/>), or returns
    /// false, copying nothing, when the batch holds <see cref="MaxEntries"/> entries or the entry does not fit the bytes
    /// left; an empty batch refuses only an entry larger than its whole buffer, and notes its size in <see cref="NeededBytes"/>.
    /// </summary>
    public bool TryAdd(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        Debug.Assert(_bytes.Length != 0, "not disposed");
        if (!WithValues)
        {
            value = default;
        }
        if (Count == MaxEntries)
        {
            return false;
        }
        int start = Used;
        long needed = (long)key.Length + value.Length;
        // Only an empty batch may fill a buffer grown for one large entry: any later entry gets BufferBytes, so that entry
        // comes alone and no lock hold copies more than the larger of BufferBytes and one entry.
        if (start + needed > (Count == 0 ? _bytes.Length : BufferBytes))
        {
            if (Count == 0)
            {
                NeededBytes = (int)needed;   // <= MaxKeyBytes + the largest chunk (64 MiB): an int
            }
            return false;
        }
        key.CopyTo(_bytes.AsSpan(start));   // throws rather than overruns, should the room check ever be wrong
        _ends[2 * Count] = start + key.Length;
        value.CopyTo(_bytes.AsSpan(start + key.Length));
        int end = start + key.Length + value.Length;
        _ends[2 * Count + 1] = end;
        Count++;
        _highWater = Math.Max(_highWater, end);
        return true;
    }

    /// <summary>Key <paramref name="index"/> (valid until <see cref="Clear"/>).</summary>
    public ReadOnlySpan<byte> KeyAt(int index)
    {
        int start = index == 0 ? 0 : _ends[2 * index - 1];
        return _bytes.AsSpan(start, _ends[2 * index] - start);
    }

    /// <summary>Value <paramref name="index"/> (empty when the batch takes no values; valid until <see cref="Clear"/>).</summary>
    public ReadOnlySpan<byte> ValueAt(int index) => _bytes.AsSpan(_ends[2 * index], _ends[2 * index + 1] - _ends[2 * index]);

    /// <summary>Empties the batch for the next fill (a buffer grown for one large entry goes back for the usual size).
    /// Call outside the shard's lock: it may rent and clear.</summary>
    public void Clear()
    {
        Count = 0;
        NeededBytes = 0;
        if (_bytes.Length > BufferBytes)
        {
            Replace(ArrayPool<byte>.Shared.Rent(BufferBytes));
        }
    }

    /// <summary>Empties the batch and gives it a buffer of at least <see cref="NeededBytes"/>, for the entry it refused;
    /// call outside the shard's lock. The next <see cref="Clear"/> goes back to the usual size.</summary>
    public void GrowForRefusedEntry()
    {
        Debug.Assert(Count == 0 && NeededBytes > _bytes.Length, "only an empty batch that refused an entry for its size grows");
        int needed = NeededBytes;
        NeededBytes = 0;
        Replace(ArrayPool<byte>.Shared.Rent(needed));
    }

    /// <summary>Clears the bytes written to the current buffer and returns it to the pool for <paramref name="next"/>.</summary>
    private void Replace(byte[] next)
    {
        Debug.Assert(Count == 0, "only an empty batch changes buffers");
        _bytes.AsSpan(0, _highWater).Clear();   // the shared pool's next renter must not see the cache's keys and values
        ArrayPool<byte>.Shared.Return(_bytes);
        _bytes = next;
        _highWater = 0;
    }

    public void Dispose()
    {
        if (_bytes.Length != 0)
        {
            Count = 0;
            Replace([]);
            ArrayPool<int>.Shared.Return(_ends);
            _ends = [];
        }
    }
}

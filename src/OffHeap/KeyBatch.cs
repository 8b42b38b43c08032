using System.Buffers;
using System.Diagnostics;

namespace CacheKit.OffHeap;

/// <summary>
/// Keys copied out of a shard under its lock for <see cref="OffHeapCache.Keys"/>: one pooled byte buffer holding the keys
/// back to back, and their end offsets. Sized so that a whole index bucket of keys of the longest length always fits
/// when <see cref="HasRoomForBucket"/> says so (the shard copies whole buckets, so that enumeration resumes at a bucket).
/// Not thread-safe; <see cref="Dispose"/> returns the buffers to the pool.
/// </summary>
internal sealed class KeyBatch : IDisposable
{
    /// <summary>Most keys one batch (one lock hold) copies.</summary>
    public const int MaxKeys = 4096;

    private byte[] _bytes;
    private int[] _ends;
    private readonly int _bucketBytes;   // SlotCount × the longest key
    private int _highWater;              // bytes of _bytes ever written (over every fill), cleared before the pool gets them back

    public KeyBatch(int maxKeyBytes)
    {
        Debug.Assert(maxKeyBytes >= 0, "a key length is not negative");
        _bucketBytes = IndexBucket.SlotCount * maxKeyBytes;
        // Several buckets of the longest keys per lock hold (256 KiB at the default 8 KiB MaxKeyBytes, 1.8 MB at the
        // format's 65,535); the bucket and key counts bound the hold for short keys.
        _bytes = ArrayPool<byte>.Shared.Rent(Math.Max(64 * 1024, 4 * _bucketBytes));
        _ends = ArrayPool<int>.Shared.Rent(MaxKeys);
    }

    /// <summary>Keys in the batch.</summary>
    public int Count { get; private set; }

    private int Used => Count == 0 ? 0 : _ends[Count - 1];

    /// <summary>Whether one more bucket (up to <see cref="IndexBucket.SlotCount"/> keys of the longest length) fits.</summary>
    public bool HasRoomForBucket => Count + IndexBucket.SlotCount <= Math.Min(MaxKeys, _ends.Length) && Used + _bucketBytes <= _bytes.Length;

    /// <summary>Appends a copy of <paramref name="key"/>; the caller checked <see cref="HasRoomForBucket"/> for its bucket.</summary>
    public void Add(ReadOnlySpan<byte> key)
    {
        int start = Used;
        key.CopyTo(_bytes.AsSpan(start));   // throws rather than overruns, should the room check ever be wrong
        _ends[Count++] = start + key.Length;
        _highWater = Math.Max(_highWater, start + key.Length);
    }

    /// <summary>Key <paramref name="index"/> (valid until <see cref="Clear"/>).</summary>
    public ReadOnlySpan<byte> this[int index]
    {
        get
        {
            int start = index == 0 ? 0 : _ends[index - 1];
            return _bytes.AsSpan(start, _ends[index] - start);
        }
    }

    /// <summary>Empties the batch for the next fill.</summary>
    public void Clear() => Count = 0;

    public void Dispose()
    {
        if (_bytes.Length != 0)
        {
            _bytes.AsSpan(0, _highWater).Clear();   // the shared pool's next renter must not see the cache's keys
            ArrayPool<byte>.Shared.Return(_bytes);
            ArrayPool<int>.Shared.Return(_ends);
            _bytes = [];
            _ends = [];
            Count = 0;
        }
    }
}

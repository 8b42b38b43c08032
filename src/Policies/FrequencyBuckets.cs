using System.Diagnostics;

namespace CacheKit.Policies;

/// <summary>
/// The O(1) LFU structure (Shah, Mitra and Matani, 2010): a list of frequency buckets in ascending
/// frequency, each holding the handles with that frequency in recency order. Add, increment,
/// remove, least- and most-frequent are all O(1).
/// </summary>
/// <remarks>
/// <para><see cref="HandleLists"/> has a fixed number of lists; here the number of buckets changes
/// with the workload (up to one per entry), so the buckets are a pool of nodes allocated once and
/// entries are threaded through their own next/prev arrays.</para>
/// <para>Invariants: bucket frequencies strictly increase from <c>_firstBucket</c> to
/// <c>_lastBucket</c>; no linked bucket is empty; each tracked handle is in the bucket
/// <c>_bucketOf[h]</c>, whose frequency is the handle's; within a bucket the head is the most
/// recently touched handle and the tail the least.</para>
/// </remarks>
internal sealed class FrequencyBuckets
{
    // Entries.
    private readonly int[] _next;
    private readonly int[] _prev;
    private readonly int[] _bucketOf;   // -1 when not tracked

    // Bucket pool, allocated once, with its free stack.
    private readonly long[] _freq;
    private readonly int[] _head;
    private readonly int[] _tail;
    private readonly int[] _size;
    private readonly int[] _bucketNext;
    private readonly int[] _bucketPrev;
    private readonly int[] _freeBuckets;
    private int _freeCount;
    private int _firstBucket = -1;
    private int _lastBucket = -1;

    public FrequencyBuckets(int maxHandles)
    {
        _next = new int[maxHandles];
        _prev = new int[maxHandles];
        _bucketOf = new int[maxHandles];
        // One bucket per entry, plus one: Increment creates the next bucket before it frees the old.
        int buckets = maxHandles + 1;
        _freq = new long[buckets];
        _head = new int[buckets];
        _tail = new int[buckets];
        _size = new int[buckets];
        _bucketNext = new int[buckets];
        _bucketPrev = new int[buckets];
        _freeBuckets = new int[buckets];
        Clear();
    }

    public long FootprintBytes => _next.Length * (9L * sizeof(int) + sizeof(long));

    public long FrequencyOf(int handle) => _freq[_bucketOf[handle]];

    /// <summary>The least recently touched handle of the lowest frequency, or -1.</summary>
    public int LeastFrequent => _firstBucket < 0 ? -1 : _tail[_firstBucket];

    /// <summary>The least recently touched handle of the highest frequency, or -1.</summary>
    public int MostFrequent => _lastBucket < 0 ? -1 : _tail[_lastBucket];

    /// <summary>The handle after <paramref name="handle"/> in eviction order for LFU (towards more
    /// recent, then higher frequency), or -1.</summary>
    public int NextForLfu(int handle)
    {
        int p = _prev[handle];
        if (p >= 0) return p;
        int b = _bucketNext[_bucketOf[handle]];
        return b < 0 ? -1 : _tail[b];
    }

    /// <summary>The handle after <paramref name="handle"/> in eviction order for MFU (towards more
    /// recent, then lower frequency), or -1.</summary>
    public int NextForMfu(int handle)
    {
        int p = _prev[handle];
        if (p >= 0) return p;
        int b = _bucketPrev[_bucketOf[handle]];
        return b < 0 ? -1 : _tail[b];
    }

    /// <summary>Tracks a handle with frequency <paramref name="frequency"/> (at least 1) as the most recent of that frequency.</summary>
    public void Add(int handle, long frequency)
    {
        Debug.Assert(_bucketOf[handle] < 0, "handle already in a bucket");
        // Find the bucket with this frequency, scanning from the low end: new entries start at
        // frequency 1, so this is the first bucket or a new one before it.
        int before = -1, b = _firstBucket;
        while (b >= 0 && _freq[b] < frequency)
        {
            before = b;
            b = _bucketNext[b];
        }
        if (b < 0 || _freq[b] != frequency) b = NewBucketAfter(before, frequency);
        Link(b, handle);
    }

    /// <summary>Raises a tracked handle's frequency by one and makes it the most recent of its new frequency.</summary>
    public void Increment(int handle)
    {
        int b = _bucketOf[handle];
        long f = _freq[b] + 1;
        int nb = _bucketNext[b];
        if (nb < 0 || _freq[nb] != f) nb = NewBucketAfter(b, f);
        Unlink(handle);
        Link(nb, handle);
    }

    /// <summary>Makes a tracked handle the most recent of its frequency.</summary>
    public void Touch(int handle)
    {
        int b = _bucketOf[handle];
        Unlink(handle, freeEmpty: false);
        Link(b, handle);
    }

    public void Remove(int handle) => Unlink(handle);

    public void Clear()
    {
        Array.Fill(_bucketOf, -1);
        _firstBucket = _lastBucket = -1;
        _freeCount = _freeBuckets.Length;
        for (int i = 0; i < _freeBuckets.Length; i++) _freeBuckets[i] = _freeBuckets.Length - 1 - i;
    }

    private int NewBucketAfter(int before, long frequency)
    {
        Debug.Assert(_freeCount > 0, "bucket pool exhausted");
        int b = _freeBuckets[--_freeCount];
        _freq[b] = frequency;
        _head[b] = _tail[b] = -1;
        _size[b] = 0;
        int after = before < 0 ? _firstBucket : _bucketNext[before];
        _bucketPrev[b] = before;
        _bucketNext[b] = after;
        if (before < 0) _firstBucket = b; else _bucketNext[before] = b;
        if (after < 0) _lastBucket = b; else _bucketPrev[after] = b;
        return b;
    }

    private void Link(int b, int handle)
    {
        int h = _head[b];
        _next[handle] = h;
        _prev[handle] = -1;
        if (h >= 0) _prev[h] = handle; else _tail[b] = handle;
        _head[b] = handle;
        _bucketOf[handle] = b;
        _size[b]++;
    }

    private void Unlink(int handle, bool freeEmpty = true)
    {
        int b = _bucketOf[handle];
        Debug.Assert(b >= 0, "handle not in a bucket");
        int n = _next[handle], p = _prev[handle];
        if (p >= 0) _next[p] = n; else _head[b] = n;
        if (n >= 0) _prev[n] = p; else _tail[b] = p;
        _bucketOf[handle] = -1;
        if (--_size[b] == 0 && freeEmpty)
        {
            int bp = _bucketPrev[b], bn = _bucketNext[b];
            if (bp < 0) _firstBucket = bn; else _bucketNext[bp] = bn;
            if (bn < 0) _lastBucket = bp; else _bucketPrev[bn] = bp;
            _freeBuckets[_freeCount++] = b;
        }
    }

    public void ValidateInvariants(int expectedCount)
    {
        int seen = 0, buckets = 0;
        long lastFreq = long.MinValue;
        for (int b = _firstBucket, prevB = -1; b >= 0; prevB = b, b = _bucketNext[b])
        {
            if (++buckets > _freeBuckets.Length) throw new InvalidOperationException("bucket cycle");
            if (_bucketPrev[b] != prevB) throw new InvalidOperationException("bucket links broken");
            if (_freq[b] <= lastFreq) throw new InvalidOperationException("bucket frequencies not increasing");
            if (_size[b] <= 0) throw new InvalidOperationException("empty bucket linked");
            if (_bucketNext[b] < 0 && _lastBucket != b) throw new InvalidOperationException("last bucket wrong");
            lastFreq = _freq[b];
            int n = 0;
            for (int h = _head[b], p = -1; h >= 0; p = h, h = _next[h])
            {
                if (_bucketOf[h] != b || _prev[h] != p) throw new InvalidOperationException($"entry {h} links broken");
                if (_next[h] < 0 && _tail[b] != h) throw new InvalidOperationException("bucket tail wrong");
                if (++n > _next.Length) throw new InvalidOperationException("entry cycle");
            }
            if (n != _size[b]) throw new InvalidOperationException("bucket size wrong");
            seen += n;
        }
        if (seen != expectedCount) throw new InvalidOperationException($"buckets hold {seen} entries, expected {expectedCount}");
        if (buckets + _freeCount != _freeBuckets.Length) throw new InvalidOperationException("bucket pool leak");
    }
}

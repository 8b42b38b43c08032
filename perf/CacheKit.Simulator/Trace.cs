namespace CacheKit.Simulator;

/// <summary>
/// A request sequence held in memory, with keys mapped to dense ids in first-seen order.
/// </summary>
/// <remarks>
/// Invariants: <c>KeyIds[i]</c> is in [0, DistinctKeys); <c>Keys[id]</c> is the original key of id;
/// <c>Sizes</c> is null for unweighted traces, else <c>Sizes[i] &gt;= 1</c> is the object size in bytes
/// at request i. Dense ids let the replay targets use arrays instead of dictionaries.
/// </remarks>
public sealed class Trace
{
    private int[]? _nextUse;

    /// <summary>Creates a trace; <paramref name="keyIds"/> must be dense ids into <paramref name="keys"/>.</summary>
    public Trace(string name, int[] keyIds, long[] keys, int[]? sizes)
    {
        ArgumentNullException.ThrowIfNull(keyIds);
        ArgumentNullException.ThrowIfNull(keys);
        if (sizes is not null && sizes.Length != keyIds.Length)
        {
            throw new ArgumentException($"sizes has {sizes.Length} entries, keyIds {keyIds.Length}: they must match", nameof(sizes));
        }
        Name = name;
        KeyIds = keyIds;
        Keys = keys;
        Sizes = sizes;
        Hashes = new ulong[keys.Length];
        for (int id = 0; id < keys.Length; id++)
        {
            Hashes[id] = Hashing.Mix(keys[id]);
        }
        if (sizes is not null)
        {
            long total = 0;
            int min = int.MaxValue;
            foreach (int s in sizes)
            {
                total += s;
                min = Math.Min(min, s);
            }
            TotalBytes = total;
            MinSize = sizes.Length == 0 ? 1 : min;
        }
        else
        {
            TotalBytes = keyIds.Length;
            MinSize = 1;
        }
    }

    /// <summary>Name used in tables, charts and file names.</summary>
    public string Name { get; }

    /// <summary>Dense key id per request.</summary>
    public int[] KeyIds { get; }

    /// <summary>Original key per dense id.</summary>
    public long[] Keys { get; }

    /// <summary>64-bit key hash per dense id (what the policies see).</summary>
    public ulong[] Hashes { get; }

    /// <summary>Object size in bytes per request, or null when the trace has no sizes.</summary>
    public int[]? Sizes { get; }

    /// <summary>Whether the trace carries object sizes (byte capacity is possible).</summary>
    public bool HasSizes => Sizes is not null;

    /// <summary>Number of requests.</summary>
    public int Length => KeyIds.Length;

    /// <summary>Number of distinct keys.</summary>
    public int DistinctKeys => Keys.Length;

    /// <summary>Sum of request sizes (the request count when unsized).</summary>
    public long TotalBytes { get; }

    /// <summary>The smallest object size (1 when unsized).</summary>
    public int MinSize { get; }

    /// <summary>
    /// For each request i, the index of the next request to the same key, or <see cref="int.MaxValue"/>
    /// when there is none. Computed once, on first use (OPT needs it).
    /// </summary>
    public int[] NextUse => _nextUse ??= ComputeNextUse();

    private int[] ComputeNextUse()
    {
        var next = new int[KeyIds.Length];
        var lastSeen = new int[Keys.Length];
        Array.Fill(lastSeen, int.MaxValue);
        for (int i = KeyIds.Length - 1; i >= 0; i--)
        {
            int id = KeyIds[i];
            next[i] = lastSeen[id];
            lastSeen[id] = i;
        }
        return next;
    }

    /// <summary>Builds a trace from raw keys (and optional sizes), assigning dense ids in first-seen order.</summary>
    public static Trace FromKeys(string name, IReadOnlyList<long> rawKeys, IReadOnlyList<int>? sizes = null)
    {
        var builder = new Builder(name, sizes is not null, rawKeys.Count);
        for (int i = 0; i < rawKeys.Count; i++)
        {
            builder.Add(rawKeys[i], sizes?[i] ?? 1);
        }
        return builder.Build();
    }

    /// <summary>Incremental construction: append requests, then <see cref="Build"/>.</summary>
    public sealed class Builder
    {
        private readonly string _name;
        private readonly bool _sized;
        private readonly Dictionary<long, int> _ids;
        private readonly List<long> _keys = [];
        private readonly List<int> _keyIds;
        private readonly List<int>? _sizes;

        /// <summary>Starts an empty trace.</summary>
        public Builder(string name, bool sized, int expectedLength = 1024)
        {
            _name = name;
            _sized = sized;
            _ids = new Dictionary<long, int>(Math.Min(expectedLength, 1 << 20));
            _keyIds = new List<int>(expectedLength);
            _sizes = sized ? new List<int>(expectedLength) : null;
        }

        /// <summary>Requests appended so far.</summary>
        public int Count => _keyIds.Count;

        /// <summary>Appends one request.</summary>
        public void Add(long key, int size = 1)
        {
            if (_sized && size < 1)
            {
                throw new ArgumentOutOfRangeException(nameof(size), size, "object size must be at least 1 byte");
            }
            if (!_ids.TryGetValue(key, out int id))
            {
                id = _keys.Count;
                _ids.Add(key, id);
                _keys.Add(key);
            }
            _keyIds.Add(id);
            _sizes?.Add(size);
        }

        /// <summary>The finished trace.</summary>
        public Trace Build() => new(_name, [.. _keyIds], [.. _keys], _sizes is null ? null : [.. _sizes]);
    }
}

/// <summary>Deterministic 64-bit mixing used for key hashes and seeded random streams.</summary>
public static class Hashing
{
    /// <summary>SplitMix64 finaliser: a bijective, well-spread mix of a 64-bit key.</summary>
    public static ulong Mix(long key)
    {
        ulong z = unchecked((ulong)key + 0x9E3779B97F4A7C15UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A stable 64-bit hash of a string (FNV-1a, then mixed), for non-numeric keys and names.</summary>
    public static long OfString(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in s)
        {
            h = (h ^ c) * 1099511628211UL;
        }
        return unchecked((long)Mix(unchecked((long)h)));
    }
}

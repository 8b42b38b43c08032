using System.Globalization;
using System.Text;
using CacheKit.Simulator;

namespace CacheKit.Perf;

/// <summary>How value sizes are chosen per key.</summary>
public enum ValueMix
{
    /// <summary>Every value 100 bytes.</summary>
    Bytes100,

    /// <summary>Every value 1 KiB.</summary>
    Bytes1K,

    /// <summary>
    /// Twitter-like: each key belongs to a cluster of twitter-2020Mar-stat.md drawn with probability
    /// proportional to the cluster's request rate; its value has that cluster's mean value size (capped at 16 KiB).
    /// </summary>
    Twitter,
}

/// <summary>
/// The keys, values and access stream every cache sees: key i is the 16 ASCII characters
/// <c>key:000000000042</c> (the same 16 bytes for the byte caches), values are per key, and the
/// stream is Zipf(alpha) ranks (from the simulator's <see cref="ZipfSampler"/>) scattered over the key ids.
/// </summary>
public sealed class Workload
{
    /// <summary>Key length in bytes and characters.</summary>
    public const int KeyLength = 16;

    /// <summary>Largest value of the Twitter mix.</summary>
    public const int MaxTwitterValue = 16 * 1024;

    private Workload(int keyCount, ValueMix mix, string[] keys, byte[] keyBytes, byte[][] values, int[] stream, string[]? lookupKeys, byte[]? lookupKeyBytes)
    {
        LookupKeys = lookupKeys;
        LookupKeyBytesFlat = lookupKeyBytes;
        KeyCount = keyCount;
        Mix = mix;
        Keys = keys;
        KeyBytesFlat = keyBytes;
        Values = values;
        Stream = stream;
        MaxValueLength = values.Max(v => v.Length);
        AverageValueLength = values.Average(v => (double)v.Length);
    }

    /// <summary>Number of distinct keys.</summary>
    public int KeyCount { get; }

    /// <summary>The value mix.</summary>
    public ValueMix Mix { get; }

    /// <summary>Key strings (peers).</summary>
    public string[] Keys { get; }

    /// <summary>All keys' bytes back to back, <see cref="KeyLength"/> each (byte caches).</summary>
    public byte[] KeyBytesFlat { get; }

    /// <summary>Value of each key (arrays are shared between keys of the same size).</summary>
    public byte[][] Values { get; }

    /// <summary>Key ids in Zipf order; its length is a power of two.</summary>
    public int[] Stream { get; }

    /// <summary>Largest value length.</summary>
    public int MaxValueLength { get; }

    /// <summary>Mean value length over the keys.</summary>
    public double AverageValueLength { get; }

    /// <summary>
    /// The key of each stream position, as its own string instance (not the one stored), laid out in stream order; null when
    /// CACHEKIT_BENCH_LOOKUP=id (the former harness: gets looked up <see cref="Keys"/>[id], the very instance the object caches
    /// stored, so their key compare was a reference check, and read the key material of a scattered id from a 56 B string
    /// per key against 16 B per key for the byte caches).
    /// </summary>
    public string[]? LookupKeys { get; }

    /// <summary>The key bytes of each stream position, back to back in stream order (null as <see cref="LookupKeys"/>).</summary>
    public byte[]? LookupKeyBytesFlat { get; }

    /// <summary>The lookup key (string) of stream position <paramref name="position"/>.</summary>
    public string LookupKey(int position) => LookupKeys is { } k ? k[position] : Keys[Stream[position]];

    /// <summary>The lookup key bytes of stream position <paramref name="position"/>.</summary>
    public ReadOnlySpan<byte> LookupKeyBytes(int position)
        => LookupKeyBytesFlat is { } b ? b.AsSpan(position * KeyLength, KeyLength) : KeyBytes(Stream[position]);

    /// <summary>Whether lookups use <see cref="LookupKeys"/> (the default) rather than the stored instances (CACHEKIT_BENCH_LOOKUP=id).</summary>
    public static bool StreamOrderedLookups { get; } = Environment.GetEnvironmentVariable("CACHEKIT_BENCH_LOOKUP") != "id";

    /// <summary>The bytes of key <paramref name="id"/>.</summary>
    public ReadOnlySpan<byte> KeyBytes(int id) => KeyBytesFlat.AsSpan(id * KeyLength, KeyLength);

    /// <summary>Builds a workload.</summary>
    /// <param name="keyCount">Distinct keys.</param>
    /// <param name="mix">Value sizes.</param>
    /// <param name="streamLength">Accesses in the stream (rounded up to a power of two).</param>
    /// <param name="alpha">Zipf exponent (0.99 in the issue).</param>
    /// <param name="seed">Seed of every draw.</param>
    /// <param name="twitterStatsPath">twitter-2020Mar-stat.md (only for <see cref="ValueMix.Twitter"/>); null = look in ../shared/workloads upwards.</param>
    public static Workload Create(int keyCount, ValueMix mix, int streamLength = 1 << 20, double alpha = 0.99, ulong seed = 42, string? twitterStatsPath = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(keyCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(streamLength, 1);
        var keys = new string[keyCount];
        var keyBytes = new byte[(long)keyCount * KeyLength];
        for (int i = 0; i < keyCount; i++)
        {
            keys[i] = KeyString(i);
            Encoding.ASCII.GetBytes(keys[i], keyBytes.AsSpan(i * KeyLength, KeyLength));
        }
        byte[][] values = CreateValues(keyCount, mix, seed, twitterStatsPath);
        if (CacheAdapter.PeersReadValues)
        {
            // Keys of one size share one array (memory), which is fine while nobody reads the values. When the object
            // caches' gets copy the value they return, a shared array stays in the CPU's cache and favours them over a
            // cache whose values are all distinct: each key gets its own copy then (keyCount x size bytes).
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = (byte[])values[i].Clone();
            }
        }
        int length = (int)Math.Min(1 << 30, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)streamLength));
        int[] stream = ZipfStream(keyCount, length, alpha, seed);
        string[]? lookupKeys = null;
        byte[]? lookupKeyBytes = null;
        if (StreamOrderedLookups)
        {
            // One array of 16-byte keys per position, indexed by an int offset: at most 2^27 positions (callers use 2^18 to 2^20).
            if ((long)length * KeyLength > Array.MaxLength)
            {
                throw new ArgumentOutOfRangeException(nameof(streamLength), streamLength, $"stream-ordered lookups hold at most {Array.MaxLength / KeyLength:N0} positions (CACHEKIT_BENCH_LOOKUP=id needs none)");
            }
            // Every cache reads its lookup key sequentially (neither pays a miss for the caller's key), and the object caches
            // compare it with the stored key, a different instance, as a server's request key would be.
            lookupKeys = new string[length];
            lookupKeyBytes = new byte[(long)length * KeyLength];
            for (int i = 0; i < length; i++)
            {
                lookupKeys[i] = KeyString(stream[i]);
                FormatKey(stream[i], lookupKeyBytes.AsSpan(i * KeyLength, KeyLength));
            }
        }
        return new Workload(keyCount, mix, keys, keyBytes, values, stream, lookupKeys, lookupKeyBytes);
    }

    /// <summary>
    /// The key string of id <paramref name="id"/>: <c>key:</c> and 12 digits, formatted straight into the string.
    /// (<c>"key:" + id.ToString("D12")</c> made a throwaway 12-character string per key: filling a managed
    /// cache of 1M entries left ~20 MB of holes in its heap that a non-compacting GC keeps, ~11 B per entry of
    /// its process figure.)
    /// </summary>
    public static string KeyString(long id) => string.Create(KeyLength, id, static (chars, id) =>
    {
        "key:".CopyTo(chars);
        CheckDigits(id, id.TryFormat(chars[4..], out int written, "D12", CultureInfo.InvariantCulture), written);
    });

    /// <summary>Writes the 16 key bytes of <paramref name="id"/> into <paramref name="destination"/>.</summary>
    public static void FormatKey(long id, Span<byte> destination)
    {
        "key:"u8.CopyTo(destination);
        CheckDigits(id, id.TryFormat(destination[4..KeyLength], out int written, "D12", CultureInfo.InvariantCulture), written);
    }

    private static void CheckDigits(long id, bool formatted, int written)
    {
        if (!formatted || written != 12)
        {
            throw new ArgumentOutOfRangeException(nameof(id), id, "key ids must have at most 12 digits");
        }
    }

    /// <summary>
    /// <paramref name="length"/> Zipf(<paramref name="alpha"/>) draws over <paramref name="keyCount"/>
    /// keys; rank r maps to key id (r × an odd multiplier coprime with the count) mod count, so hot keys
    /// are spread over the key space (and over shards and buckets) instead of being the first ids.
    /// </summary>
    public static int[] ZipfStream(int keyCount, int length, double alpha, ulong seed)
    {
        var sampler = new ZipfSampler(alpha, keyCount);
        var rng = new SplitMixRandom(seed);
        long multiplier = 2654435761L;
        while (Gcd(multiplier % keyCount, keyCount) != 1)
        {
            multiplier += 2;
        }
        var stream = new int[length];
        for (int i = 0; i < length; i++)
        {
            stream[i] = (int)(sampler.Sample(rng) * multiplier % keyCount);
        }
        return stream;
    }

    private static long Gcd(long a, long b)
    {
        while (b != 0)
        {
            (a, b) = (b, a % b);
        }
        return Math.Abs(a);
    }

    private static byte[][] CreateValues(int keyCount, ValueMix mix, ulong seed, string? twitterStatsPath)
    {
        var bySize = new Dictionary<int, byte[]>();
        byte[] Of(int size)
        {
            if (!bySize.TryGetValue(size, out byte[]? v))
            {
                v = new byte[size];
                new Random(size).NextBytes(v);
                bySize[size] = v;
            }
            return v;
        }
        var values = new byte[keyCount][];
        switch (mix)
        {
            case ValueMix.Bytes100:
                Array.Fill(values, Of(100));
                break;
            case ValueMix.Bytes1K:
                Array.Fill(values, Of(1024));
                break;
            case ValueMix.Twitter:
                (int Size, double Weight)[] clusters = TwitterClusters(twitterStatsPath);
                double total = clusters.Sum(c => c.Weight);
                var rng = new SplitMixRandom(seed ^ 0x7717);
                for (int i = 0; i < keyCount; i++)
                {
                    double u = rng.NextDouble() * total;
                    int c = 0;
                    while (c < clusters.Length - 1 && u >= clusters[c].Weight)
                    {
                        u -= clusters[c].Weight;
                        c++;
                    }
                    values[i] = Of(clusters[c].Size);
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(mix), mix, "unknown value mix");
        }
        return values;
    }

    /// <summary>Value size and request-rate weight of each Twitter cluster that has both.</summary>
    public static (int Size, double Weight)[] TwitterClusters(string? path)
    {
        path ??= FindShared("workloads/twitter-2020Mar-stat.md")
            ?? throw new FileNotFoundException("twitter-2020Mar-stat.md not found in ../shared/workloads (searched upwards from the current directory and the program's folder)");
        // Request rate is not in TwitterCluster: read it from the same table.
        var rates = new Dictionary<string, double>(StringComparer.Ordinal);
        string[]? header = null;
        foreach (string line in File.ReadLines(path))
        {
            if (!line.TrimStart().StartsWith('|'))
            {
                continue;
            }
            string[] cells = line.Trim().Trim('|').Split('|').Select(c => c.Trim()).ToArray();
            if (header is null)
            {
                header = cells;
                continue;
            }
            int col = Array.FindIndex(header, h => h.StartsWith("request rate", StringComparison.OrdinalIgnoreCase));
            if (col >= 0 && cells.Length == header.Length && double.TryParse(cells[col], NumberStyles.Float, CultureInfo.InvariantCulture, out double r))
            {
                rates[cells[0]] = r;
            }
        }
        return TwitterStats.Load(path)
            .Where(c => c.ValueSize >= 1 && rates.ContainsKey(c.Name))
            .Select(c => ((int)Math.Min(MaxTwitterValue, Math.Round(c.ValueSize)), rates[c.Name]))
            .ToArray();
    }

    /// <summary>Finds <c>shared/RELATIVE</c> in a parent of the current directory or of the program's folder.</summary>
    public static string? FindShared(string relative)
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (DirectoryInfo? d = new(start); d is not null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, "shared", relative);
                if (File.Exists(candidate) || Directory.Exists(candidate))
                {
                    return candidate;
                }
                string sibling = Path.Combine(d.FullName, "..", "shared", relative);
                if (File.Exists(sibling) || Directory.Exists(sibling))
                {
                    return Path.GetFullPath(sibling);
                }
            }
        }
        return null;
    }
}

using System.Globalization;

namespace CacheKit.Simulator;

/// <summary>A small seeded generator (SplitMix64 stream): the same seed gives the same numbers on every platform.</summary>
public sealed class SplitMixRandom(ulong seed)
{
    private ulong _state = seed;

    /// <summary>Next 64 random bits.</summary>
    public ulong NextULong()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform double in [0, 1).</summary>
    public double NextDouble() => (NextULong() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, bound).</summary>
    public int Next(int bound) => (int)((NextULong() >> 33) * (ulong)bound >> 31);
}

/// <summary>Samples ranks 0..n-1 with probability proportional to 1/(rank+1)^alpha (alpha 0 is uniform).</summary>
public sealed class ZipfSampler
{
    /// <summary>The largest key count accepted (the CDF table is 8 bytes per key).</summary>
    public const int MaxKeys = 50_000_000;

    private readonly double[] _cdf;

    /// <summary>Precomputes the cumulative distribution.</summary>
    public ZipfSampler(double alpha, int keys)
    {
        if (!(alpha >= 0) || double.IsInfinity(alpha))
        {
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "Zipf alpha must be a finite number >= 0");
        }
        if (keys < 1 || keys > MaxKeys)
        {
            throw new ArgumentOutOfRangeException(nameof(keys), keys, $"Zipf key count must be in [1, {MaxKeys}]");
        }
        _cdf = new double[keys];
        double sum = 0;
        for (int i = 0; i < keys; i++)
        {
            sum += 1.0 / Math.Pow(i + 1, alpha);
            _cdf[i] = sum;
        }
        for (int i = 0; i < keys; i++)
        {
            _cdf[i] /= sum;
        }
        _cdf[^1] = 1.0;
    }

    /// <summary>Draws one rank.</summary>
    public int Sample(SplitMixRandom rng)
    {
        double u = rng.NextDouble();
        int i = Array.BinarySearch(_cdf, u);
        return i >= 0 ? i : Math.Min(~i, _cdf.Length - 1);
    }
}

/// <summary>
/// Synthetic workloads, all seeded and deterministic. Syntax (the <c>--synthetic</c> value):
/// <list type="bullet">
/// <item><c>zipf:ALPHA:KEYS:N</c> — N requests, Zipf(ALPHA) over KEYS keys.</item>
/// <item><c>scan[:KEYS[:N]]</c> — Zipf(0.9) over KEYS hot keys for 3*KEYS requests, then a scan of KEYS
/// never-seen keys, repeated to N (defaults 10000, 200000): scan resistance.</item>
/// <item><c>loop[:KEYS[:N]]</c> — keys 0..KEYS-1 in a cycle (defaults 1000, 100000): LRU gets 0 below KEYS.</item>
/// <item><c>phases[:KEYS[:N]]</c> — thirds: Zipf(0.9) over KEYS; a recency-heavy stream (half the
/// requests are new keys, the rest re-read one of the last 64 new keys); Zipf(0.9) over the first
/// phase's keys again (defaults 10000, 300000): for the adaptive window.</item>
/// <item><c>twitter:CLUSTER[:KEYS[:N]]</c> — a mix shaped by one cluster of
/// twitter-2020Mar-stat.md: its Zipf alpha over KEYS keys, a compulsory-miss fraction of requests to
/// never-seen keys, and object sizes of key size + value size with a per-key log-normal spread
/// (sigma 0.5, same mean), so byte budgets work (defaults 100000, 1000000).</item>
/// </list>
/// </summary>
public static class Synthetic
{
    /// <summary>Builds the workload described by <paramref name="spec"/>.</summary>
    /// <param name="spec">The workload (see the type's remarks).</param>
    /// <param name="seed">Seed of every random draw.</param>
    /// <param name="twitterStatsPath">Path of twitter-2020Mar-stat.md (only for <c>twitter:</c>).</param>
    public static Trace Create(string spec, ulong seed, string? twitterStatsPath)
    {
        string[] p = spec.Split(':', StringSplitOptions.TrimEntries);
        string kind = p[0].ToLowerInvariant();
        var rng = new SplitMixRandom(seed ^ (ulong)Hashing.OfString(spec));
        return kind switch
        {
            "zipf" when p.Length == 4 => Zipf(spec, ParseDouble(p[1], "ALPHA"), ParseInt(p[2], "KEYS"), ParseInt(p[3], "N"), rng),
            "zipf" => throw new ArgumentException($"--synthetic zipf needs zipf:ALPHA:KEYS:N (got '{spec}')", nameof(spec)),
            "scan" => Scan(spec, Arg(p, 1, 10_000, "KEYS"), Arg(p, 2, 200_000, "N"), rng),
            "loop" => Loop(spec, Arg(p, 1, 1_000, "KEYS"), Arg(p, 2, 100_000, "N")),
            "phases" => Phases(spec, Arg(p, 1, 10_000, "KEYS"), Arg(p, 2, 300_000, "N"), rng),
            "twitter" when p.Length >= 2 => Twitter(spec, p[1], Arg(p, 2, 100_000, "KEYS"), Arg(p, 3, 1_000_000, "N"), rng,
                twitterStatsPath ?? throw new ArgumentException("twitter workloads need the statistics file (--twitter-stats PATH)", nameof(twitterStatsPath))),
            _ => throw new ArgumentException(
                $"unknown --synthetic '{spec}': use zipf:ALPHA:KEYS:N, scan[:KEYS[:N]], loop[:KEYS[:N]], phases[:KEYS[:N]] or twitter:CLUSTER[:KEYS[:N]]",
                nameof(spec)),
        };
    }

    private static Trace Zipf(string name, double alpha, int keys, int n, SplitMixRandom rng)
    {
        var zipf = new ZipfSampler(alpha, keys);
        var b = new Trace.Builder(name, false, n);
        for (int i = 0; i < n; i++)
        {
            b.Add(zipf.Sample(rng));
        }
        return b.Build();
    }

    private static Trace Scan(string name, int keys, int n, SplitMixRandom rng)
    {
        var zipf = new ZipfSampler(0.9, keys);
        var b = new Trace.Builder(name, false, n);
        long fresh = keys;
        while (b.Count < n)
        {
            for (int i = 0; i < 3 * keys && b.Count < n; i++)
            {
                b.Add(zipf.Sample(rng));
            }
            for (int i = 0; i < keys && b.Count < n; i++)
            {
                b.Add(fresh++);
            }
        }
        return b.Build();
    }

    private static Trace Loop(string name, int keys, int n)
    {
        var b = new Trace.Builder(name, false, n);
        for (int i = 0; i < n; i++)
        {
            b.Add(i % keys);
        }
        return b.Build();
    }

    private static Trace Phases(string name, int keys, int n, SplitMixRandom rng)
    {
        var zipf = new ZipfSampler(0.9, keys);
        var b = new Trace.Builder(name, false, n);
        int third = n / 3;
        for (int i = 0; i < third; i++)
        {
            b.Add(zipf.Sample(rng));
        }
        long fresh = keys;
        for (int i = 0; i < third; i++)
        {
            if (rng.Next(2) == 0 || fresh == keys)
            {
                b.Add(fresh++);
            }
            else
            {
                int back = 1 + rng.Next((int)Math.Min(64, fresh - keys));
                b.Add(fresh - back);
            }
        }
        while (b.Count < n)
        {
            b.Add(zipf.Sample(rng));
        }
        return b.Build();
    }

    private static Trace Twitter(string name, string cluster, int keys, int n, SplitMixRandom rng, string statsPath)
    {
        TwitterCluster c = TwitterStats.Load(statsPath).FirstOrDefault(x => string.Equals(x.Name, cluster, StringComparison.OrdinalIgnoreCase)
                || string.Equals(x.Name, "cluster" + cluster, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"cluster '{cluster}' has no usable row (sizes and alpha) in {statsPath}", nameof(cluster));
        var zipf = new ZipfSampler(c.ZipfAlpha, keys);
        double meanSize = c.KeySize + c.ValueSize;
        const double sigma = 0.5;
        double fresh = c.CompulsoryMissRatio;
        var b = new Trace.Builder(name, true, n);
        long nextFresh = keys;
        for (int i = 0; i < n; i++)
        {
            long key = rng.NextDouble() < fresh ? nextFresh++ : zipf.Sample(rng);
            b.Add(key, SizeOf(key, meanSize, sigma));
        }
        return b.Build();
    }

    /// <summary>A per-key log-normal size with the given mean, derived from the key's hash (stable per key).</summary>
    private static int SizeOf(long key, double mean, double sigma)
    {
        ulong h = Hashing.Mix(key ^ 0x51ED);
        // Two uniforms from the hash, Box-Muller to a standard normal.
        double u1 = ((h >> 11) + 1.0) / ((1UL << 53) + 1.0);
        double u2 = (Hashing.Mix(unchecked((long)h)) >> 11) * (1.0 / (1UL << 53));
        double z = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        double size = mean * Math.Exp(sigma * z - sigma * sigma / 2);
        return (int)Math.Clamp(Math.Round(size), 1, int.MaxValue);
    }

    private static int Arg(string[] p, int index, int fallback, string what) => p.Length > index ? ParseInt(p[index], what) : fallback;

    /// <summary>The most requests a synthetic workload may have (4 bytes of key id each, and more for the replays).</summary>
    public const int MaxRequests = 200_000_000;

    private static int ParseInt(string s, string what)
    {
        // N is bounded (2^31 - 1 requests ran out of memory building the list; found by review); key counts are
        // bounded by each generator (Zipf: ZipfSampler.MaxKeys).
        int max = what == "N" ? MaxRequests : int.MaxValue;
        if (!int.TryParse(s.Replace("_", "", StringComparison.Ordinal), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < 1 || v > max)
        {
            throw new ArgumentException($"{what} must be an integer in [1, {max:N0}] (got '{s}')", what);
        }
        return v;
    }

    private static double ParseDouble(string s, string what)
    {
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
        {
            throw new ArgumentException($"{what} must be a number (got '{s}')", what);
        }
        return v;
    }
}

/// <summary>One row of twitter-2020Mar-stat.md that has sizes and a Zipf alpha.</summary>
public sealed record TwitterCluster(string Name, double KeySize, double ValueSize, double ZipfAlpha, double CompulsoryMissRatio);

/// <summary>Parses the Twitter cluster statistics (a markdown table).</summary>
public static class TwitterStats
{
    /// <summary>Rows with numeric key size, value size and alpha; others (N/A, NA) are skipped.</summary>
    public static IReadOnlyList<TwitterCluster> Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Twitter statistics file not found: {path}", path);
        }
        var rows = new List<TwitterCluster>();
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
            if (cells.Length != header.Length || cells[0].StartsWith(':'))
            {
                continue;
            }
            int Col(string prefix) => Array.FindIndex(header, h => h.StartsWith(prefix, StringComparison.OrdinalIgnoreCase));
            if (TryNum(cells, Col("key size"), out double ks) && TryNum(cells, Col("value size"), out double vs)
                && TryNum(cells, Col("Zipf alpha"), out double alpha))
            {
                TryNum(cells, Col("compulsory miss"), out double compulsory);
                rows.Add(new TwitterCluster(cells[0], ks, vs, alpha, compulsory / 100.0));
            }
        }
        return rows;
    }

    private static bool TryNum(string[] cells, int col, out double value)
    {
        value = 0;
        return col >= 0 && double.TryParse(cells[col], NumberStyles.Float, CultureInfo.InvariantCulture, out value);
    }
}

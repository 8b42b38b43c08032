using System.Globalization;
using CacheKit.Slab;

namespace CacheKit.Benchmarks.Slab;

/// <summary>
/// Internal fragmentation (chunk bytes handed out / bytes requested) of the default size classes against memcached-like
/// x1.25 classes, for entry sizes drawn per Twitter cluster from ../shared/workloads/twitter-2020Mar-stat.md.
/// Run: <c>dotnet run -c Release --project perf/CacheKit.Benchmarks -- fragmentation [--sigma S] [--header H] [--samples N] [--stats PATH]</c>.
/// </summary>
/// <remarks>
/// The statistics file gives one mean key size and one mean value size per cluster, not the distribution, so each
/// request is key + value + header with key and value drawn independently from log-normal distributions with those
/// means and shape <c>sigma</c> (default 0.5; sigma 0 = every request exactly the means). Every cluster gets the
/// same number of samples; "overall" weighs clusters equally. Requests above the largest class (1 MiB) are skipped
/// and counted.
/// </remarks>
internal static class FragmentationReport
{
    private const int PageSize = 1 << 20;

    public static int Run(string[] args)
    {
        double sigma = 0.5;
        int header = 0;
        int samples = 100_000;
        string path = Path.Combine("..", "shared", "workloads", "twitter-2020Mar-stat.md");
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--sigma": sigma = double.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--header": header = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--samples": samples = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--stats": path = args[i + 1]; break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        }

        if (!File.Exists(path))
        {
            Console.Error.WriteLine($"Twitter statistics not found at {Path.GetFullPath(path)}; run from the repository root or pass --stats PATH.");
            return 1;
        }

        List<Cluster> clusters = ParseClusters(File.ReadAllLines(path));
        var tables = new (string Name, SizeClassTable Table)[]
        {
            ("default", SizeClassTable.CreateDefault(PageSize)),
            ("x1.25", SizeClassTable.CreateGeometric(PageSize, 16, 1.25)),
        };

        Console.WriteLine($"Internal fragmentation = chunk bytes handed out / bytes requested; {clusters.Count} clusters from {path}");
        Console.WriteLine($"request = key + value + {header} B header; key, value ~ log-normal(mean from the file, sigma {sigma.ToString(CultureInfo.InvariantCulture)}); {samples} samples per cluster; page {PageSize >> 20} MiB");
        Console.WriteLine($"classes: default {tables[0].Table.Count}, x1.25 (memcached rule from 16 B) {tables[1].Table.Count}");
        Console.WriteLine();
        Console.WriteLine($"{"cluster",-10} {"key",6} {"value",7} {"default",8} {"x1.25",8}");
        var totalHanded = new double[tables.Length];
        double totalRequested = 0;
        long skipped = 0;
        for (int ci = 0; ci < clusters.Count; ci++)
        {
            Cluster cluster = clusters[ci];
            var rng = new Random(12345 + ci); // seeded per cluster: the report is reproducible
            var handed = new long[tables.Length];
            long requested = 0;
            for (int i = 0; i < samples; i++)
            {
                long size = Draw(rng, cluster.KeySize, sigma) + Draw(rng, cluster.ValueSize, sigma) + header;
                size = Math.Max(size, 1);
                if (size > PageSize)
                {
                    skipped++;
                    continue;
                }

                requested += size;
                for (int t = 0; t < tables.Length; t++)
                {
                    handed[t] += tables[t].Table[tables[t].Table.ClassOf((int)size)];
                }
            }

            Console.WriteLine($"{cluster.Name,-10} {cluster.KeySize,6} {cluster.ValueSize,7} {(double)handed[0] / requested,8:F4} {(double)handed[1] / requested,8:F4}");
            for (int t = 0; t < tables.Length; t++)
            {
                totalHanded[t] += (double)handed[t] / requested; // clusters weigh equally
            }

            totalRequested += 1;
        }

        Console.WriteLine($"{"overall",-10} {"",6} {"",7} {totalHanded[0] / totalRequested,8:F4} {totalHanded[1] / totalRequested,8:F4}   (mean of per-cluster ratios)");
        if (skipped > 0)
        {
            Console.WriteLine($"{skipped} requests above {PageSize} B skipped");
        }

        return 0;
    }

    /// <summary>A log-normal draw with the given mean (sigma 0: exactly the mean), rounded to whole bytes.</summary>
    private static long Draw(Random rng, double mean, double sigma)
    {
        if (sigma == 0 || mean <= 0)
        {
            return (long)Math.Round(mean);
        }

        double u1 = 1.0 - rng.NextDouble();
        double u2 = rng.NextDouble();
        double normal = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
        double mu = Math.Log(mean) - (sigma * sigma / 2);
        return (long)Math.Round(Math.Exp(mu + (sigma * normal)));
    }

    /// <summary>Rows of the markdown table with numeric key and value sizes (clusters marked N/A are left out).</summary>
    private static List<Cluster> ParseClusters(string[] lines)
    {
        int nameColumn = -1, keyColumn = -1, valueColumn = -1;
        var clusters = new List<Cluster>();
        foreach (string line in lines)
        {
            if (!line.TrimStart().StartsWith('|'))
            {
                continue;
            }

            string[] cells = [.. line.Split('|').Select(c => c.Trim())];
            if (keyColumn < 0)
            {
                nameColumn = Array.IndexOf(cells, "cluster");
                keyColumn = Array.IndexOf(cells, "key size");
                valueColumn = Array.IndexOf(cells, "value size");
                if (nameColumn < 0 || keyColumn < 0 || valueColumn < 0)
                {
                    throw new InvalidDataException("the statistics table needs the columns 'cluster', 'key size' and 'value size'");
                }

                continue;
            }

            if (cells.Length <= valueColumn
                || !int.TryParse(cells[keyColumn], NumberStyles.Integer, CultureInfo.InvariantCulture, out int key)
                || !int.TryParse(cells[valueColumn], NumberStyles.Integer, CultureInfo.InvariantCulture, out int value))
            {
                continue; // the alignment row, or a cluster without sizes
            }

            clusters.Add(new Cluster(cells[nameColumn], key, value));
        }

        return clusters;
    }

    private sealed record Cluster(string Name, int KeySize, int ValueSize);
}

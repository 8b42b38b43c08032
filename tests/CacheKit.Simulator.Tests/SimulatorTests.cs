using CacheKit.Policies;
using CacheKit.Simulator;

namespace CacheKit.Simulator.Tests;

/// <summary>
/// Runs the simulator's own checks (OPT against brute force, the trace readers, the driver against a
/// reference LRU, determinism) in the test suite, and reads the shared traces with the counts their
/// README gives, so a broken reader or OPT fails CI instead of silently skewing every table.
/// </summary>
public sealed class SimulatorTests
{
    [Test]
    public void Self_test_passes_every_check()
    {
        using var output = new StringWriter();
        bool passed = SelfTest.Run(output);
        TestContext.Out.WriteLine(output.ToString());
        Assert.That(passed, Is.True, output.ToString());
    }

    // Distinct key counts from ../shared/traces/README.md; its gli count (2,530) includes the one
    // '*' checkpoint line, which format A says to skip, so the reader finds 2,529 keys.
    [TestCase("gli.trace.gz", TraceFormat.A, 2529)]
    [TestCase("multi1.trace.gz", TraceFormat.A, 2606)]
    [TestCase("web07.trace.gz", TraceFormat.B, 20484)]
    [TestCase("adaptsize-request.trace.gz", TraceFormat.C, 36815)]
    public void Shared_traces_read_with_the_distinct_key_counts_of_their_readme(string file, TraceFormat format, int distinctKeys)
    {
        string path = FindTrace(file);
        Trace trace = TraceReaders.Read(path, format);
        Assert.That(trace.DistinctKeys, Is.EqualTo(distinctKeys));
        Assert.That(trace.HasSizes, Is.EqualTo(format == TraceFormat.C));
    }

    [Test]
    public void An_object_that_grows_past_the_budget_on_a_hit_is_removed_and_the_others_stay()
    {
        // Byte capacity 100: nine objects of 10, then object 5 grows to 200. Updating its weight would make
        // W-TinyLFU (and LRU) evict every other object first; it is removed instead (a hit: it was found).
        var policy = PolicyFactory.Create(PolicyKind.WTinyLfu, new PolicyOptions { Capacity = 100, MaxHandles = 16 });
        var target = new PolicyTarget("w", policy, distinctKeys: 10, maxEntries: 16);
        for (int k = 0; k < 9; k++)
        {
            Assert.That(target.Access(new Request(k, k, unchecked((ulong)(k + 1) * 0x9E3779B97F4A7C15UL), 10)), Is.False);
        }
        target.Access(new Request(9, 5, unchecked(6UL * 0x9E3779B97F4A7C15UL), 10));   // a hit, then into protected
        Assert.That(target.Access(new Request(10, 5, unchecked(6UL * 0x9E3779B97F4A7C15UL), 200)), Is.True);
        Assert.That((policy.Count, policy.Weight), Is.EqualTo((8, 80L)));

        var opt = new OptTarget(Trace.FromKeys("t", [0, 1, 1, 0], [10, 10, 200, 10]), new Capacity(100, Weighted: true));
        opt.Access(new Request(0, 0, 1, 10));
        opt.Access(new Request(1, 1, 2, 10));
        Assert.That(opt.Access(new Request(2, 1, 2, 200)), Is.True);
        Assert.That(opt.Used, Is.EqualTo(10), "OPT drops the grown object, keeps the other");
    }

    [Test]
    public void Seed_spread_repeats_the_main_run_for_its_seed_and_restores_the_seed()
    {
        string tracesDir = Path.GetDirectoryName(FindTrace("gli.trace.gz"))!;
        string outDir = Path.Combine(Path.GetTempPath(), "cachekit-seed-spread-" + Environment.ProcessId);
        int seedBefore = Catalog.Seed;
        try
        {
            using var log = new StringWriter();
            Suite.Run("lirs", tracesDir, outDir, jobs: 2, "test", new PlainProgress(TextWriter.Null, perCell: false), log, "wtinylfu,lru,opt", extraSeeds: [1]);
            Assert.That(Catalog.Seed, Is.EqualTo(seedBefore), "the seed is restored after the extra runs");
            string md = File.ReadAllText(Path.Combine(outDir, "hit-ratios.md"));
            string[] rows = [.. md[md.IndexOf("## Seed spread", StringComparison.Ordinal)..].Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal) && !l.StartsWith("| seed", StringComparison.Ordinal) && !l.StartsWith("| ---", StringComparison.Ordinal))];
            Assert.That(rows, Has.Length.EqualTo(3), "one row per seed and the mean");
            // The main seed's row recomputes the bar's figure for the tables above, from the same cells, and the bar is
            // decided on the mean row (a bar a seed moves by hashing alone is not decided by one seed).
            var bar = System.Text.RegularExpressions.Regex.Match(md, @"over the LIRS set \(\d+ cells[^)]*\) is ([0-9.]+) points on the mean of 2 seeds \(([0-9.]+) on the tables' seed\)");
            Assert.That(bar.Success, Is.True, "the OPT-gap bar states the mean over the seeds");
            Assert.That(rows[0], Does.StartWith($"| {seedBefore} (the tables above) | {bar.Groups[2].Value} |"));
            Assert.That(rows[2], Does.StartWith($"| mean of 2 | **{bar.Groups[1].Value}** |"));
            Assert.That(rows[1], Does.StartWith("| 1 | "));
            Assert.That(rows[1], Is.Not.EqualTo(rows[0].Replace($"{seedBefore} (the tables above)", "1", StringComparison.Ordinal)), "another seed hashes differently");
        }
        finally
        {
            Catalog.Seed = seedBefore;
            if (Directory.Exists(outDir))
            {
                Directory.Delete(outDir, recursive: true);
            }
        }
    }

    private static string FindTrace(string file)
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CacheKit.OffHeap.sln")))
            {
                string path = Path.Combine(dir.FullName, "..", "shared", "traces", file);
                if (!File.Exists(path))
                {
                    Assert.Ignore($"shared traces not found at {Path.GetFullPath(path)}; they sit beside the repository root");
                }
                return path;
            }
        }
        throw new InvalidOperationException("repository root (CacheKit.OffHeap.sln) not found above the test directory");
    }
}

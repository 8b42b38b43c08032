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
    public void A_cut_short_or_empty_trace_is_refused_naming_the_file()
    {
        // GZipStream ends a truncated file quietly: a cut-off trace replayed as a shorter one, its last key cut short too,
        // and printed a table with exit code 0 (found by review, 2026-11-30). Now the data is checked against the trailer.
        string dir = Path.Combine(Path.GetTempPath(), "cachekit-sim-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            byte[] whole = File.ReadAllBytes(FindTrace("cs.trace.gz"));
            string cut = Path.Combine(dir, "cut.trace.gz");
            File.WriteAllBytes(cut, whole[..3000]);
            Assert.That(() => TraceReaders.Read(cut, TraceFormat.A),
                Throws.InstanceOf<InvalidDataException>().With.Message.StartsWith(cut).And.Message.Contains("cut short or corrupt"));
            string lastByteFlipped = Path.Combine(dir, "flipped.trace.gz");
            byte[] flipped = [.. whole];
            flipped[^5] ^= 1;   // a byte of the trailer's CRC-32
            File.WriteAllBytes(lastByteFlipped, flipped);
            Assert.That(() => TraceReaders.Read(lastByteFlipped, TraceFormat.A), Throws.InstanceOf<InvalidDataException>());
            string twoMembers = Path.Combine(dir, "two.trace.gz");
            File.WriteAllBytes(twoMembers, [.. whole, .. whole]);
            Assert.That(() => TraceReaders.Read(twoMembers, TraceFormat.A),
                Throws.InstanceOf<InvalidDataException>().With.Message.Contains("several gzip members"));
            string empty = Path.Combine(dir, "empty.txt");
            File.WriteAllText(empty, "*\n\n*\n");
            Assert.That(() => TraceReaders.Read(empty, TraceFormat.A),
                Throws.InstanceOf<InvalidDataException>().With.Message.StartsWith(empty).And.Message.Contains("no requests"));
            string notGzip = Path.Combine(dir, "bad.gz");
            File.WriteAllBytes(notGzip, [0x1F, 0x8B, (byte)'h', (byte)'e', (byte)'l', (byte)'l', (byte)'o']);
            Assert.That(() => TraceReaders.Read(notGzip, TraceFormat.A), Throws.InstanceOf<InvalidDataException>().With.Message.StartsWith(notGzip));
            Assert.That(TraceReaders.Read(FindTrace("cs.trace.gz"), TraceFormat.A).Length, Is.EqualTo(6781), "a whole file reads as before");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestCase("--seed", "99999999999")]
    [TestCase("--seed", "abc")]
    [TestCase("--jobs", "-3")]
    [TestCase("--jobs", "0")]
    [TestCase("--policies", ",")]
    [TestCase("--synthetic", "loop:1:2147483647")]
    public void A_bad_option_value_is_an_error_naming_the_option_with_exit_code_2(string option, string value)
    {
        // Each of these crashed with an unhandled exception (exit 134), or was taken silently (found by review, 2026-11-30).
        string[] args = option == "--synthetic"
            ? [option, value, "--sizes", "5", "--policies", "lru"]
            : ["--synthetic", "loop:10:100", "--sizes", "5", "--policies", "lru", option, value];
        (int code, string error) = RunSimulator(args);
        Assert.That(code, Is.EqualTo(2), error);
        Assert.That(error, Does.StartWith("error: ").And.Contain(option == "--synthetic" ? "N must be" : option.TrimStart('-')));
    }

    [Test]
    public void An_output_folder_that_is_a_file_or_an_option_taken_as_a_value_is_refused_before_any_replay()
    {
        string file = Path.GetTempFileName();
        try
        {
            (int code, string error) = RunSimulator(["--synthetic", "loop:10:100", "--sizes", "5", "--policies", "lru", "--out", file]);
            Assert.That((code, error), Is.EqualTo((2, $"error: --out {file} is a file, not a folder (Parameter 'out')")));
            (code, error) = RunSimulator(["--synthetic", "loop:10:100", "--sizes", "5", "--out", "--admission"]);
            Assert.That((code, error), Is.EqualTo((2, "error: --out needs a value (Parameter 'args')")), "not a folder named '--admission'");
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static (int Code, string Error) RunSimulator(string[] args)
    {
        TextWriter savedError = Console.Error;
        using var error = new StringWriter();
        Console.SetError(error);
        try
        {
            return (SimulatorMain.Run(args), error.ToString().Trim());
        }
        finally
        {
            Console.SetError(savedError);
        }
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
    public void Opt_on_the_textbook_reference_string_hits_12_times_with_3_entries()
    {
        // The classic reference string (Silberschatz et al.) with 3 frames: demand-paging OPT faults 9 times (11 hits)
        // because it must store every missed page. This OPT may decline to store the newcomer when it is the key used
        // furthest ahead (Caffeine's convention, whose published OPT figures the suite reproduces): at request 7 (key 4,
        // never used again) it keeps 0, 2, 3 and gains the hit on 0 at request 10. Worked by hand: hits at requests
        // 4, 6, 8, 9, 10, 11, 12, 14, 15, 16, 18, 19 (0-based).
        long[] keys = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1];
        Trace trace = Trace.FromKeys("textbook", keys);
        var opt = new OptTarget(trace, new Capacity(3, Weighted: false));
        var hits = new List<int>();
        for (int i = 0; i < trace.Length; i++)
        {
            if (opt.Access(new Request(i, trace.KeyIds[i], trace.Hashes[trace.KeyIds[i]], 1)))
            {
                hits.Add(i);
            }
        }
        Assert.That(hits, Is.EqualTo(new[] { 4, 6, 8, 9, 10, 11, 12, 14, 15, 16, 18, 19 }));
    }

    [Test]
    public void Format_C_keys_are_tokens_so_007_and_7_are_two_keys()
    {
        string path = Path.Combine(Path.GetTempPath(), "cachekit-format-c-" + Environment.ProcessId + ".txt");
        try
        {
            File.WriteAllText(path, "1 007 10\n2 7 10\n3 +7 10\n4 abc 10\n5 007 10\n6 -3 10\n7 -3 10\n");
            Trace trace = TraceReaders.Read(path, TraceFormat.C);
            Assert.That(trace.Length, Is.EqualTo(7));
            Assert.That(trace.DistinctKeys, Is.EqualTo(5), "007, 7, +7, abc and -3 (a leading zero or plus makes another token)");
            Assert.That(trace.KeyIds[4], Is.EqualTo(trace.KeyIds[0]), "007 again");
            Assert.That(trace.Keys[trace.KeyIds[1]], Is.EqualTo(7), "a canonical integer is the key itself");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void Engine_rows_take_a_shard_count_after_an_at_sign()
    {
        List<TargetSpec> specs = Catalog.Build("noopt,engine,engine@4,engine:lru@2,engine@256", admission: false, windows: [], readDrops: []);
        Assert.That(specs.Select(s => s.Name), Is.EqualTo(new[] { "Engine(W-TinyLFU)", "Engine(W-TinyLFU, 4 shards)", "Engine(LRU, 2 shards)", "Engine(W-TinyLFU, 256 shards)" }));

        // 256 shards: the cache is built with room for a page per shard, and a size below the shard count is skipped.
        Trace trace = Trace.FromKeys("t", [7, 8, 7]);
        TargetSpec wide = specs[^1];
        Assert.That(wide.Create(trace, new Capacity(100, Weighted: false)), Is.Null, "fewer entries than shards: no row");
        using var target = (EngineTarget)wide.Create(trace, new Capacity(1_000, Weighted: false))!;
        bool[] hits = [.. Enumerable.Range(0, 3).Select(i => target.Access(new Request(i, trace.KeyIds[i], trace.Hashes[trace.KeyIds[i]], 1)))];
        Assert.That(hits, Is.EqualTo(new[] { false, false, true }), "the third request hits");

        foreach (string bad in new[] { "engine@3", "engine@0", "engine@512", "engine:lru@x" })
        {
            var e = Assert.Throws<ArgumentException>(() => Catalog.Build(bad, admission: false, windows: [], readDrops: []), bad);
            Assert.That(e!.Message, Does.Contain("power of two from 1 to 256"), bad);
        }
    }

    [Test]
    public void Engine_rows_under_a_byte_budget_store_each_object_at_its_size_and_note_what_they_could_not_store()
    {
        TargetSpec engine = Catalog.Build("noopt,engine", admission: false, windows: [], readDrops: [])[0];
        const long Budget = 4L << 20;
        // Keys 1 and 2 small, key 3 larger than the engine's largest value at this budget (57,328 B with 64 KiB pages),
        // key 1 again with a new size: a hit, then stored at the new size.
        Trace trace = Trace.FromKeys("sized", [1, 2, 1, 3, 3, 2, 1, 1], [100, 2_000, 100, 100_000, 100_000, 2_000, 500, 500]);
        TraceResults results = Runner.Run(trace, [new Capacity(Budget, Weighted: true)], [engine], jobs: 1, new PlainProgress(TextWriter.Null, perCell: false));
        CellResult cell = results.Get(engine.Name, new Capacity(Budget, Weighted: true))!;

        Assert.That(cell.Hits, Is.EqualTo(4), "the second 1, the second 2 and the last two 1s hit (a size change is a hit, then an overwrite); the oversized 3 never does");
        Assert.That(cell.ByteHits, Is.EqualTo(100 + 2_000 + 500 + 500), "byte hits count the request's size");
        Assert.That(cell.Note, Does.StartWith("2 requests above the engine's largest value (57,328 B) not stored; at the end 2 entries held"), cell.Note);
        Assert.That(Report.Markdown(results), Does.Contain("- Engine(W-TinyLFU) at 4 MiB: 2 requests above"), "the note is printed under the tables");

        // A budget too small for the shards' pages and index: no cell, not an exception.
        TargetSpec wide = Catalog.Build("noopt,engine@256", admission: false, windows: [], readDrops: [])[0];
        Assert.That(wide.Create(trace, new Capacity(Budget, Weighted: true)), Is.Null);
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

using System.Diagnostics;
using System.Globalization;
using System.Text;
using CacheKit.Policies;

namespace CacheKit.Simulator;

/// <summary>One trace of ../shared/traces with the sizes its README lists.</summary>
/// <param name="File">File name in the traces folder.</param>
/// <param name="Format">Its format.</param>
/// <param name="Sizes">Capacities: entries, or bytes when <paramref name="Weighted"/>.</param>
/// <param name="Weighted">Byte capacity.</param>
/// <param name="Lirs">Run by the <c>lirs</c> suite: the traces of the LIRS distribution at the README's LIRS sizes.</param>
/// <param name="LabelledLirsSet">Labelled "(LIRS set)" in the traces README's table. Only <c>loop</c>, a pure
/// loop run with them, is not; the README's list of sizes "for the LIRS set" names it too, so its membership
/// is ambiguous and the OPT-gap bar is decided on the labelled set, the stricter reading (loop is where the
/// default policy comes closest to OPT).</param>
public sealed record SuiteTrace(string File, TraceFormat Format, long[] Sizes, bool Weighted, bool Lirs, bool LabelledLirsSet = true)
{
    /// <summary>The trace's name ("gli").</summary>
    public string Name => TraceReaders.NameOf(File);

    /// <summary>Counted in the OPT-gap bar's average.</summary>
    public bool InGapSet => Lirs && LabelledLirsSet;

    /// <summary>The capacities as <see cref="Capacity"/> values.</summary>
    public IReadOnlyList<Capacity> Capacities => Sizes.Select(s => new Capacity(s, Weighted)).ToList();
}

/// <summary>The suites: every trace at its README sizes, the quality bars, read-drop and adaptivity sections.</summary>
public static class Suite
{
    private const long MiB = 1L << 20;

    /// <summary>The traces of ../shared/traces/README.md and their sizes.</summary>
    public static readonly SuiteTrace[] Traces =
    [
        new("2_pools.trace.gz", TraceFormat.A, [100, 500, 1000], false, true),
        new("backf.trace.gz", TraceFormat.A, [100, 200, 400, 800, 1000], false, true),
        new("cpp.trace.gz", TraceFormat.A, [100, 200, 400, 800, 1000], false, true),
        new("cs.trace.gz", TraceFormat.A, [100, 200, 400, 800, 1000], false, true),
        new("gli.trace.gz", TraceFormat.A, [250, 500, 750, 1000, 1250, 1500, 2000], false, true),
        new("loop.trace.gz", TraceFormat.A, [100, 500, 1000], false, true, LabelledLirsSet: false),
        new("multi1.trace.gz", TraceFormat.A, [100, 500, 1000, 2000, 5000], false, true),
        new("multi2.trace.gz", TraceFormat.A, [100, 500, 1000, 2000, 5000], false, true),
        new("multi3.trace.gz", TraceFormat.A, [100, 500, 1000, 2000, 5000], false, true),
        new("ps.trace.gz", TraceFormat.A, [100, 200, 400, 800, 1000], false, true),
        new("scan.trace.gz", TraceFormat.A, [100, 500, 1000], false, true),
        new("sprite.trace.gz", TraceFormat.A, [100, 500, 1000, 2000, 5000], false, true),
        new("zigzag.trace.gz", TraceFormat.A, [100, 500, 1000], false, true),
        new("web07.trace.gz", TraceFormat.B, [500, 1000, 2000, 4000, 8000], false, false),
        new("adaptsize-request.trace.gz", TraceFormat.C, [4 * MiB, 16 * MiB, 64 * MiB, 256 * MiB], true, false),
    ];

    /// <summary>Caffeine's published W-TinyLFU hit ratios (issue 3's bar): trace, size, percent.</summary>
    public static readonly (string Trace, long Size, double Percent)[] CaffeineBars =
    [
        ("gli", 250, 15.15), ("gli", 500, 33.08), ("gli", 750, 43.11), ("multi1", 500, 56.11),
    ];

    /// <summary>The eviction policies the suite also runs behind TinyLFU admission (rows "LRU+TinyLFU", ...).</summary>
    public static readonly PolicyKind[] AdmissionRows = [PolicyKind.Lru, PolicyKind.Sieve];

    /// <summary>Fixed windows compared with the adaptive one.</summary>
    public static readonly double[] FixedWindows = [0.01, 0.1, 0.2, 0.5, 0.8];

    /// <summary>Fractions of hits dropped in the read-buffer section.</summary>
    public static readonly double[] ReadDrops = [0.1, 0.25, 0.5];

    /// <summary>Looks a trace up by file or trace name.</summary>
    public static SuiteTrace? Find(string pathOrName)
    {
        string name = TraceReaders.NameOf(pathOrName);
        return Traces.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Runs a suite ("lirs" or "all") and writes <c>hit-ratios.md</c>, <c>hit-ratios/*.png</c> and <c>hit-ratios/all.csv</c> under <paramref name="outDir"/>.</summary>
    /// <param name="policies">The rows of the trace tables (a <c>--policies</c> list); with anything but "all" the
    /// read-drop section is skipped: a quick check of the bars, e.g. "wtinylfu,lru,concurrentlfu,opt".</param>
    /// <returns>0 when every bar is met, 3 when a bar is missed (the report lists where).</returns>
    /// <param name="extraSeeds">Seeds to re-run the default policy with (the seed-spread section); empty: none.</param>
    public static int Run(string suite, string tracesDir, string outDir, int jobs, string commandLine, IProgressSink progress, TextWriter log, string policies = "all", IReadOnlyList<int>? extraSeeds = null)
    {
        bool all = suite switch
        {
            "lirs" => false,
            "all" => true,
            _ => throw new ArgumentException($"--suite must be 'lirs' or 'all' (got '{suite}')", nameof(suite)),
        };
        var sw = Stopwatch.StartNew();
        string chartDir = Path.Combine(outDir, "hit-ratios");
        Directory.CreateDirectory(chartDir);
        List<TargetSpec> specs = Catalog.Build(policies, admission: false, [], []);
        if (policies == "all")
        {
            // TinyLFU admission composes with any eviction policy; two rows show it on every trace: in front of
            // LRU (the classic pairing) and of SIEVE (the engine's lock-free-hit choice).
            specs.AddRange(AdmissionRows.Select(k => Catalog.Policy(k, admission: true)).OfType<TargetSpec>());
        }
        var results = new List<(SuiteTrace Spec, TraceResults Results)>();
        foreach (SuiteTrace st in Traces.Where(t => all || t.Lirs))
        {
            Trace trace = TraceReaders.Read(Path.Combine(tracesDir, st.File), st.Format);
            TraceResults r = Runner.Run(trace, st.Capacities, specs, jobs, progress);
            Report.Chart(r, Path.Combine(chartDir, Report.Stem(r.TraceName) + ".png"));
            results.Add((st, r));
        }

        TraceResults? concat = null, phases = null;
        List<TraceResults> drops = [];
        if (all)
        {
            bool hasDefault = Catalog.IsAvailable(PolicyFactory.Default);
            List<TargetSpec> adaptSpecs = Catalog.Build(Available("wtinylfu,lru,concurrentlfu"), false, hasDefault ? FixedWindows : [], []);
            Trace adapt = TraceReaders.Concat(string.Join(',',
                Path.Combine(tracesDir, "sprite.trace.gz"), Path.Combine(tracesDir, "loop.trace.gz") + "*5", Path.Combine(tracesDir, "sprite.trace.gz")), TraceFormat.A);
            concat = Runner.Run(adapt, [.. new long[] { 250, 500, 1000, 2000 }.Select(s => new Capacity(s, false))], adaptSpecs, jobs, progress);
            Report.Chart(concat, Path.Combine(chartDir, "adaptivity-concat.png"));
            Trace ph = Synthetic.Create("phases", (ulong)Catalog.Seed, null);
            phases = Runner.Run(ph, [.. new long[] { 500, 1000, 2000 }.Select(s => new Capacity(s, false))], adaptSpecs, jobs, progress);
            Report.Chart(phases, Path.Combine(chartDir, "adaptivity-phases.png"));

            List<TargetSpec> dropSpecs = Catalog.Build(Available("lru,slru,wtinylfu") + ",noopt", false, [], ReadDrops, readBuffer: true);
            foreach (SuiteTrace st in Traces.Where(t => !t.Weighted && policies == "all"))
            {
                Trace trace = TraceReaders.Read(Path.Combine(tracesDir, st.File), st.Format);
                drops.Add(Runner.Run(trace, st.Capacities, dropSpecs, jobs, progress));
            }
        }

        var csv = new List<string> { Report.CsvHeader };
        foreach (var (_, r) in results)
        {
            csv.AddRange(Report.CsvRows(r));
        }
        foreach (TraceResults r in new[] { concat, phases }.OfType<TraceResults>().Concat(drops))
        {
            csv.AddRange(Report.CsvRows(r, (r == concat || r == phases ? "adaptivity:" : "read-drop:") + r.TraceName));
        }
        File.WriteAllLines(Path.Combine(chartDir, "all.csv"), csv);

        SeedMeans? seedMeans = null;
        string seedSpread = extraSeeds is { Count: > 0 } ? SeedSpread(results, extraSeeds, tracesDir, jobs, progress, log, out seedMeans) : "";
        var bars = CheckBars(results, concat, phases, seedMeans);
        string md = Summary(suite, commandLine, sw.Elapsed, results, bars, concat, phases, drops) + seedSpread;
        string mdPath = Path.Combine(outDir, "hit-ratios.md");
        File.WriteAllText(mdPath, md);
        log.WriteLine($"wrote {mdPath} and {chartDir}/ in {sw.Elapsed.TotalSeconds:F0} s");
        foreach (string line in bars.Lines)
        {
            log.WriteLine(line);
        }
        return bars.Failures == 0 ? 0 : 3;
    }

    /// <summary>
    /// The seed-spread section: the default policy re-run with each of <paramref name="seeds"/> (its sketch
    /// hashing and the window shadows' sample change with the seed; the traces, OPT and the peers do not),
    /// and the bars that depend on it recomputed against the main run's OPT, LRU and ConcurrentLfu. A
    /// change of hashing moves single cells by a point or more at random, so a bar decided by a few
    /// hundredths on one seed is not decided; the mean over seeds is the figure to compare changes by.
    /// </summary>
    private static string SeedSpread(List<(SuiteTrace Spec, TraceResults Results)> results, IReadOnlyList<int> seeds, string tracesDir, int jobs, IProgressSink progress, TextWriter log, out SeedMeans? means)
    {
        means = null;
        string? def = Catalog.Policy(PolicyFactory.Default)?.Name;
        string? lru = Catalog.Policy(PolicyKind.Lru)?.Name;
        if (def is null)
        {
            return "";
        }
        int mainSeed = Catalog.Seed;
        var runs = new List<(int Seed, Func<SuiteTrace, Capacity, double?> HitRatio)>
        {
            (mainSeed, (st, c) => results.First(x => x.Spec == st).Results.Get(def, c)?.HitRatio),
        };
        try
        {
            foreach (int seed in seeds.Where(x => x != mainSeed).Distinct())
            {
                Catalog.Seed = seed;
                List<TargetSpec> specs = [.. Catalog.Build(Available("wtinylfu") + ",noopt", false, [], []).Where(t => t.Name == def)];
                var byTrace = new Dictionary<SuiteTrace, TraceResults>();
                foreach (var (st, _) in results)
                {
                    byTrace[st] = Runner.Run(TraceReaders.Read(Path.Combine(tracesDir, st.File), st.Format), st.Capacities, specs, jobs, progress);
                }
                runs.Add((seed, (st, c) => byTrace[st].Get(def, c)?.HitRatio));
            }
        }
        finally
        {
            Catalog.Seed = mainSeed;
        }

        const double Slack = 0.2;
        var sb = new StringBuilder();
        sb.Append("\n## Seed spread\n\n");
        sb.Append(Inv($"{def} re-run with other seeds (`--seeds`): the seed changes its sketch hashing and the window shadows' sample, not the traces, OPT or the peers. A bar decided by a few hundredths on one seed is not decided; compare changes by the mean. The adaptivity checks are not repeated here.\n\n"));
        sb.Append("| seed | LIRS mean gap to OPT | cells below LRU - 0.2 | cells below ConcurrentLfu - 0.2 |");
        foreach (var (trace, size, _) in CaffeineBars)
        {
            sb.Append(Inv($" {trace}@{size} |"));
        }
        sb.Append("\n| --- | ---: | ---: | ---: |");
        sb.Append(string.Concat(Enumerable.Repeat(" ---: |", CaffeineBars.Length)));
        sb.Append('\n');
        var sums = new double[3 + CaffeineBars.Length];
        var spread = new List<(double Range, string Cell)>();
        foreach (var (seed, hitRatio) in runs)
        {
            var gaps = new List<double>();
            int belowLru = 0, belowLfu = 0;
            foreach (var (st, r) in results)
            {
                foreach (Capacity c in r.Capacities)
                {
                    if (hitRatio(st, c) is not double d)
                    {
                        continue;
                    }
                    if (st.InGapSet && r.Get(Catalog.OptName, c) is { } opt)
                    {
                        gaps.Add(opt.HitRatio - d);
                    }
                    belowLru += lru is not null && r.Get(lru, c) is { } l && d < l.HitRatio - Slack ? 1 : 0;
                    belowLfu += r.Get(Catalog.BitFasterLfu, c) is { } f && d < f.HitRatio - Slack ? 1 : 0;
                }
            }
            double gap = gaps.Count > 0 ? gaps.Average() : double.NaN;
            sb.Append(Inv($"| {seed}{(seed == mainSeed ? " (the tables above)" : "")} | {gap:F2} | {belowLru} | {belowLfu} |"));
            sums[0] += gap;
            sums[1] += belowLru;
            sums[2] += belowLfu;
            for (int b = 0; b < CaffeineBars.Length; b++)
            {
                var (trace, size, _) = CaffeineBars[b];
                SuiteTrace? st = results.Select(x => x.Spec).FirstOrDefault(x => x.Name == trace);
                double v = st is null ? double.NaN : hitRatio(st, new Capacity(size, false)) ?? double.NaN;
                sums[3 + b] += v;
                sb.Append(Inv($" {v:F2} |"));
            }
            sb.Append('\n');
        }
        int n = runs.Count;
        sb.Append(Inv($"| mean of {n} | **{sums[0] / n:F3}** | {sums[1] / n:F2} | {sums[2] / n:F2} |"));
        for (int b = 0; b < CaffeineBars.Length; b++)
        {
            sb.Append(Inv($" {sums[3 + b] / n:F2} (bar {CaffeineBars[b].Percent:F2}) |"));
        }
        sb.Append('\n');
        foreach (var (st, r) in results)
        {
            foreach (Capacity c in r.Capacities)
            {
                double[] v = [.. runs.Select(x => x.HitRatio(st, c)).OfType<double>()];
                if (v.Length == n)
                {
                    spread.Add((v.Max() - v.Min(), Inv($"{r.TraceName}@{c.Label}")));
                }
            }
        }
        var widest = spread.OrderByDescending(x => x.Range).Take(5).ToList();
        if (widest.Count > 0)
        {
            sb.Append(Inv($"\nWidest spread of one cell over the seeds (max - min, points): {string.Join(", ", widest.Select(x => Inv($"{x.Cell} {x.Range:F2}")))}; median {spread.Select(x => x.Range).Order().ElementAt(spread.Count / 2):F2}.\n"));
        }
        log.WriteLine(Inv($"seed spread: LIRS mean gap over {n} seeds {sums[0] / n:F3}"));
        means = new SeedMeans(n, sums[0] / n, [.. Enumerable.Range(0, CaffeineBars.Length).Select(b => sums[3 + b] / n)]);
        return sb.ToString();
    }

    /// <summary>The default policy's figures averaged over the seeds of <c>--seeds</c> (the main seed included).</summary>
    /// <param name="Seeds">How many seeds.</param>
    /// <param name="OptGap">Mean gap to OPT over the labelled LIRS set.</param>
    /// <param name="CaffeineCells">Hit ratio at each of <see cref="CaffeineBars"/>, in order.</param>
    private sealed record SeedMeans(int Seeds, double OptGap, double[] CaffeineCells);

    /// <summary>
    /// The quality bars of issue 3, evaluated on the results: text lines and the number of failures. With
    /// <paramref name="seedMeans"/> the bars a seed moves by hashing alone (the OPT gap, Caffeine's cells) are
    /// decided on the mean over the seeds, the figure the seed-spread section says to compare by; the
    /// main seed's value is printed beside it.
    /// </summary>
    private static (List<string> Lines, int Failures) CheckBars(List<(SuiteTrace Spec, TraceResults Results)> results, TraceResults? concat, TraceResults? phases, SeedMeans? seedMeans)
    {
        var lines = new List<string>();
        int failures = 0;
        string? def = Catalog.Policy(PolicyFactory.Default)?.Name;
        string? lru = Catalog.Policy(PolicyKind.Lru)?.Name;
        if (def is null)
        {
            lines.Add($"- FAIL: the default policy ({PolicyFactory.Default}) is not in this build; no bar can be checked.");
            return (lines, 1);
        }
        const double Slack = 0.2;
        foreach (string peer in new[] { Catalog.BitFasterLfu, lru }.OfType<string>())
        {
            var misses = new List<string>();
            int cells = 0;
            foreach (var (_, r) in results)
            {
                foreach (Capacity c in r.Capacities)
                {
                    if (r.Get(def, c) is { } d && r.Get(peer, c) is { } p)
                    {
                        cells++;
                        if (d.HitRatio < p.HitRatio - Slack)
                        {
                            misses.Add(Inv($"{r.TraceName}@{c.Label} ({d.HitRatio:F2} vs {p.HitRatio:F2})"));
                        }
                    }
                }
            }
            failures += misses.Count;
            lines.Add(misses.Count == 0
                ? Inv($"- PASS: {def} >= {peer} - {Slack} in all {cells} cells.")
                : Inv($"- FAIL: {def} below {peer} - {Slack} in {misses.Count} of {cells} cells: {string.Join(", ", misses)}."));
        }
        List<double> GapsOver(Func<SuiteTrace, bool> member) => [.. results.Where(x => member(x.Spec))
            .SelectMany(x => x.Results.Capacities.Select(c => (x.Results.Get(Catalog.OptName, c), x.Results.Get(def, c))))
            .Where(g => g.Item1 is not null && g.Item2 is not null).Select(g => g.Item1!.HitRatio - g.Item2!.HitRatio)];
        List<double> gaps = GapsOver(t => t.InGapSet);
        if (gaps.Count > 0)
        {
            double mainSeed = gaps.Average();
            double decided = seedMeans?.OptGap ?? mainSeed;
            bool ok = decided <= 3.0;
            failures += ok ? 0 : 1;
            string figure = seedMeans is null
                ? Inv($"is {mainSeed:F2} points")
                : Inv($"is {decided:F3} points on the mean of {seedMeans.Seeds} seeds ({mainSeed:F2} on the tables' seed)");
            List<double> withLoop = GapsOver(t => t.Lirs);
            lines.Add(Inv($"- {(ok ? "PASS" : "FAIL")}: mean gap OPT - {def} over the LIRS set ({gaps.Count} cells of the traces the traces README labels LIRS set) {figure} (bar: 3). With loop, run with them but not labelled: {withLoop.Average():F2} on the tables' seed ({withLoop.Count} cells)."));
        }
        for (int b = 0; b < CaffeineBars.Length; b++)
        {
            var (trace, size, bar) = CaffeineBars[b];
            var r = results.FirstOrDefault(x => x.Spec.Name == trace).Results;
            if (r?.Get(def, new Capacity(size, false)) is { } cell)
            {
                double decided = seedMeans?.CaffeineCells[b] ?? cell.HitRatio;
                bool ok = decided >= bar;
                failures += ok ? 0 : 1;
                string opt = r.Get(Catalog.OptName, new Capacity(size, false)) is { } o ? Inv($", OPT {o.HitRatio:F2}") : "";
                string figure = seedMeans is null
                    ? Inv($"{cell.HitRatio:F2} %")
                    : Inv($"{decided:F2} % on the mean of {seedMeans.Seeds} seeds ({cell.HitRatio:F2} on the tables' seed)");
                lines.Add(Inv($"- {(ok ? "PASS" : "FAIL")}: {trace}@{size}: {def} {figure} (Caffeine {bar:F2} %{opt})."));
            }
        }
        var fixedNames = FixedWindows.Select(w => Catalog.Policy(PolicyFactory.Default, window: w)?.Name).OfType<string>().ToList();
        foreach (TraceResults? r in new[] { concat, phases })
        {
            if (r is null)
            {
                continue;
            }
            foreach (Capacity c in r.Capacities)
            {
                CellResult? adaptive = r.Get(def, c);
                var best = fixedNames.Select(p => r.Get(p, c)).OfType<CellResult>()
                    .OrderByDescending(x => x.HitRatio).FirstOrDefault();
                if (adaptive is null || best is null)
                {
                    continue;
                }
                bool ok = adaptive.HitRatio >= best.HitRatio - 2.0;
                failures += ok ? 0 : 1;
                lines.Add(Inv($"- {(ok ? "PASS" : "FAIL")}: adaptivity {r.TraceName}@{c.Label}: adaptive {adaptive.HitRatio:F2} %, best fixed window {best.Policy} {best.HitRatio:F2} % (bar: within 2 points)."));
            }
        }
        return (lines, failures);
    }

    private static string Summary(string suite, string commandLine, TimeSpan elapsed, List<(SuiteTrace Spec, TraceResults Results)> results,
        (List<string> Lines, int Failures) bars, TraceResults? concat, TraceResults? phases, List<TraceResults> drops)
    {
        var sb = new StringBuilder();
        sb.Append("# Hit ratios\n\n");
        sb.Append("Every trace of `../shared/traces/` at the sizes its README lists, replayed through every policy of\n");
        sb.Append("CacheKit.Policies, Belady's OPT and the peers (BitFaster.Caching ConcurrentLru and ConcurrentLfu,\n");
        sb.Append("Microsoft.Extensions.Caching.Memory MemoryCache). Hit ratios in percent; the best non-OPT value of\n");
        sb.Append("each column is in bold. Generated by the simulator (`perf/CacheKit.Simulator`); do not edit by hand.\n\n");
        sb.Append("Reproduce (from the repository root, with `../shared/traces` beside it):\n\n```\n").Append(commandLine).Append("\n```\n\n");
        sb.Append(Inv($"Machine: {Environment.ProcessorCount} cores ({CpuModel()}), {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, "));
        sb.Append(Inv($".NET {Environment.Version}. Suite `{suite}` took {elapsed.TotalSeconds:F0} s. The numbers do not depend on the machine: every run is deterministic.\n\n"));
        sb.Append("## Quality bars (issue 3), checked on these numbers\n\n");
        foreach (string line in bars.Lines)
        {
            sb.Append(line).Append('\n');
        }
        sb.Append(Inv($"\n{(bars.Failures == 0 ? "Every bar is met." : $"{bars.Failures} check(s) missed (each failing cell counts once), listed above.")}\n\n"));
        sb.Append("## How the replay works\n\n");
        sb.Append("- Each request is a lookup; a miss inserts the key (cache-aside). Library policies run under the\n");
        sb.Append("  simulator's driver, which follows the engine's protocol: hit -> `OnHit`; miss -> `OnMiss`, then\n");
        sb.Append("  `ShouldAdmit` when room is needed, `OnAdd`, and `SelectVictim`/`OnRemove` while over capacity.\n");
        sb.Append("- OPT evicts the resident key whose next use is furthest away (an indexed heap over precomputed next\n");
        sb.Append("  uses). For byte capacity it evicts by furthest next use until the newcomer fits: the usual\n");
        sb.Append("  approximation (the exact weighted optimum is NP-hard), so there it is a strong reference, not a bound.\n");
        sb.Append("- BitFaster ConcurrentLfu runs with `ForegroundScheduler`: its maintenance runs synchronously on the\n");
        sb.Append("  replaying thread, so it is deterministic. ConcurrentLru/ConcurrentLfu count entries only: n/a under\n");
        sb.Append("  byte capacity.\n");
        sb.Append("- MemoryCache (SizeLimit = the budget, each entry's Size = its weight) compacts asynchronously on\n");
        sb.Append("  the thread pool when a Set would overflow (and rejects that Set). To make it deterministic the\n");
        sb.Append("  simulator calls `Compact(5%)` itself, synchronously, before each insert that would not fit, and\n");
        sb.Append("  gives it a manual clock that ticks once per request (exact LRU order, no expiration scans).\n");
        sb.Append("  Two differences from production remain: the public `Compact(5%)` removes 5 % of the entries (by\n");
        sb.Append("  count) where the overflow path removes 5 % of the size, and the newcomer is then stored where a real\n");
        sb.Append("  Set would have been rejected. Modelled the production way (compaction done before the next\n");
        sb.Append("  request), a review estimated adaptsize-request +0.55/+0.37/+0.07 points at 4/16/64 MiB and web07\n");
        sb.Append("  -0.29/-0.05/0.00 at 500/2,000/8,000 entries for MemoryCache.\n");
        sb.Append("- Byte capacity (adaptsize-request): a hit whose object size changed counts as a hit and updates the\n");
        sb.Append("  entry's weight (`OnUpdate`); objects larger than the budget are never stored (one that grows past\n");
        sb.Append("  it on a hit is removed).\n\n");
        foreach (var (_, r) in results)
        {
            sb.Append(Report.Markdown(r)).Append('\n');
            sb.Append(Inv($"![{r.TraceName}](hit-ratios/{Report.Stem(r.TraceName)}.png)\n\n"));
        }
        if (concat is not null || phases is not null)
        {
            sb.Append("## Adaptivity: the adaptive window against fixed windows\n\n");
            sb.Append("A trace that changes character: sprite, then loop five times, then sprite again (`--concat`), and the\n");
            sb.Append("synthetic `phases` workload (Zipf 0.9, then a recency-heavy stream of new keys, then Zipf again).\n\n");
            foreach (TraceResults r in new[] { concat, phases }.OfType<TraceResults>())
            {
                sb.Append(Report.Markdown(r)).Append('\n');
                string stem = r == concat ? "adaptivity-concat" : "adaptivity-phases";
                sb.Append(Inv($"![{r.TraceName}](hit-ratios/{stem}.png)\n\n"));
            }
        }
        if (drops.Count > 0)
        {
            sb.Append("## What a lossy read buffer costs\n\n");
            sb.Append("`--read-drop P` passes each hit to the policy with probability 1 - P (seeded), as a lossy read buffer\n");
            sb.Append("that drops when full would. Mean hit ratio over each trace's sizes, and the loss against P = 0 (the\n");
            sb.Append("main tables). Rows marked (ReadBuffer) send hits through the library's `ReadBuffer` (one stripe of\n");
            sb.Append("64 slots, drained into the policy before every write and when a read finds it full; that read's record\n");
            sb.Append("is dropped, as in Caffeine and BitFaster): a drop-on-full buffer. This library's engine does not drop there:\n");
            sb.Append("a reader that finds its stripe full replays the 8 oldest records under the shard lock, then records its own\n");
            sb.Append("(docs/engine.md), so single-threaded it loses no record; the simulator's `engine` rows measure the engine itself.\n\n");
            sb.Append(ReadDropTable(results.Select(x => x.Results).ToList(), drops));
        }
        return sb.ToString();
    }

    private static string ReadDropTable(List<TraceResults> baseline, List<TraceResults> drops)
    {
        var sb = new StringBuilder();
        sb.Append("| policy |");
        foreach (TraceResults d in drops)
        {
            sb.Append(' ').Append(d.TraceName).Append(" |");
        }
        sb.Append(" mean loss (points) |\n| --- |");
        foreach (TraceResults _ in drops)
        {
            sb.Append(" ---: |");
        }
        sb.Append(" ---: |\n");
        foreach (string policy in drops[0].Policies)
        {
            string basePolicy = policy.Split(" (", 2)[0];
            sb.Append("| ").Append(policy).Append(" |");
            var losses = new List<double>();
            foreach (TraceResults d in drops)
            {
                TraceResults? b = baseline.FirstOrDefault(x => x.TraceName == d.TraceName);
                var cells = d.Capacities.Select(c => (d.Get(policy, c), b?.Get(basePolicy, c))).Where(x => x.Item1 is not null).ToList();
                if (cells.Count == 0)
                {
                    sb.Append(" n/a |");
                    continue;
                }
                double mean = cells.Average(x => x.Item1!.HitRatio);
                sb.Append(Inv($" {mean:F2} |"));
                losses.AddRange(cells.Where(x => x.Item2 is not null).Select(x => x.Item2!.HitRatio - x.Item1!.HitRatio));
            }
            sb.Append(losses.Count == 0 ? " n/a |\n" : Inv($" {losses.Average():F2} |\n"));
        }
        return sb.ToString();
    }

    private static string CpuModel()
    {
        try
        {
            string? line = File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal)) : null;
            return line is null ? System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString() : line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
        }
        catch (IOException)
        {
            return "unknown CPU";
        }
    }

    /// <summary>The items of a --policies list that this build can run (peers and keywords always can).</summary>
    private static string Available(string list) => string.Join(',', list.Split(',')
        .Where(item => !Catalog.TryParseKind(item, out PolicyKind kind) || Catalog.IsAvailable(kind)));

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

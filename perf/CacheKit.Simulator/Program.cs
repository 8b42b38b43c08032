using System.Globalization;
using CacheKit.Simulator;

return SimulatorMain.Run(args);

namespace CacheKit.Simulator
{
    /// <summary>Command-line entry point of the hit-ratio simulator.</summary>
    public static class SimulatorMain
    {
        private const string Usage = """
            CacheKit.Simulator: replays access traces through eviction policies, Belady's OPT and peer caches.

            dotnet run -c Release --project perf/CacheKit.Simulator -- [options]

            Workload (one of):
              --trace PATH --format A|B|C   a trace file (gzip or plain), formats of ../shared/traces/README.md
              --concat P1,P2*5,P3 --format F   traces one after another (*N repeats; a repeated file keeps its keys)
              --synthetic SPEC              zipf:ALPHA:KEYS:N | scan[:KEYS[:N]] | loop[:KEYS[:N]] | phases[:KEYS[:N]]
                                            | twitter:CLUSTER[:KEYS[:N]]  (seeded, deterministic)
              --suite lirs|all              every trace of --traces-dir at its README sizes; writes hit-ratios.md
                                            (with --policies: only those rows and no read-drop section, a quick bar check)
            Sizes and policies:
              --sizes 250,500               capacities in entries; with --weighted, byte budgets (4MiB,16MiB, ...)
                                            (default for a known trace: the sizes its README lists)
              --weighted                    byte capacity: weights are object sizes (format C, twitter); adds byte hit ratio
              --policies LIST               all (default) | policies | peers | opt | noopt | a PolicyKind (lru, wtinylfu,
                                            s3fifo, ...) | concurrentlru | concurrentlfu | memorycache
                                            | engine[:POLICY][@SHARDS] (the real OffHeapCache, 1 shard or SHARDS:
                                            MaxEntries, or with --weighted CapacityBytes, other options default)
              --admission                   adds TinyLFU-admission variants of each policy
              --windows 0.01,0.1,...        adds W-TinyLFU with those fixed window fractions (adaptivity check)
              --read-drop 0.1,0.5           adds LRU/SLRU/W-TinyLFU variants that drop that fraction of hits (lossy read buffer)
              --read-buffer                 adds LRU/SLRU/W-TinyLFU variants whose hits go through the library's ReadBuffer
                                            (1 stripe of 64, drained before every write and when full; a full-buffer hit is dropped)
            Output and run:
              --out DIR                     default results/sim/<trace>/ (suite: results/sim/suite-<name>/)
              --traces-dir DIR              default ../shared/traces beside the repository root
              --twitter-stats PATH          default ../shared/workloads/twitter-2020Mar-stat.md beside the repository root
              --jobs N                      replays at once (default 1; results do not depend on it)
              --seed N                      seed of synthetic workloads, policies and read drops (default 24301)
              --seeds 1,2,3                 suite only: also re-run the default policy with these seeds and add a
                                            "Seed spread" section (bars per seed and their mean)
              --self-test                   checks OPT against brute force, readers, driver, peers; prints PASS/FAIL
            Exit codes: 0 ok; 1 self-test failure; 2 bad arguments or missing input; 3 suite ran but a quality bar was missed.
            """;

        /// <summary>Runs the simulator; returns the process exit code.</summary>
        public static int Run(string[] args)
        {
            try
            {
                return RunCore(args);
            }
            // IOException covers a missing file or folder and an --out that cannot be written; OverflowException a number too
            // large for its option (before, both left an unhandled exception's stack trace; found by review).
            catch (Exception ex) when (ex is ArgumentException or IOException or UnauthorizedAccessException or InvalidDataException or FormatException or OverflowException)
            {
                Console.Error.WriteLine($"error: {ex.Message}");
                return 2;
            }
        }

        private static int RunCore(string[] args)
        {
            var opts = ParseArgs(args);
            if (opts.ContainsKey("help") || args.Length == 0)
            {
                Console.WriteLine(Usage);
                return 0;
            }
            if (opts.TryGetValue("seed", out string? seedText))
            {
                Catalog.Seed = ParseInt("seed", seedText, int.MinValue);
            }
            if (opts.ContainsKey("self-test"))
            {
                return SelfTest.Run(Console.Out) ? 0 : 1;
            }
            string? root = FindRepoRoot();
            int jobs = opts.TryGetValue("jobs", out string? j) ? ParseInt("jobs", j, 1) : 1;
            string commandLine = "dotnet run -c Release --project perf/CacheKit.Simulator -- " + string.Join(' ', args);

            if (opts.TryGetValue("suite", out string? suite))
            {
                string tracesDir = TracesDir(opts, root);
                if (!Directory.Exists(tracesDir))
                {
                    Console.Error.WriteLine($"error: the traces folder {tracesDir} does not exist. Put the shared traces beside the repository (../shared/traces) or pass --traces-dir.");
                    return 2;
                }
                string? missing = Suite.Traces.Select(t => Path.Combine(tracesDir, t.File)).FirstOrDefault(p => !File.Exists(p));
                if (missing is not null)
                {
                    Console.Error.WriteLine($"error: {missing} is missing from the traces folder.");
                    return 2;
                }
                string outDir = opts.TryGetValue("out", out string? o) ? o : Path.Combine(root ?? ".", "results", "sim", "suite-" + suite);
                int[] extraSeeds = opts.TryGetValue("seeds", out string? seedList)
                    ? [.. seedList.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(x => ParseInt("seeds", x, int.MinValue))]
                    : [];
                EnsureWritable(outDir);
                return WithProgress(p => Suite.Run(suite, tracesDir, outDir, jobs, commandLine, p, Console.Out, opts.GetValueOrDefault("policies", "all"), extraSeeds));
            }

            bool weighted = opts.ContainsKey("weighted");
            Trace trace = LoadWorkload(opts, root);
            if (weighted && !trace.HasSizes)
            {
                throw new ArgumentException($"--weighted needs object sizes: trace '{trace.Name}' has none (use format C or a twitter workload)", nameof(args));
            }
            IReadOnlyList<Capacity> capacities = ParseSizes(opts, trace, weighted);
            List<TargetSpec> specs = Catalog.Build(
                opts.GetValueOrDefault("policies", "all"),
                opts.ContainsKey("admission"),
                ParseFractions(opts, "windows", allowOne: false),
                ParseFractions(opts, "read-drop", allowOne: false),
                opts.ContainsKey("read-buffer"));
            string dir = opts.TryGetValue("out", out string? od) ? od : Path.Combine(root ?? ".", "results", "sim", Report.Stem(trace.Name));
            EnsureWritable(dir);
            TraceResults results = WithProgress(p => Runner.Run(trace, capacities, specs, jobs, p));
            Report.WriteAll(results, dir, Report.Stem(trace.Name));
            Console.WriteLine();
            Console.WriteLine(Report.Markdown(results));
            Console.WriteLine($"wrote {Path.Combine(dir, Report.Stem(trace.Name))}.md, .csv and .png");
            return 0;
        }

        private static T WithProgress<T>(Func<IProgressSink, T> body) => Console.IsOutputRedirected || Console.IsErrorRedirected
            ? body(new PlainProgress(Console.Out, perCell: true))
            : SpectreProgress.Run(body);

        private static Trace LoadWorkload(Dictionary<string, string> opts, string? root)
        {
            int given = new[] { "trace", "concat", "synthetic" }.Count(opts.ContainsKey);
            if (given != 1)
            {
                throw new ArgumentException("give exactly one of --trace, --concat, --synthetic or --suite (see --help)", "args");
            }
            if (opts.TryGetValue("synthetic", out string? synth))
            {
                string stats = opts.TryGetValue("twitter-stats", out string? s) ? s
                    : Path.Combine(root is null ? "." : Path.GetDirectoryName(root) ?? ".", "shared", "workloads", "twitter-2020Mar-stat.md");
                return Synthetic.Create(synth, (ulong)Catalog.Seed, stats);
            }
            string formatText = opts.TryGetValue("format", out string? f) ? f
                : (opts.TryGetValue("trace", out string? tp) && Suite.Find(tp) is { } known ? known.Format.ToString()
                    : throw new ArgumentException("--format A|B|C is required for this trace", "format"));
            TraceFormat format = TraceReaders.ParseFormat(formatText);
            return opts.TryGetValue("trace", out string? path) ? TraceReaders.Read(path, format) : TraceReaders.Concat(opts["concat"], format);
        }

        private static List<Capacity> ParseSizes(Dictionary<string, string> opts, Trace trace, bool weighted)
        {
            if (!opts.TryGetValue("sizes", out string? text))
            {
                SuiteTrace? known = Suite.Find(trace.Name);
                if (known is null || known.Weighted != weighted)
                {
                    throw new ArgumentException($"--sizes is required for '{trace.Name}' (no README sizes known for it{(weighted ? " with byte capacity" : "")})", "sizes");
                }
                return [.. known.Capacities];
            }
            var list = new List<Capacity>();
            foreach (string item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                long value;
                if (weighted)
                {
                    value = SizeText.Parse(item);
                }
                else if (!long.TryParse(item.Replace("_", "", StringComparison.Ordinal), NumberStyles.Integer, CultureInfo.InvariantCulture, out value) || value < 1 || value > 1 << 30)
                {
                    throw new ArgumentOutOfRangeException("sizes", item, "entry capacities must be integers in [1, 2^30] (byte budgets like 4MiB need --weighted)");
                }
                list.Add(new Capacity(value, weighted));
            }
            if (list.Count == 0)
            {
                throw new ArgumentException("--sizes is empty", "sizes");
            }
            return [.. list.Distinct().OrderBy(c => c.Value)];
        }

        private static List<double> ParseFractions(Dictionary<string, string> opts, string name, bool allowOne)
        {
            if (!opts.TryGetValue(name, out string? text))
            {
                return [];
            }
            var list = new List<double>();
            foreach (string item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!double.TryParse(item, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !(v > 0 && (allowOne ? v <= 1 : v < 1)))
                {
                    throw new ArgumentOutOfRangeException(name, item, $"--{name} takes fractions in (0, 1)");
                }
                list.Add(v);
            }
            return list;
        }

        /// <summary>An integer option's value, or an <see cref="ArgumentException"/> that names the option.</summary>
        private static int ParseInt(string option, string text, int min)
        {
            if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) || value < min)
            {
                throw new ArgumentException($"--{option} takes an integer in [{min}, {int.MaxValue}] (got '{text}')", option);
            }
            return value;
        }

        /// <summary>
        /// Creates the output folder and checks that a file can be written there before any replay runs: an --out naming an
        /// existing file, or a folder without write access, failed only when the report was written, after the whole run.
        /// </summary>
        private static void EnsureWritable(string dir)
        {
            if (File.Exists(dir))
            {
                throw new ArgumentException($"--out {dir} is a file, not a folder", "out");
            }
            Directory.CreateDirectory(dir);
            string probe = Path.Combine(dir, $".write-check-{Environment.ProcessId}");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }

        private static string TracesDir(Dictionary<string, string> opts, string? root) => opts.TryGetValue("traces-dir", out string? d)
            ? d
            : Path.Combine(root is null ? "." : Path.GetDirectoryName(root) ?? ".", "shared", "traces");

        /// <summary>The repository root: the nearest folder upwards (from the working directory, then the program) holding CacheKit.OffHeap.sln.</summary>
        public static string? FindRepoRoot()
        {
            foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            {
                for (DirectoryInfo? d = new(start); d is not null; d = d.Parent)
                {
                    if (File.Exists(Path.Combine(d.FullName, "CacheKit.OffHeap.sln")))
                    {
                        return d.FullName;
                    }
                }
            }
            return null;
        }

        private static readonly HashSet<string> Flags = ["help", "weighted", "admission", "self-test", "read-buffer"];
        private static readonly HashSet<string> Valued = ["trace", "format", "concat", "synthetic", "suite", "sizes", "policies", "windows", "read-drop", "out", "traces-dir", "twitter-stats", "jobs", "seed", "seeds"];

        private static Dictionary<string, string> ParseArgs(string[] args)
        {
            var opts = new Dictionary<string, string>(StringComparer.Ordinal);
            for (int i = 0; i < args.Length; i++)
            {
                string a = args[i];
                if (a is "-h" or "-?")
                {
                    a = "--help";
                }
                if (!a.StartsWith("--", StringComparison.Ordinal))
                {
                    throw new ArgumentException($"unexpected argument '{a}' (options start with --; see --help)", nameof(args));
                }
                string key = a[2..];
                string? inline = null;
                int eq = key.IndexOf('=', StringComparison.Ordinal);
                if (eq > 0)
                {
                    inline = key[(eq + 1)..];
                    key = key[..eq];
                }
                if (Flags.Contains(key))
                {
                    opts[key] = "true";
                }
                else if (Valued.Contains(key))
                {
                    // A following option is not taken as the value (`--out --admission` wrote to a folder named
                    // "--admission" and dropped the flag; found by review).
                    string? value = inline ?? (i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : null);
                    opts[key] = value ?? throw new ArgumentException($"--{key} needs a value", nameof(args));
                }
                else
                {
                    throw new ArgumentException($"unknown option --{key} (see --help)", nameof(args));
                }
            }
            return opts;
        }
    }
}

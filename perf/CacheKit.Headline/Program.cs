using System.Globalization;
using CacheKit.Headline;
using CacheKit.Perf;

const string Usage = """
    dotnet run -c Release --project perf/CacheKit.Headline [-- [VERB] [OPTIONS]]
      (no verb)    the headline (compact; 147-175 s in the latest runs on a shared 2-core machine)
      throughput   1..N threads, longer points, every cache + Redis
      memory       1M and 10M entries for every cache, 30 s latency
    options: --seconds S --repeats R --threads N --entries N --bound N --values 100|1k|twitter
             --memory-entries 1000000,10000000 --big-entries N,... --latency-seconds S
             --caches cd,mc,lru,fastlru,lfu,lfufg,offheap,typed --no-redis --install-redis --out DIR
             --no-throughput --no-memory --no-hit --isolated --help
    """;
// The bounds of entry counts (--entries, --memory-entries, --big-entries): below 1,000 the per-entry figures are noise,
// and Workload keys are ints.
const int MinEntries = 1000;
const int MaxEntries = 100_000_000;
// The options each verb reads ("child", "points" and "profile" are the harness's own verbs).
string[] runOptions = ["seconds", "repeats", "threads", "entries", "bound", "values", "memory-entries", "big-entries", "latency-seconds", "latency",
    "caches", "no-redis", "install-redis", "out", "no-throughput", "no-memory", "no-hit", "isolated"];
string[] childOptions = ["cache", "entries", "value", "latency-seconds"];
string[] profileOptions = ["cache", "entries", "gets", "mixed"];
string[] pointsOptions = ["cache", "mix", "threads", "seconds", "repeats", "entries", "bound", "values"];
if (args.Any(a => a is "--help" or "-h"))
{
    Console.WriteLine(Usage);
    return 0;
}
string verb = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? args[0] : "headline";
string[] rest = verb == "headline" && (args.Length == 0 || args[0].StartsWith("--", StringComparison.Ordinal)) ? args : args[1..];
var opts = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
for (int i = 0; i < rest.Length; i++)
{
    if (!rest[i].StartsWith("--", StringComparison.Ordinal))
    {
        Console.Error.WriteLine($"unexpected argument '{rest[i]}'");
        Console.Error.WriteLine(Usage);
        return 2;
    }
    bool hasValue = i + 1 < rest.Length && !rest[i + 1].StartsWith("--", StringComparison.Ordinal);
    opts[rest[i][2..]] = hasValue ? rest[++i] : "true";
}
string[] known = verb switch { "child" => childOptions, "profile" => profileOptions, "points" => pointsOptions, _ => runOptions };
string[] unknown = [.. opts.Keys.Where(k => !known.Contains(k, StringComparer.OrdinalIgnoreCase))];
if (unknown.Length > 0)
{
    Console.Error.WriteLine($"unknown option{(unknown.Length > 1 ? "s" : "")}: {string.Join(", ", unknown.Select(k => "--" + k))}");
    Console.Error.WriteLine(Usage);
    return 2;
}
// Option values, checked here (a NaN or infinite --seconds passed the range check and crashed minutes later, a value too large
// for an integer option crashed with an unhandled overflow, a missing value read as "true"; found by review, 2026-11-30).
string Value(string name) => opts.TryGetValue(name, out string? v)
    ? (v == "true" ? throw new ArgumentException($"--{name} needs a value") : v)
    : throw new ArgumentException($"--{name} is required for '{verb}'");
double Num(string name, double fallback, double min, double max)
{
    if (!opts.ContainsKey(name))
    {
        return fallback;
    }
    string text = Value(name);
    return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) && v >= min && v <= max
        ? v
        : throw new ArgumentException($"--{name} takes a number in [{min}, {max}] (got '{text}')");
}
long Int(string text, string name, long min, long max) =>
    long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) && v >= min && v <= max
        ? v
        : throw new ArgumentException($"--{name} takes an integer in [{min:N0}, {max:N0}] (got '{text}')");
int IntOption(string name, int fallback, int min, int max) => opts.ContainsKey(name) ? (int)Int(Value(name), name, min, max) : fallback;
static ValueMix ParseValues(string values) => values.ToLowerInvariant() switch
{
    "100" => ValueMix.Bytes100,
    "1k" or "1024" => ValueMix.Bytes1K,
    "twitter" => ValueMix.Twitter,
    _ => throw new ArgumentException($"--values must be 100, 1k or twitter (got '{values}')"),
};
long[] Longs(string name, long[] fallback) => opts.ContainsKey(name)
    ? [.. Value(name).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(x => Int(x, name, MinEntries, MaxEntries))]
    : fallback;

try
{
    if (verb == "child")
    {
        return Memory.ChildMain(Value("cache"), opts.ContainsKey("entries") ? Int(Value("entries"), "entries", 1, MaxEntries) : 1_000_000,
            IntOption("value", 100, 1, 1 << 20), Num("latency-seconds", 2, 0.001, 3600));
    }
    if (verb == "points")
    {
        // One cache's throughput points in a process of its own (Suite.MeasureIsolated starts it).
        return Suite.PointsChild(Value("cache"), Value("mix") == "get" ? Mix.GetOnly : Mix.GetSet90_10,
            [.. Value("threads").Split(',').Select(t => (int)Int(t, "threads", 1, 1024))], Num("seconds", 0.3, 0.001, 3600), IntOption("repeats", 3, 1, 1000),
            IntOption("entries", 1_000_000, MinEntries, MaxEntries), IntOption("bound", 100_000, 1, MaxEntries), ParseValues(opts.GetValueOrDefault("values", "100")));
    }
    if (verb == "profile")
    {
        // For valgrind --tool=callgrind: fill, then a fixed number of gets (or 90/10 ops); run twice with
        // different --gets and subtract the instruction totals to get instructions per operation.
        // --mixed: the cache must be full (its sets insert and evict): Warm runs until it holds its bound, over
        // a 2^20-position stream (2^18 positions hold ~84K distinct keys of 1M, fewer than a 100K bound).
        bool mixed = opts.ContainsKey("mixed");
        var w = Workload.Create(IntOption("entries", 100_000, MinEntries, MaxEntries), ValueMix.Bytes100, mixed ? 1 << 20 : 1 << 18);
        string name = Caches.FromShortName(opts.GetValueOrDefault("cache", "offheap"));
        int capacity = mixed ? w.KeyCount / 10 : w.KeyCount + w.KeyCount / 20;
        using CacheAdapter cache = Caches.Create(name, w, capacity);
        if (!mixed)
        {
            Throughput.Fill(cache, w);
        }
        Throughput.Warm(cache, w, mixed ? Mix.GetSet90_10 : Mix.GetOnly, opts.ContainsKey("gets") ? Int(Value("gets"), "gets", 1, long.MaxValue) : 100_000, untilCount: mixed ? capacity : 0);
        Console.WriteLine($"{name}: {cache.Count} entries");
        return 0;
    }
    var settings = new Settings { CommandLine = "dotnet run -c Release --project perf/CacheKit.Headline" + (args.Length > 0 ? " -- " + string.Join(' ', args) : "") };
    switch (verb)
    {
        case "headline":
            break;
        case "throughput":
            settings.Caches = Caches.All;
            settings.Seconds = 2;
            settings.Repeats = 3;
            settings.RunMemory = false;
            settings.RunHitRatios = false;
            settings.OutputDirectory = Path.Combine("results", "throughput");
            break;
        case "memory":
            settings.RunThroughput = false;
            settings.RunRedis = false;
            settings.RunHitRatios = false;
            settings.Caches = Caches.All;
            settings.MemoryEntries = [1_000_000, 10_000_000];
            settings.BigEntries = [];
            settings.NoMemoryChild = [];
            settings.LatencySeconds = 30;
            settings.OutputDirectory = Path.Combine("results", "memory");
            break;
        default:
            Console.Error.WriteLine($"unknown verb '{verb}'");
            Console.Error.WriteLine(Usage);
            return 2;
    }
    settings.Seconds = Num("seconds", settings.Seconds, 0.001, 3600);
    settings.Repeats = IntOption("repeats", settings.Repeats, 1, 1000);
    settings.MaxThreads = IntOption("threads", settings.MaxThreads, 1, 1024);
    settings.Entries = IntOption("entries", settings.Entries, MinEntries, MaxEntries);
    settings.EvictionCapacity = IntOption("bound", settings.EvictionCapacity, 1, MaxEntries);
    settings.LatencySeconds = Num("latency-seconds", Num("latency", settings.LatencySeconds, 0.001, 3600), 0.001, 3600);
    settings.MemoryEntries = Longs("memory-entries", [.. settings.MemoryEntries]);
    settings.BigEntries = Longs("big-entries", [.. settings.BigEntries]);
    if (opts.TryGetValue("values", out string? values))
    {
        settings.Values = ParseValues(values);
    }
    settings.Isolated = opts.ContainsKey("isolated");
    if (opts.TryGetValue("caches", out string? caches))
    {
        settings.Caches = [.. caches.Split(',').Select(Caches.FromShortName).Distinct()];   // a cache named twice is measured once
    }
    settings.RunRedis &= !opts.ContainsKey("no-redis");
    settings.RunThroughput &= !opts.ContainsKey("no-throughput");
    settings.RunMemory &= !opts.ContainsKey("no-memory");
    settings.RunHitRatios &= !opts.ContainsKey("no-hit");
    settings.InstallRedis = opts.ContainsKey("install-redis");
    settings.OutputDirectory = opts.ContainsKey("out") ? Value("out") : settings.OutputDirectory;
    // The report is written at the end: an --out naming a file, or a folder without write access, lost the whole run.
    if (File.Exists(settings.OutputDirectory))
    {
        throw new ArgumentException($"--out {settings.OutputDirectory} is a file, not a folder");
    }
    Directory.CreateDirectory(settings.OutputDirectory);
    string writeCheck = Path.Combine(settings.OutputDirectory, $".write-check-{Environment.ProcessId}");
    File.WriteAllBytes(writeCheck, []);
    File.Delete(writeCheck);

    Console.WriteLine($"CacheKit.OffHeap headline ({verb}) on {HeadlineReport.Machine()}");
    if (CacheAdapter.PeersReadValues)
    {
        Console.WriteLine("CACHEKIT_BENCH_READ_VALUES=1: the object caches' gets copy each value they return (not the targets' setting)");
    }
    if (Caches.OptionOverrides() is string overrides)
    {
        Console.WriteLine($"{overrides}: our caches run with these options, not the defaults");
    }
    Results results = Suite.Run(settings);
    List<TargetRow> rows = HeadlineReport.Targets(results, settings);
    string report = HeadlineReport.Write(results, settings, rows);
    Console.WriteLine();
    Console.WriteLine(HeadlineReport.RatioTable(rows));
    Console.WriteLine($"Report: {report} (run time {results.Elapsed.TotalSeconds:F0} s)");
    return 0;
}
catch (Exception e) when (e is ArgumentException or FormatException or IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

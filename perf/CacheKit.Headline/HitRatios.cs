using CacheKit.Policies;
using CacheKit.Simulator;

namespace CacheKit.Headline;

/// <summary>A compact hit-ratio run through the simulator's own code (project reference): the engine's default policy against the peers.</summary>
public static class HitRatios
{
    /// <summary>Name of our row (the engine's default policy, replayed alone by the simulator).</summary>
    public static string OursName => Catalog.Policy(PolicyFactory.Default)?.Name ?? PolicyFactory.Default.ToString();

    /// <summary>
    /// The traces and sizes of the compact run; traces missing from ../shared/traces are skipped, and
    /// <paramref name="skipped"/> says which and why (null when none is).
    /// </summary>
    public static List<(Func<Trace> Load, long[] Sizes, string Label)> Cases(string? tracesDir, out string? skipped)
    {
        skipped = null;
        (string File, string Format, long[] Sizes)[] traces = [("sprite.trace.gz", "A", [500, 1000]), ("web07.trace.gz", "B", [2000, 4000]), ("multi1.trace.gz", "A", [500, 1000])];
        var cases = new List<(Func<Trace>, long[], string)>
        {
            (() => Synthetic.Create("zipf:0.99:100000:400000", 24301, null), [1000, 10000], "zipf 0.99"),
        };
        if (tracesDir is null)
        {
            skipped = $"no shared/traces folder found above the current directory or the program's: the {string.Join(", ", traces.Select(t => t.File))} comparisons are skipped";
            return cases;
        }
        var missing = new List<string>();
        foreach ((string file, string format, long[] sizes) in traces)
        {
            string path = Path.Combine(tracesDir, file);
            if (File.Exists(path))
            {
                cases.Add((() => TraceReaders.Read(path, TraceReaders.ParseFormat(format)), sizes, file));
            }
            else
            {
                missing.Add(file);
            }
        }
        if (missing.Count > 0)
        {
            skipped = $"not in {tracesDir}: {string.Join(", ", missing)}; those comparisons are skipped";
        }
        return cases;
    }

    /// <summary>Replays one case: OPT, the default policy, LRU, and the peers.</summary>
    public static TraceResults Run(Trace trace, long[] sizes)
    {
        var specs = new List<TargetSpec> { Catalog.Opt() };
        foreach (PolicyKind kind in new[] { PolicyFactory.Default, PolicyKind.Lru })
        {
            if (Catalog.Policy(kind) is { } spec && !specs.Any(s => s.Name == spec.Name))
            {
                specs.Add(spec);
            }
        }
        specs.AddRange(Catalog.Peers());
        // The last phase, with nothing measured beside it: one job per core (the results do not depend on the job count).
        return Runner.Run(trace, sizes.Select(s => new Capacity(s, false)).ToList(), specs, jobs: Environment.ProcessorCount, new SilentProgress());
    }

    private sealed class SilentProgress : IProgressSink
    {
        public void Start(string trace, long totalRequests)
        {
        }

        public void Advance(string trace, long requests)
        {
        }

        public void Done(string trace, string policy, CellResult cell)
        {
        }

        public void Finish(string trace)
        {
        }
    }
}

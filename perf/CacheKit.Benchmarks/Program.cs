using BenchmarkDotNet.Running;

namespace CacheKit.Benchmarks;

/// <summary>Entry point: <c>dotnet run -c Release --project perf/CacheKit.Benchmarks -- --filter '*'</c>.</summary>
public static class Program
{
    /// <summary>
    /// Runs the benchmarks selected on the command line (BenchmarkDotNet's switcher), or a named report:
    /// <c>fragmentation</c> (slab size classes against the Twitter size statistics), <c>adversarial</c> (crafted colliding keys).
    /// </summary>
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "fragmentation")
        {
            return Slab.FragmentationReport.Run(args[1..]);
        }

        if (args.Length > 0 && args[0] == "adversarial")
        {
            return Adversarial.AdversarialReport.Run(args[1..]);
        }

        OffHeap.ShortConfig.CommandLineChoosesJob = args.Any(a => a is "--job" or "-j" || a.StartsWith("--job=", StringComparison.Ordinal));
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}

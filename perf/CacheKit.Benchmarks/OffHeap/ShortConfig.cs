using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;

namespace CacheKit.Benchmarks.OffHeap;

/// <summary>
/// The default job of the cache suite: one launch, 3 warm-up and 5 measured iterations of at least
/// 250 ms each, so a case takes seconds, not minutes (each case also fills its cache once in GlobalSetup).
/// Pass <c>--job default</c> on the command line for BenchmarkDotNet's full statistics: a job given there
/// replaces this one (BenchmarkDotNet would otherwise run both, every case twice).
/// </summary>
public sealed class ShortConfig : ManualConfig
{
    /// <summary>Whether the command line names a job (<c>--job</c>/<c>-j</c>); set by <see cref="Program.Main"/>.</summary>
    internal static bool CommandLineChoosesJob { get; set; }

    /// <summary>Creates the config.</summary>
    public ShortConfig()
    {
        if (!CommandLineChoosesJob)
        {
            AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(3).WithIterationCount(5)
                .WithMinIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(250)).WithId("Short"));
        }
        AddDiagnoser(MemoryDiagnoser.Default);
        WithOptions(ConfigOptions.DisableOptimizationsValidator);
    }
}

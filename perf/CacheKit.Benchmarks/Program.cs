using BenchmarkDotNet.Running;

namespace CacheKit.Benchmarks;

/// <summary>Entry point: <c>dotnet run -c Release --project perf/CacheKit.Benchmarks -- --filter '*'</c>.</summary>
public static class Program
{
    /// <summary>Runs the benchmarks selected on the command line (BenchmarkDotNet's switcher).</summary>
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}

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

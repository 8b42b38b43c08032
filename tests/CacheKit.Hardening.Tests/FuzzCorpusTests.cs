using CacheKit.Hardening.Harness;

namespace CacheKit.Hardening.Tests;

/// <summary>
/// Replays the fuzzer's corpus (fuzz/corpus: the seeds plus the inputs AFL++ kept for new coverage, copied to the
/// test output) through the fuzz target: cache vs model, poison on, invariants after every operation. Any input
/// that once crashed is kept there, so it stays fixed.
/// </summary>
public class FuzzCorpusTests
{
    private static string CorpusDirectory => Path.Combine(TestContext.CurrentContext.TestDirectory, "corpus");

    [Test]
    public void EveryCorpusInputAgreesWithTheModel()
    {
        string[] files = Directory.Exists(CorpusDirectory) ? Directory.GetFiles(CorpusDirectory, "*", SearchOption.AllDirectories) : [];
        Assert.That(files, Is.Not.Empty, "the corpus is copied next to the tests");
        long before = DifferentialRunner.OperationsRun;
        foreach (string file in files.Order(StringComparer.Ordinal))
        {
            byte[] data = File.ReadAllBytes(file);
            Failure? failure = FuzzTarget.Run(data);
            if (failure is not null)
            {
                DiffConfig config = FuzzTarget.ConfigFor(data);
                List<Op> ops = OpGenerator.Decode(data.Length > 2 ? data.AsSpan(2) : [], config);
                (List<Op> shrunk, Failure small) = DifferentialRunner.Shrink(config, ops, failure);
                Assert.Fail($"{Path.GetFileName(file)}: {config}: {failure}\nshrunk to {shrunk.Count} ops ({small}):\n{Op.Format(shrunk)}");
            }
        }
        TestContext.Out.WriteLine($"FUZZ corpus: {files.Length} inputs, {DifferentialRunner.OperationsRun - before} operations, 0 failures");
    }
}

using CacheKit.Hardening.Harness;
using CacheKit.OffHeap;

namespace CacheKit.Hardening.Tests;

/// <summary>
/// The differential harness: seeded random operation lists (mixed key and value sizes, empty keys and values,
/// TTLs on a fake clock, GetOrAdd, batches, Clear) run against the engine and a dictionary model for every
/// policy, in a small budget (evictions, page reclaim), a small budget with MaxEntries, and a roomy budget (no
/// set may be refused). The first disagreement fails the test with its seed and a shrunk operation list.
/// Length: CACHEKIT_DIFF_OPS operations per case (default 4000), CACHEKIT_DIFF_SEEDS seeds (default 1).
/// </summary>
public class DifferentialTests
{
    internal static readonly int Ops = Env("CACHEKIT_DIFF_OPS", 4000);
    private static readonly int Seeds = Env("CACHEKIT_DIFF_SEEDS", 1);

    internal static int Env(string name, int fallback)
        => int.TryParse(Environment.GetEnvironmentVariable(name), out int n) && n > 0 ? n : fallback;

    internal static IEnumerable<DiffConfig> Configs(CachePolicy policy)
    {
        // Small: 2 MiB, 64 KiB pages, 1 shard: values up to 64 KiB, constant eviction and page reclaim.
        yield return new DiffConfig("small", policy, 2 << 20, 64 * 1024, 1, null, KeySpace: 1500, MaxKeyPad: 40, MaxValue: 60_000, Roomy: false);
        // Small with an entry bound, 2 shards (the bound splits), TTL reclaim at the bound.
        yield return new DiffConfig("maxentries", policy, 4 << 20, 64 * 1024, 2, MaxEntries: 150, KeySpace: 600, MaxKeyPad: 12, MaxValue: 20_000, Roomy: false);
        // Roomy: everything fits, so no set may be refused.
        yield return new DiffConfig("roomy", policy, 64 << 20, 1 << 20, 4, null, KeySpace: 300, MaxKeyPad: 200, MaxValue: 16_000, Roomy: true);
        // A bound barely above the shard count: per-shard policy capacities of 2, 1, 1, 1.
        yield return new DiffConfig("tinybound", policy, 4 << 20, 64 * 1024, 4, MaxEntries: 5, KeySpace: 50, MaxKeyPad: 4, MaxValue: 2_000, Roomy: false);
        // Fault injection under the model: 30 % of native page allocations fail (OutOfMemoryException); the failed
        // write must leave no trace, everything else must still agree. Pages come from the system only until the
        // budget is reached, so the faults land early: many small pages, a key space that keeps needing new ones.
        yield return new DiffConfig("faults", policy, 6 << 20, 64 * 1024, 2, null, KeySpace: 800, MaxKeyPad: 20, MaxValue: 30_000, Roomy: false,
            FaultPercent: 30);
    }

    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (CachePolicy policy in Enum.GetValues<CachePolicy>())
        {
            foreach (DiffConfig config in Configs(policy))
            {
                yield return new TestCaseData(config).SetName($"Differential_{config.Name}_{policy}");
            }
        }
    }

    [TestCaseSource(nameof(Cases))]
    [NonParallelizable]
    public void EngineAgreesWithTheModel(object configObject)
    {
        var config = (DiffConfig)configObject;
        for (int seed = 1; seed <= Seeds; seed++)
        {
            List<Op> ops = OpGenerator.Generate(config, seed * 1_000_003 + (int)config.Policy, Ops);
            long injectedBefore = Interlocked.Read(ref DifferentialRunner.FaultsInjected);
            long surfacedBefore = Interlocked.Read(ref DifferentialRunner.FaultsSurfaced);
            Failure? failure = DifferentialRunner.Run(config, ops);
            long injected = Interlocked.Read(ref DifferentialRunner.FaultsInjected) - injectedBefore;
            long surfaced = Interlocked.Read(ref DifferentialRunner.FaultsSurfaced) - surfacedBefore;
            if (failure is not null)
            {
                (List<Op> shrunk, Failure small) = DifferentialRunner.Shrink(config, ops, failure);
                Assert.Fail($"{config} seed {seed}: {failure}\nshrunk to {shrunk.Count} ops ({small}):\n{Op.Format(shrunk)}");
            }
            if (config.FaultPercent > 0)
            {
                // A faults case that injected nothing, or whose faults never reached a caller, proved nothing.
                // (The counters are process-wide; this test is NonParallelizable, so the deltas are this run's.)
                Assert.That(injected, Is.GreaterThan(0), $"{config} seed {seed}: native allocations failed on purpose");
                Assert.That(surfaced, Is.GreaterThan(0), $"{config} seed {seed}: injected failures surfaced as OutOfMemoryException");
                Assert.That(surfaced, Is.LessThanOrEqualTo(injected), $"{config} seed {seed}: each surfaced failure was injected");
                TestContext.Out.WriteLine($"seed {seed}: {injected} native allocations failed on purpose, {surfaced} surfaced as OutOfMemoryException");
            }
            else
            {
                Assert.That(injected, Is.Zero, $"{config} seed {seed}: no fault injected outside the faults cases");
            }
        }
    }

    [Test]
    public void ShrinkerReducesAFailingListToItsCause()
    {
        // A harness that cannot find a bug proves nothing: plant one (the model forgets every removal of key 3, as
        // if Remove had not worked) and check that it is found and that the shrinker keeps it and shortens the list.
        var config = new DiffConfig("planted", CachePolicy.Lru, 4 << 20, 64 * 1024, 1, null, KeySpace: 40, MaxKeyPad: 8, MaxValue: 6_000, Roomy: true,
            PlantedForgetRemoveOfKey: 3);
        List<Op> ops = OpGenerator.Generate(config, 7, 3000);
        Failure? failure = DifferentialRunner.Run(config, ops);
        Assert.That(failure, Is.Not.Null, "the planted fault must be found");
        (List<Op> shrunk, Failure small) = DifferentialRunner.Shrink(config, ops, failure!);
        Assert.That(shrunk.Count, Is.LessThan(failure!.Step + 1));
        Assert.That(shrunk.Count, Is.LessThanOrEqualTo(4), "set k3, remove k3, then one read is the whole story");
        Assert.That(shrunk, Has.Some.Matches<Op>(op => op.Kind == OpKind.Remove && op.Key == 3));
        Assert.That(DifferentialRunner.Run(config, shrunk), Is.Not.Null, "the shrunk list still fails");
        TestContext.Out.WriteLine($"planted failure at step {failure.Step}, shrunk to {shrunk.Count} ops: {Op.Format(shrunk)}");
    }

    [OneTimeTearDown]
    public void Report() => TestContext.Progress.WriteLine(
        $"differential operations run: {DifferentialRunner.OperationsRun}; native allocations failed on purpose: {DifferentialRunner.FaultsInjected}, surfaced as OutOfMemoryException: {DifferentialRunner.FaultsSurfaced}");
}

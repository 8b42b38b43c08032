using System.Globalization;
using CacheKit.Hardening.Harness;
using CacheKit.OffHeap;
using CacheKit.Slab;

namespace CacheKit.Hardening.Tests;

/// <summary>
/// Concurrent stress for every policy, plain and in poison mode (freed chunks and recycled pages overwritten, so
/// a read of recycled memory would fail its checksum instead of passing by luck). Duration per case:
/// CACHEKIT_STRESS_SECONDS (default 1; fractions allowed); threads: CACHEKIT_STRESS_THREADS (default max(4, 2 x cores));
/// CACHEKIT_STRESS_POLICIES restricts the policies (comma-separated names).
/// </summary>
[NonParallelizable]
public class StressTests
{
    private static readonly double Seconds = double.TryParse(Environment.GetEnvironmentVariable("CACHEKIT_STRESS_SECONDS"),
        NumberStyles.Float, CultureInfo.InvariantCulture, out double s) && s > 0 ? s : 1;

    private static readonly int Threads = DifferentialTests.Env("CACHEKIT_STRESS_THREADS", Math.Max(4, 2 * Environment.ProcessorCount));

    public static IEnumerable<TestCaseData> Cases()
    {
        string? only = Environment.GetEnvironmentVariable("CACHEKIT_STRESS_POLICIES");
        foreach (CachePolicy policy in Enum.GetValues<CachePolicy>())
        {
            if (!string.IsNullOrEmpty(only) && !only.Split(',').Contains(policy.ToString(), StringComparer.OrdinalIgnoreCase))
            {
                continue;
            }
            yield return new TestCaseData(policy, false).SetName($"Stress_{policy}");
            yield return new TestCaseData(policy, true).SetName($"Stress_{policy}_Poison");
        }
    }

    /// <summary>The buffered-read policies again, with their reads replayed on the thread pool.</summary>
    public static IEnumerable<TestCaseData> BackgroundReplayCases()
    {
        foreach (CachePolicy policy in new[] { CachePolicy.WTinyLfu, CachePolicy.Lru })
        {
            yield return new TestCaseData(policy, true, true).SetName($"Stress_{policy}_Poison_BackgroundReplay");
        }
    }

    [TestCaseSource(nameof(Cases))]
    [TestCaseSource(nameof(BackgroundReplayCases))]
    public void ConcurrentMixedOperationsNeverReturnAWrongValue(CachePolicy policy, bool poison, bool backgroundReplay = false)
    {
        StressResult r = StressRunner.Run(policy, poison, TimeSpan.FromSeconds(Seconds), Threads, backgroundReadReplay: backgroundReplay);
        TestContext.Out.WriteLine("STRESS " + r);
        Assert.Multiple(() =>
        {
            Assert.That(r.Mismatches, Is.Zero, r.FirstMismatch);
            Assert.That(r.BudgetOverruns, Is.Zero, "native bytes above CapacityBytes");
            Assert.That(r.LeakedBytes, Is.Zero, "native bytes still owned after Dispose");
            Assert.That(r.Operations, Is.GreaterThan(0));
            Assert.That(r.VerifiedReads, Is.GreaterThan(0));
            Assert.That(r.BudgetSamples, Is.GreaterThan(0));
        });
    }

    [Test]
    public unsafe void PoisonModeOverwritesFreedChunksAndCatchesAWriteAfterFree()
    {
        // The poison mode itself must work, or the poisoned stress runs prove nothing.
        using var pool = new SlabPool(new SlabOptions { BudgetBytes = 1 << 20, PageSize = 64 * 1024, PoisonFreedMemory = true });
        SlabArena arena = pool.CreateArena();
        Assert.That(arena.TryAllocate(100, out SlabHandle handle), Is.True);
        byte* chunk = arena.GetPointer(handle);
        // SAFETY: a live chunk of at least 100 bytes.
        new Span<byte>(chunk, 100).Clear();
        arena.Free(handle);
        // SAFETY: the page stays allocated until Dispose; the chunk is at least 100 bytes.
        Assert.That(new ReadOnlySpan<byte>(chunk + 4, 96).IndexOfAnyExcept(SlabArena.PoisonByte), Is.EqualTo(-1), "freed chunk poisoned past its link");

        chunk[50] = 7;   // a write after free
        var e = Assert.Throws<InvalidOperationException>(() => arena.TryAllocate(100, out _));
        Assert.That(e!.Message, Does.Contain("written after the chunk was freed"));
    }
}

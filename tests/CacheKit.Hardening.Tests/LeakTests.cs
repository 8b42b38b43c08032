using System.Diagnostics;
using System.Runtime.InteropServices;
using CacheKit.OffHeap;
using CacheKit.Slab;

namespace CacheKit.Hardening.Tests;

/// <summary>
/// Caches created, filled and dropped in a loop (disposed, or left to the slab's finalizer): every disposed cache
/// owns 0 native bytes, and the process's resident memory returns to its starting level (within a margin far
/// below what one iteration allocates times the iterations). CACHEKIT_LEAK_ROUNDS sets the rounds (default 60).
/// </summary>
[NonParallelizable]
public class LeakTests
{
    private static readonly int Rounds = DifferentialTests.Env("CACHEKIT_LEAK_ROUNDS", 60);

    [StructLayout(LayoutKind.Sequential)]
    private struct MallInfo2
    {
        public nuint Arena, Ordblks, Smblks, Hblks, Hblkhd, Usmblks, Fsmblks, Uordblks, Fordblks, Keepcost;
    }

    [DllImport("libc", EntryPoint = "mallinfo2")]
    private static extern MallInfo2 NativeMallInfo2();

    /// <summary>Bytes the C allocator has handed out and not had back (in-use arena bytes + mmapped blocks), or -1 off glibc.</summary>
    private static long MallocInUse()
    {
        try
        {
            MallInfo2 m = NativeMallInfo2();
            return (long)m.Uordblks + (long)m.Hblkhd;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return -1;
        }
    }

    private static long Resident()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var self = Process.GetCurrentProcess();
        return self.WorkingSet64;
    }

    private static void Fill(OffHeapCache cache, int seed)
    {
        var rng = new Random(seed);
        var value = new byte[8000];
        for (int i = 0; i < 6000; i++)
        {
            cache.Set(BitConverter.GetBytes(rng.Next(20_000)), value.AsSpan(0, 16 + rng.Next(value.Length - 16)));
        }
    }

    /// <summary>One cache's life, in its own frame so that nothing keeps a dropped cache reachable.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static long OneRound(OffHeapCacheOptions options, CachePolicy policy, int round, List<WeakReference> undisposed)
    {
        options.Policy = policy;
        var cache = new OffHeapCache(options);
        Fill(cache, round);
        SlabPool pool = cache.Pool;
        long owned = pool.OwnedBytes;
        if (round % 4 == 3)
        {
            undisposed.Add(new WeakReference(pool));   // dropped: the slab's finalizer must free it
            return owned;
        }
        cache.Dispose();
        Assert.That(pool.OwnedBytes, Is.Zero, $"round {round}: native bytes after Dispose");
        return owned;
    }

    [Test]
    public void CreatingAndDisposingCachesReturnsEveryByte()
    {
        const long Capacity = 16 << 20;
        CachePolicy[] policies = Enum.GetValues<CachePolicy>();
        var options = new OffHeapCacheOptions { CapacityBytes = Capacity, PageSize = 64 * 1024 };
        using (var warm = new OffHeapCache(options))
        {
            Fill(warm, 0);   // JIT, thread statics, the runtime's own first allocations
        }
        long start = Resident(), mallocStart = MallocInUse();
        long nativeChurn = 0, half = 0;
        var undisposed = new List<WeakReference>();
        for (int round = 0; round < Rounds; round++)
        {
            nativeChurn += OneRound(options, policies[round % policies.Length], round, undisposed);
            if (round == Rounds / 2)
            {
                half = Resident();
            }
        }
        long end = Resident(), mallocEnd = MallocInUse();
        Assert.That(undisposed.Count(w => w.IsAlive), Is.Zero, "dropped caches are collected");
        TestContext.Out.WriteLine(
            $"LEAK {Rounds} caches ({nativeChurn / (1 << 20)} MiB of native memory allocated and freed, {undisposed.Count} of them by the finalizer): " +
            $"malloc in use {mallocStart / 1024} KiB -> {mallocEnd / 1024} KiB; resident {start / (1 << 20)} MiB -> {half / (1 << 20)} MiB (half way) -> {end / (1 << 20)} MiB; " +
            $"GC committed {GC.GetGCMemoryInfo().TotalCommittedBytes / (1 << 20)} MiB");
        if (mallocStart >= 0)
        {
            // Native bytes: the C allocator has back everything the caches took (a little runtime noise allowed).
            Assert.That(mallocEnd - mallocStart, Is.LessThan(4L << 20), "native bytes return to their starting level");
        }
        // Process memory: after the allocator and the GC settle (first half), it stops growing. RSS moves
        // by tens of MiB with glibc arena trimming and GC heap decommit (39 MiB seen in one CI run with no
        // leak), so the bound is 8 caches' budgets: leaking the caches of the second half (30 x 16 MiB)
        // would exceed it many times over. Small leaks are caught exactly by the two checks above.
        Assert.That(end - half, Is.LessThan(8 * Capacity), "resident memory plateaus: no per-cache leak");
    }
}

namespace CacheKit.OffHeap.Tests;

/// <summary>Allocation measurement shared by the zero-allocation tests.</summary>
internal static class Allocations
{
    /// <summary>
    /// The fewest bytes this thread allocated over up to three runs of <paramref name="run"/> (stops at the first run
    /// that allocates nothing). Warm the code up first. The runtime may allocate on this thread once while it tiers code
    /// up (a one-off seen in CI); an allocation per operation would show in every run, so the least run is what counts.
    /// </summary>
    public static long LeastOfThreeRuns(Action run)
    {
        long allocated = long.MaxValue;
        for (int round = 0; round < 3 && allocated != 0; round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            run();
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return allocated;
    }
}

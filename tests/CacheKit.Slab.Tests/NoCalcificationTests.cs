using CacheKit.Slab;

namespace CacheKit.Slab.Tests;

/// <summary>
/// The measurement: values of ~100 B fill the budget, then the mix shifts to ~1 KB. The caller makes room
/// the way the engine does (reclaim a page of another class through TryPickPageToReclaim / GetLiveChunks / Free,
/// else evict the oldest entry of the class). After the shift at least 90% of the budget must be held in pages
/// of the new sizes' classes.
/// </summary>
public class NoCalcificationTests
{
    private const int PageSize = 1 << 20;
    private const long Budget = 32L * PageSize;

    [TestCase(1, 0)]
    [TestCase(1, 10)]
    [TestCase(4, 0)]
    [TestCase(4, 10)]
    public void After_a_shift_from_100_B_to_1_KB_the_new_classes_hold_at_least_90_percent_of_the_budget(int arenaCount, int spreadPercent)
    {
        using var pool = new SlabPool(new SlabOptions { BudgetBytes = Budget, PageSize = PageSize });
        var rng = new Random(42);
        var run = new Workload(pool, arenaCount);

        // Phase 1: ~100 B values until the budget is exhausted.
        long filled = 0;
        while (run.TryAllocateWithoutEviction(Jitter(rng, 100, spreadPercent)))
        {
            filled++;
        }

        pool.ValidateInvariants();
        double smallBefore = run.FractionOfBudgetForSizes(1, 128);
        TestContext.Out.WriteLine($"arenas {arenaCount}, spread ±{spreadPercent}%: {filled} values of ~100 B hold {smallBefore:P1} of the budget");
        Assert.That(smallBefore, Is.GreaterThan(0.9), "phase 1 fills the budget with small values");

        // Phase 2: ~1 KB values, twice the budget's worth, making room as the engine would.
        int spread = 1000 * spreadPercent / 100;
        long shiftBytes = 0;
        bool reportedHalfway = false;
        while (shiftBytes < 2 * Budget)
        {
            int size = Jitter(rng, 1000, spreadPercent);
            run.AllocateMakingRoom(size);
            shiftBytes += size;
            if (!reportedHalfway && shiftBytes >= Budget)
            {
                reportedHalfway = true;
                TestContext.Out.WriteLine($"after one budget of ~1 KB values: new classes hold {run.FractionOfBudgetForSizes(1000 - spread, 1000 + spread):P1} of the budget");
            }
        }

        pool.ValidateInvariants();
        double newClasses = run.FractionOfBudgetForSizes(1000 - spread, 1000 + spread);
        double oldClasses = run.FractionOfBudgetForSizes(1, 128);
        TestContext.Out.WriteLine(
            $"after the shift (2 budgets of ~1 KB values): new ~1 KB classes hold {newClasses:P1} of the budget, old ~100 B classes {oldClasses:P1}; " +
            $"{run.PagesReclaimed} pages moved ({run.PagesMovedBetweenNewClasses} of them between ~1 KB classes), {run.EvictedInClass} in-class evictions");
        Assert.That(newClasses, Is.GreaterThanOrEqualTo(0.9));

        // Phase 3: the same ~1 KB mix for another budget's worth: a steady mix should move few pages.
        int movedByShift = run.PagesReclaimed;
        long evictedByShift = run.EvictedInClass;
        for (long bytes = 0; bytes < Budget;)
        {
            int size = Jitter(rng, 1000, spreadPercent);
            run.AllocateMakingRoom(size);
            bytes += size;
        }

        int steadyMoves = run.PagesReclaimed - movedByShift;
        TestContext.Out.WriteLine($"steady ~1 KB mix for one more budget: {steadyMoves} pages moved, {run.EvictedInClass - evictedByShift} in-class evictions");
        pool.ValidateInvariants();
        Assert.That(steadyMoves, Is.LessThan(Budget / PageSize), "a steady mix does not pass pages back and forth");
        Assert.That(run.FractionOfBudgetForSizes(1000 - spread, 1000 + spread), Is.GreaterThanOrEqualTo(newClasses));
    }

    private static int Jitter(Random rng, int center, int spreadPercent)
    {
        int spread = center * spreadPercent / 100;
        return rng.Next(center - spread, center + spread + 1);
    }

    /// <summary>A minimal engine stand-in: keys spread round-robin over arenas, FIFO eviction within a class.</summary>
    private sealed class Workload(SlabPool pool, int arenaCount)
    {
        private readonly SlabArena[] _arenas = [.. Enumerable.Range(0, arenaCount).Select(_ => pool.CreateArena())];
        private readonly HashSet<SlabHandle> _live = [];
        private readonly Dictionary<(int Arena, int Class), Queue<SlabHandle>> _fifo = [];
        private readonly SlabHandle[] _scratch = new SlabHandle[pool.MaxChunksPerPage];
        private int _next;

        public int PagesReclaimed { get; private set; }

        public int PagesMovedBetweenNewClasses { get; private set; }

        public long EvictedInClass { get; private set; }

        public bool TryAllocateWithoutEviction(int size)
        {
            int a = _next++ % _arenas.Length;
            if (!_arenas[a].TryAllocate(size, out SlabHandle h))
            {
                return false;
            }

            Track(a, size, h);
            return true;
        }

        public void AllocateMakingRoom(int size)
        {
            int a = _next++ % _arenas.Length;
            SlabArena arena = _arenas[a];
            int c = pool.Classes.ClassOf(size);
            SlabHandle h;
            int attempts = 0;
            while (!arena.TryAllocate(size, out h))
            {
                // Each round frees at least one chunk of this arena, so a few rounds must make room.
                Assert.That(++attempts, Is.LessThan(100), "making room for one value does not converge");
                if (arena.TryPickPageToReclaim(c, out int page))
                {
                    int n = arena.GetLiveChunks(page, _scratch);
                    if (n > 0 && arena.GetChunkSize(_scratch[0]) > 128)
                    {
                        PagesMovedBetweenNewClasses++;
                    }

                    for (int i = 0; i < n; i++)
                    {
                        Assert.That(_live.Remove(_scratch[i]), Is.True, "listed chunks are live");
                        arena.Free(_scratch[i]);
                    }

                    PagesReclaimed++;
                    continue;
                }

                // No page of another class: evict the oldest live entry of this class in this arena.
                Queue<SlabHandle> queue = _fifo[(a, c)];
                SlabHandle victim;
                do
                {
                    victim = queue.Dequeue();
                }
                while (!_live.Contains(victim));

                _live.Remove(victim);
                arena.Free(victim);
                EvictedInClass++;
            }

            Track(a, size, h);
        }

        /// <summary>Pages cut to the classes that serve sizes in [minSize, maxSize], as a fraction of the budget.</summary>
        public double FractionOfBudgetForSizes(int minSize, int maxSize)
        {
            int firstClass = pool.Classes.ClassOf(minSize);
            int lastClass = pool.Classes.ClassOf(maxSize);
            SlabStatistics s = pool.GetStatistics();
            long pages = 0;
            for (int c = firstClass; c <= lastClass; c++)
            {
                pages += s.Classes[c].Pages;
            }

            return (double)pages * s.PageSize / s.BudgetBytes;
        }

        private void Track(int arena, int size, SlabHandle h)
        {
            Assert.That(_live.Add(h), Is.True);
            int c = pool.Classes.ClassOf(size);
            if (!_fifo.TryGetValue((arena, c), out Queue<SlabHandle>? queue))
            {
                _fifo[(arena, c)] = queue = new Queue<SlabHandle>();
            }

            queue.Enqueue(h);
        }
    }
}

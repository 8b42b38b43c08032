using CacheKit.Slab;

namespace CacheKit.Slab.Tests;

public class ConcurrentBudgetTests
{
    private const int Page = 1 << 16;

    [Test]
    public void Blocks_and_pages_taken_from_many_threads_never_exceed_the_budget()
    {
        const int Workers = 6;
        const long Budget = (20L * Page) + 12345;
        using var pool = new SlabPool(new SlabOptions { BudgetBytes = Budget, PageSize = Page });
        var arenas = Enumerable.Range(0, Workers).Select(_ => pool.CreateArena()).ToArray();
        bool stop = false;
        long maxSeen = 0;
        var watcher = new Thread(() =>
        {
            while (!Volatile.Read(ref stop))
            {
                long owned = pool.OwnedBytes;
                if (owned > Interlocked.Read(ref maxSeen))
                {
                    Interlocked.Exchange(ref maxSeen, owned);
                }
            }
        });
        watcher.Start();

        Parallel.For(0, Workers, new ParallelOptions { MaxDegreeOfParallelism = Workers }, w =>
        {
            var rng = new Random(w);
            var blocks = new List<NativeBlock>();
            var chunks = new List<SlabHandle>();
            for (int i = 0; i < 3000; i++)
            {
                if ((w & 1) == 0)
                {
                    if (rng.Next(2) == 0 && pool.TryAllocateBlock((nuint)rng.Next(1, 3 * Page), out NativeBlock b))
                    {
                        blocks.Add(b);
                    }
                    else if (blocks.Count > 0)
                    {
                        pool.FreeBlock(blocks[^1]);
                        blocks.RemoveAt(blocks.Count - 1);
                    }
                }
                else if (rng.Next(3) != 0 && arenas[w].TryAllocate(rng.Next(Page / 4, Page), out SlabHandle h))
                {
                    chunks.Add(h);
                }
                else if (chunks.Count > 0)
                {
                    arenas[w].Free(chunks[^1]);
                    chunks.RemoveAt(chunks.Count - 1);
                }
            }

            blocks.ForEach(pool.FreeBlock);
            chunks.ForEach(arenas[w].Free);
        });

        Volatile.Write(ref stop, true);
        watcher.Join();
        Assert.That(maxSeen, Is.LessThanOrEqualTo(Budget));
        Assert.That(maxSeen, Is.GreaterThan(Budget / 2), "the workers did contend for the budget");
        pool.ValidateInvariants();
        SlabStatistics s = pool.GetStatistics();
        Assert.That(s.BlockBytes, Is.Zero);
        Assert.That(s.OwnedBytes, Is.EqualTo((long)s.Pages * Page), "only pages remain, held as pool free pages or spares");
    }
}

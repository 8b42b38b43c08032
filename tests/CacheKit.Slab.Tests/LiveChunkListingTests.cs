using CacheKit.Slab;

namespace CacheKit.Slab.Tests;

public class LiveChunkListingTests
{
    private const int Page = 1 << 16;

    [Test]
    public void Batched_listing_with_a_small_buffer_frees_exactly_the_live_chunks()
    {
        using var pool = new SlabPool(new SlabOptions { BudgetBytes = 2L * Page, PageSize = Page });
        SlabArena arena = pool.CreateArena();
        var rng = new Random(3);
        var live = new HashSet<SlabHandle>();
        while (arena.TryAllocate(200, out SlabHandle h))
        {
            live.Add(h);
        }

        // Punch holes so the live chunks are scattered.
        foreach (SlabHandle h in live.Where(_ => rng.Next(3) == 0).ToList())
        {
            arena.Free(h);
            live.Remove(h);
        }

        Assert.That(arena.TryPickPageToReclaim(pool.Classes.ClassOf(5000), out int page), Is.True);
        var all = new SlabHandle[arena.MaxChunksPerPage];
        var expected = new HashSet<SlabHandle>(all[..arena.GetLiveChunks(page, all)]);
        Assert.That(expected, Is.SubsetOf(live));

        Span<SlabHandle> buffer = stackalloc SlabHandle[7];
        var listed = new HashSet<SlabHandle>();
        int cursor = 0;
        int n;
        while ((n = arena.GetLiveChunks(page, ref cursor, buffer)) > 0)
        {
            for (int i = 0; i < n; i++)
            {
                Assert.That(listed.Add(buffer[i]), Is.True, "each chunk listed once");
                arena.Free(buffer[i]);
                live.Remove(buffer[i]);
            }

            pool.ValidateInvariants();
        }

        Assert.That(listed, Is.EquivalentTo(expected));
        Assert.That(pool.GetStatistics().FreePages, Is.EqualTo(1), "the emptied page went back to the pool");
        Assert.That(arena.GetLiveChunks(page, ref cursor, buffer), Is.Zero);
        Assert.Throws<ArgumentException>(() => arena.GetLiveChunks(page, ref cursor, Span<SlabHandle>.Empty));
        int negative = -1;
        Assert.Throws<ArgumentOutOfRangeException>(() => arena.GetLiveChunks(page, ref negative, new SlabHandle[1]));
        pool.ValidateInvariants();
    }
}

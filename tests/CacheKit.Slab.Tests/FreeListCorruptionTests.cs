using CacheKit.Slab;

namespace CacheKit.Slab.Tests;

public unsafe class FreeListCorruptionTests
{
    [Test]
    public void Writing_into_a_freed_chunk_is_detected_before_a_bad_chunk_is_handed_out()
    {
        using var pool = new SlabPool(new SlabOptions { BudgetBytes = 1 << 16, PageSize = 1 << 16 });
        SlabArena arena = pool.CreateArena();
        Assert.That(arena.TryAllocate(64, out SlabHandle a), Is.True);
        Assert.That(arena.TryAllocate(64, out SlabHandle b), Is.True);
        Assert.That(arena.TryAllocate(64, out SlabHandle keep), Is.True);
        arena.Free(a);
        arena.Free(b); // free list: b -> a
        pool.ValidateInvariants();

        // A use-after-free write over b's link (its first 4 bytes) pointing past the cut chunks.
        *(int*)arena.GetPointer(b) = 1_000;
        var ex = Assert.Throws<InvalidOperationException>(() => arena.TryAllocate(64, out _));
        Assert.That(ex!.Message, Does.Contain("written to after it was freed"));
        Assert.That(pool.GetStatistics().Classes.Sum(c => c.LiveChunks), Is.EqualTo(1), "nothing was handed out");

        // A link to a live chunk is caught too.
        *(int*)arena.GetPointer(b) = (keep.ByteOffset / 64) + 1;
        Assert.Throws<InvalidOperationException>(() => arena.TryAllocate(64, out _));

        // Restoring the link (b -> a) makes the page usable again.
        *(int*)arena.GetPointer(b) = (a.ByteOffset / 64) + 1;
        pool.ValidateInvariants();
        Assert.That(arena.TryAllocate(64, out SlabHandle again), Is.True);
        Assert.That(again, Is.EqualTo(b));
        pool.ValidateInvariants();
    }

    [Test]
    public void A_freed_chunk_whose_link_is_overwritten_to_name_itself_is_not_handed_out_twice()
    {
        using var pool = new SlabPool(new SlabOptions { BudgetBytes = 1 << 16, PageSize = 1 << 16 });
        SlabArena arena = pool.CreateArena();
        Assert.That(arena.TryAllocate(64, out SlabHandle a), Is.True);
        Assert.That(arena.TryAllocate(64, out SlabHandle keep), Is.True);
        arena.Free(a); // free list: a

        // A use-after-free write makes a's link name a itself (a cut chunk, not live until a is handed out). Before
        // the fix the allocation took a and left it at the head of the free list; its owner's first write (0 here,
        // as an engine header's length can be) then ended the list there, and the next allocation handed the live
        // chunk a out a second time: two owners of one chunk, silently (only a Debug.Assert noticed).
        *(int*)arena.GetPointer(a) = (a.ByteOffset / 64) + 1;
        var ex = Assert.Throws<InvalidOperationException>(() => arena.TryAllocate(64, out _));
        Assert.That(ex!.Message, Does.Contain("written to after it was freed"));
        Assert.That(pool.GetStatistics().Classes.Sum(c => c.LiveChunks), Is.EqualTo(1), "nothing was handed out");

        // Restoring the link (end of list) makes the page usable again; a is handed out once.
        *(int*)arena.GetPointer(a) = 0;
        pool.ValidateInvariants();
        Assert.That(arena.TryAllocate(64, out SlabHandle again), Is.True);
        Assert.That(again, Is.EqualTo(a));
        *(int*)arena.GetPointer(again) = 0;
        Assert.That(arena.TryAllocate(64, out SlabHandle next), Is.True);
        Assert.That(next, Is.Not.EqualTo(a).And.Not.EqualTo(keep));
        pool.ValidateInvariants();
    }

    [Test]
    public void A_freed_chunk_whose_link_is_zeroed_never_leads_to_a_chunk_past_the_page_end()
    {
        const int page = 1 << 16;
        using var pool = new SlabPool(new SlabOptions { BudgetBytes = page, PageSize = page });
        SlabArena arena = pool.CreateArena();
        int size = page / 3 & ~7; // 21840: 3 chunks per page, 16 bytes left at the end
        Assert.That(arena.TryAllocate(size, out SlabHandle a), Is.True);
        Assert.That(arena.TryAllocate(size, out SlabHandle b), Is.True);
        Assert.That(arena.TryAllocate(size, out SlabHandle c), Is.True); // every chunk of the page is cut
        arena.Free(b);
        arena.Free(a); // free list: a -> b

        // A use-after-free write of 0 (an engine header's length, say) over a's link ends the list at a: b is lost.
        *(int*)arena.GetPointer(a) = 0;
        Assert.That(arena.TryAllocate(size, out SlabHandle again), Is.True);
        Assert.That(again, Is.EqualTo(a));

        // The page has a free chunk by its live count (2 of 3) but none in its list and none left to cut. Before the
        // fix the allocation cut a fourth chunk at offset 65520, whose 21840 bytes run 21824 bytes past the page end.
        SlabHandle next = default;
        var ex = Assert.Throws<InvalidOperationException>(() => arena.TryAllocate(size, out next));
        Assert.That(ex!.Message, Does.Contain("written to after it was freed"));
        Assert.That(next.IsNone, Is.True);
        Assert.That(pool.GetStatistics().Classes.Sum(x => x.LiveChunks), Is.EqualTo(2), "nothing was handed out");
        GC.KeepAlive(c);
    }
}

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
}

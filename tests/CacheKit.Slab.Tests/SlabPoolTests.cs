using CacheKit.Slab;

namespace CacheKit.Slab.Tests;

public unsafe class SlabPoolTests
{
    private const int Page = 1 << 16;

    [TestCase(0L)]
    [TestCase(-1L)]
    [TestCase(Page - 1L)]
    public void Budget_below_one_page_is_rejected_naming_the_limit(long budget)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new SlabPool(new SlabOptions { BudgetBytes = budget, PageSize = Page }));
        Assert.That(ex!.ParamName, Is.EqualTo("BudgetBytes"));
        Assert.That(ex.Message, Does.Contain(Page.ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    [TestCase(0)]
    [TestCase(1 << 15)]
    [TestCase(3 << 16)]
    [TestCase(1 << 27)]
    [TestCase(-65536)]
    public void Invalid_page_size_is_rejected_naming_the_range(int pageSize)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new SlabPool(new SlabOptions { BudgetBytes = 1L << 30, PageSize = pageSize }));
        Assert.That(ex!.ParamName, Is.EqualTo("PageSize"));
        Assert.That(ex.Message, Does.Contain("power of two"));
    }

    [Test]
    public void Null_options_and_bad_classes_are_rejected()
    {
        Assert.Throws<ArgumentNullException>(() => new SlabPool(null!));
        var ex = Assert.Throws<ArgumentException>(() => new SlabPool(new SlabOptions { BudgetBytes = Page, PageSize = Page, SizeClasses = [24, 12] }));
        Assert.That(ex!.Message, Does.Contain("multiple of 8"));
    }

    [Test]
    public void The_default_classes_take_the_options_steps_per_doubling()
    {
        using var coarse = new SlabPool(new SlabOptions { BudgetBytes = Page, PageSize = Page, SizeClassStepsPerDoubling = 2 });
        using var fine = new SlabPool(new SlabOptions { BudgetBytes = Page, PageSize = Page });
        Assert.That(coarse.Classes.Count, Is.EqualTo(SizeClassTable.CreateDefault(Page, 2).Count));
        Assert.That(fine.Classes.Count, Is.EqualTo(SizeClassTable.CreateDefault(Page).Count));
        Assert.That(coarse.Classes.Count, Is.LessThan(fine.Classes.Count));
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new SlabPool(new SlabOptions { BudgetBytes = Page, PageSize = Page, SizeClassStepsPerDoubling = 5 }));
        Assert.That(ex!.ParamName, Is.EqualTo("SizeClassStepsPerDoubling"));
        Assert.That(ex.Message, Does.Contain("2, 4 or 8"));
    }

    [Test]
    public void Bad_size_classes_are_rejected_naming_the_option()
    {
        // SlabPool's options name the classes SizeClasses; the exception named "sizes" (SizeClassTable.Create's parameter).
        var ex = Assert.Throws<ArgumentException>(() => new SlabPool(new SlabOptions { BudgetBytes = Page, PageSize = Page, SizeClasses = [16, Page * 2] }));
        Assert.That(ex!.ParamName, Is.EqualTo("SizeClasses"));
        Assert.That(ex.Message, Does.Contain(Page.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        ex = Assert.Throws<ArgumentException>(() => new SlabPool(new SlabOptions { BudgetBytes = Page, PageSize = Page, SizeClasses = [] }));
        Assert.That(ex!.ParamName, Is.EqualTo("SizeClasses"));
        Assert.That(ex.Message, Does.Contain("4096"));
    }

    [Test]
    public void Blocks_count_against_the_budget_exactly_and_are_zeroed_and_aligned()
    {
        using var pool = new SlabPool(new SlabOptions { BudgetBytes = 3L * Page, PageSize = Page });
        Assert.That(pool.TryAllocateBlock((nuint)(Page + 100), out NativeBlock block), Is.True);
        Assert.That(pool.OwnedBytes, Is.EqualTo(Page + 100));
        Assert.That((long)block.Pointer % 64, Is.Zero);
        Assert.That(new ReadOnlySpan<byte>(block.Pointer, Page + 100).IndexOfAnyExcept((byte)0), Is.EqualTo(-1));
        pool.ValidateInvariants();

        // The remaining budget is 2 pages - 100 bytes: one page fits, a second does not.
        SlabArena arena = pool.CreateArena();
        Assert.That(arena.TryAllocate(Page, out _), Is.True);
        Assert.That(arena.TryAllocate(Page, out _), Is.False);
        Assert.That(pool.OwnedBytes, Is.EqualTo((2L * Page) + 100));
        Assert.That(pool.TryAllocateBlock((nuint)Page, out _), Is.False);
        Assert.That(pool.TryAllocateBlock((nuint)(Page - 100), out NativeBlock rest), Is.True);
        Assert.That(pool.OwnedBytes, Is.EqualTo(pool.BudgetBytes));
        Assert.That(pool.TryAllocateBlock(1, out _), Is.False);
        pool.ValidateInvariants();

        pool.FreeBlock(rest);
        pool.FreeBlock(block);
        Assert.That(pool.OwnedBytes, Is.EqualTo(Page));
        pool.ValidateInvariants();
    }

    [Test]
    public void Freeing_a_block_twice_or_a_foreign_block_throws_and_changes_nothing()
    {
        using var pool = new SlabPool(new SlabOptions { BudgetBytes = 4L * Page, PageSize = Page });
        using var other = new SlabPool(new SlabOptions { BudgetBytes = 4L * Page, PageSize = Page });
        Assert.That(pool.TryAllocateBlock(128, out NativeBlock a), Is.True);
        Assert.That(other.TryAllocateBlock(128, out NativeBlock foreign), Is.True);
        Assert.Throws<ArgumentException>(() => pool.FreeBlock(foreign));
        Assert.Throws<ArgumentException>(() => pool.FreeBlock(default));
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.TryAllocateBlock(0, out _));
        pool.FreeBlock(a);
        var ex = Assert.Throws<ArgumentException>(() => pool.FreeBlock(a));
        Assert.That(ex!.ParamName, Is.EqualTo("block"));
        Assert.That(pool.OwnedBytes, Is.Zero);
        pool.ValidateInvariants();
        other.ValidateInvariants();
    }

    [Test]
    public void Dispose_returns_every_byte_is_idempotent_and_later_use_throws()
    {
        var pool = new SlabPool(new SlabOptions { BudgetBytes = 8L * Page, PageSize = Page });
        SlabArena arena = pool.CreateArena();
        Assert.That(arena.TryAllocate(100, out SlabHandle h), Is.True);
        Assert.That(arena.TryAllocate(5000, out _), Is.True);
        Assert.That(pool.TryAllocateBlock(1000, out NativeBlock block), Is.True);
        Assert.That(pool.OwnedBytes, Is.EqualTo((2L * Page) + 1000));

        pool.Dispose();
        Assert.That(pool.OwnedBytes, Is.Zero);
        pool.ValidateInvariants();
        pool.Dispose();
        Assert.That(pool.OwnedBytes, Is.Zero);

        Assert.Throws<ObjectDisposedException>(() => arena.TryAllocate(100, out _));
        Assert.Throws<ObjectDisposedException>(() => arena.Free(h));
        Assert.Throws<ObjectDisposedException>(() => arena.GetPointer(h));
        Assert.Throws<ObjectDisposedException>(() => arena.GetBytesToPageEnd(h));
        Assert.Throws<ObjectDisposedException>(() => arena.GetChunkSize(h));
        Assert.Throws<ObjectDisposedException>(() => arena.TryPickPageToReclaim(0, out _));
        Assert.Throws<ObjectDisposedException>(() => arena.GetLiveChunks(0, new SlabHandle[arena.MaxChunksPerPage]));
        Assert.Throws<ObjectDisposedException>(() => pool.CreateArena());
        Assert.Throws<ObjectDisposedException>(() => pool.TryAllocateBlock(8, out _));
        Assert.Throws<ObjectDisposedException>(() => pool.FreeBlock(block));
        Assert.Throws<ObjectDisposedException>(() => pool.GetStatistics());
    }

    [Test]
    public void An_arena_holds_no_page_after_its_pool_is_disposed()
    {
        var pool = new SlabPool(new SlabOptions { BudgetBytes = 8L * Page, PageSize = Page });
        SlabArena arena = pool.CreateArena();
        Assert.That(arena.TryAllocate(100, out _), Is.True);
        Assert.That(arena.TryAllocate(5000, out _), Is.True);
        Assert.That(arena.PagesHeld, Is.EqualTo(2));
        pool.Dispose();
        // Dispose freed every page (OwnedBytes 0); PagesHeld kept reporting 2.
        Assert.That(pool.OwnedBytes, Is.Zero);
        Assert.That(arena.PagesHeld, Is.Zero);
    }

    [Test]
    [NonParallelizable] // sets the static SlabPool.AllocationHook
    public void Managed_bookkeeping_counts_the_bitmap_of_a_page_whose_native_allocation_failed()
    {
        using var pool = new SlabPool(new SlabOptions { BudgetBytes = 8L * Page, PageSize = Page });
        SlabArena arena = pool.CreateArena();
        long before = pool.GetStatistics().ManagedBookkeepingBytes;
        SlabPool.AllocationHook = _ => false;
        try
        {
            Assert.Throws<OutOfMemoryException>(() => arena.TryAllocate(100, out _));
        }
        finally
        {
            SlabPool.AllocationHook = null;
        }

        // The failed page's bitmap was allocated (and is kept for the page's next try) but was not counted.
        long bitmapBytes = (long)pool.BitmapWords * sizeof(ulong);
        Assert.That(pool.OwnedBytes, Is.Zero);
        Assert.That(pool.GetStatistics().ManagedBookkeepingBytes, Is.EqualTo(before + bitmapBytes));
        Assert.That(arena.TryAllocate(100, out _), Is.True);
        Assert.That(pool.GetStatistics().ManagedBookkeepingBytes, Is.EqualTo(before + bitmapBytes), "the retry reuses that bitmap");
        pool.ValidateInvariants();
    }

    [Test]
    public void Statistics_report_pages_and_per_class_bytes()
    {
        using var pool = new SlabPool(new SlabOptions { BudgetBytes = 8L * Page, PageSize = Page });
        SlabArena arena = pool.CreateArena();
        int c100 = pool.Classes.ClassOf(100);
        Assert.That(arena.TryAllocate(100, out SlabHandle a), Is.True);
        Assert.That(arena.TryAllocate(97, out _), Is.True);
        SlabStatistics s = pool.GetStatistics();
        Assert.That(s.Pages, Is.EqualTo(1));
        Assert.That(s.OwnedBytes, Is.EqualTo(Page));
        Assert.That(s.Classes[c100].LiveChunks, Is.EqualTo(2));
        Assert.That(s.Classes[c100].HandedOutBytes, Is.EqualTo(2L * pool.Classes[c100]));
        Assert.That(s.Classes[c100].TotalRequestedBytes, Is.EqualTo(197));
        Assert.That(s.InternalFragmentationRatio, Is.EqualTo(2.0 * pool.Classes[c100] / 197).Within(1e-12));
        Assert.That(s.ManagedBookkeepingBytes, Is.Positive);
        arena.Free(a);
        s = pool.GetStatistics();
        Assert.That(s.Classes[c100].LiveChunks, Is.EqualTo(1));
        Assert.That(s.HandedOutBytes, Is.EqualTo(pool.Classes[c100]));
    }
}

using CacheKit.Slab;

namespace CacheKit.Slab.Tests;

public unsafe class SlabArenaTests
{
    private const int Page = 1 << 16;

    private static SlabPool NewPool(int pages = 8) => new(new SlabOptions { BudgetBytes = (long)pages * Page, PageSize = Page });

    [Test]
    public void Allocate_write_read_free_reuses_the_chunk()
    {
        using SlabPool pool = NewPool();
        SlabArena arena = pool.CreateArena();
        Assert.That(arena.TryAllocate(100, out SlabHandle h), Is.True);
        Assert.That(h.IsNone, Is.False);
        Assert.That(arena.GetChunkSize(h), Is.EqualTo(104));
        byte* p = arena.GetPointer(h);
        Assert.That((long)p % 8, Is.Zero);
        Assert.That(arena.GetBytesToPageEnd(h), Is.EqualTo(Page - h.ByteOffset));
        new Span<byte>(p, 100).Fill(0xAB);
        Assert.That(new ReadOnlySpan<byte>(arena.GetPointer(h), 100).IndexOfAnyExcept((byte)0xAB), Is.EqualTo(-1));
        pool.ValidateInvariants();
        arena.Free(h);
        pool.ValidateInvariants();
        Assert.That(arena.TryAllocate(99, out SlabHandle again), Is.True);
        Assert.That(again, Is.EqualTo(h), "the freed chunk is handed out again");
        pool.ValidateInvariants();
    }

    [Test]
    public void ResolveForReader_agrees_with_the_checked_api_and_reads_nothing_outside_a_page()
    {
        using SlabPool pool = NewPool(pages: 64);
        SlabArena arena = pool.CreateArena();
        var handles = new List<SlabHandle>();
        foreach (int size in new[] { 16, 100, 1000, 4000 })
        {
            for (int i = 0; i < 10; i++)
            {
                Assert.That(arena.TryAllocate(size, out SlabHandle h), Is.True);
                handles.Add(h);
            }
        }
        arena.Free(handles[3]);   // freed, page still allocated: defined like GetPointer
        foreach (SlabHandle h in handles)
        {
            byte* p = arena.ResolveForReader(h.Value, out int toEnd);
            Assert.That((nint)p, Is.EqualTo((nint)arena.GetPointer(h)), h.ToString());
            Assert.That(toEnd, Is.EqualTo(arena.GetBytesToPageEnd(h)), h.ToString());
        }

        // A page the pool never allocated (ids below MaxPages) and offsets at or past the page end give no bytes.
        Assert.That(pool.MaxPages, Is.GreaterThan(pool.OwnedBytes / Page + 1));
        SlabHandle unallocated = SlabHandle.Create(pool.MaxPages - 1, 0);
        arena.ResolveForReader(unallocated.Value, out int none);
        Assert.That(none, Is.Zero, "page never allocated");
        SlabHandle first = handles[0];
        ulong pastEnd = ((ulong)(uint)(first.PageId + 1) << 23) | ((ulong)Page >> 3);
        arena.ResolveForReader(pastEnd, out int atEnd);
        Assert.That(atEnd, Is.LessThanOrEqualTo(0), "offset at the page end");
        ulong farPastEnd = ((ulong)(uint)(first.PageId + 1) << 23) | ((1UL << 23) - 1);
        arena.ResolveForReader(farPastEnd, out int beyond);
        Assert.That(beyond, Is.LessThanOrEqualTo(0), "largest offset the handle can hold");

        // Page ids the table cannot hold fail the array bounds check instead of reading outside it.
        Assert.Throws<IndexOutOfRangeException>(() => arena.ResolveForReader(0, out _));
        Assert.Throws<IndexOutOfRangeException>(() => arena.ResolveForReader((ulong)(uint)(pool.MaxPages + 1) << 23, out _));
    }

    [TestCase(0)]
    [TestCase(-5)]
    [TestCase(Page + 1)]
    [TestCase(int.MaxValue)]
    public void Size_out_of_range_throws_naming_the_limit_and_changes_nothing(int size)
    {
        using SlabPool pool = NewPool();
        SlabArena arena = pool.CreateArena();
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => arena.TryAllocate(size, out _));
        Assert.That(ex!.ParamName, Is.EqualTo("size"));
        Assert.That(ex.Message, Does.Contain(pool.Classes.MaxChunkSize.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.That(pool.OwnedBytes, Is.Zero);
        pool.ValidateInvariants();
    }

    [Test]
    public void Double_free_is_detected_and_leaves_accounting_untouched()
    {
        using SlabPool pool = NewPool();
        SlabArena arena = pool.CreateArena();
        Assert.That(arena.TryAllocate(64, out SlabHandle a), Is.True);
        Assert.That(arena.TryAllocate(64, out SlabHandle b), Is.True);
        arena.Free(a);
        SlabStatistics before = pool.GetStatistics();
        var ex = Assert.Throws<InvalidOperationException>(() => arena.Free(a));
        Assert.That(ex!.Message, Does.Contain("not live"));
        SlabStatistics after = pool.GetStatistics();
        Assert.That(after.HandedOutBytes, Is.EqualTo(before.HandedOutBytes));
        pool.ValidateInvariants();
        arena.Free(b);
        pool.ValidateInvariants();
    }

    [Test]
    public void Foreign_and_invalid_handles_are_rejected()
    {
        using SlabPool pool = NewPool();
        using SlabPool otherPool = NewPool();
        SlabArena arena = pool.CreateArena();
        SlabArena sibling = pool.CreateArena();
        SlabArena stranger = otherPool.CreateArena();
        Assert.That(arena.TryAllocate(200, out SlabHandle mine), Is.True);
        Assert.That(sibling.TryAllocate(200, out SlabHandle siblings), Is.True);
        Assert.That(stranger.TryAllocate(200, out SlabHandle strangers), Is.True);

        Assert.Throws<InvalidOperationException>(() => arena.Free(siblings));      // another arena's page
        Assert.Throws<InvalidOperationException>(() => arena.Free(default));        // none
        Assert.Throws<InvalidOperationException>(() => arena.Free(SlabHandle.Create(mine.PageId, mine.ByteOffset + 8))); // not a chunk boundary
        Assert.Throws<InvalidOperationException>(() => arena.Free(SlabHandle.Create(mine.PageId, 10 * 208)));  // never cut
        Assert.Throws<InvalidOperationException>(() => arena.Free(SlabHandle.Create(1000, 0)));                 // beyond the page table
        Assert.Throws<InvalidOperationException>(() => arena.GetChunkSize(SlabHandle.Create(1000, 0)));
        // The other pool's first page has id 0 too, but in this pool page 0 belongs to `arena`: an offset that is
        // a boundary of a live chunk here cannot be told apart (documented); a non-live one is rejected.
        Assert.Throws<InvalidOperationException>(() => sibling.Free(strangers));
        Assert.Throws<ArgumentException>(() => arena.GetPointer(SlabHandle.Create(1000, 0)));
        Assert.Throws<ArgumentException>(() => arena.GetPointer(SlabHandle.Create(7, 0)));       // page id in range but never allocated
        Assert.Throws<ArgumentException>(() => arena.GetPointer(SlabHandle.Create(0, Page)));    // offset beyond the page
        Assert.Throws<ArgumentException>(() => arena.GetPointer(default));

        SlabStatistics s = pool.GetStatistics();
        Assert.That(s.Classes.Sum(c => c.LiveChunks), Is.EqualTo(2));
        pool.ValidateInvariants();
        otherPool.ValidateInvariants();
    }

    [Test]
    public void GetPointer_of_a_stale_handle_stays_inside_a_live_page_after_recut()
    {
        using SlabPool pool = NewPool(pages: 1);
        SlabArena arena = pool.CreateArena();
        var handles = new List<SlabHandle>();
        while (arena.TryAllocate(24, out SlabHandle h))
        {
            handles.Add(h);
        }

        Assert.That(handles, Has.Count.EqualTo(Page / 24));
        SlabHandle last = handles[^1];
        foreach (SlabHandle h in handles)
        {
            arena.Free(h);
        }

        // The emptied page is kept as the class's spare; give it back and cut it to 1000-byte chunks.
        Assert.That(arena.TryPickPageToReclaim(pool.Classes.ClassOf(1000), out int reclaimed), Is.True);
        Assert.That(arena.GetLiveChunks(reclaimed, new SlabHandle[arena.MaxChunksPerPage]), Is.Zero);
        Assert.That(arena.TryAllocate(1000, out SlabHandle big), Is.True);
        Assert.That(big.PageId, Is.EqualTo(last.PageId));
        byte* p = arena.GetPointer(last);
        byte* pageStart = arena.GetPointer(SlabHandle.Create(last.PageId, 0));
        Assert.That(p >= pageStart && p + arena.GetBytesToPageEnd(last) == pageStart + Page, Is.True);
        Assert.Throws<InvalidOperationException>(() => arena.Free(last));
        pool.ValidateInvariants();
    }

    [Test]
    public void Budget_is_never_exceeded_and_allocation_fails_cleanly_when_full()
    {
        using SlabPool pool = NewPool(pages: 3);
        SlabArena arena = pool.CreateArena();
        int count = 0;
        while (arena.TryAllocate(4000, out _))
        {
            count++;
            Assert.That(pool.OwnedBytes, Is.LessThanOrEqualTo(pool.BudgetBytes));
        }

        Assert.That(count, Is.EqualTo(3 * (Page / pool.Classes[pool.Classes.ClassOf(4000)])));
        Assert.That(pool.OwnedBytes, Is.EqualTo(3L * Page));
        Assert.That(arena.TryAllocate(16, out SlabHandle none), Is.False);
        Assert.That(none.IsNone, Is.True);
        pool.ValidateInvariants();
    }

    [Test]
    public void A_class_with_no_page_may_take_the_emptiest_page_of_another_class_within_the_cap()
    {
        using SlabPool pool = NewPool(pages: 3);
        SlabArena arena = pool.CreateArena();
        int a = pool.Classes.ClassOf(100), b = pool.Classes.ClassOf(1000), c = pool.Classes.ClassOf(3000), none = pool.Classes.ClassOf(6000);
        var handles = new Dictionary<int, List<SlabHandle>> { [a] = [], [b] = [], [c] = [] };
        foreach ((int size, int count) in new[] { (100, 10), (1000, 3), (3000, 6) })
        {
            for (int i = 0; i < count; i++)
            {
                Assert.That(arena.TryAllocate(size, out SlabHandle h), Is.True);
                handles[pool.Classes.ClassOf(size)].Add(h);
            }
        }
        Assert.That(arena.TryAllocate(6000, out _), Is.False, "three pages, three classes: none left");
        Assert.That(arena.TryPickPageToReclaim(none, out _), Is.False, "the share rules take no class's only page");

        Assert.That(arena.TryPickPageForAClassWithNone(a, 16, out _), Is.False, "a class that holds a page gets nothing");
        Assert.That(arena.TryPickPageForAClassWithNone(none, 2, out _), Is.False, "every page holds more than the cap");
        Assert.Throws<ArgumentOutOfRangeException>(() => arena.TryPickPageForAClassWithNone(none, 0, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => arena.TryPickPageForAClassWithNone(pool.Classes.Count, 1, out _));

        Assert.That(arena.TryPickPageForAClassWithNone(none, 3, out int page), Is.True);
        Assert.That(page, Is.EqualTo(handles[b][0].PageId), "the page with the fewest live chunks (3)");
        Assert.That(arena.TryPickPageForAClassWithNone(none, 3, out int again) && again == page, Is.True, "returned again until empty");
        pool.ValidateInvariants();
        var live = new SlabHandle[arena.MaxChunksPerPage];
        Assert.That(arena.GetLiveChunks(page, live), Is.EqualTo(3));
        for (int i = 0; i < 3; i++)
        {
            arena.Free(live[i]);
        }
        Assert.That(arena.TryAllocate(6000, out SlabHandle big), Is.True, "the emptied page went back to the pool and serves the class");
        Assert.That(big.PageId, Is.EqualTo(page));
        pool.ValidateInvariants();

        // A spare empty page of another class goes first, whatever the cap.
        foreach (SlabHandle h in handles[c])
        {
            arena.Free(h);
        }
        arena.Free(big);   // class 6000's page empties and becomes its spare; class 3000's page is its spare
        int tiny = pool.Classes.ClassOf(20_000);
        Assert.That(arena.TryPickPageForAClassWithNone(tiny, 1, out int spare), Is.True);
        Assert.That(arena.GetLiveChunks(spare, live), Is.Zero, "a spare is given back to the pool at once");
        Assert.That(pool.GetStatistics().FreePages, Is.EqualTo(1));
        pool.ValidateInvariants();
    }

    [TestCase(false)]
    [TestCase(true)]
    public void A_chunk_kept_for_a_rewrite_counts_as_its_class_s_demand_and_is_no_allocation(bool rewrites)
    {
        // Two pages: one of 100-byte chunks, one holding a single 1,000-byte chunk. The small class keeps allocating
        // (free one, take one); the large one's entry is only rewritten in place, or not at all.
        using SlabPool pool = NewPool(pages: 2);
        SlabArena arena = pool.CreateArena();
        var small = new List<SlabHandle>();
        for (int i = 0; i < Page / 104; i++)
        {
            Assert.That(arena.TryAllocate(100, out SlabHandle h), Is.True);
            small.Add(h);
        }
        Assert.That(arena.TryAllocate(1000, out SlabHandle big), Is.True);
        long allocations = pool.GetStatistics().Classes.Sum(c => c.TotalAllocations);
        for (int i = 0; i < 600; i++)
        {
            arena.Free(small[i]);
            Assert.That(arena.TryAllocate(100, out SlabHandle again), Is.True);
            small[i] = again;
            if (rewrites)
            {
                Assert.That(arena.TryKeepChunkFor(big, 1000), Is.True);
            }
        }
        Assert.That(pool.GetStatistics().Classes.Sum(c => c.TotalAllocations), Is.EqualTo(allocations + 600), "a kept chunk is not an allocation");
        Assert.That(arena.TryKeepChunkFor(big, 100), Is.False, "another class");
        Assert.That(arena.TryKeepChunkFor(big, 5000), Is.False, "another class");
        Assert.That(arena.TryKeepChunkFor(big, pool.Classes.MaxChunkSize + 1), Is.False, "no class");

        // Only demand decides whether the small class may take the large one's page: a class whose entries are only
        // rewritten must not look idle.
        Assert.That(arena.TryPickPageToReclaim(pool.Classes.ClassOf(100), out _), Is.EqualTo(!rewrites));
        if (!rewrites)
        {
            return;
        }
        arena.Free(big);
        Assert.Throws<InvalidOperationException>(() => arena.TryKeepChunkFor(big, 1000), "a freed chunk is not kept");
        pool.ValidateInvariants();
    }

    [Test]
    public void Reclaim_empties_a_page_of_another_class_back_into_the_pool()
    {
        using SlabPool pool = NewPool(pages: 2);
        SlabArena arena = pool.CreateArena();
        var small = new List<SlabHandle>();
        while (arena.TryAllocate(100, out SlabHandle h))
        {
            small.Add(h);
        }

        int bigClass = pool.Classes.ClassOf(1000);
        Assert.That(arena.TryAllocate(1000, out _), Is.False);
        Assert.That(arena.TryPickPageToReclaim(bigClass, out int page), Is.True);
        Assert.That(arena.TryPickPageToReclaim(bigClass, out int again), Is.True);
        Assert.That(again, Is.EqualTo(page), "the page being reclaimed is returned until it is empty");
        var live = new SlabHandle[arena.MaxChunksPerPage];
        int n = arena.GetLiveChunks(page, live);
        Assert.That(n, Is.EqualTo(Page / 104));
        Assert.Throws<ArgumentException>(() => arena.GetLiveChunks(page, new SlabHandle[n - 1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => arena.GetLiveChunks(-1, live));
        Assert.Throws<ArgumentOutOfRangeException>(() => arena.TryPickPageToReclaim(pool.Classes.Count, out _));
        pool.ValidateInvariants();
        for (int i = 0; i < n; i++)
        {
            Assert.That(live[i].PageId, Is.EqualTo(page));
            arena.Free(live[i]);
            small.Remove(live[i]);
            pool.ValidateInvariants();
        }

        Assert.That(pool.GetStatistics().FreePages, Is.EqualTo(1));
        Assert.That(arena.TryAllocate(1000, out SlabHandle big), Is.True);
        Assert.That(big.PageId, Is.EqualTo(page));
        // The small class holds one page but nearly all recent demand (its share is about two pages); the 1 KB
        // class served one allocation, so its page is above its share: the page moves back.
        Assert.That(arena.TryPickPageToReclaim(pool.Classes.ClassOf(100), out int back), Is.True);
        Assert.That(back, Is.EqualTo(page));
        Assert.That(arena.TryPickPageToReclaim(pool.Classes.ClassOf(5000), out int same), Is.True);
        Assert.That(same, Is.EqualTo(page), "while the picked page has live chunks it is returned again");
        arena.Free(big);
        Assert.That(pool.GetStatistics().FreePages, Is.EqualTo(1));

        // A class with no page never takes another class's only page.
        Assert.That(arena.TryPickPageToReclaim(pool.Classes.ClassOf(5000), out _), Is.False);
        Assert.That(small, Has.Count.EqualTo(Page / 104));
        pool.ValidateInvariants();
    }

    [Test]
    public void Pages_are_acquired_and_released_safely_by_many_threads()
    {
        const int Threads = 8;
        using var pool = new SlabPool(new SlabOptions { BudgetBytes = 64L * Page, PageSize = Page });
        var arenas = Enumerable.Range(0, Threads).Select(_ => pool.CreateArena()).ToArray();
        var held = new List<SlabHandle>[Threads];
        using var start = new Barrier(Threads);
        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t =>
        {
            var rng = new Random(t);
            var mine = held[t] = [];
            SlabArena arena = arenas[t];
            start.SignalAndWait();
            for (int round = 0; round < 20; round++)
            {
                // Grab pages until the shared budget runs out, then give most back.
                while (mine.Count < 4000 && arena.TryAllocate(rng.Next(2000, 9000), out SlabHandle h))
                {
                    *(int*)arena.GetPointer(h) = t;
                    mine.Add(h);
                }

                for (int i = mine.Count - 1; i >= mine.Count / 4; i--)
                {
                    Assert.That(*(int*)arena.GetPointer(mine[i]), Is.EqualTo(t));
                    arena.Free(mine[i]);
                    mine.RemoveAt(i);
                }
            }
        });

        pool.ValidateInvariants();
        Assert.That(pool.OwnedBytes, Is.LessThanOrEqualTo(pool.BudgetBytes));
        var pagesSeen = new Dictionary<int, int>();
        for (int t = 0; t < Threads; t++)
        {
            foreach (SlabHandle h in held[t])
            {
                Assert.That(*(int*)arenas[t].GetPointer(h), Is.EqualTo(t), "no chunk was handed to two threads");
                Assert.That(pagesSeen.TryAdd(h.PageId, t) || pagesSeen[h.PageId] == t, Is.True, "no page is held by two arenas");
            }
        }

        for (int t = 0; t < Threads; t++)
        {
            foreach (SlabHandle h in held[t])
            {
                arenas[t].Free(h);
            }
        }

        pool.ValidateInvariants();
        SlabStatistics s = pool.GetStatistics();
        Assert.That(s.HandedOutBytes, Is.Zero);
        Assert.That(s.Pages - s.FreePages, Is.LessThanOrEqualTo(s.Classes.Count(c => c.Pages > 0) * Threads), "only spares remain held");
    }

    [Test]
    public void TryReleaseForeignSpare_gives_another_class_s_empty_page_to_the_pool_and_never_the_asking_class_s_own()
    {
        // Budget of 2 pages: class A's page is emptied (kept as A's spare), class B holds the other; a third class then
        // finds the budget spent until A's spare goes back to the pool. The engine calls this before evicting.
        using SlabPool pool = NewPool(pages: 2);
        SlabArena arena = pool.CreateArena();
        int classA = arena.Classes.ClassOf(100), classB = arena.Classes.ClassOf(1000), classC = arena.Classes.ClassOf(4000);
        Assert.That(new[] { classA, classB, classC }, Is.Unique);

        Assert.That(arena.TryAllocate(100, out SlabHandle a), Is.True);
        Assert.That(arena.TryAllocate(1000, out SlabHandle b), Is.True);
        arena.Free(a);   // A's page is now empty: its spare, still the arena's
        Assert.That(pool.GetStatistics().FreePages, Is.Zero, "the spare stays the arena's");
        Assert.That(pool.GetStatistics().Classes[classA].Pages, Is.EqualTo(1));
        Assert.That(arena.TryAllocate(4000, out _), Is.False, "budget spent: C gets no page");

        Assert.That(arena.TryReleaseForeignSpare(classA, out int none), Is.False, "a class's own spare is not foreign");
        Assert.That(none, Is.Negative);
        Assert.That(arena.TryReleaseForeignSpare(classC, out int released), Is.True);
        Assert.That(released, Is.EqualTo(a.PageId), "A's spare");
        Assert.That(pool.GetStatistics().FreePages, Is.EqualTo(1), "given back to the pool");
        Assert.That(pool.GetStatistics().Classes[classA].Pages, Is.Zero);
        pool.ValidateInvariants();
        Assert.That(arena.TryAllocate(4000, out SlabHandle c), Is.True, "the page now serves C");
        Assert.That(arena.TryReleaseForeignSpare(classC, out _), Is.False, "no spare left anywhere");
        Assert.That(arena.GetChunkSize(b), Is.EqualTo(arena.Classes[classB]), "B's live chunk untouched");
        arena.Free(b);
        arena.Free(c);
        pool.ValidateInvariants();

        Assert.That(() => arena.TryReleaseForeignSpare(arena.Classes.Count, out _), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo("forClassIndex"));
        Assert.That(() => arena.TryReleaseForeignSpare(-1, out _), Throws.InstanceOf<ArgumentOutOfRangeException>());
        pool.Dispose();
        Assert.That(() => arena.TryReleaseForeignSpare(classC, out _), Throws.InstanceOf<ObjectDisposedException>());
    }
}

using CacheKit.Slab;

namespace CacheKit.Slab.Tests;

/// <summary>
/// Seeded random allocate / free / reclaim sequences over several arenas of one pool, checked against a plain
/// reference model (a dictionary of live handles with the size asked for and a fill byte) and the pool's own
/// <c>ValidateInvariants</c> after every step. Steps per seed: SLAB_FUZZ_STEPS (default 3000).
/// </summary>
public unsafe class RandomSequenceTests
{
    private const int Page = 1 << 16;

    private static int Steps => int.TryParse(Environment.GetEnvironmentVariable("SLAB_FUZZ_STEPS"), out int n) && n > 0 ? n : 3000;

    private sealed record Held(int Arena, int Size, byte Fill);

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    [TestCase(4)]
    [TestCase(5)]
    [TestCase(6)]
    [TestCase(7)]
    [TestCase(8)]
    public void Random_sequence_matches_the_reference_model(int seed)
    {
        var rng = new Random(seed);
        int pages = rng.Next(1, 40);
        int arenaCount = rng.Next(1, 4);
        // A few hot sizes per seed (so pages fill up and empty out), plus a tail of any size.
        int[] hotSizes = [.. Enumerable.Range(0, rng.Next(1, 6)).Select(_ => NextSize(rng))];
        using var pool = new SlabPool(new SlabOptions { BudgetBytes = ((long)pages * Page) + rng.Next(0, Page), PageSize = Page });
        SlabArena[] arenas = [.. Enumerable.Range(0, arenaCount).Select(_ => pool.CreateArena())];
        var model = new Dictionary<SlabHandle, Held>();
        var liveList = new List<SlabHandle>();
        var totalRequested = new long[pool.Classes.Count];
        var scratch = new SlabHandle[pool.MaxChunksPerPage];
        int reclaims = 0;
        long reclaimedChunks = 0;
        int failedAllocations = 0;

        void Reclaim(SlabArena arena, int a, int forClass, int step)
        {
            // As the engine does: the share rules first, then (for a class with no page) the emptiest page within a cap.
            if (!arena.TryPickPageToReclaim(forClass, out int page) && !arena.TryPickPageForAClassWithNone(forClass, 1 + (step % 64), out page))
            {
                return;
            }

            int n = arena.GetLiveChunks(page, scratch);
            reclaims++;
            reclaimedChunks += n;
            for (int i = 0; i < n; i++)
            {
                SlabHandle h = scratch[i];
                Assert.That(model.TryGetValue(h, out Held? held) && held.Arena == a, Is.True, $"step {step}: listed chunk {h} is live in this arena");
                Assert.That(pool.Classes.ClassOf(held!.Size), Is.Not.EqualTo(forClass));
                CheckContents(arena, h, held);
                arena.Free(h);
                model.Remove(h);
                liveList.Remove(h);
            }

            Assert.That(arena.GetLiveChunks(page, scratch), Is.Zero, $"step {step}: a reclaimed page is given back");
            Assert.That(pool.GetStatistics().FreePages, Is.Positive, $"step {step}: the reclaimed page is in the pool");
        }

        for (int step = 0; step < Steps; step++)
        {
            // Alternate phases that fill the budget and phases that drain it, so pages go full, partial and empty.
            bool filling = step / 400 % 2 == 0;
            int allocatePercent = filling ? 65 : 30;
            int roll = rng.Next(100);
            int op = roll < allocatePercent ? 0 : roll < 92 ? 60 : roll < 96 ? 92 : 96;
            int a = rng.Next(arenaCount);
            SlabArena arena = arenas[a];
            if (op < 60 || liveList.Count == 0)
            {
                int size = rng.Next(10) < 8 ? Math.Clamp(hotSizes[rng.Next(hotSizes.Length)] + rng.Next(-8, 9), 1, Page) : NextSize(rng);
                if (arena.TryAllocate(size, out SlabHandle h))
                {
                    Assert.That(model.ContainsKey(h), Is.False, $"step {step}: handle {h} handed out twice");
                    var fill = (byte)rng.Next(1, 256);
                    Assert.That(arena.GetBytesToPageEnd(h), Is.GreaterThanOrEqualTo(arena.GetChunkSize(h)));
                    new Span<byte>(arena.GetPointer(h), size).Fill(fill);
                    model.Add(h, new Held(a, size, fill));
                    liveList.Add(h);
                    totalRequested[pool.Classes.ClassOf(size)] += size;
                }
                else
                {
                    // Allocation may fail only when the pool can give no page.
                    failedAllocations++;
                    SlabStatistics s = pool.GetStatistics();
                    Assert.That(s.FreePages, Is.Zero, $"step {step}");
                    Assert.That(s.OwnedBytes + Page, Is.GreaterThan(s.BudgetBytes), $"step {step}");

                    // Half the time, make room the engine's way: empty a page of another class for this one.
                    if (rng.Next(2) == 0)
                    {
                        Reclaim(arena, a, pool.Classes.ClassOf(size), step);
                    }
                }
            }
            else if (op < 92)
            {
                int i = rng.Next(liveList.Count);
                SlabHandle h = liveList[i];
                Held held = model[h];
                CheckContents(arenas[held.Arena], h, held);
                arenas[held.Arena].Free(h);
                model.Remove(h);
                liveList[i] = liveList[^1];
                liveList.RemoveAt(liveList.Count - 1);
            }
            else if (op < 96)
            {
                // Reclaim for a random class.
                Reclaim(arena, a, rng.Next(pool.Classes.Count), step);
            }
            else
            {
                // Bad input must throw and change nothing.
                Assert.Throws<ArgumentOutOfRangeException>(() => arena.TryAllocate(rng.Next(2) == 0 ? 0 : Page + 1, out _));
                if (liveList.Count > 0 && arenaCount > 1)
                {
                    SlabHandle h = liveList[rng.Next(liveList.Count)];
                    int owner = model[h].Arena;
                    Assert.Throws<InvalidOperationException>(() => arenas[(owner + 1) % arenaCount].Free(h), "foreign arena");
                }
            }

            pool.ValidateInvariants();
            CheckAccounting(pool, model, totalRequested, step);
            if (step % 100 == 0)
            {
                CheckNoOverlapAndContents(pool, arenas, model);
            }
        }

        CheckNoOverlapAndContents(pool, arenas, model);
        TestContext.Out.WriteLine($"seed {seed}: {pages} pages, {arenaCount} arenas, {failedAllocations} failed allocations, {reclaims} pages reclaimed ({reclaimedChunks} live chunks freed)");
        foreach ((SlabHandle h, Held held) in model)
        {
            arenas[held.Arena].Free(h);
        }

        pool.ValidateInvariants();
        Assert.That(pool.GetStatistics().HandedOutBytes, Is.Zero);
        pool.Dispose();
        Assert.That(pool.OwnedBytes, Is.Zero);
        pool.ValidateInvariants();
    }

    private static int NextSize(Random rng) => rng.Next(10) switch
    {
        < 6 => rng.Next(1, 300),
        < 9 => rng.Next(300, 5000),
        _ => rng.Next(5000, Page + 1),
    };

    private static void CheckContents(SlabArena arena, SlabHandle h, Held held)
    {
        var bytes = new ReadOnlySpan<byte>(arena.GetPointer(h), held.Size);
        Assert.That(bytes.IndexOfAnyExcept(held.Fill), Is.EqualTo(-1), $"chunk {h} kept its bytes");
    }

    private static void CheckAccounting(SlabPool pool, Dictionary<SlabHandle, Held> model, long[] totalRequested, int step)
    {
        SlabStatistics s = pool.GetStatistics();
        Assert.That(s.OwnedBytes, Is.LessThanOrEqualTo(s.BudgetBytes), $"step {step}: budget");
        Assert.That(s.OwnedBytes, Is.EqualTo(pool.OwnedBytes));
        long handedOut = 0;
        var liveByClass = new long[pool.Classes.Count];
        foreach (Held held in model.Values)
        {
            int c = pool.Classes.ClassOf(held.Size);
            liveByClass[c]++;
            handedOut += pool.Classes[c];
        }

        Assert.That(s.HandedOutBytes, Is.EqualTo(handedOut), $"step {step}: bytes handed out");
        for (int c = 0; c < liveByClass.Length; c++)
        {
            Assert.That(s.Classes[c].LiveChunks, Is.EqualTo(liveByClass[c]), $"step {step}: class {c} live chunks");
            Assert.That(s.Classes[c].TotalRequestedBytes, Is.EqualTo(totalRequested[c]), $"step {step}: class {c} requested");
        }
    }

    private static void CheckNoOverlapAndContents(SlabPool pool, SlabArena[] arenas, Dictionary<SlabHandle, Held> model)
    {
        var spans = new List<(long Start, long End, SlabHandle H)>();
        foreach ((SlabHandle h, Held held) in model)
        {
            SlabArena arena = arenas[held.Arena];
            long start = (long)arena.GetPointer(h);
            int chunk = arena.GetChunkSize(h);
            Assert.That(start % 8, Is.Zero, "8-byte aligned");
            Assert.That(chunk, Is.GreaterThanOrEqualTo(held.Size));
            Assert.That(arena.GetBytesToPageEnd(h), Is.GreaterThanOrEqualTo(chunk), "inside its page");
            Assert.That(h.ByteOffset + chunk, Is.LessThanOrEqualTo(pool.PageSize), "inside its page");
            spans.Add((start, start + chunk, h));
            CheckContents(arena, h, held);
        }

        spans.Sort((x, y) => x.Start.CompareTo(y.Start));
        for (int i = 1; i < spans.Count; i++)
        {
            Assert.That(spans[i].Start, Is.GreaterThanOrEqualTo(spans[i - 1].End), $"{spans[i - 1].H} and {spans[i].H} overlap");
        }
    }
}

using System.Runtime.CompilerServices;
using CacheKit.Policies;

namespace CacheKit.OffHeap.Tests;

public class LayoutTests
{
    [Test]
    public void NativeStructuresHaveTheirDocumentedSizes()
    {
        Assert.That(Unsafe.SizeOf<IndexBucket>(), Is.EqualTo(64), "one cache line per bucket");
        Assert.That(Unsafe.SizeOf<EntryHeader.Base>(), Is.EqualTo(EntryHeader.BaseSize).And.EqualTo(8), "every entry's header: 8 bytes");
        Assert.That(EntryHeader.MaxSize, Is.EqualTo(16), "with an expiry: 16 bytes");
        Assert.That(EntryHeader.SizeFor(withExpiryField: false), Is.EqualTo(8));
        Assert.That(EntryHeader.SizeFor(withExpiryField: true), Is.EqualTo(16));
        Assert.That(IndexBucket.SlotCount, Is.EqualTo(7));
    }

    [TestCase(0L, false)]
    [TestCase(0L, true)]
    [TestCase(987_654_321L, true)]
    public unsafe void EntryHeaderRoundTripsWithAndWithoutTheExpiryField(long expiresAt, bool withExpiryField)
    {
        byte* entry = stackalloc byte[32];
        new Span<byte>(entry, 32).Fill(0xEE);
        EntryHeader.Write(entry, valueLength: 100, keyLength: 16, probeDistance: 5, expiresAt, withExpiryField);
        EntryHeader read = EntryHeader.Read(entry);
        Assert.That((read.ValueLength, read.KeyLength, read.ProbeDistance, read.ExpiresAt), Is.EqualTo((100u, (ushort)16, (byte)5, expiresAt)));
        Assert.That(read.Size, Is.EqualTo(withExpiryField ? 16 : 8), "the key starts after the header");
        Assert.That(read.TotalBytes, Is.EqualTo(read.Size + 116));
        if (!withExpiryField)
        {
            Assert.That(entry[8], Is.EqualTo(0xEE), "no expiry bytes written without the field");
        }

        // The reader's bounded form: the whole entry must fit the bytes to the page end, else no header.
        Assert.That(EntryHeader.TryReadBounded(entry, (int)read.TotalBytes, out EntryHeader bounded), Is.True);
        Assert.That(bounded, Is.EqualTo(read));
        Assert.That(EntryHeader.TryReadBounded(entry, (int)read.TotalBytes - 1, out _), Is.False);
        Assert.That(EntryHeader.TryReadBounded(entry, 7, out _), Is.False);
    }

    [Test]
    public void SlotWordPacksTagAndHandle()
    {
        var handle = CacheKit.Slab.SlabHandle.FromValue(0xABCD_1234_5678UL);
        ulong hash = 0x0123_4567_89AB_CDEFUL;
        ulong word = SlotWord.Make(hash, handle);
        Assert.That(SlotWord.Handle(word), Is.EqualTo(handle));
        Assert.That(SlotWord.TagMatches(word, hash), Is.True);
        Assert.That(word >> 48, Is.EqualTo((hash >> 40) & 0xFFFF));
        Assert.That(SlotWord.TagMatches(word, hash ^ (1UL << 45)), Is.False);
    }

    [Test]
    public unsafe void MatchTagsReportsExactlyTheSlotsCarryingTheTag([Range(0, 3)] int seed)
    {
        var rng = new Random(seed);
        ulong[] tags = [0, 1, 0xFFFF, 0x8000, (ulong)rng.Next(1, 0xFFFF)];
        var bucket = (IndexBucket*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc(64, 64);
        try
        {
            for (int round = 0; round < 500; round++)
            {
                // The header's high 16 bits (Overflow's upper half) may equal a tag: it must never be reported.
                bucket->Version = (uint)rng.Next();
                bucket->Overflow = (uint)(tags[rng.Next(tags.Length)] << 16) | (uint)rng.Next(0x10000);
                for (int s = 0; s < IndexBucket.SlotCount; s++)
                {
                    bucket->Slots[s] = rng.Next(4) == 0 ? 0 : (tags[rng.Next(tags.Length)] << SlotWord.TagShift) | (ulong)rng.NextInt64(1, 1L << 48);
                }
                foreach (ulong tag in tags)
                {
                    uint expected = 0;
                    for (int s = 0; s < IndexBucket.SlotCount; s++)
                    {
                        expected |= (bucket->Slots[s] >> 48) == tag ? 1u << s : 0;
                    }
                    Assert.That(IndexBucket.MatchTags(bucket, tag), Is.EqualTo(expected), $"tag {tag:X4}, round {round}");
                    Assert.That(IndexBucket.MatchTagsScalar(bucket, tag), Is.EqualTo(expected), $"scalar, tag {tag:X4}, round {round}");
                }
            }
        }
        finally
        {
            System.Runtime.InteropServices.NativeMemory.AlignedFree(bucket);
        }
    }

    [Test]
    public unsafe void KeyEqualsComparesEveryByteOfEveryLength()
    {
        var rng = new Random(7);
        for (int length = 0; length <= 40; length++)
        {
            byte[] key = new byte[length];
            rng.NextBytes(key);
            byte[] stored = (byte[])key.Clone();
            fixed (byte* p = stored)
            {
                Assert.That(Shard.KeyEquals(p, key), Is.True, $"equal keys of {length} bytes");
                for (int i = 0; i < length; i++)
                {
                    stored[i] ^= (byte)(1 << rng.Next(8));
                    Assert.That(Shard.KeyEquals(p, key), Is.False, $"length {length}, byte {i} differs");
                    stored[i] = key[i];
                }
            }
        }
    }

    [Test]
    public void EveryCachePolicyMapsToThePolicyKindOfTheSameName()
    {
        foreach (CachePolicy p in Enum.GetValues<CachePolicy>())
        {
            Assert.That(p.ToPolicyKind().ToString(), Is.EqualTo(p.ToString()));
        }
        Assert.That(Enum.GetValues<CachePolicy>().Length, Is.EqualTo(Enum.GetValues<PolicyKind>().Length));
        Assert.That(new OffHeapCacheOptions().Policy, Is.EqualTo(CachePolicy.WTinyLfu));
    }

    [Test]
    public void TooSmallDestinationIsToldApartFromAMiss()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 2 << 20 });
        cache.Set("k"u8, new byte[100]);
        Assert.That(cache.TryGet("k"u8, new byte[99], out int needed), Is.False);
        Assert.That(needed, Is.EqualTo(100));
        Assert.That(cache.GetStatistics().Hits + cache.GetStatistics().Misses, Is.Zero, "a too-small read is not a lookup yet");
        Assert.That(cache.TryGet("k"u8, new byte[needed], out int written), Is.True);
        Assert.That(written, Is.EqualTo(100));
        Assert.That(cache.GetStatistics().Hits, Is.EqualTo(1), "the retry that fits is the one hit counted");
        Assert.That(cache.TryGet("absent"u8, new byte[99], out int none), Is.False);
        Assert.That(none, Is.Zero);
        cache.Set("empty"u8, ReadOnlySpan<byte>.Empty);
        Assert.That(cache.TryGet("empty"u8, Span<byte>.Empty, out int zero), Is.True, "an empty value fits any destination");
        Assert.That(zero, Is.Zero);
    }

    [Test]
    public void IndexCountsInTheBudgetAndAutoLayoutIsSane()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 64L << 20 });
        CacheStatistics stats = cache.GetStatistics();
        Assert.That(stats.NativeBytes, Is.GreaterThan(0), "the index is allocated from the budget at construction");
        Assert.That(stats.NativeBytes, Is.LessThan(stats.CapacityBytes / 10));
        Assert.That(cache.ShardCount, Is.GreaterThanOrEqualTo(1));
        TestContext.Out.WriteLine($"64 MiB: {cache.ShardCount} shards, index {stats.NativeBytes} bytes, max value {cache.MaxValueBytes}");
    }

    [Test]
    public void AutoLayoutKeepsASmallLiveSetOfWidelyMixedSizesWithoutEvicting()
    {
        // A shard needs a page per size class in use; the automatic layout gives each >= 128 pages,
        // so 64 keys rewritten with sizes over ~45 classes never force an eviction.
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 64L << 20 });
        var rng = new Random(4);
        var value = new byte[3000];
        for (int i = 0; i < 50_000; i++)
        {
            Assert.That(cache.Set(TestKeys.Key(rng.Next(64)), value.AsSpan(0, rng.Next(value.Length))), Is.True);
        }
        CacheStatistics stats = cache.GetStatistics();
        Assert.That(stats.Evictions, Is.Zero);
        Assert.That(stats.Count, Is.EqualTo(64));
        cache.ValidateInvariants();
    }

    /// <summary>
    /// The engine's size classes follow the pages of budget each shard has (an arena keeps about a page per class in
    /// use): 8 per doubling from 128 pages per shard, 4 from 64, else 2. Every automatic layout from 8 MiB has 128 pages
    /// per shard or more, so it keeps the finest table on any processor count.
    /// </summary>
    [TestCase(4L << 20, 0, 4)]      // 64 KiB pages, 1 shard of 64 pages
    [TestCase(4L << 20, 2, 2)]      // 2 shards of 32
    [TestCase(8L << 20, 8, 2)]      // 8 shards of 16
    [TestCase(16L << 20, 4, 4)]     // 4 shards of 64
    [TestCase(16L << 20, 0, 8)]     // automatic: 2 shards of 128
    [TestCase(64L << 20, 8, 8)]     // 8 shards of 128
    [TestCase(1L << 30, 0, 8)]      // 256 KiB pages, 8 shards of 512 on 2 processors
    public void SizeClassStepsFollowThePagesPerShard(long capacityBytes, int shards, int expectedSteps)
    {
        var options = new OffHeapCacheOptions { CapacityBytes = capacityBytes, ShardCount = shards };
        CacheLayout layout = CacheLayout.Compute(options, processorCount: 2);
        long pagesPerShard = capacityBytes / layout.ShardCount / layout.PageSize;
        TestContext.Out.WriteLine($"{capacityBytes >> 20} MiB, {layout.ShardCount} shards of {pagesPerShard} pages of {layout.PageSize}: {layout.SizeClassStepsPerDoubling} steps");
        Assert.That(layout.SizeClassStepsPerDoubling, Is.EqualTo(expectedSteps));
    }

    [TestCase(8L << 20)]
    [TestCase(64L << 20)]
    [TestCase(256L << 20)]
    [TestCase(1L << 30)]
    [TestCase(4L << 30)]
    public void EveryAutomaticLayoutFrom8MiBKeepsTheFinestSizeClassesOnAnyProcessorCount(long capacityBytes)
    {
        foreach (int processors in new[] { 1, 2, 4, 8, 16, 64 })
        {
            CacheLayout layout = CacheLayout.Compute(new OffHeapCacheOptions { CapacityBytes = capacityBytes }, processors);
            Assert.That(layout.SizeClassStepsPerDoubling, Is.EqualTo(8), $"{capacityBytes >> 20} MiB on {processors} processors: {layout.ShardCount} shards");
        }
    }

    /// <summary>
    /// With few pages per shard and a wide mix of sizes, most of a finely classed budget sat in partly filled pages: a
    /// 4 MiB cache replaying the AdaptSize CDN trace held 1.1 MiB of keys and values in 4 MiB (docs/engine.md). Here a
    /// 4 MiB cache (one shard of 64 pages, so 4 classes per doubling) is filled with sizes spread log-uniformly over
    /// 100 B to 40 KB: 49.2 % of the budget ends in keys and values (25.2 % with the finest table).
    /// </summary>
    [Test]
    public void ASmallBudgetWithWidelyMixedSizesKeepsOver40PercentOfItInEntries()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4L << 20, HashSeed = 11 });
        var rng = new Random(12);
        var value = new byte[40_000];
        var read = new byte[40_000];
        for (int i = 0; i < 40_000; i++)
        {
            int key = rng.Next(20_000);
            int size = (int)(100 * Math.Pow(400, (key * 0.618033988749895) % 1.0));   // per key, log-uniform in [100, 40,000)
            if (!cache.TryGet(TestKeys.Key(key), read, out _))
            {
                cache.Set(TestKeys.Key(key), value.AsSpan(0, size));
            }
        }
        CacheStatistics stats = cache.GetStatistics();
        double held = (double)stats.PayloadBytes / stats.CapacityBytes;
        TestContext.Out.WriteLine($"{stats.Count} entries, {stats.PayloadBytes} payload bytes of {stats.CapacityBytes} ({held:P1}), {stats.Evictions} evictions");
        Assert.That(held, Is.GreaterThan(0.40));
        cache.ValidateInvariants();
    }

    /// <summary>
    /// A shard of four pages, each cut to another class and holding 24 entries inserted round-robin. A set of a fifth
    /// class (no page in the shard) used to be refused: no class holds two pages to give one, and the 32 LRU victims
    /// (8 per page) empty none. Now the page with the fewest live chunks (16, at most the per-insert cap of 16) is
    /// emptied for it, and the budget still holds. With 40 entries per page it is still refused (the next test): 32 are
    /// left on each page after the victims, and the last resort takes no more than the cap.
    /// </summary>
    [Test]
    public void ASetOfAClassWithNoPageIsStoredWhenEveryClassHoldsOnePage()
    {
        const int Page = 64 * 1024;
        var evicted = new List<EvictionReason>();
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = (4L * Page) + (16 * 1024),   // four pages beside the index of 1,000 entries (~15 KB)
            MaxEntries = 1_000,
            PageSize = Page,
            ShardCount = 1,
            Policy = CachePolicy.Lru,
            EvictionListener = (_, reason) => evicted.Add(reason),
        });
        static byte[] Key(int id) => BitConverter.GetBytes((long)id);   // 8 bytes: entry = 8-byte header + 8 + value
        int[] valueSizes = [200, 300, 450, 700];   // entries of 216, 316, 466 and 716 bytes: four classes in any table
        for (int i = 0; i < 96; i++)
        {
            Assert.That(cache.Set(Key(i), new byte[valueSizes[i % 4]]), Is.True, $"fill {i}");
        }
        CacheStatistics full = cache.GetStatistics();
        Assert.That((full.Count, full.Evictions), Is.EqualTo((96L, 0L)));
        Assert.That(full.NativeBytes + Page, Is.GreaterThan(full.CapacityBytes), "no room for a fifth page");

        Assert.That(cache.Set(Key(1_000), new byte[900]), Is.True, "a 916-byte entry, a class with no page");
        Assert.That(cache.TryGet(Key(1_000), new byte[900], out int written) && written == 900, Is.True);
        CacheStatistics after = cache.GetStatistics();
        Assert.That(after.NativeBytes, Is.LessThanOrEqualTo(after.CapacityBytes));
        Assert.That(after.Count, Is.EqualTo(96 - 32 - (24 - 8) + 1), "32 victims (8 per page), then the rest of the emptiest page");
        Assert.That(evicted.Count(r => r == EvictionReason.PageReclaimed), Is.EqualTo(16));
        cache.ValidateInvariants();
    }

    [Test]
    public void TheLastResortForAClassWithNoPageEvictsNoMoreThanThePerInsertCap()
    {
        const int Page = 64 * 1024;
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = (4L * Page) + (16 * 1024), MaxEntries = 1_000, PageSize = Page, ShardCount = 1, Policy = CachePolicy.Lru,
        });
        static byte[] Key(int id) => BitConverter.GetBytes((long)id);
        int[] valueSizes = [200, 300, 450, 700];
        for (int i = 0; i < 160; i++)
        {
            Assert.That(cache.Set(Key(i), new byte[valueSizes[i % 4]]), Is.True, $"fill {i}");
        }
        Assert.That(cache.Set(Key(1_000), new byte[900]), Is.False, "32 entries left on the emptiest page, above the cap of 16: refused");
        CacheStatistics after = cache.GetStatistics();
        Assert.That((after.Count, after.Rejections, after.PageReclaims), Is.EqualTo((160L - 32, 1L, 0L)));
        cache.ValidateInvariants();
    }

    [Test]
    public void SizeClassStepsChangeAt64And128PagesPerShard()
    {
        const int Page = 1 << 16;
        Assert.That(CacheLayout.SizeClassSteps(64L * Page - 1, 1, Page), Is.EqualTo(2));
        Assert.That(CacheLayout.SizeClassSteps(64L * Page, 1, Page), Is.EqualTo(4));
        Assert.That(CacheLayout.SizeClassSteps((128L * 4 * Page) - 1, 4, Page), Is.EqualTo(4));
        Assert.That(CacheLayout.SizeClassSteps(128L * 4 * Page, 4, Page), Is.EqualTo(8));
    }

    /// <summary>
    /// What a cache accepts must not depend on the machine: the page size (which caps the largest value) comes from
    /// the options alone; only the shard count follows the processors. A user's review found a 256 MiB cache taking
    /// 100 KB values on 2 to 4 cores and refusing them on 8 or more (page = budget / shards / 128).
    /// </summary>
    [TestCase(64L << 20, null)]
    [TestCase(256L << 20, null)]
    [TestCase(1L << 30, null)]
    [TestCase(4L << 30, null)]
    [TestCase(256L << 20, 100_000)]
    [TestCase(1L << 30, 1 << 20)]
    public void ThePageSizeAndTheLargestValueDoNotDependOnTheProcessorCount(long capacityBytes, int? maxValueBytes)
    {
        var options = new OffHeapCacheOptions { CapacityBytes = capacityBytes, MaxValueBytes = maxValueBytes };
        CacheLayout reference = CacheLayout.Compute(options, processorCount: 1);
        foreach (int processors in new[] { 2, 4, 8, 16, 64, 256 })
        {
            CacheLayout layout = CacheLayout.Compute(options, processors);
            Assert.That((layout.PageSize, layout.MaxValueBytes, layout.MaxEntryBytes), Is.EqualTo((reference.PageSize, reference.MaxValueBytes, reference.MaxEntryBytes)), $"{processors} processors");
            Assert.That(capacityBytes / layout.ShardCount, Is.GreaterThanOrEqualTo(128L * layout.PageSize), "each automatic shard keeps 128 pages");
            Assert.That(layout.ShardCount, Is.LessThanOrEqualTo(Math.Max(1, processors * 4)));
        }
        TestContext.Out.WriteLine($"{capacityBytes >> 20} MiB, MaxValueBytes {maxValueBytes?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "auto"}: page {reference.PageSize}, largest value {reference.MaxValueBytes}, shards at 16 processors {CacheLayout.Compute(options, 16).ShardCount}");
    }

    [TestCase(64L << 20, 65_536)]
    [TestCase(256L << 20, 65_536)]
    [TestCase(1L << 30, 262_144)]
    [TestCase(4L << 30, 1 << 20)]
    [TestCase(64L << 30, 1 << 20)]
    [TestCase((512L << 20) - 1, 65_536)]
    [TestCase(512L << 20, 131_072)]
    [TestCase(300L << 20, 65_536)]
    [TestCase(3L << 30, 524_288)]
    public void TheAutomaticPageIsTheBudgetOver4096WithinItsRange(long capacityBytes, int expectedPageSize)
    {
        Assert.That(CacheLayout.Compute(new OffHeapCacheOptions { CapacityBytes = capacityBytes }, processorCount: 2).PageSize, Is.EqualTo(expectedPageSize));
    }

    [Test]
    public void AMaxValueBytesAboveTheBudgetsPageGrowsThePageToHoldIt()
    {
        // 256 MiB: the budget alone gives 64 KiB pages (largest value 57,328 with 8 KiB keys); asking for 100,000 bytes
        // gives the smallest page that holds header + MaxKeyBytes + value, on every machine.
        var options = new OffHeapCacheOptions { CapacityBytes = 256L << 20, MaxValueBytes = 100_000 };
        using var cache = new OffHeapCache(options);
        Assert.That(cache.MaxValueBytes, Is.EqualTo(100_000));
        byte[] value = new byte[100_000];
        value.AsSpan().Fill(0x5A);
        Assert.That(cache.Set("big"u8, value), Is.True);
        byte[] read = new byte[100_000];
        Assert.That(cache.TryGet("big"u8, read, out int n), Is.True);
        Assert.That(n, Is.EqualTo(100_000));
        Assert.That(read, Is.EqualTo(value));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => cache.Set("big"u8, new byte[100_001]))!.ParamName, Is.EqualTo("value"));
        Assert.That(CacheLayout.Compute(options, processorCount: 2).PageSize, Is.EqualTo(128 * 1024), "the smallest power of two whose largest chunk holds 16 + 8,192 + 100,000 bytes");
        cache.ValidateInvariants();
    }

    [Test]
    public void AMaxValueBytesNoPageCanHoldIsRefusedNamingIt()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => CacheLayout.Compute(new OffHeapCacheOptions { CapacityBytes = 1L << 30, MaxValueBytes = 1 << 27 }, processorCount: 2))!;
        Assert.That(e.ParamName, Is.EqualTo("MaxValueBytes"));
        Assert.That(e.Message, Does.Contain("largest page"));

        // With an explicit PageSize the page is not grown: the message says how to get a larger one.
        var fixedPage = Assert.Throws<ArgumentOutOfRangeException>(() => CacheLayout.Compute(new OffHeapCacheOptions { CapacityBytes = 1L << 30, PageSize = 1 << 16, MaxValueBytes = 100_000 }, processorCount: 2))!;
        Assert.That(fixedPage.ParamName, Is.EqualTo("MaxValueBytes"));
        Assert.That(fixedPage.Message, Does.Contain("leave PageSize at 0"));
    }

    [Test]
    public void ABudgetTooSmallForTheIndexOfMaxEntriesSaysSo()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => CacheLayout.Compute(new OffHeapCacheOptions { CapacityBytes = 64L << 20, MaxEntries = 10_000_000 }, processorCount: 2))!;
        Assert.That(e.ParamName, Is.EqualTo("CapacityBytes"));
        Assert.That(e.Message, Does.Contain("MaxEntries = 10000000"), "the option that made the index large is named");
    }

    [Test]
    public void TheEntryBoundIsMaxEntriesOrTheIndexsBoundAndShowsWhenItBindsBeforeTheBytes()
    {
        using (var bounded = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 64L << 20, MaxEntries = 100_000 }))
        {
            Assert.That(bounded.GetStatistics().EntryBound, Is.EqualTo(100_000));
        }

        // 108-byte entries against the default hint of 256: the entry bound binds with the budget about half used.
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 16L << 20, ShardCount = 1 });
        long bound = cache.GetStatistics().EntryBound;
        Assert.That(bound, Is.InRange((16L << 20) / 256 * 95 / 100, (16L << 20) / 256 * 105 / 100), "about CapacityBytes / AverageEntrySizeHint");
        byte[] value = new byte[100];
        for (long i = 0; i < bound * 2; i++)
        {
            cache.Set(BitConverter.GetBytes(i), value);
        }
        CacheStatistics stats = cache.GetStatistics();
        Assert.That(stats.Count, Is.LessThanOrEqualTo(bound).And.GreaterThan(bound * 9 / 10));
        Assert.That(stats.Evictions, Is.GreaterThan(0));
        Assert.That(stats.NativeBytes, Is.LessThan(stats.CapacityBytes * 3 / 4), "the bytes did not bind: the hint is too large for these entries");
    }
}

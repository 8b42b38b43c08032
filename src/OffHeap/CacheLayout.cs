using System.Numerics;
using CacheKit.Slab;

namespace CacheKit.OffHeap;

/// <summary>
/// The sizes an <see cref="OffHeapCache"/> is built with, derived from (and validating) its options.
/// </summary>
internal readonly record struct CacheLayout(
    int PageSize,
    int ShardCount,
    int BucketsPerShard,
    long? MaxEntries,
    int MaxValueBytes,
    int MaxEntryBytes,
    int SizeClassStepsPerDoubling)
{
    /// <summary>Most shards (the shard is picked by the top 8 bits of the hash).</summary>
    public const int MaxShards = 256;

    /// <summary>
    /// Index load aimed for: slots = entries * 5 / 3 (load 0.6). With 8-bucket windows of 7 slots a
    /// full window then hits about 1 insert in 40 000 (simulated), so nearly every eviction is the policy's.
    /// </summary>
    private const int SlotsPerEntryNumerator = 5;
    private const int SlotsPerEntryDenominator = 3;

    /// <summary>With the MaxEntries bound, each shard keeps at least this many entries (so sharding does not cost hit ratio).</summary>
    private const long MinEntriesPerShard = 4096;

    /// <summary>
    /// With automatic shards and page size, each shard gets at least this many pages of budget: a
    /// shard needs a page per size class in use, or it keeps reclaiming whole pages (the finest table has 70 classes
    /// with 64 KiB pages, 102 with 1 MiB pages; with fewer pages per shard than this the engine takes a coarser one:
    /// <see cref="SizeClassSteps"/>).
    /// </summary>
    private const long MinPagesPerShard = 128;

    /// <summary>
    /// Most index buckets per shard: every slot is a policy handle, and a policy takes at most 2^30 of
    /// them (PolicyOptions.MaxHandles). Checked here, before the index is allocated, so that the option
    /// that sized it is named (a larger index used to be allocated and zeroed first, then refused by the policy).
    /// </summary>
    public const int MaxBucketsPerShard = (1 << 30) / IndexBucket.SlotCount;

    /// <summary>
    /// Size classes per doubling above 128 B (<see cref="SizeClassTable.CreateDefault(int, int)"/>) from the pages of
    /// budget each shard has (<c>CapacityBytes / shards / PageSize</c>, the measure of <see cref="MinPagesPerShard"/>): 8 (a
    /// chunk at most 12.5 % over the request) from MinPagesPerShard, so every automatic layout from 8 MiB keeps the finest
    /// table; 4 (25 %) from 64; else 2 (50 %). An arena keeps about a page per class in use, so with fewer pages a wide
    /// mix of sizes leaves most of the budget in partly filled pages under the finest table: measured on the AdaptSize
    /// trace and the Twitter size profiles (docs/engine.md, "Caveat"), a shard of 16 pages lost up to 16 points to it.
    /// A narrow mix only pays the coarser rounding (about 1 point with 4 steps, 2.5 with 2, on 1,016-1,115-byte
    /// entries), and around 128 pages the two weigh about the same, so the finest table stays there. Entries up to
    /// 128 B keep 8-byte steps either way.
    /// </summary>
    internal static int SizeClassSteps(long capacityBytes, int shards, int pageSize)
    {
        long pagesPerShard = capacityBytes / shards / pageSize;
        return pagesPerShard >= MinPagesPerShard ? 8 : pagesPerShard >= 64 ? 4 : 2;
    }

    /// <summary>Native bytes of all shards' indexes.</summary>
    public long IndexBytes => (long)ShardCount * BucketsPerShard * 64;

    /// <summary>The least CapacityBytes that holds the index and one page per shard.</summary>
    public long MinimumCapacity => IndexBytes + ((long)ShardCount * PageSize);

    /// <summary>The policy's weight budget for shard <paramref name="shard"/> (entries; every weight is 1).</summary>
    public long PolicyCapacity(int shard)
    {
        if (MaxEntries is long max)
        {
            return (max / ShardCount) + (shard < max % ShardCount ? 1 : 0);
        }
        // Bytes bound only: the policy keeps the index at load 0.6; memory usually binds first.
        return (long)BucketsPerShard * IndexBucket.SlotCount * SlotsPerEntryDenominator / SlotsPerEntryNumerator;
    }

    /// <summary>
    /// Budget bytes per byte of automatic page size: the page is the largest power of two at most CapacityBytes / this,
    /// within [64 KiB, 1 MiB] (64 KiB below 512 MiB of budget, 1 MiB from 4 GiB). That is MinPagesPerShard pages for
    /// each of 32 shards, so up to 32 shards (8 processors) keep MinPagesPerShard pages each.
    /// </summary>
    private const long BudgetPerAutomaticPage = MinPagesPerShard * 32;

    /// <summary>Largest automatic page size chosen from the budget alone (a larger MaxValueBytes raises it further).</summary>
    private const int MaxBudgetPageSize = 1 << 20;

    /// <summary>
    /// The automatic page size: from the budget alone (see <see cref="BudgetPerAutomaticPage"/>), raised to the
    /// smallest page whose largest chunk holds the entry header, a key of MaxKeyBytes and a value of MaxValueBytes
    /// when MaxValueBytes is set (up to <see cref="SlabOptions.MaxPageSize"/>; past it the caller gets the
    /// MaxValueBytes range error). Never from the shard count, so never from the machine.
    /// </summary>
    private static int AutomaticPageSize(OffHeapCacheOptions o)
    {
        int pageSize = BudgetPageSize(o.CapacityBytes);
        if (o.MaxValueBytes is int maxValue && maxValue >= 0)
        {
            long needed = (long)EntryHeader.MaxSize + o.MaxKeyBytes + maxValue;
            while (pageSize < SlabOptions.MaxPageSize && SizeClassTable.CreateDefault(pageSize).MaxChunkSize < needed)
            {
                pageSize *= 2;
            }
        }
        return pageSize;
    }

    /// <summary>The automatic page size from the budget alone (<see cref="BudgetPerAutomaticPage"/>).</summary>
    private static int BudgetPageSize(long capacityBytes)
        => (int)Math.Clamp(BitOperations.RoundUpToPowerOf2((ulong)Math.Max(1, capacityBytes / BudgetPerAutomaticPage) + 1) / 2,
                           SlabOptions.MinPageSize, MaxBudgetPageSize);

    /// <summary>The layout for these options on this machine (validates them; names the offending option).</summary>
    public static CacheLayout Compute(OffHeapCacheOptions o) => Compute(o, Environment.ProcessorCount);

    /// <summary>The layout for these options on a machine with <paramref name="processorCount"/> processors (tests).</summary>
    internal static CacheLayout Compute(OffHeapCacheOptions o, int processorCount)
    {
        if (o.CapacityBytes <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(o.CapacityBytes), o.CapacityBytes,
                $"CapacityBytes must be positive: at least {LeastCapacityText(o, processorCount)} with these options (the index and one page per shard).");
        }
        CacheLayout layout = ComputeUnchecked(o, processorCount);
        if (o.CapacityBytes < layout.MinimumCapacity)
        {
            long least = LeastCapacity(o, processorCount);
            CacheLayout atLeast = ComputeUnchecked(o.WithCapacityBytes(least), processorCount);
            throw new ArgumentOutOfRangeException(nameof(o.CapacityBytes), o.CapacityBytes,
                $"CapacityBytes must be at least {least}: the index ({atLeast.IndexBytes} bytes at that budget" +
                (o.MaxEntries is long bound ? $", sized for MaxEntries = {bound}: lower MaxEntries or raise CapacityBytes" : $", sized for CapacityBytes / AverageEntrySizeHint ({o.AverageEntrySizeHint}) entries") +
                $") and one page per shard ({atLeast.ShardCount} x {atLeast.PageSize} bytes" +
                (o.PageSize == 0 && o.MaxValueBytes is int sizedFor && atLeast.PageSize > BudgetPageSize(least)
                    ? $", the page sized for MaxValueBytes = {sizedFor}" : "") + ").");
        }
        return layout;
    }

    /// <summary>
    /// The least budget that holds its own index and one page per shard with these options. Without MaxEntries the index
    /// grows with the budget (and the automatic shard count and page size follow it), so the minimum of a too-small
    /// budget's layout is not enough once the budget is raised to it: raise to each layout's minimum until one holds
    /// (a few steps: the index is ~6 % of the budget). A new user's review found the message naming 69,120, then 69,696.
    /// It starts from the layout of a 1-byte budget, not the caller's: the automatic page size doubles at some
    /// budgets, so a start above such a step could name a minimum above a budget that works (a review found 2^31 refused
    /// with "at least 2182217728" while 2^31 - 1 worked, 256 shards and MaxEntries 134,400,000).
    /// </summary>
    private static long LeastCapacity(OffHeapCacheOptions o, int processorCount)
    {
        long capacity = ComputeUnchecked(o.WithCapacityBytes(1), processorCount).MinimumCapacity;
        for (int step = 0; step < 64; step++)
        {
            long needed = ComputeUnchecked(o.WithCapacityBytes(capacity), processorCount).MinimumCapacity;
            if (needed <= capacity)
            {
                return capacity;
            }
            capacity = needed;
        }
        return capacity;   // not reached for any valid options (each step adds a few % of the previous one)
    }

    /// <summary>The least budget for options whose CapacityBytes is missing, or a note when another option is invalid too.</summary>
    private static string LeastCapacityText(OffHeapCacheOptions o, int processorCount)
    {
        try
        {
            return LeastCapacity(o, processorCount).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (ArgumentException)
        {
            return "the index and one page per shard (another option is invalid too)";
        }
    }

    /// <summary>The layout for these options, every option validated but whether CapacityBytes holds the index and a page per shard.</summary>
    private static CacheLayout ComputeUnchecked(OffHeapCacheOptions o, int processorCount)
    {
        if (o.MaxEntries is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(o.MaxEntries), o.MaxEntries, "MaxEntries must be at least 1 (or null for no entry-count bound).");
        }
        if (o.MaxKeyBytes is < 1 or > OffHeapCacheOptions.MaxKeyBytesLimit)
        {
            throw new ArgumentOutOfRangeException(nameof(o.MaxKeyBytes), o.MaxKeyBytes, $"MaxKeyBytes must be in [1, {OffHeapCacheOptions.MaxKeyBytesLimit}].");
        }
        if (o.ShardCount != 0 && (o.ShardCount < 0 || o.ShardCount > MaxShards || !BitOperations.IsPow2(o.ShardCount)))
        {
            throw new ArgumentOutOfRangeException(nameof(o.ShardCount), o.ShardCount, $"ShardCount must be 0 (automatic) or a power of two in [1, {MaxShards}].");
        }
        if (o.PageSize != 0 && (o.PageSize < SlabOptions.MinPageSize || o.PageSize > SlabOptions.MaxPageSize || !BitOperations.IsPow2(o.PageSize)))
        {
            throw new ArgumentOutOfRangeException(nameof(o.PageSize), o.PageSize, $"PageSize must be 0 (automatic) or a power of two in [{SlabOptions.MinPageSize}, {SlabOptions.MaxPageSize}].");
        }
        if (o.AverageEntrySizeHint is < 32 or > (1 << 20))
        {
            throw new ArgumentOutOfRangeException(nameof(o.AverageEntrySizeHint), o.AverageEntrySizeHint, "AverageEntrySizeHint must be in [32, 1048576].");
        }
        if (o.MaxEvictionsPerInsert is < 1 or > 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(o.MaxEvictionsPerInsert), o.MaxEvictionsPerInsert, "MaxEvictionsPerInsert must be in [1, 1024].");
        }
        if (!Enum.IsDefined(o.Policy))
        {
            throw new ArgumentOutOfRangeException(nameof(o.Policy), o.Policy, "Policy must be a defined CachePolicy value.");
        }
        if (o.DefaultTimeToLive is { } ttl && ttl <= TimeSpan.Zero && ttl != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(o.DefaultTimeToLive), ttl, "DefaultTimeToLive must be positive (greater than TimeSpan.Zero), or null or Timeout.InfiniteTimeSpan (no expiry).");
        }

        // The page size first, from the budget and the value limit only, never from the shard count: the page size
        // caps the largest value, and a configuration must accept the same values on every machine (it used to be
        // budget / shards / MinPagesPerShard, so the same options took 4x smaller values on 8 cores than on 2).
        int pageSize = o.PageSize != 0 ? o.PageSize : AutomaticPageSize(o);
        int maxEntryBytes = SizeClassTable.CreateDefault(pageSize).MaxChunkSize;
        int largestValue = maxEntryBytes - EntryHeader.MaxSize - o.MaxKeyBytes;
        if (largestValue < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(o.MaxKeyBytes), o.MaxKeyBytes, $"MaxKeyBytes must leave room for the entry header (up to 16 bytes) in the largest chunk ({maxEntryBytes} bytes with PageSize {pageSize}).");
        }
        if (o.MaxValueBytes is int maxValue && (maxValue < 0 || maxValue > largestValue))
        {
            throw new ArgumentOutOfRangeException(nameof(o.MaxValueBytes), maxValue, o.PageSize != 0
                ? $"MaxValueBytes must be in [0, {largestValue}] (largest chunk {maxEntryBytes} with PageSize {pageSize} - 16-byte largest entry header - MaxKeyBytes {o.MaxKeyBytes}; leave PageSize at 0 to have the page sized for the value)."
                : $"MaxValueBytes must be in [0, {largestValue}] (largest chunk {maxEntryBytes} with the largest page, {pageSize} bytes - 16-byte largest entry header - MaxKeyBytes {o.MaxKeyBytes}).");
        }

        // Then the shards: 4 per processor, as many as keep MinPagesPerShard pages of that size each (a shard needs a
        // page per size class in use, or it keeps reclaiming whole pages) and MinEntriesPerShard entries of a MaxEntries
        // bound. The shard count changes with the machine; what a caller may store does not.
        int shards = o.ShardCount;
        if (shards == 0)
        {
            shards = (int)Math.Min(MaxShards, BitOperations.RoundUpToPowerOf2((uint)Math.Max(1, processorCount) * 4));
            long minPerShard = MinPagesPerShard * (long)pageSize;
            while (shards > 1 && o.CapacityBytes / shards < minPerShard)
            {
                shards /= 2;
            }
            while (shards > 1 && o.MaxEntries is long m && m / shards < MinEntriesPerShard)
            {
                shards /= 2;
            }
        }

        if (o.MaxEntries is long fewEntries && fewEntries < shards)
        {
            // Contradictory options: the bound is split over the shards, and a policy needs room for one entry.
            throw new ArgumentOutOfRangeException(nameof(o.MaxEntries), fewEntries, $"MaxEntries ({fewEntries}) must be at least ShardCount ({shards}): the bound is split over the shards and each holds at least one entry.");
        }

        long slotsPerShard;
        if (o.MaxEntries is long maxEntries)
        {
            // Overflow-safe: a MaxEntries near long.MaxValue must be rejected below, not wrap into a tiny index.
            long entriesPerShard = (maxEntries / shards) + (maxEntries % shards == 0 ? 0 : 1);
            slotsPerShard = entriesPerShard > long.MaxValue / SlotsPerEntryNumerator
                ? long.MaxValue
                : entriesPerShard * SlotsPerEntryNumerator / SlotsPerEntryDenominator;
        }
        else
        {
            slotsPerShard = o.CapacityBytes / shards / o.AverageEntrySizeHint * SlotsPerEntryNumerator / SlotsPerEntryDenominator;
        }
        long buckets = Math.Max(8, (slotsPerShard / IndexBucket.SlotCount) + (slotsPerShard % IndexBucket.SlotCount == 0 ? 0 : 1));
        if (buckets > MaxBucketsPerShard)
        {
            // Name the option that sized the index: MaxEntries when set, else CapacityBytes (with the entry size hint).
            throw o.MaxEntries is null
                ? new ArgumentOutOfRangeException(nameof(o.CapacityBytes), o.CapacityBytes, $"The index would need {buckets} buckets per shard; the limit is {MaxBucketsPerShard} (lower CapacityBytes, or raise AverageEntrySizeHint or ShardCount).")
                : new ArgumentOutOfRangeException(nameof(o.MaxEntries), o.MaxEntries, $"The index would need {buckets} buckets per shard; the limit is {MaxBucketsPerShard} (lower MaxEntries or raise ShardCount).");
        }

        return new CacheLayout(pageSize, shards, (int)buckets, o.MaxEntries, o.MaxValueBytes ?? largestValue, maxEntryBytes,
            SizeClassSteps(o.CapacityBytes, shards, pageSize));
    }
}

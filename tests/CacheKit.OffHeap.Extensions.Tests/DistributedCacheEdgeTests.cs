using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using CacheKit.OffHeap.Extensions;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;

namespace CacheKit.OffHeap.Extensions.Tests;

/// <summary>OffHeapDistributedCache at its edges: over-long keys, allocations per read, lock striping, policy accesses.</summary>
public sealed class DistributedCacheEdgeTests
{
    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "StripeOf")]
    private static extern Lock StripeOf(OffHeapDistributedCache cache, ReadOnlySpan<byte> key);

    [Test]
    public void A_key_longer_than_MaxKeyBytes_reads_as_a_miss_like_MemoryDistributedCache()
    {
        // Set refuses such a key, so nothing can be stored under it: Get/TryGet report a miss and
        // Refresh/Remove do nothing, as MemoryDistributedCache (no key limit) does for an absent key.
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1, MaxKeyBytes = 16 });
        var distributed = new OffHeapDistributedCache(cache);
        IDistributedCache reference = new MemoryDistributedCache(Options.Create(new MemoryDistributedCacheOptions()));
        string key = new('x', 17);

        Assert.That(reference.Get(key), Is.Null);
        Assert.Multiple(() =>
        {
            Assert.That(() => distributed.Get(key), Throws.Nothing, "Get");
            Assert.That(() => distributed.TryGet(key, new ArrayBufferWriter<byte>()), Throws.Nothing, "TryGet");
            Assert.That(() => distributed.Refresh(key), Throws.Nothing, "Refresh");
            Assert.That(() => distributed.Remove(key), Throws.Nothing, "Remove");
        });
    }

    [Test]
    public async Task A_key_longer_than_MaxKeyBytes_only_in_UTF8_misses_in_every_read_and_is_refused_by_Set()
    {
        // 6 chars, 18 UTF-8 bytes: short enough as a string, too long once encoded.
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1, MaxKeyBytes = 16 });
        var distributed = new OffHeapDistributedCache(cache);
        string key = new('€', 6);
        var writer = new ArrayBufferWriter<byte>();

        byte[]? get = distributed.Get(key), getAsync = await distributed.GetAsync(key);
        bool tryGet = distributed.TryGet(key, writer), tryGetAsync = await distributed.TryGetAsync(key, writer);
        Assert.Multiple(() =>
        {
            Assert.That(get, Is.Null, "Get");
            Assert.That(getAsync, Is.Null, "GetAsync");
            Assert.That(tryGet, Is.False, "TryGet");
            Assert.That(tryGetAsync, Is.False, "TryGetAsync");
            Assert.That(writer.WrittenCount, Is.Zero, "nothing written");
            Assert.That(() => distributed.Refresh(key), Throws.Nothing, "Refresh");
            Assert.That(() => distributed.RefreshAsync(key), Throws.Nothing, "RefreshAsync");
            Assert.That(() => distributed.Remove(key), Throws.Nothing, "Remove");
            Assert.That(() => distributed.RemoveAsync(key), Throws.Nothing, "RemoveAsync");
            Assert.That(() => distributed.Set(key, [1], new DistributedCacheEntryOptions()),
                Throws.TypeOf<ArgumentOutOfRangeException>(), "Set still refuses it");
        });
        Assert.That(cache.GetStatistics().Count, Is.Zero);
    }

    [Test]
    public void Get_copies_the_value_into_one_array_only()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 8 << 20, ShardCount = 1 });
        var distributed = new OffHeapDistributedCache(cache);
        const int size = 32 * 1024;
        distributed.Set("k", new byte[size], new DistributedCacheEntryOptions());
        for (int i = 0; i < 3; i++)
        {
            distributed.Get("k");   // warm the pool and the JIT
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        byte[]? value = distributed.Get("k");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(value!.Length, Is.EqualTo(size));
        Assert.That(allocated, Is.LessThan(size + 4096), "Get should allocate the returned array and little else");
    }

    [Test]
    public void Refresh_does_not_copy_the_value_to_the_managed_heap()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 8 << 20, ShardCount = 1 });
        var distributed = new OffHeapDistributedCache(cache);
        const int size = 32 * 1024;
        distributed.Set("k", new byte[size], new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.FromHours(1) });
        for (int i = 0; i < 3; i++)
        {
            distributed.Refresh("k");
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        distributed.Refresh("k");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(allocated, Is.LessThan(4096), "Refresh returns nothing; it should not allocate a value-sized buffer");
    }

    [Test]
    public void Keys_that_share_a_64_byte_prefix_spread_over_the_stripes()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1 });
        var distributed = new OffHeapDistributedCache(cache);
        string prefix = "MyCompany.Catalog.ProductService.GetProductById:tenant=contoso-eu"; // 65 chars
        var stripes = new HashSet<Lock>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < 1000; i++)
        {
            byte[] key = Encoding.UTF8.GetBytes($"{prefix}:{i:D6}");
            stripes.Add(StripeOf(distributed, key));
        }
        Assert.That(stripes.Count, Is.GreaterThan(32), "1000 distinct keys of one length and one long prefix should use most of the 64 stripes");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void A_read_of_a_sliding_entry_counts_one_access_in_the_policy(bool aIsSliding)
    {
        // A read of a sliding entry is one counted lookup plus a renewal (a touch of its time to live); the renewal is
        // not an access for the policy, so each Get/Refresh counts once. Here A is read 2x and B 3x; LFU must evict
        // A (less used), not B, whether or not A slides. One read-buffer stripe: a set replays only its own core's
        // stripe, so B's reads recorded on another core (the test thread moved) could be pending at Set("C").
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1, MaxEntries = 2, Policy = CachePolicy.Lfu, ReadBufferStripes = 1 });
        var distributed = new OffHeapDistributedCache(cache);
        var optionsA = aIsSliding
            ? new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromHours(1) }
            : new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.FromHours(1) };
        distributed.Set("A", [1], optionsA);
        distributed.Set("B", [2], new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.FromHours(1) });
        for (int i = 0; i < 2; i++)
        {
            distributed.Get("A");
        }
        for (int i = 0; i < 3; i++)
        {
            distributed.Get("B");
        }
        distributed.Set("C", [3], new DistributedCacheEntryOptions());   // at the entry bound: one of A, B leaves
        Assert.That(cache.ContainsKey("B"u8), Is.True, $"B (3 reads) was evicted in favour of A (2 reads, sliding={aIsSliding})");
    }

    [Test]
    public void Renewing_sliding_entries_in_a_full_cache_evicts_nothing()
    {
        // A renewal used to write the entry again (a new chunk before the old one was freed): in a cache whose pages
        // were full, every sliding Get or Refresh evicted another entry. It now changes the time to live in place.
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 2 << 20, ShardCount = 1, PageSize = 64 * 1024 });
        var distributed = new OffHeapDistributedCache(cache);
        var sliding = new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromHours(1) };
        var value = new byte[500];
        int stored = 0;
        while (cache.GetStatistics().Evictions == 0)
        {
            distributed.Set("k" + stored++, value, sliding);   // until the budget is full
        }
        var live = Enumerable.Range(0, stored).Select(i => "k" + i).Where(k => cache.ContainsKey(Encoding.UTF8.GetBytes(k))).ToList();
        long evictions = cache.GetStatistics().Evictions;

        foreach (string key in live)
        {
            Assert.That(distributed.Get(key), Has.Length.EqualTo(500));
            distributed.Refresh(key);
        }

        CacheStatistics after = cache.GetStatistics();
        Assert.That(after.Evictions, Is.EqualTo(evictions), $"{live.Count} sliding entries renewed twice each");
        Assert.That(after.Count, Is.EqualTo(live.Count));
    }

    [Test]
    public void A_refresh_of_a_sliding_entry_counts_one_access_in_the_policy()
    {
        // As above, through Refresh: A (sliding) is refreshed 2x, B read 3x; LFU evicts A.
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1, MaxEntries = 2, Policy = CachePolicy.Lfu, ReadBufferStripes = 1 });
        var distributed = new OffHeapDistributedCache(cache);
        distributed.Set("A", [1], new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromHours(1) });
        distributed.Set("B", [2], new DistributedCacheEntryOptions());
        for (int i = 0; i < 2; i++)
        {
            distributed.Refresh("A");
        }
        for (int i = 0; i < 3; i++)
        {
            distributed.Get("B");
        }
        long hits = cache.GetStatistics().Hits;
        distributed.Set("C", [3], new DistributedCacheEntryOptions());
        Assert.Multiple(() =>
        {
            Assert.That(hits, Is.EqualTo(5), "each refresh and read is one counted lookup");
            Assert.That(cache.ContainsKey("B"u8), Is.True, "B (3 reads) was evicted in favour of A (2 refreshes)");
        });
    }

    [Test]
    public void The_distributed_cache_reads_expirations_by_the_caches_own_clock()
    {
        // It used to default to the system clock: with a cache on another clock, a Set expiring in an hour by the
        // cache's clock was already past by the system's, and stored nothing.
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1, TimeProvider = time });
        var distributed = new OffHeapDistributedCache(cache);
        distributed.Set("k", [1], new DistributedCacheEntryOptions { AbsoluteExpiration = time.GetUtcNow().AddHours(1) });
        Assert.That(distributed.Get("k"), Is.EqualTo(new byte[] { 1 }));
        time.Advance(TimeSpan.FromHours(1));
        Assert.That(distributed.Get("k"), Is.Null);
        Assert.That(() => new OffHeapDistributedCache(cache, TimeProvider.System),
            Throws.ArgumentException.With.Property(nameof(ArgumentException.ParamName)).EqualTo("timeProvider"));
        Assert.That(new OffHeapDistributedCache(cache, time), Is.Not.Null, "its own clock is accepted");
    }

    [Test]
    public void A_cache_too_small_for_the_expiration_header_is_refused_at_construction()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20, ShardCount = 1, MaxValueBytes = 8 });
        Assert.That(() => new OffHeapDistributedCache(cache),
            Throws.ArgumentException.With.Property(nameof(ArgumentException.ParamName)).EqualTo("cache").And.Message.Contains("MaxValueBytes is 8"));
    }
}

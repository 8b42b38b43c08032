using System.Text;

namespace CacheKit.OffHeap.Tests;

/// <summary>
/// Victims chosen before the add, through the engine (found by a review of the newcomer fix, 2026-11-29): when the byte budget binds (no MaxEntries, the default),
/// the shard asks the policy for victims BEFORE it adds the newcomer (Shard.TryAllocateWithRoomUnsynchronized), so the
/// entry added last is an ordinary resident. SIEVE and CLOCK must examine it like any other: it is the only entry never
/// read here (the sole unvisited / unreferenced one), so each of them evicts it. (S3-FIFO is covered at the policy level,
/// PreAddVictimTests: here, as its algorithm says, the read entries move from the small queue to main with their counters
/// reset, the small queue falls below its target, 10 % of the 1,920 held since 2026-11-29 (819, of the entry bound,
/// before), before it reaches the last entry, and main's tail, key 1, is the victim: checked, not asserted here.)
/// </summary>
[TestFixture]
public sealed class PreAddVictimEngineTests
{
    private static byte[] Key(int i) => Encoding.ASCII.GetBytes($"key-{i:D8}");

    [TestCase(CachePolicy.Sieve)]
    [TestCase(CachePolicy.Clock)]
    public void A_byte_bound_cache_evicts_the_only_entry_never_read_even_when_it_was_added_last(CachePolicy policy)
    {
        var evicted = new List<string>();
        using var cache = new OffHeapCache(new OffHeapCacheOptions
        {
            CapacityBytes = 2 << 20,
            PageSize = 64 * 1024,
            ShardCount = 1,
            Policy = policy,
            EvictionListener = (key, reason) =>
            {
                if (reason == EvictionReason.Capacity)
                {
                    evicted.Add(Encoding.ASCII.GetString(key));
                }
            },
        });
        byte[] value = new byte[1000];
        int next = 0;
        while (evicted.Count == 0)
        {
            Assert.That(cache.Set(Key(next++), value), Is.True);
            Assert.That(next, Is.LessThan(100_000), "the budget never bound");
        }
        // The last key set (next - 1) was added after the first eviction. Read every other resident.
        int last = next - 1;
        byte[] scratch = new byte[value.Length];
        for (int i = 0; i < last; i++)
        {
            cache.TryGet(Key(i), scratch, out _);
        }
        evicted.Clear();
        Assert.That(cache.Set(Key(next), value), Is.True);
        cache.ValidateInvariants();
        Assert.That(evicted, Has.Count.EqualTo(1));
        Assert.That(evicted[0], Is.EqualTo($"key-{last:D8}"), "the one entry never read, added just before this set");
    }
}

using CacheKit.Policies;

namespace CacheKit.Policies.Tests;

/// <summary>Hand-worked sequences with exact expected victims, capacity 3 entries.</summary>
[TestFixture]
public sealed class KnownAnswerTests
{
    private static (List<int> Evicted, long Hits) Replay(PolicyKind kind, params int[] keys) => ReplayWithCapacity(kind, 3, keys);

    /// <summary>Replays <paramref name="keys"/> (a miss adds, then victims leave while over capacity); returns the
    /// evicted keys in order and the hit count. Shared with <see cref="PolicyFidelityTests"/>.</summary>
    internal static (List<int> Evicted, long Hits) ReplayWithCapacity(PolicyKind kind, int capacity, params int[] keys)
    {
        var policy = PolicyFactory.Create(kind, new PolicyOptions { MaxHandles = capacity + 1, Capacity = capacity });
        var driver = new PolicyDriver(policy, 64) { Evicted = [] };
        foreach (int k in keys)
        {
            driver.Access(k, 1);
            driver.Validate();
        }
        return (driver.Evicted!, driver.Hits);
    }

    [Test]
    public void Fifo_evicts_in_insertion_order_regardless_of_hits()
    {
        // 1 2 3 | 1 hit | 4 evicts 1 (oldest) | 1 evicts 2 | 2 evicts 3 | 5 evicts 4
        var (evicted, hits) = Replay(PolicyKind.Fifo, 1, 2, 3, 1, 4, 1, 2, 5);
        Assert.That(evicted, Is.EqualTo(new[] { 1, 2, 3, 4 }));
        Assert.That(hits, Is.EqualTo(1));
    }

    [Test]
    public void Lru_evicts_the_least_recently_used()
    {
        // 1 2 3 | 1 hit (order 1,3,2) | 4 evicts 2 | 2 evicts 3 | 5 evicts 1 (order 2,4,1) | 4 hit
        var (evicted, hits) = Replay(PolicyKind.Lru, 1, 2, 3, 1, 4, 2, 5, 4);
        Assert.That(evicted, Is.EqualTo(new[] { 2, 3, 1 }));
        Assert.That(hits, Is.EqualTo(2));
    }

    [Test]
    public void Sieve_passes_visited_entries_and_keeps_its_hand()
    {
        // Queue head->tail 3,2,1. 1 hit marks 1. 4: hand at 1 (visited: clear, move to 2) evicts 2,
        // hand -> 3. 2: evicts 3 (unvisited), hand -> 4. 5: evicts 4, hand -> 2. 1 is still resident.
        var (evicted, hits) = Replay(PolicyKind.Sieve, 1, 2, 3, 1, 4, 2, 5, 1);
        Assert.That(evicted, Is.EqualTo(new[] { 2, 3, 4 }));
        Assert.That(hits, Is.EqualTo(2));
    }

    [Test]
    public void Clock_gives_referenced_entries_a_second_chance()
    {
        // The owner adds the newcomer before asking for a victim, but CLOCK evicts before it inserts:
        // the newcomer takes the victim's slot, behind the entries the hand cleared. Ring tail->head
        // 1,2,3; 1 hit. 4: 1 referenced -> cleared, moved to the head; evicts 2; 4 goes behind 1.
        // Ring 3,1,4. 5: evicts 3. Ring 1,4,5. 2: evicts 1 (cleared, not hit since).
        var (evicted, hits) = Replay(PolicyKind.Clock, 1, 2, 3, 1, 4, 5, 2);
        Assert.That(evicted, Is.EqualTo(new[] { 2, 3, 1 }));
        Assert.That(hits, Is.EqualTo(1));
    }
}

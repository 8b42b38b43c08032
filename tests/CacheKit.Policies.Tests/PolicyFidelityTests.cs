using CacheKit.Policies;

namespace CacheKit.Policies.Tests;

/// <summary>
/// Hand-worked sequences (found by a fidelity review, 2026-11-29) where a policy's victim must follow its published definition.
/// The classical algorithms evict before they insert the newcomer; the owner here inserts first, so
/// the newcomer must neither be the victim of a sweep nor change where the swept entries end up.
/// </summary>
[TestFixture]
public sealed class PolicyFidelityTests
{
    private static (List<int> Evicted, long Hits) Replay(PolicyKind kind, int capacity, params int[] keys)
        => KnownAnswerTests.ReplayWithCapacity(kind, capacity, keys);

    [Test]
    public void Clock_all_referenced_evicts_the_oldest_not_the_newcomer()
    {
        // CLOCK (Corbato 1968; libCacheSim Clock.c, Caffeine linked/Clock): ring 1,2,3, hand at 1,
        // all referenced. 4 misses: the hand clears 1, 2, 3, comes back to 1 and evicts it; 4 takes
        // its slot. A hit on 4 afterwards proves it was admitted.
        var (evicted, hits) = Replay(PolicyKind.Clock, 3, 1, 2, 3, 1, 2, 3, 4, 4);
        Assert.That(evicted, Is.EqualTo(new[] { 1 }));
        Assert.That(hits, Is.EqualTo(4));
    }

    [Test]
    public void Clock_newcomer_goes_behind_the_entries_the_hand_just_cleared()
    {
        // Ring 1,2,3, hand at 1; 1 hit. 4: 1 cleared, 2 evicted, 4 in 2's slot, hand at 3.
        // Visiting order now 3, 1, 4. 5: 3 evicted (hand at 1). 6: 1 (cleared, unreferenced) evicted,
        // not 4, which the hand reaches only after 1.
        var (evicted, _) = Replay(PolicyKind.Clock, 3, 1, 2, 3, 1, 4, 5, 6);
        Assert.That(evicted, Is.EqualTo(new[] { 2, 3, 1 }));
    }

    [Test]
    public void Sieve_hand_reaching_the_head_wraps_to_the_tail_instead_of_evicting_the_newcomer()
    {
        // SIEVE (Zhang et al., NSDI 2024, Algorithm 1; the authors' libCacheSim Sieve.c): evict, then
        // insert at the head. 1 2 3 (tail->head). 4: hand at 1, unvisited, evicted; hand -> 2.
        // Hits on 2, 3, 4. 5: queue 2,3,4; hand clears 2, 3, 4, wraps to the tail (2) and evicts it.
        // 5 is then inserted and a hit on it proves it was admitted.
        var (evicted, hits) = Replay(PolicyKind.Sieve, 3, 1, 2, 3, 4, 2, 3, 4, 5, 5);
        Assert.That(evicted, Is.EqualTo(new[] { 1, 2 }));
        Assert.That(hits, Is.EqualTo(4));
    }

    [Test]
    public void Sieve_hand_after_evicting_the_head_restarts_at_the_tail_not_at_the_newcomer()
    {
        // 1 2 3 (tail->head). 4: 1 evicted, hand -> 2. Hits on 2, 3. 5: queue 2,3,4; 2 and 3 cleared,
        // 4 evicted; 4 was the head, so the hand becomes null (restart at the tail); 5 inserted.
        // 6: queue 2,3,5; the hand starts at the tail, 2 is unvisited: 2 evicted (not 5). 5 then hits.
        var (evicted, hits) = Replay(PolicyKind.Sieve, 3, 1, 2, 3, 4, 2, 3, 5, 6, 5);
        Assert.That(evicted, Is.EqualTo(new[] { 1, 4, 2 }));
        Assert.That(hits, Is.EqualTo(3));
    }

    [Test]
    public void S3Fifo_does_not_evict_the_newcomer_when_the_small_queue_drains_into_main()
    {
        // Capacity 10: small target 1, main 9. The project's promotion threshold (accessed at least once).
        // 1..10 fill the small queue; 1..9 hit. 11: 1..9 move to main, 10 (unaccessed) is evicted.
        // 12: 11 evicted. 12 hit. 13: the small queue holds only 12 (accessed): it moves to main, the
        // small queue is empty, so the eviction falls to main (libCacheSim S3FIFO.c: evict_small finds
        // nothing, main is over its size, evict_main): 1 (counter reset on promotion) leaves, and 13 is
        // inserted into the small queue. The second 13 hits.
        var keys = new List<int>();
        for (int k = 1; k <= 10; k++) keys.Add(k);
        for (int k = 1; k <= 9; k++) keys.Add(k);
        keys.AddRange([11, 12, 12, 13, 13]);
        var (evicted, hits) = Replay(PolicyKind.S3Fifo, 10, keys.ToArray());
        Assert.That(evicted.Take(3), Is.EqualTo(new[] { 10, 11, 1 }));
        Assert.That(hits, Is.EqualTo(11));
    }
}

using CacheKit.Policies;

namespace CacheKit.Policies.Tests;

/// <summary>
/// Victims chosen before the add (found by a review of the newcomer fix, 2026-11-29): the engine's slab path (Shard.TryAllocateWithRoomUnsynchronized)
/// and TinyLfuAdmissionPolicy.ShouldAdmit ask SelectVictim BEFORE the newcomer is added, with Weight within
/// Capacity. The entry added last is then an ordinary resident, not a pending newcomer, and the classical
/// algorithm examines it like any other. These replays make room before the add, as the engine does when its
/// byte budget binds (the default: no MaxEntries).
/// </summary>
[TestFixture]
public sealed class PreAddVictimTests
{
    /// <summary>Adds keys 1..n (handle = key - 1) under a roomy capacity, hits <paramref name="hit"/>, then makes
    /// room once as the slab path does (no add pending); returns the key chosen.</summary>
    private static int VictimBeforeAdd(PolicyKind kind, int n, params int[] hit)
    {
        var policy = PolicyFactory.Create(kind, new PolicyOptions { MaxHandles = 64, Capacity = 10 });
        for (int k = 1; k <= n; k++)
        {
            policy.OnAdd(k - 1, PolicyDriver.HashOf(k), 1);
        }
        foreach (int k in hit)
        {
            policy.OnHit(k - 1, PolicyDriver.HashOf(k));
        }
        Assert.That(policy.Weight, Is.LessThanOrEqualTo(policy.Capacity), "no newcomer pending: the owner makes room before adding");
        return policy.SelectVictim() + 1;
    }

    [Test]
    public void Sieve_before_the_add_evicts_the_unvisited_head_not_a_visited_entry()
    {
        // Queue 1,2,3 (tail->head), 1 and 2 visited. SIEVE: hand clears 1, 2, reaches 3 (unvisited): evicts 3.
        Assert.That(VictimBeforeAdd(PolicyKind.Sieve, 3, 1, 2), Is.EqualTo(3));
    }

    [Test]
    public void Clock_before_the_add_evicts_the_unreferenced_entry_not_a_referenced_one()
    {
        // Ring 1,2,3 (hand at 1), 1 and 2 referenced. CLOCK: clears 1, 2; 3 unreferenced: evicts 3.
        Assert.That(VictimBeforeAdd(PolicyKind.Clock, 3, 1, 2), Is.EqualTo(3));
    }

    [Test]
    public void S3Fifo_before_the_add_evicts_the_one_hit_wonder_from_the_small_queue()
    {
        // Capacity 10: small target 1. Small 1,2,3 (tail->head), 1 and 2 accessed. S3-FIFO: small holds 3 >= 1:
        // 1 and 2 move to main; small still holds 1 (3) >= 1: 3 (unaccessed) is evicted and enters the ghost.
        Assert.That(VictimBeforeAdd(PolicyKind.S3Fifo, 3, 1, 2), Is.EqualTo(3));
    }

    [Test]
    public void S3Fifo_sizes_its_small_queue_from_the_entries_held_when_room_is_made_below_capacity()
    {
        // An engine whose byte budget fills first asks for room with 200 residents under an entry bound of 1,000.
        // Small queue (tail->head): keys 1..150 accessed, then 151..200 never accessed. Small target 10 % of the
        // 200 held = 20: the accessed 150 move to main, the small queue still holds 50 >= 20, so its tail, key
        // 151 (a one-hit wonder), is evicted. With 10 % of the bound (100) the small queue fell below its target
        // after 101 moves and the victim came from main: key 1, which had been read.
        var policy = PolicyFactory.Create(PolicyKind.S3Fifo, new PolicyOptions { MaxHandles = 1_024, Capacity = 1_000 });
        for (int k = 1; k <= 200; k++)
        {
            policy.OnAdd(k - 1, PolicyDriver.HashOf(k), 1);
        }
        for (int k = 1; k <= 150; k++)
        {
            policy.OnHit(k - 1, PolicyDriver.HashOf(k));
        }
        policy.OnRoomNeededBelowCapacity();
        Assert.That(policy.SelectVictim() + 1, Is.EqualTo(151));
    }

    [Test]
    public void Sieve_hand_after_removing_the_entry_before_the_last_added_moves_to_it_when_no_add_is_pending()
    {
        // Queue 1,2,3,4, none visited but 1. Pre-add: hand clears 1, evicts 2 -> hand moves to 3 (SIEVE: prev).
        // Next pre-add: 3 (unvisited) is evicted. Then 4 visited... the point: after the first eviction the hand is at 3.
        var policy = PolicyFactory.Create(PolicyKind.Sieve, new PolicyOptions { MaxHandles = 64, Capacity = 10 });
        for (int k = 1; k <= 3; k++)
        {
            policy.OnAdd(k - 1, PolicyDriver.HashOf(k), 1);
        }
        policy.OnHit(0, PolicyDriver.HashOf(1));
        policy.OnHit(2, PolicyDriver.HashOf(3));
        // Pre-add: clears 1, evicts 2 (hand on 2); its prev is 3, the entry added last, an ordinary resident.
        int v = policy.SelectVictim();
        Assert.That(v + 1, Is.EqualTo(2));
        policy.OnRemove(v);
        // SIEVE: hand = 3 (visited: cleared), then wraps to 1 (cleared): evicts 1. With the hand reset to the
        // tail instead, it is also 1 here; so hit 1 again to tell the two apart: from 3 the hand clears 3 and 1
        // and comes back to 3 (evicted); from the tail it clears 1, 3 and evicts 1.
        policy.OnHit(0, PolicyDriver.HashOf(1));
        Assert.That(policy.SelectVictim() + 1, Is.EqualTo(3));
    }
}

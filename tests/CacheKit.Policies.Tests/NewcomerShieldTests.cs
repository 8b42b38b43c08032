using CacheKit.Policies;

namespace CacheKit.Policies.Tests;

/// <summary>
/// SIEVE, CLOCK and S3-FIFO pass over the newcomer an add brought over capacity, because their classical forms evict
/// before they insert. Found by a review (2026-11-29): the shield outlived that eviction until the next add, so an
/// update that raised a weight over capacity spared the entry added long before, and a removal at SIEVE's hand sent
/// the hand to the tail when the next entry was that old newcomer. Each of these failed before the fix.
/// </summary>
[TestFixture]
public sealed class NewcomerShieldTests
{
    private static ulong H(int key) => PolicyDriver.HashOf(key);

    [Test]
    public void Sieve_hand_moves_to_the_entry_added_last_once_its_eviction_is_done()
    {
        var p = PolicyFactory.Create(PolicyKind.Sieve, new PolicyOptions { MaxHandles = 64, Capacity = 4 });
        for (int k = 1; k <= 4; k++)
        {
            p.OnAdd(k - 1, H(k), 1);
        }
        p.OnHit(0, H(1));
        p.OnHit(1, H(2));
        p.OnAdd(4, H(5), 1);
        int v = p.SelectVictim();
        Assert.That(v + 1, Is.EqualTo(3));   // clears 1 and 2, evicts 3: the hand moves to 4
        p.OnRemove(v);
        p.OnRemove(3);         // 4 leaves (a Remove, an expiry) under the hand: SIEVE moves the hand to 5
        p.OnAdd(5, H(6), 1);   // within capacity
        p.OnAdd(6, H(7), 1);   // over: a victim for 7
        Assert.That(p.SelectVictim() + 1, Is.EqualTo(5), "the hand on 5 finds it unvisited (before: back at the tail, 1)");
    }

    [TestCase(PolicyKind.Sieve)]
    [TestCase(PolicyKind.Clock)]
    public void A_weight_update_over_capacity_does_not_shield_the_entry_added_last(PolicyKind kind)
    {
        var p = PolicyFactory.Create(kind, new PolicyOptions { MaxHandles = 64, Capacity = 4 });
        for (int k = 1; k <= 4; k++)
        {
            p.OnAdd(k - 1, H(k), 1);
        }
        for (int k = 1; k <= 3; k++)
        {
            p.OnHit(k - 1, H(k));
        }
        p.OnUpdate(0, H(1), 2);
        Assert.That(p.SelectVictim() + 1, Is.EqualTo(4), "1, 2 and 3 referenced: 4 is the only unreferenced entry");
    }

    [Test]
    public void S3Fifo_weight_update_over_capacity_does_not_shield_the_entry_added_last()
    {
        // Capacity 2, small target 1. 1 grows to 5 (an access): it moves to main; the small queue still holds 2
        // (weight 1 >= 1), which is evicted.
        var p = PolicyFactory.Create(PolicyKind.S3Fifo, new PolicyOptions { MaxHandles = 64, Capacity = 2 });
        p.OnAdd(0, H(1), 1);
        p.OnAdd(1, H(2), 1);
        p.OnUpdate(0, H(1), 5);
        Assert.That(p.SelectVictim() + 1, Is.EqualTo(2));
    }
}

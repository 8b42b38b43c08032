using CacheKit.Policies;

namespace CacheKit.Policies.Tests.Extended;

/// <summary>
/// ARC's and CAR's target p and directory bound with weights up to <see cref="PolicyOptions.MaxWeight"/>
/// and capacities up to long.MaxValue: the arithmetic must not wrap.
/// </summary>
public sealed class AdaptiveTargetArithmeticTests
{
    private static ulong Hash(int key) => (ulong)key * 0x9E3779B97F4A7C15UL + 1;

    /// <summary>Evicts whatever the policy names (the owner's own reason) and returns it.</summary>
    private static int EvictOne(IEvictionPolicy policy)
    {
        int victim = policy.SelectVictim();
        policy.OnRemove(victim);
        return victim;
    }

    [Test]
    public void Arc_target_stays_within_capacity_when_a_heavy_key_returns_from_a_light_ghost()
    {
        // A 16 GiB byte budget, evicted only over capacity (so c stays the capacity: ShareCapacityTracker). B2 ends
        // up holding 2^32 bytes of history and B1 one byte, so when the one-byte key returns weighing 2^32 the step is
        // 2^32 x 2^32 / 1: p + step wrapped to a negative p (and the B2 side could wrap p above the capacity).
        var arc = new ArcPolicy(new PolicyOptions { MaxHandles = 8, Capacity = 1L << 34 });
        for (int k = 0; k < 4; k++)
        {
            arc.OnAdd(k, Hash(10 + k), PolicyOptions.MaxWeight);   // K0..K3 fill c
            arc.OnHit(k, Hash(10 + k));                             // -> T2 (K0 its LRU)
        }
        arc.OnAdd(4, Hash(1), 1);                                   // A -> T1, over c
        Assert.That(EvictOne(arc), Is.EqualTo(0));                  // T1 without the newcomer is empty: K0 (T2) -> B2
        arc.OnAdd(0, Hash(3), PolicyOptions.MaxWeight);             // C -> T1, over c
        Assert.That(EvictOne(arc), Is.EqualTo(4));                  // |T1| without C = 1 > p = 0: A -> B1
        Assert.That(arc.GhostListOf(Hash(1)), Is.EqualTo(0));
        arc.OnAdd(4, Hash(1), PolicyOptions.MaxWeight);             // A returns from B1, heavy
        Assert.That(arc.TargetT1, Is.InRange(0L, arc.Capacity));
        Assert.That(arc.TargetT1, Is.EqualTo(arc.Capacity), "the step exceeds c, so p saturates at c");
        arc.ValidateInvariants();
    }

    [Test]
    public void Arc_target_stays_at_or_above_zero_when_a_heavy_key_returns_from_a_light_B2_ghost()
    {
        // The mirror case, evicted only over capacity: B1 holds 2^32 bytes, B2 one byte, and the B2 key returns
        // weighing 2^32: p - step wrapped above the capacity.
        var arc = new ArcPolicy(new PolicyOptions { MaxHandles = 8, Capacity = 1L << 34 });
        arc.OnAdd(0, Hash(1), 1);                                   // A
        arc.OnHit(0, Hash(1));                                      // A -> T2
        for (int k = 1; k <= 4; k++)
        {
            arc.OnAdd(k, Hash(10 + k), PolicyOptions.MaxWeight);    // K1..K4 -> T1; K4 takes the weight over c
        }
        Assert.That(EvictOne(arc), Is.EqualTo(1));                  // T1 without K4: K1 -> B1
        for (int k = 2; k <= 4; k++)
        {
            arc.OnHit(k, Hash(10 + k));                             // K2..K4 -> T2, behind A
        }
        arc.OnAdd(1, Hash(20), PolicyOptions.MaxWeight);            // N -> T1, over c
        Assert.That(EvictOne(arc), Is.EqualTo(0));                  // T1 without N is empty: A (T2's LRU) -> B2
        Assert.That(arc.GhostListOf(Hash(1)), Is.EqualTo(1));
        arc.OnAdd(0, Hash(1), PolicyOptions.MaxWeight);             // A returns from B2, heavy
        Assert.That(arc.TargetT1, Is.InRange(0L, arc.Capacity));
        Assert.That(arc.TargetT1, Is.Zero);
        arc.ValidateInvariants();
    }

    [TestCase(PolicyKind.Arc)]
    [TestCase(PolicyKind.Car)]
    public void An_unbounded_capacity_keeps_the_ghost_history(PolicyKind kind)
    {
        // Capacity = long.MaxValue: the owner evicts for reasons of its own (memory). 2 x Capacity wrapped
        // to -2, so "the directory is over 2c" was always true and every eviction dropped all ghosts.
        var policy = PolicyFactory.Create(kind, new PolicyOptions { MaxHandles = 8, Capacity = long.MaxValue });
        policy.OnAdd(0, Hash(1), 1);
        policy.OnAdd(1, Hash(2), 1);
        Assert.That(EvictOne(policy), Is.EqualTo(0));   // A, from T1, to B1
        policy.OnAdd(0, Hash(1), 1);                    // A again: a B1 ghost hit raises p by 1
        policy.OnAdd(2, Hash(3), 1);                    // CAR adapts p once the ghost hit's evictions are done
        long p = policy switch
        {
            ArcPolicy arc => arc.TargetT1,
            CarPolicy car => car.TargetT1,
            _ => throw new AssertionException("not an adaptive policy"),
        };
        Assert.That(p, Is.EqualTo(1), "the evicted key was remembered in B1");
        ExtendedPolicies.ValidateInvariants(policy);
    }

    [Test]
    public void Car_target_stays_within_an_unbounded_capacity()
    {
        // c = long.MaxValue (the owner evicts for reasons of its own). B2 remembers 2^17 keys of 2^32 bytes,
        // so every B1 ghost hit of a light key moves p by |B2| / |B1| = 2^49: after 2^14 of them p + step
        // passed long.MaxValue and wrapped negative.
        const int heavy = 1 << 17;
        var car = new CarPolicy(new PolicyOptions { MaxHandles = heavy + 2, Capacity = long.MaxValue });
        for (int i = 0; i < heavy; i++)
        {
            car.OnAdd(i, Hash(i), PolicyOptions.MaxWeight);
            car.OnHit(i, Hash(i));
        }
        int light = heavy;                       // key of the resident light entry, on handle `lightHandle`
        int lightHandle = heavy;
        car.OnAdd(lightHandle, Hash(light), 1);
        while (car.Count > 1) EvictOne(car);     // the referenced heavy entries pass to T2 and leave for B2
        Assert.That(car.SelectVictim(), Is.EqualTo(lightHandle), "the newcomer is the one left");
        int spare = heavy + 1;                   // the other free handle
        int returning = -1;                      // handle of the key that came back from B1, or -1
        for (int round = 0; round < 1 << 15; round++)
        {
            if (returning >= 0)
            {
                car.OnRemove(returning);         // a deletion: p takes the pending ghost hit into account
                spare = returning;
            }
            Assert.That(car.TargetT1, Is.InRange(0L, car.Capacity), $"round {round}");
            int newKey = heavy + 1 + round;      // a fresh light key joins T1 ...
            car.OnAdd(spare, Hash(newKey), 1);
            int victim = EvictOne(car);          // ... and the older light entry leaves T1 for B1
            Assert.That(victim, Is.EqualTo(lightHandle));
            car.OnAdd(victim, Hash(light), 1);   // it comes back: a B1 ghost hit
            returning = victim;
            lightHandle = spare;
            light = newKey;
        }
        car.ValidateInvariants();
    }
}

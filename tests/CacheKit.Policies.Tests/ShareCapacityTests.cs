using CacheKit.Policies;

namespace CacheKit.Policies.Tests;

/// <summary>
/// Segment shares when the owner makes room below the capacity (an engine whose byte budget fills before its entry
/// bound): the shares are of the weight held then, not of the bound (found 2026-11-29: with shares of the bound, a
/// protected segment of 80 % of it held every entry read twice, and after a workload shift the engine's W-TinyLFU
/// fell from 57 % to 31 % hits, SLRU to 26 %).
/// </summary>
[TestFixture]
public sealed class ShareCapacityTests
{
    private static IEvictionPolicy Create(PolicyKind kind) =>
        PolicyFactory.Create(kind, new PolicyOptions { MaxHandles = 1_024, Capacity = 1_000, Seed = 7 });

    /// <summary>
    /// Holds 200 entries under a 1,000-entry capacity: keys 1..200 read twice (the first workload), then a loop over
    /// 30 new keys for <paramref name="rounds"/> rounds, making room before every add as the engine's slab path does.
    /// Returns the hits of the loop's last round.
    /// </summary>
    private static int HitsAfterShift(IEvictionPolicy policy, int rounds)
    {
        var handleOf = new Dictionary<int, int>();
        var keyOf = new Dictionary<int, int>();
        var free = new Stack<int>(Enumerable.Range(0, 1_024).Reverse());
        const int Held = 200;
        bool Access(int key)
        {
            if (handleOf.TryGetValue(key, out int h))
            {
                policy.OnHit(h, PolicyDriver.HashOf(key));
                return true;
            }
            policy.OnMiss(PolicyDriver.HashOf(key));
            if (policy.Count >= Held)
            {
                int victim = policy.SelectVictim();
                Assert.That(victim, Is.GreaterThanOrEqualTo(0));
                policy.OnRemove(victim);
                handleOf.Remove(keyOf[victim]);
                keyOf.Remove(victim);
                free.Push(victim);
            }
            int handle = free.Pop();
            policy.OnAdd(handle, PolicyDriver.HashOf(key), 1);
            handleOf[key] = handle;
            keyOf[handle] = key;
            return false;
        }
        for (int pass = 0; pass < 3; pass++)
        {
            for (int k = 1; k <= Held; k++)
            {
                Access(k);
            }
        }
        int hits = 0;
        for (int r = 0; r < rounds; r++)
        {
            hits = 0;
            for (int k = 0; k < 30; k++)
            {
                hits += Access(10_000 + k) ? 1 : 0;
            }
        }
        Assert.That(policy.Weight, Is.LessThanOrEqualTo(Held));
        return hits;
    }

    [TestCase(PolicyKind.Slru)]
    [TestCase(PolicyKind.WTinyLfu)]
    public void A_loop_that_fits_hits_after_the_workload_moves_on_when_room_is_made_below_capacity(PolicyKind kind)
    {
        // The first workload's entries, read three times, fill the protected segment. Before the fix SLRU's
        // protected limit (800) held all 200 forever, so the new keys evicted each other in probation: 0 hits
        // in every round; W-TinyLFU likewise kept them protected (limit 891).
        Assert.That(HitsAfterShift(Create(kind), rounds: 20), Is.EqualTo(30));
    }

    [Test]
    public void WTinyLfu_limits_are_shares_of_the_weight_held_when_room_is_made_and_follow_it_back_up()
    {
        var policy = (WTinyLfuPolicy)PolicyFactory.Create(PolicyKind.WTinyLfu,
            new PolicyOptions { MaxHandles = 1_024, Capacity = 1_000, WindowFraction = 0.1, Seed = 7 });
        Assert.That((policy.WindowMaximum, policy.ProtectedMaximum), Is.EqualTo((100L, 810L)));
        for (int k = 0; k < 200; k++)
        {
            policy.OnAdd(k, PolicyDriver.HashOf(k + 1), 1);
        }
        Assert.That(policy.WindowMaximum, Is.EqualTo(100), "not asked for room: the capacity binds");
        int victim = policy.SelectVictim();   // room made with 200 held
        Assert.That((policy.WindowMaximum, policy.ProtectedMaximum), Is.EqualTo((20L, 162L)));
        policy.OnRemove(victim);
        policy.OnAdd(victim, PolicyDriver.HashOf(5_000), 1);   // back to 200: not past what was held
        Assert.That(policy.WindowMaximum, Is.EqualTo(20));
        for (int k = 200; k < 400; k++)
        {
            policy.OnAdd(k, PolicyDriver.HashOf(k + 1), 1);   // the other bound has room again: grows back with the weight
        }
        Assert.That((policy.WindowMaximum, policy.ProtectedMaximum), Is.EqualTo((40L, 324L)));
        policy.ValidateInvariants();
        policy.Clear();
        Assert.That((policy.WindowMaximum, policy.ProtectedMaximum), Is.EqualTo((100L, 810L)), "Clear: the capacity again");
    }

    [TestCase(PolicyKind.Slru)]
    [TestCase(PolicyKind.WTinyLfu)]
    [TestCase(PolicyKind.Lirs)]
    [TestCase(PolicyKind.TwoQ)]
    [TestCase(PolicyKind.ClockPro)]
    [TestCase(PolicyKind.S3Fifo)]
    [TestCase(PolicyKind.Arc)]
    [TestCase(PolicyKind.Car)]
    public void Invariants_hold_while_the_weight_held_when_room_is_made_shrinks_and_grows(PolicyKind kind)
    {
        // The owner's other bound moves (200, 120, 300, 50 entries, then a clear and 100): the shares shrink with
        // room made below capacity and grow back with adds; every 25 calls the policy checks its own invariants.
        IEvictionPolicy policy = Create(kind);
        var validate = policy.GetType().GetMethod("ValidateInvariants",
            System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public)!;
        var random = new Random(11);
        var handleOf = new Dictionary<int, int>();
        var keyOf = new Dictionary<int, int>();
        var free = new Stack<int>(Enumerable.Range(0, 1_024).Reverse());
        int calls = 0;
        foreach (int held in new[] { 200, 120, 300, 50, -1, 100 })
        {
            if (held < 0)
            {
                policy.Clear();
                handleOf.Clear();
                keyOf.Clear();
                free = new Stack<int>(Enumerable.Range(0, 1_024).Reverse());
                validate.Invoke(policy, null);
                continue;
            }
            for (int i = 0; i < 5_000; i++)
            {
                int key = (int)Math.Min(999, Math.Floor(1_000 * Math.Pow(random.NextDouble(), 2)));
                ulong hash = PolicyDriver.HashOf(key);
                if (handleOf.TryGetValue(key, out int h))
                {
                    policy.OnHit(h, hash);
                }
                else
                {
                    policy.OnMiss(hash);
                    while (policy.Count >= held)
                    {
                        int victim = policy.SelectVictim();
                        policy.OnRemove(victim);
                        handleOf.Remove(keyOf[victim]);
                        keyOf.Remove(victim);
                        free.Push(victim);
                    }
                    int handle = free.Pop();
                    policy.OnAdd(handle, hash, 1);
                    handleOf[key] = handle;
                    keyOf[handle] = key;
                }
                if (++calls % 25 == 0)
                {
                    validate.Invoke(policy, null);
                }
            }
            Assert.That(policy.Count, Is.LessThanOrEqualTo(held));
        }
    }

    [Test]
    public void Over_capacity_the_shares_stay_shares_of_the_capacity()
    {
        // The simulator's protocol (add, then evict while over capacity) never makes room below the capacity: its
        // figures are unchanged (the whole suite compared bit for bit).
        var policy = (WTinyLfuPolicy)PolicyFactory.Create(PolicyKind.WTinyLfu,
            new PolicyOptions { MaxHandles = 64, Capacity = 10, WindowFraction = 0.2, Seed = 7 });
        for (int k = 0; k < 11; k++)
        {
            policy.OnAdd(k, PolicyDriver.HashOf(k + 1), 1);
        }
        policy.OnRemove(policy.SelectVictim());
        Assert.That((policy.WindowMaximum, policy.ProtectedMaximum), Is.EqualTo((2L, 7L)));
    }
}

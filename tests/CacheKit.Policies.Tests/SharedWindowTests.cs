using CacheKit.Policies;

namespace CacheKit.Policies.Tests;

/// <summary>
/// The adaptive window shared by the shards of one cache (<see cref="SharedWindowChoice"/>): the leader's shadows
/// decide, followers run none and take the leader's choice at their next add.
/// </summary>
[TestFixture]
public sealed class SharedWindowTests
{
    // Above WindowShadows.MaxShadowEntries: the only size a shard shares its window at.
    private const int Capacity = 3000;

    private static WTinyLfuPolicy Create(SharedWindowChoice? shared, bool leads) =>
        (WTinyLfuPolicy)PolicyFactory.Create(PolicyKind.WTinyLfu, new PolicyOptions
        {
            MaxHandles = Capacity + 1,
            Capacity = Capacity,
            SharedWindow = shared,
            LeadsSharedWindow = leads,
        });

    private static long WindowFor(int best) => (long)Math.Round(Capacity * WindowShadows.FractionOf(best));

    /// <summary>A zig-zag sweep over 1.5x capacity keys: recency-heavy, the adaptive window grows far past 1 %.</summary>
    private static IEnumerable<int> ZigZag(int accesses) => WTinyLfuTests.ZigZag(accesses, Capacity * 3 / 2);

    [Test]
    public void A_follower_runs_no_shadows_and_takes_the_leaders_window()
    {
        var shared = new SharedWindowChoice();
        var leader = Create(shared, leads: true);
        var follower = Create(shared, leads: false);
        Assert.That(leader.FollowsSharedWindow, Is.False);
        Assert.That(follower.FollowsSharedWindow, Is.True);
        Assert.That(leader.ShadowSampleRate, Is.GreaterThan(0), "the leader replays a sample into its shadows");
        Assert.That(follower.ShadowSampleRate, Is.EqualTo(0), "a follower has no shadows");

        var alone = Create(shared: null, leads: false);
        var leaderDriver = new PolicyDriver(leader, Capacity * 2);
        var followerDriver = new PolicyDriver(follower, Capacity * 2);
        var aloneDriver = new PolicyDriver(alone, Capacity * 2);
        long initial = follower.WindowMaximum;
        int step = 0;
        foreach (int k in ZigZag(300_000))
        {
            leaderDriver.Access(k, 1);
            followerDriver.Access(k, 1);
            aloneDriver.Access(k, 1);
            if (++step % 50_000 == 0)
            {
                leaderDriver.Validate();
                followerDriver.Validate();
            }
        }
        followerDriver.Access(Capacity * 2 - 1, 1);   // a key never seen: an add, where the follower looks
        followerDriver.Validate();

        double Ratio(PolicyDriver d) => (double)d.Hits / (d.Hits + d.Misses);
        TestContext.Out.WriteLine($"zigzag at {Capacity}: window leader {leader.WindowMaximum}, follower {follower.WindowMaximum}, alone {alone.WindowMaximum} (start {initial}); " +
            $"hit ratio leader {Ratio(leaderDriver):P2}, follower {Ratio(followerDriver):P2}, alone {Ratio(aloneDriver):P2}");
        Assert.That(shared.Best, Is.Not.EqualTo(WindowShadows.InitialBest), "the leader's shadows moved the window on this workload");
        Assert.That(leader.WindowMaximum, Is.EqualTo(WindowFor(shared.Best)));
        Assert.That(follower.WindowMaximum, Is.EqualTo(WindowFor(shared.Best)), "the follower took the published choice");
        Assert.That(follower.WindowMaximum, Is.GreaterThan(initial * 10));
        Assert.That(Ratio(followerDriver), Is.EqualTo(Ratio(aloneDriver)).Within(0.01), "following loses no more than a point against deciding alone");
    }

    [Test]
    public void A_follower_takes_a_new_choice_at_its_next_add_not_on_a_hit()
    {
        var shared = new SharedWindowChoice();
        var follower = Create(shared, leads: false);
        var driver = new PolicyDriver(follower, Capacity * 2);
        for (int k = 0; k < 100; k++)
        {
            driver.Access(k, 1);
        }
        Assert.That(follower.WindowMaximum, Is.EqualTo(WindowFor(WindowShadows.InitialBest)));

        shared.Publish(4);   // the 50 % window
        Assert.That(driver.Access(0, 1), Is.True, "a hit");
        Assert.That(follower.WindowMaximum, Is.EqualTo(WindowFor(WindowShadows.InitialBest)), "hits never look at the shared choice");
        Assert.That(driver.Access(100, 1), Is.False, "a miss and an add");
        Assert.That(follower.WindowMaximum, Is.EqualTo(WindowFor(4)));
        driver.Validate();
    }

    [Test]
    public void Clear_starts_the_leader_and_the_followers_over_at_the_initial_window()
    {
        var shared = new SharedWindowChoice();
        var leader = Create(shared, leads: true);
        var follower = Create(shared, leads: false);
        var leaderDriver = new PolicyDriver(leader, Capacity * 2);
        var followerDriver = new PolicyDriver(follower, Capacity * 2);
        foreach (int k in ZigZag(200_000))
        {
            leaderDriver.Access(k, 1);
            followerDriver.Access(k, 1);
        }
        int grown = shared.Best;
        Assert.That(grown, Is.Not.EqualTo(WindowShadows.InitialBest));

        // A follower cleared alone: back to the initial window, and to the leader's choice at its next add.
        followerDriver.Clear();
        Assert.That(follower.WindowMaximum, Is.EqualTo(WindowFor(WindowShadows.InitialBest)));
        followerDriver.Access(0, 1);
        Assert.That(follower.WindowMaximum, Is.EqualTo(WindowFor(grown)));

        // The leader cleared: its shadows start over, and so does the choice it published.
        leaderDriver.Clear();
        Assert.That(shared.Best, Is.EqualTo(WindowShadows.InitialBest));
        Assert.That(leader.WindowMaximum, Is.EqualTo(WindowFor(WindowShadows.InitialBest)));
        followerDriver.Clear();
        followerDriver.Access(1, 1);
        Assert.That(follower.WindowMaximum, Is.EqualTo(WindowFor(WindowShadows.InitialBest)));
        leaderDriver.Validate();
        followerDriver.Validate();
    }

    [TestCase(WindowShadows.MaxShadowEntries, WindowShadows.MaxShadowEntries + 1)]   // small: each shard keeps its own shadows
    [TestCase(100_000, 4_000)]                                                       // a byte budget
    public void A_shared_window_needs_an_entry_count_capacity_above_the_shadow_size(long capacity, int maxHandles)
    {
        var options = new PolicyOptions { MaxHandles = maxHandles, Capacity = capacity, SharedWindow = new SharedWindowChoice() };
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => PolicyFactory.Create(PolicyKind.WTinyLfu, options));
        Assert.That(e!.Message, Does.Contain($"above {WindowShadows.MaxShadowEntries} entries").And.Contain($"capacity {capacity}"));
    }

    [Test]
    public void A_fixed_window_ignores_the_shared_choice()
    {
        var shared = new SharedWindowChoice();
        var policy = (WTinyLfuPolicy)PolicyFactory.Create(PolicyKind.WTinyLfu, new PolicyOptions
        {
            MaxHandles = Capacity + 1, Capacity = Capacity, WindowFraction = 0.2, SharedWindow = shared,
        });
        var driver = new PolicyDriver(policy, Capacity * 2);
        shared.Publish(4);
        driver.Access(1, 1);
        Assert.That(policy.FollowsSharedWindow, Is.False);
        Assert.That(policy.WindowMaximum, Is.EqualTo(600));
    }

    /// <summary>A full follower whose window shrinks from 99 % to 0.1 %: the overflow moves to probation at that add, and
    /// the eviction round that follows keeps every invariant.</summary>
    [Test]
    public void A_full_follower_shrinks_its_window_at_the_next_add()
    {
        var shared = new SharedWindowChoice();
        var follower = Create(shared, leads: false);
        var driver = new PolicyDriver(follower, Capacity * 3);
        shared.Publish(6);   // 99 %
        for (int k = 0; k < Capacity; k++)
        {
            driver.Access(k, 1);
        }
        Assert.That(follower.WindowMaximum, Is.EqualTo(WindowFor(6)));
        driver.Validate();

        shared.Publish(0);   // 0.1 %
        for (int k = Capacity; k < Capacity + 10; k++)
        {
            driver.Access(k, 1);   // each add is over capacity: an eviction round follows
            driver.Validate();
        }
        Assert.That(follower.WindowMaximum, Is.EqualTo(WindowFor(0)));
        Assert.That(driver.Resident, Is.EqualTo(Capacity));
    }
}

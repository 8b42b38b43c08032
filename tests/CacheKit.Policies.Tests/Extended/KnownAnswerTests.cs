using CacheKit.Policies;

namespace CacheKit.Policies.Tests.Extended;

/// <summary>
/// Hand-worked sequences (keys are letters) whose evictions follow from the papers' algorithms;
/// each step is worked out in the comments. Unit weights, so capacity counts entries.
/// </summary>
public sealed class KnownAnswerTests
{
    private static PolicyOwner Owner<T>(PolicyKind kind, int capacity, int k = 2) where T : class, IEvictionPolicy
    {
        Assert.That(ExtendedPolicies.TryCreate(kind, new PolicyOptions { MaxHandles = capacity + 1, Capacity = capacity, K = k }, out var p), Is.True);
        Assert.That(p, Is.InstanceOf<T>());
        return new PolicyOwner(p!);
    }

    private static void Play(PolicyOwner owner, string keys)
    {
        foreach (char c in keys) owner.Access(c);
    }

    private static string Evicted(PolicyOwner owner) => string.Concat(owner.Evicted.Select(k => (char)k));

    private static string Residents(PolicyOwner owner) => string.Concat(owner.Residents.Select(k => (char)k).Order());

    [Test]
    public void Mru_evicts_the_most_recently_used_but_not_the_newcomer()
    {
        var o = Owner<MruPolicy>(PolicyKind.Mru, 3);
        // A B C -> [C B A]; A hit -> [A C B]; D -> [D A C B], D spared, A out;
        // B hit -> [B D C]; E -> [E B D C], E spared, B out.
        Play(o, "ABCADBE");
        Assert.That(Evicted(o), Is.EqualTo("AB"));
        Assert.That(Residents(o), Is.EqualTo("CDE"));
        Assert.That(o.Hits, Is.EqualTo(2));
    }

    [Test]
    public void Lfu_evicts_the_least_frequent_then_least_recent()
    {
        var o = Owner<LfuPolicy>(PolicyKind.Lfu, 3);
        // A1 B1 A2 C1 B2; D1 -> bucket 1 = {C, D}: C out; C1 -> {D, C}: D out;
        // E1 -> {C, E}: C out; E hit -> E2; F1 alone in bucket 1 and spared ->
        // bucket 2 = {A (touched step 3), B (step 5), E (step 9)}: A out.
        Play(o, "ABACBDCEEF");
        Assert.That(Evicted(o), Is.EqualTo("CDCA"));
        Assert.That(Residents(o), Is.EqualTo("BEF"));
        var lfu = (LfuPolicy)o.Policy;
        Assert.That(lfu.FrequencyOf(o.HandleOf('B')), Is.EqualTo(2));
        Assert.That(lfu.FrequencyOf(o.HandleOf('F')), Is.EqualTo(1));
    }

    [Test]
    public void LruK_evicts_by_the_kth_most_recent_access_and_keeps_history()
    {
        var o = Owner<LruKPolicy>(PolicyKind.LruK, 3);
        // t1 A, t2 B, t3 A (A: K-th time 1), t4 C, t5 B (B: 2);
        // t6 D -> young list {D, C}: C out (history keeps C's t4);
        // t7 A (A: 3); t8 E -> young {E, D}, E spared: D out;
        // t9 C returns with its history (C: 4, in the heap) -> young {E}: E out.
        Play(o, "ABACBDAEC");
        Assert.That(Evicted(o), Is.EqualTo("CDE"));
        Assert.That(Residents(o), Is.EqualTo("ABC"));
        var lruK = (LruKPolicy)o.Policy;
        Assert.That(lruK.KthTime(o.HandleOf('C')), Is.EqualTo(4));
        Assert.That(lruK.KthTime(o.HandleOf('A')), Is.EqualTo(3));
        Assert.That(lruK.KthTime(o.HandleOf('B')), Is.EqualTo(2));
        // t10 F -> young {F} spared -> heap min is B (K-th time 2; A has 3, C has 4): B out.
        o.Access('F');
        Assert.That(Evicted(o), Is.EqualTo("CDEB"));
        Assert.That(o.Hits, Is.EqualTo(3));
    }

    [Test]
    public void TwoQ_filters_one_timers_through_A1in_and_A1out()
    {
        var o = Owner<TwoQPolicy>(PolicyKind.TwoQ, 4);   // Kin = 1, Kout = 2
        // A B C D fill A1in; E: A1in over Kin -> A out to A1out;
        // A (ghost) -> Am, B out; B -> Am, C out; C -> Am, D out;
        // D -> Am = [D C B A], A1in = [E] not over Kin -> Am's LRU A out (not remembered);
        // A (new again) -> A1in = [A E], A1in without the newcomer is 1 -> Am's LRU B out.
        Play(o, "ABCDEABCDA");
        Assert.That(Evicted(o), Is.EqualTo("ABCDAB"));
        Assert.That(Residents(o), Is.EqualTo("ACDE"));
        var q = (TwoQPolicy)o.Policy;
        Assert.That(q.IsInAm(o.HandleOf('D')), Is.True);
        Assert.That(q.IsInAm(o.HandleOf('C')), Is.True);
        Assert.That(q.IsInAm(o.HandleOf('E')), Is.False);
        Assert.That(q.IsInAm(o.HandleOf('A')), Is.False);
        Assert.That(q.IsGhost(PolicyOwner.HashOf('B')), Is.False);   // left from Am: no history
    }

    [Test]
    public void Arc_adapts_p_on_ghost_hits_as_in_the_paper()
    {
        var o = Owner<ArcPolicy>(PolicyKind.Arc, 3);
        var arc = (ArcPolicy)o.Policy;
        // 1-3 A B C -> T1 = [C B A]; 4 A hit -> T2 = [A];
        // 5 D: REPLACE, |T1| = 2 > p = 0 -> B to B1; T1 = [D C].
        Play(o, "ABCAD");
        Assert.That(Evicted(o), Is.EqualTo("B"));
        Assert.That(arc.GhostListOf(PolicyOwner.HashOf('B')), Is.EqualTo(0));
        // 6 B in B1: p = 1; |T1| = 2 > 1 -> C to B1; B to T2 = [B A].
        o.Access('B');
        Assert.That(arc.TargetT1, Is.EqualTo(1));
        // 7 E: |T1| = 1 = p -> T2's LRU A to B2; T1 = [E D].
        // 8 C in B1 (|B1| = |B2| = 1): p = 2; |T1| = 2 = p -> T2's LRU B to B2; T2 = [C].
        // 9 A in B2 (|B2| = 2 >= |B1| = 0): p = 1; |T1| = 2 > 1 -> D to B1; T2 = [A C].
        Play(o, "ECA");
        Assert.That(Evicted(o), Is.EqualTo("BCABD"));
        Assert.That(arc.TargetT1, Is.EqualTo(1));
        // 10 F: |T1| = 1 = p, F not from B2 -> T2's LRU C to B2; T1 = [F E].
        // 11 G: |T1| + |B1| = 3 = c -> D leaves B1; |T1| = 2 > 1 -> E to B1.
        Play(o, "FG");
        Assert.That(Evicted(o), Is.EqualTo("BCABDCE"));
        Assert.That(Residents(o), Is.EqualTo("AFG"));
        Assert.Multiple(() =>
        {
            Assert.That(arc.ListOf(o.HandleOf('A')), Is.EqualTo(1));
            Assert.That(arc.ListOf(o.HandleOf('F')), Is.EqualTo(0));
            Assert.That(arc.ListOf(o.HandleOf('G')), Is.EqualTo(0));
            Assert.That(arc.GhostListOf(PolicyOwner.HashOf('E')), Is.EqualTo(0));
            Assert.That(arc.GhostListOf(PolicyOwner.HashOf('D')), Is.EqualTo(-1));
            Assert.That(arc.GhostListOf(PolicyOwner.HashOf('C')), Is.EqualTo(1));
            Assert.That(arc.GhostListOf(PolicyOwner.HashOf('B')), Is.EqualTo(1));
        });
        Assert.That(o.Hits, Is.EqualTo(1));
    }

    [Test]
    public void Arc_tie_goes_to_T1_when_the_newcomer_comes_from_B2()
    {
        var o = Owner<ArcPolicy>(PolicyKind.Arc, 2);
        var arc = (ArcPolicy)o.Policy;
        // A B -> T1 = [B A]; A hit -> T2 = [A]; C: |T1| = 1 > p = 0 -> B to B1; T1 = [C].
        // B in B1: p = 1; |T1| = 1 = p -> T2's LRU A to B2; T2 = [B].
        // A in B2: p = max(0, 1 - 1) = 0... use the tie instead: first raise p again.
        Play(o, "ABACB");
        Assert.That(Evicted(o), Is.EqualTo("BA"));
        Assert.That(arc.TargetT1, Is.EqualTo(1));
        // A in B2 (|B2| = 1 >= |B1| = 0): p = 0; |T1| = 1 > 0 -> C to B1.
        o.Access('A');
        Assert.That(arc.TargetT1, Is.Zero);
        Assert.That(Evicted(o), Is.EqualTo("BAC"));
        Assert.That(Residents(o), Is.EqualTo("AB"));
    }

    [Test]
    public void Lirs_keeps_low_irr_entries_and_evicts_resident_hir()
    {
        var o = Owner<LirsPolicy>(PolicyKind.Lirs, 3);   // Llirs = 2, Lhirs = 1
        var lirs = (LirsPolicy)o.Policy;
        Assert.That(lirs.LirTarget, Is.EqualTo(2));
        // 1 A LIR, 2 B LIR, 3 C HIR: S = [C B A], Q = [C];
        // 4 D HIR: Q = [C D] -> C out, stays in S as a ghost.
        Play(o, "ABCD");
        Assert.That(Evicted(o), Is.EqualTo("C"));
        Assert.That(lirs.IsGhost(PolicyOwner.HashOf('C')), Is.True);
        // 5 C (ghost in S) -> LIR; bottom LIR A demoted to Q = [D A]; D out (ghost).
        o.Access('C');
        Assert.That(lirs.IsLir(o.HandleOf('C')), Is.True);
        Assert.That(lirs.IsLir(o.HandleOf('A')), Is.False);
        // 6 B hit at the bottom -> top, prune removes ghost D: S = [B C].
        o.Access('B');
        Assert.That(lirs.IsGhost(PolicyOwner.HashOf('D')), Is.False);
        // 7 A hit, resident HIR not in S -> pushed on S, stays HIR: S = [A B C], Q = [A].
        o.Access('A');
        Assert.That(lirs.IsLir(o.HandleOf('A')), Is.False);
        Assert.That(lirs.InStack(o.HandleOf('A')), Is.True);
        // 8 E HIR: Q = [A E] -> A out (ghost); 9 A (ghost) -> LIR, bottom C demoted: Q = [E C] -> E out (ghost);
        // 10 D (pruned at 6, so new) HIR: Q = [C D] -> C out (not in S: forgotten).
        Play(o, "EAD");
        Assert.That(Evicted(o), Is.EqualTo("CDAEC"));
        Assert.That(Residents(o), Is.EqualTo("ABD"));
        Assert.Multiple(() =>
        {
            Assert.That(lirs.IsLir(o.HandleOf('A')), Is.True);
            Assert.That(lirs.IsLir(o.HandleOf('B')), Is.True);
            Assert.That(lirs.IsLir(o.HandleOf('D')), Is.False);
            Assert.That(lirs.InStack(o.HandleOf('D')), Is.True);
            Assert.That(lirs.IsGhost(PolicyOwner.HashOf('E')), Is.True);
            Assert.That(lirs.IsGhost(PolicyOwner.HashOf('C')), Is.False);
        });
        Assert.That(o.Hits, Is.EqualTo(2));
    }

    [Test]
    public void Lirs_holds_a_loop_larger_than_the_cache_where_lru_gets_nothing()
    {
        // A loop over 12 keys in a cache of 10: LRU never hits; LIRS keeps its 9 LIR keys.
        var o = Owner<LirsPolicy>(PolicyKind.Lirs, 10);
        for (int round = 0; round < 20; round++)
        {
            for (int k = 0; k < 12; k++) o.Access(k);
        }
        Assert.That(o.Hits, Is.EqualTo(19 * 9));
    }

    [TestCase(PolicyKind.ClockPro, 120)]
    [TestCase(PolicyKind.TwoQ, 120)]
    [TestCase(PolicyKind.Mru, 150)]
    [TestCase(PolicyKind.Lifo, 150)]
    [TestCase(PolicyKind.Random, 100)]
    public void Loop_resistant_policies_keep_part_of_a_loop_larger_than_the_cache(PolicyKind kind, int minimumHits)
    {
        // LRU (and ARC, CAR, LRU-K, LFU here) gets no hit on this loop; these keep some of it.
        Assert.That(ExtendedPolicies.TryCreate(kind, new PolicyOptions { MaxHandles = 11, Capacity = 10 }, out var p), Is.True);
        var o = new PolicyOwner(p!);
        for (int round = 0; round < 20; round++)
        {
            for (int k = 0; k < 12; k++) o.Access(k);
        }
        Assert.That(o.Hits, Is.GreaterThanOrEqualTo(minimumHits));
    }

    [Test]
    public void Gdsf_prefers_small_popular_entries_and_inflates_L()
    {
        Assert.That(ExtendedPolicies.TryCreate(PolicyKind.Gdsf, new PolicyOptions { MaxHandles = 4, Capacity = 100 }, out var p), Is.True);
        var o = new PolicyOwner(p!);
        var gdsf = (GdsfPolicy)p!;
        o.Access('A', 50);   // H = 0 + 1/50 = 0.02
        o.Access('B', 10);   // H = 0.1
        o.Access('B');       // B: H = 0.2
        o.Access('C', 45);   // over: A (0.02) out, L = 0.02; C: H = 0.02 + 1/45
        Assert.That(Evicted(o), Is.EqualTo("A"));
        Assert.That(gdsf.Inflation, Is.EqualTo(0.02).Within(1e-12));
        Assert.That(gdsf.PriorityOf(o.HandleOf('C')), Is.EqualTo(0.02 + 1.0 / 45).Within(1e-12));
        o.Access('D', 50);   // over: C (0.0422) < B (0.2) -> C out, L = 0.0422
        Assert.That(Evicted(o), Is.EqualTo("AC"));
        Assert.That(gdsf.Inflation, Is.EqualTo(0.02 + 1.0 / 45).Within(1e-12));
    }

    [Test]
    public void ClockProKeepsOneGhostWhenTwoLiveKeysShareAHash()
    {
        // Found by review (2026-11-30): two live keys with the same 64-bit hash each left a ghost when evicted; the second
        // ghost broke the ghost index (Debug: an assert; Release: a ghost left unindexed, then an IndexOutOfRangeException
        // and a tracked handle outside the ring). The engine's seeded hash makes this rare, but the interface does not
        // promise distinct hashes.
        var p = (ClockProPolicy)PolicyFactory.Create(PolicyKind.ClockPro, new PolicyOptions { MaxHandles = 4, Capacity = 2 });
        p.OnAdd(0, 101, 1);
        p.OnAdd(1, 102, 1);
        p.OnAdd(2, 100, 1);
        Assert.That(p.SelectVictim(), Is.EqualTo(1));
        p.OnRemove(1);
        p.OnHit(2, 100);
        p.OnAdd(1, 101, 1);   // a second live key with hash 101
        Assert.That(p.SelectVictim(), Is.EqualTo(0));
        p.OnRemove(0);        // the first ghost of hash 101
        p.OnAdd(0, 102, 1);
        Assert.That(p.SelectVictim(), Is.EqualTo(1));
        p.OnRemove(1);        // hash 101 again: one ghost is kept
        p.ValidateInvariants();
        p.OnAdd(1, 101, 1);
        p.ValidateInvariants();
        Assert.That(p.Count, Is.EqualTo(3));
        for (int round = 0; round < 20; round++)   // the clock goes on working
        {
            int victim = p.SelectVictim();
            Assert.That(victim, Is.InRange(0, 2));
            p.OnRemove(victim);
            p.OnAdd(victim, 101 + (ulong)(round % 3), 1);   // three hashes for three keys at a time: collisions go on
            p.ValidateInvariants();
        }
    }

    [Test]
    public void ClockProFindsAVictimInOneTurnWhenEveryResidentIsHot()
    {
        // Found by review (2026-11-30): with every resident hot and the hot weight within its limit (which leaves out the
        // waiting newcomer), the hot hand demoted nothing, so the cold hand swept all MaxSweep steps and fell back to the
        // first resident: 15.6 us per eviction. Now a fruitless turn lets the hot hand demote one entry.
        var p = (ClockProPolicy)PolicyFactory.Create(PolicyKind.ClockPro, new PolicyOptions { MaxHandles = 16, Capacity = 1000 });
        for (int i = 0; i < 9; i++)
        {
            p.OnAdd(i, (ulong)i + 1, 100);   // warm-up: all hot
        }
        p.OnAdd(9, 500, 200);                // a cold newcomer: 1,100 > 1,000
        Assert.That(Enumerable.Range(0, 9).All(p.IsHot), Is.True, "the situation: every resident in the ring is hot");
        p.SweepSteps = 0;
        int victim = p.SelectVictim();
        Assert.That(victim, Is.InRange(0, 8));
        Assert.That(p.SweepSteps, Is.LessThanOrEqualTo(2 * 9 + 2), "one turn to find no cold entry, then the hot hand's first demotion");
        Assert.That(p.IsHot(victim), Is.False, "the victim is the entry the hot hand demoted");
        p.OnRemove(victim);
        p.ValidateInvariants();
    }

    [Test]
    public void ClockProFindsAVictimWithinTheSweepCapWhenEveryResidentOfALargeRingIsHot()
    {
        // The first form of the fix demoted after a whole turn and let the cold hand come round to the demoted entry: with
        // more than about 2,048 residents two turns did not fit in the 4,096-step cap, and a hot entry was evicted by the
        // fallback (found by the last look at the session's diff, 2026-11-30).
        var p = (ClockProPolicy)PolicyFactory.Create(PolicyKind.ClockPro, new PolicyOptions { MaxHandles = 4000, Capacity = 300_000 });
        for (int i = 0; i < 2970; i++)
        {
            p.OnAdd(i, (ulong)i + 1, 100);   // warm-up: all hot (297,000 of 300,000 less the 1 % cold floor)
        }
        p.OnAdd(2970, 99_999, 10_000);       // a cold newcomer: 307,000 > 300,000
        Assert.That(Enumerable.Range(0, 2970).All(p.IsHot), Is.True);
        p.SweepSteps = 0;
        int victim = p.SelectVictim();
        Assert.That(victim, Is.InRange(0, 2969));
        Assert.That(p.IsHot(victim), Is.False, "a demoted entry, not a hot one taken by the fallback");
        Assert.That(p.SweepSteps, Is.LessThanOrEqualTo(ClockProPolicy.MaxSweep / 2 + 2));
        p.OnRemove(victim);
        p.ValidateInvariants();
    }

    [Test]
    public void ClockProKeepsItsGhostsWhenASweepFindsNoResidentAtAll()
    {
        // The ring holds only ghosts and the newcomer is heavier than the capacity: the fallback demotion finds no hot entry
        // and must not push the test hand on the way (the first form did, through the hot hand, and dropped every ghost).
        var p = (ClockProPolicy)PolicyFactory.Create(PolicyKind.ClockPro, new PolicyOptions { MaxHandles = 64, Capacity = 20 });
        var live = new List<int>();
        for (int key = 0; key < 60; key++)
        {
            int handle = Enumerable.Range(0, 64).First(h => !live.Contains(h));
            p.OnAdd(handle, (ulong)key + 1000, 1);
            live.Add(handle);
            while (live.Count > 20)
            {
                int victim = p.SelectVictim();
                p.OnRemove(victim);
                live.Remove(victim);
            }
        }
        foreach (int handle in live)
        {
            p.OnRemove(handle);   // removed by the owner, not evicted: no ghost, the ring keeps only the ghosts
        }
        int ghosts = p.GhostCount;
        Assert.That(ghosts, Is.GreaterThan(0), "the situation: a ring of ghosts");
        p.OnAdd(0, 5000, 25);   // heavier than the capacity
        Assert.That(p.SelectVictim(), Is.EqualTo(0), "no resident but the newcomer");
        Assert.That(p.GhostCount, Is.EqualTo(ghosts), "no ghost lost to the sweep");
        p.ValidateInvariants();
    }
}

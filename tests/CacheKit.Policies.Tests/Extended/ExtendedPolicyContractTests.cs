using CacheKit.Policies;

namespace CacheKit.Policies.Tests.Extended;

/// <summary>The contract every extended policy honours, run through <see cref="ExtendedPolicies.TryCreate"/>.</summary>
[TestFixtureSource(nameof(AllKinds))]
public sealed class ExtendedPolicyContractTests(PolicyKind kind)
{
    public static IEnumerable<PolicyKind> AllKinds() => ExtendedPolicies.Kinds.ToArray();

    private IEvictionPolicy Create(int maxHandles, long capacity, int seed = 0x5EED)
    {
        Assert.That(ExtendedPolicies.TryCreate(kind, new PolicyOptions { MaxHandles = maxHandles, Capacity = capacity, Seed = seed }, out var policy), Is.True);
        return policy!;
    }

    [Test]
    public void Starts_empty_and_reports_its_settings()
    {
        var p = Create(10, 8);
        Assert.Multiple(() =>
        {
            Assert.That(p.Count, Is.Zero);
            Assert.That(p.Weight, Is.Zero);
            Assert.That(p.Capacity, Is.EqualTo(8));
            Assert.That(p.MaxHandles, Is.EqualTo(10));
            Assert.That(p.Name, Is.Not.Empty);
            Assert.That(p.SelectVictim(), Is.EqualTo(-1));
            Assert.That(p.ShouldAdmit(123, 1), Is.True);
        });
        ExtendedPolicies.ValidateInvariants(p);
    }

    [Test]
    public void Rejects_bad_options()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Create(0, 8));
        Assert.Throws<ArgumentOutOfRangeException>(() => Create(8, 0));
        Assert.Throws<ArgumentNullException>(() => ExtendedPolicies.TryCreate(kind, null!, out _));
    }

    [Test]
    public void Rejects_bad_calls_and_stays_consistent()
    {
        var p = Create(4, 4);
        p.OnAdd(1, 11, 1);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => p.OnAdd(4, 44, 1));
        Assert.That(ex!.ParamName, Is.EqualTo("handle"));
        Assert.That(ex.Message, Does.Contain("[0, 4)"));
        Assert.Throws<ArgumentOutOfRangeException>(() => p.OnAdd(-1, 44, 1));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => p.OnAdd(2, 22, 0))!.ParamName, Is.EqualTo("weight"));
        Assert.That(Assert.Throws<ArgumentException>(() => p.OnAdd(1, 11, 1))!.ParamName, Is.EqualTo("handle"));
        Assert.Throws<ArgumentException>(() => p.OnRemove(2));
        Assert.Throws<ArgumentException>(() => p.OnUpdate(2, 22, 1));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => p.OnUpdate(1, 11, -3))!.ParamName, Is.EqualTo("newWeight"));
        Assert.Throws<ArgumentOutOfRangeException>(() => p.OnHit(9, 0));
        Assert.DoesNotThrow(() => p.OnHit(3, 33));   // untracked: a lock-free hit may race a removal
        Assert.Multiple(() =>
        {
            Assert.That(p.Count, Is.EqualTo(1));
            Assert.That(p.Weight, Is.EqualTo(1));
            Assert.That(p.SelectVictim(), Is.EqualTo(1));
        });
        ExtendedPolicies.ValidateInvariants(p);
        p.OnRemove(1);
        Assert.That(p.Count, Is.Zero);
        ExtendedPolicies.ValidateInvariants(p);
    }

    [Test]
    public void Single_entry_is_its_own_victim_and_the_newcomer_is_spared_otherwise()
    {
        var p = Create(8, 100);
        p.OnAdd(5, 55, 1);
        Assert.That(p.SelectVictim(), Is.EqualTo(5));
        for (int h = 0; h < 5; h++)
        {
            p.OnAdd(h, (ulong)h * 7 + 1, 1);
            Assert.That(p.SelectVictim(), Is.Not.EqualTo(h), "the newcomer was chosen while others are tracked");
            ExtendedPolicies.ValidateInvariants(p);
        }
    }

    [TestCase(16, 12, 1, 0)]
    [TestCase(64, 48, 1, 1)]
    [TestCase(64, 700, 40, 2)]   // weighted: byte sizes up to 40 against a 700-byte budget
    [TestCase(8, 1, 1, 3)]       // capacity of one entry
    public void Random_operations_keep_the_contract(int maxHandles, long capacity, int maxWeight, int seed)
    {
        var rng = new System.Random(seed);
        var owner = new PolicyOwner(Create(maxHandles, capacity, seed));
        for (int step = 0; step < 3000; step++)
        {
            long key = rng.Next(maxHandles * 2);
            int op = rng.Next(100);
            long weight = maxWeight == 1 ? 1 : 1 + rng.Next(maxWeight);
            if (op < 70) owner.Access(key, weight);
            else if (op < 80 && owner.Contains(key)) owner.Update(key, weight);
            else if (op < 88 && owner.Contains(key)) owner.Remove(key);
            else if (op < 92) owner.Policy.OnMiss(PolicyOwner.HashOf(key));
            else if (op < 93) owner.Clear();
            else owner.Access(rng.Next(4), weight);   // a hot set
            Assert.That(owner.Policy.Weight, Is.LessThanOrEqualTo(capacity));
        }
        Assert.That(owner.Evicted, Is.Not.Empty);
        Assert.That(owner.Hits, Is.GreaterThan(0));
    }

    [Test]
    public void Weight_tracks_adds_updates_and_removes()
    {
        var owner = new PolicyOwner(Create(8, 1000));
        owner.Access(1, 100);
        owner.Access(2, 250);
        Assert.That(owner.Policy.Weight, Is.EqualTo(350));
        owner.Update(1, 40);
        Assert.That(owner.Policy.Weight, Is.EqualTo(290));
        owner.Remove(2);
        Assert.That(owner.Policy.Weight, Is.EqualTo(40));
        owner.Access(3, 990);   // one entry alone over the rest of the budget
        Assert.That(owner.Policy.Weight, Is.LessThanOrEqualTo(1000));
        Assert.That(owner.Policy.Count, Is.GreaterThanOrEqualTo(1));
    }

    [Test]
    public void Same_inputs_give_the_same_victims()
    {
        List<long> Run()
        {
            var rng = new System.Random(42);
            var owner = new PolicyOwner(Create(40, 30), validate: false);
            for (int i = 0; i < 4000; i++)
            {
                long key = rng.Next(100) < 60 ? rng.Next(20) : rng.Next(200);
                owner.Access(key);
                if (i % 97 == 0 && owner.Contains(key)) owner.Remove(key);
            }
            return owner.Evicted;
        }
        Assert.That(Run(), Is.EqualTo(Run()));
    }

    [Test]
    public void Clear_forgets_every_entry_and_the_policy_keeps_working()
    {
        var owner = new PolicyOwner(Create(20, 10));
        for (int i = 0; i < 50; i++) owner.Access(i % 17);
        owner.Clear();
        Assert.Multiple(() =>
        {
            Assert.That(owner.Policy.Count, Is.Zero);
            Assert.That(owner.Policy.Weight, Is.Zero);
            Assert.That(owner.Policy.SelectVictim(), Is.EqualTo(-1));
        });
        for (int i = 0; i < 50; i++) owner.Access(i % 13);
        Assert.That(owner.Policy.Count, Is.EqualTo(10));
    }

    [Test]
    public void Hot_path_calls_allocate_nothing()
    {
        var owner = new PolicyOwner(Create(300, 256), validate: false);
        var p = owner.Policy;
        var rng = new System.Random(7);
        for (int i = 0; i < 5000; i++) owner.Access(rng.Next(600));
        // Replay the protocol by hand (the owner's dictionary would allocate) on tracked handles.
        int[] handles = owner.Residents.Select(owner.HandleOf).ToArray();
        long before = GC.GetAllocatedBytesForCurrentThread();
        ulong nextHash = 1_000_000;
        for (int i = 0; i < 20_000; i++)
        {
            int h = handles[i % handles.Length];
            p.OnHit(h, 0);
            p.OnMiss(nextHash);
            if (i % 4 == 0)
            {
                int v = p.SelectVictim();
                p.OnRemove(v);
                p.OnAdd(v, nextHash++, 1);
            }
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(allocated, Is.Zero);
        ExtendedPolicies.ValidateInvariants(p);
    }
}

/// <summary>What the factory hook builds and refuses.</summary>
public sealed class ExtendedPoliciesTests
{
    [Test]
    public void Builds_exactly_the_extended_kinds()
    {
        var options = new PolicyOptions { MaxHandles = 4, Capacity = 4 };
        var built = Enum.GetValues<PolicyKind>().Where(k => ExtendedPolicies.TryCreate(k, options, out _)).ToArray();
        Assert.That(built, Is.EquivalentTo(ExtendedPolicies.Kinds.ToArray()));
        foreach (var core in new[] { PolicyKind.WTinyLfu, PolicyKind.Fifo, PolicyKind.Lru, PolicyKind.Slru, PolicyKind.Clock, PolicyKind.S3Fifo, PolicyKind.Sieve })
        {
            Assert.That(ExtendedPolicies.TryCreate(core, options, out var p), Is.False);
            Assert.That(p, Is.Null);
        }
    }

    [Test]
    public void LruK_rejects_K_out_of_range()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ExtendedPolicies.TryCreate(PolicyKind.LruK, new PolicyOptions { MaxHandles = 4, Capacity = 4, K = 0 }, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => ExtendedPolicies.TryCreate(PolicyKind.LruK, new PolicyOptions { MaxHandles = 4, Capacity = 4, K = 17 }, out _));
        Assert.That(ExtendedPolicies.TryCreate(PolicyKind.LruK, new PolicyOptions { MaxHandles = 4, Capacity = 4, K = 3 }, out var p), Is.True);
        Assert.That(p!.Name, Is.EqualTo("LRU-3"));
    }
}

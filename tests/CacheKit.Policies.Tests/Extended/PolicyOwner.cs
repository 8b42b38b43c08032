using CacheKit.Policies;

namespace CacheKit.Policies.Tests.Extended;

/// <summary>
/// A minimal owner for tests: maps keys to handles, follows the eviction protocol (add, then
/// evict while over capacity), checks every victim is tracked and records what it evicted.
/// </summary>
internal sealed class PolicyOwner
{
    private readonly Dictionary<long, int> _handleOf = [];
    private readonly long[] _keyOf;
    private readonly Stack<int> _free;

    public PolicyOwner(IEvictionPolicy policy, bool validate = true)
    {
        Policy = policy;
        Validate = validate;
        _keyOf = new long[policy.MaxHandles];
        _free = new Stack<int>(Enumerable.Range(0, policy.MaxHandles).Reverse());
    }

    public IEvictionPolicy Policy { get; }

    public bool Validate { get; }

    public List<long> Evicted { get; } = [];

    public int Hits { get; private set; }

    public IEnumerable<long> Residents => _handleOf.Keys;

    public bool Contains(long key) => _handleOf.ContainsKey(key);

    public int HandleOf(long key) => _handleOf[key];

    public static ulong HashOf(long key) => (ulong)key * 0x9E3779B97F4A7C15UL + 1;

    /// <summary>A read of <paramref name="key"/>, stored on a miss with <paramref name="weight"/>.</summary>
    public bool Access(long key, long weight = 1)
    {
        ulong hash = HashOf(key);
        if (_handleOf.TryGetValue(key, out int h))
        {
            Policy.OnHit(h, hash);
            Hits++;
            Check();
            return true;
        }
        Policy.OnMiss(hash);
        if (_free.Count == 0) EvictOne();
        h = _free.Pop();
        _handleOf[key] = h;
        _keyOf[h] = key;
        Policy.OnAdd(h, hash, weight);
        Check();
        while (Policy.Weight > Policy.Capacity) EvictOne();
        Assert.That(Policy.Weight, Is.LessThanOrEqualTo(Policy.Capacity), "capacity exceeded after the eviction loop");
        return false;
    }

    public void Update(long key, long weight)
    {
        Policy.OnUpdate(_handleOf[key], HashOf(key), weight);
        Check();
        while (Policy.Weight > Policy.Capacity) EvictOne();
    }

    public void Remove(long key)
    {
        int h = _handleOf[key];
        _handleOf.Remove(key);
        Policy.OnRemove(h);
        _free.Push(h);
        Check();
    }

    public void Clear()
    {
        Policy.Clear();
        foreach (int h in _handleOf.Values) _free.Push(h);
        _handleOf.Clear();
        Check();
    }

    public long EvictOne()
    {
        int victim = Policy.SelectVictim();
        Assert.That(victim, Is.GreaterThanOrEqualTo(0), "SelectVictim returned -1 while entries are tracked");
        long key = _keyOf[victim];
        Assert.That(_handleOf.TryGetValue(key, out int h) && h == victim, Is.True, $"victim {victim} is not a tracked handle");
        _handleOf.Remove(key);
        Policy.OnRemove(victim);
        _free.Push(victim);
        Evicted.Add(key);
        Check();
        return key;
    }

    private void Check()
    {
        if (Validate) ExtendedPolicies.ValidateInvariants(Policy);
        Assert.That(Policy.Count, Is.EqualTo(_handleOf.Count), "Count disagrees with the owner");
    }
}

using CacheKit.Policies;

namespace CacheKit.Policies.Tests.Extended;

/// <summary>
/// Differential tests: ARC, CAR and 2Q against direct transcriptions of the papers' pseudocode
/// over ordinary collections (slow, allocating, obviously faithful), on random key sequences with
/// unit weights. The eviction sequences must be identical.
/// </summary>
public sealed class ReferenceModelTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (int capacity in new[] { 1, 2, 3, 5, 8, 20 })
        {
            foreach (int seed in new[] { 1, 2, 3 })
            {
                yield return new TestCaseData(capacity, seed);
            }
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void Arc_matches_the_paper(int capacity, int seed) => Compare(PolicyKind.Arc, capacity, seed, ArcReference);

    [TestCaseSource(nameof(Cases))]
    public void Car_matches_the_paper(int capacity, int seed) => Compare(PolicyKind.Car, capacity, seed, CarReference);

    [TestCaseSource(nameof(Cases))]
    public void TwoQ_matches_the_paper(int capacity, int seed) => Compare(PolicyKind.TwoQ, capacity, seed, TwoQReference);

    private static void Compare(PolicyKind kind, int capacity, int seed, Func<IReadOnlyList<long>, int, List<long>> reference)
    {
        var rng = new Random(seed * 1000 + capacity);
        var keys = new List<long>();
        for (int i = 0; i < 3000; i++)
        {
            keys.Add(rng.NextDouble() < 0.3 ? rng.Next(Math.Max(1, capacity / 2 + 1)) : rng.Next(capacity * 3));
        }
        Assert.That(ExtendedPolicies.TryCreate(kind, new PolicyOptions { MaxHandles = capacity + 1, Capacity = capacity }, out var policy), Is.True);
        var owner = new PolicyOwner(policy!, validate: false);
        for (int i = 0; i < keys.Count; i++)
        {
            owner.Access(keys[i]);
            if (i % 50 == 0) ExtendedPolicies.ValidateInvariants(policy!);
        }
        var expected = reference(keys, capacity);
        Assert.That(expected, Has.Count.GreaterThan(100));
        Assert.That(owner.Evicted, Is.EqualTo(expected));
    }

    /// <summary>An insertion-ordered set: First is the oldest (LRU), Last the newest (MRU).</summary>
    private sealed class Ordered
    {
        private readonly LinkedList<long> _list = new();
        private readonly Dictionary<long, LinkedListNode<long>> _nodes = [];
        public int Count => _list.Count;
        public bool Contains(long k) => _nodes.ContainsKey(k);
        public long First => _list.First!.Value;
        public void AddLast(long k) => _nodes[k] = _list.AddLast(k);
        public void Remove(long k) { _list.Remove(_nodes[k]); _nodes.Remove(k); }
        public long RemoveFirst() { long k = First; Remove(k); return k; }
    }

    // Megiddo and Modha, "ARC: A Self-Tuning, Low Overhead Replacement Cache", FAST 2003, Fig. 4.
    private static List<long> ArcReference(IReadOnlyList<long> keys, int c)
    {
        Ordered t1 = new(), t2 = new(), b1 = new(), b2 = new();
        int p = 0;
        var evicted = new List<long>();
        void Replace(long x)
        {
            if (t1.Count >= 1 && ((b2.Contains(x) && t1.Count == p) || t1.Count > p))
            {
                long y = t1.RemoveFirst(); b1.AddLast(y); evicted.Add(y);
            }
            else
            {
                long y = t2.RemoveFirst(); b2.AddLast(y); evicted.Add(y);
            }
        }
        foreach (long x in keys)
        {
            if (t1.Contains(x)) { t1.Remove(x); t2.AddLast(x); continue; }
            if (t2.Contains(x)) { t2.Remove(x); t2.AddLast(x); continue; }
            if (b1.Contains(x))
            {
                p = Math.Min(c, p + (b1.Count >= b2.Count ? 1 : b2.Count / b1.Count));
                Replace(x); b1.Remove(x); t2.AddLast(x);
                continue;
            }
            if (b2.Contains(x))
            {
                p = Math.Max(0, p - (b2.Count >= b1.Count ? 1 : b1.Count / b2.Count));
                Replace(x); b2.Remove(x); t2.AddLast(x);
                continue;
            }
            int l1 = t1.Count + b1.Count, total = l1 + t2.Count + b2.Count;
            if (l1 == c)
            {
                if (t1.Count < c) { b1.RemoveFirst(); Replace(x); }
                else evicted.Add(t1.RemoveFirst());
            }
            else if (total >= c)
            {
                if (total == 2 * c) b2.RemoveFirst();
                Replace(x);
            }
            t1.AddLast(x);
        }
        return evicted;
    }

    // Bansal and Modha, "CAR: Clock with Adaptive Replacement", FAST 2004, Fig. 2.
    private static List<long> CarReference(IReadOnlyList<long> keys, int c)
    {
        Ordered t1 = new(), t2 = new(), b1 = new(), b2 = new();   // clocks: First is the hand
        var referenced = new Dictionary<long, bool>();
        int p = 0;
        var evicted = new List<long>();
        void Replace()
        {
            while (true)
            {
                if (t1.Count >= Math.Max(1, p))
                {
                    long y = t1.RemoveFirst();
                    if (!referenced[y]) { b1.AddLast(y); evicted.Add(y); return; }
                    referenced[y] = false; t2.AddLast(y);
                }
                else
                {
                    long y = t2.RemoveFirst();
                    if (!referenced[y]) { b2.AddLast(y); evicted.Add(y); return; }
                    referenced[y] = false; t2.AddLast(y);
                }
            }
        }
        foreach (long x in keys)
        {
            if (t1.Contains(x) || t2.Contains(x)) { referenced[x] = true; continue; }
            bool ghost = b1.Contains(x) || b2.Contains(x);
            if (t1.Count + t2.Count == c)
            {
                Replace();
                if (!ghost && t1.Count + b1.Count == c) b1.RemoveFirst();
                else if (!ghost && t1.Count + t2.Count + b1.Count + b2.Count == 2 * c) b2.RemoveFirst();
            }
            referenced[x] = false;
            if (!ghost) t1.AddLast(x);
            else if (b1.Contains(x)) { p = Math.Min(c, p + Math.Max(1, b2.Count / b1.Count)); b1.Remove(x); t2.AddLast(x); }
            else { p = Math.Max(0, p - Math.Max(1, b1.Count / b2.Count)); b2.Remove(x); t2.AddLast(x); }
        }
        return evicted;
    }

    // Johnson and Shasha, "2Q: A Low Overhead High Performance Buffer Management Replacement
    // Algorithm", VLDB 1994, full version with Kin = 25 % and Kout = 50 %.
    private static List<long> TwoQReference(IReadOnlyList<long> keys, int c)
    {
        int kin = Math.Max(1, c / 4), kout = Math.Max(1, c / 2);
        Ordered a1In = new(), am = new(), a1Out = new();
        var evicted = new List<long>();
        void ReclaimFor()
        {
            if (a1In.Count + am.Count < c) return;
            // Am empty only when c is so small that Kin = c (c = 1): A1in must give way then.
            if (a1In.Count > kin || am.Count == 0)
            {
                long y = a1In.RemoveFirst(); evicted.Add(y); a1Out.AddLast(y);
                if (a1Out.Count > kout) a1Out.RemoveFirst();
            }
            else
            {
                evicted.Add(am.RemoveFirst());
            }
        }
        foreach (long x in keys)
        {
            if (am.Contains(x)) { am.Remove(x); am.AddLast(x); continue; }
            if (a1In.Contains(x)) continue;
            if (a1Out.Contains(x)) { a1Out.Remove(x); ReclaimFor(); am.AddLast(x); }
            else { ReclaimFor(); a1In.AddLast(x); }
        }
        return evicted;
    }
}

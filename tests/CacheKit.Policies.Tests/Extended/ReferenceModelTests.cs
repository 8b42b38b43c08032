using CacheKit.Policies;

namespace CacheKit.Policies.Tests.Extended;

/// <summary>
/// Differential tests: ARC, CAR, 2Q and LIRS against direct transcriptions of the papers' pseudocode
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

    [TestCaseSource(nameof(Cases))]
    public void Lirs_matches_the_paper_with_bounded_history(int capacity, int seed) => Compare(PolicyKind.Lirs, capacity, seed, LirsReference);

    [TestCaseSource(nameof(Cases))]
    public void LruK_matches_a_scan_model(int capacity, int seed) => Compare(PolicyKind.LruK, capacity, seed, (keys, c) => ScanModel(keys, c, ScanKind.LruK));

    [TestCaseSource(nameof(Cases))]
    public void Lfu_matches_a_scan_model(int capacity, int seed) => Compare(PolicyKind.Lfu, capacity, seed, (keys, c) => ScanModel(keys, c, ScanKind.Lfu));

    [TestCaseSource(nameof(Cases))]
    public void HeapLfu_matches_a_scan_model(int capacity, int seed) => Compare(PolicyKind.HeapLfu, capacity, seed, (keys, c) => ScanModel(keys, c, ScanKind.Lfu));

    [TestCaseSource(nameof(Cases))]
    public void Mfu_matches_a_scan_model(int capacity, int seed) => Compare(PolicyKind.Mfu, capacity, seed, (keys, c) => ScanModel(keys, c, ScanKind.Mfu));

    private enum ScanKind { LruK, Lfu, Mfu }

    /// <summary>
    /// Evict-then-insert by a full scan of the residents: LRU-2 (fewer than two accesses first, by
    /// last access; else the oldest second-to-last access; access times of evicted keys retained,
    /// the c + 1 most recently evicted, a newcomer's own taken before its eviction), LFU (fewest accesses, then least recently touched) and MFU
    /// (most accesses, then least recently touched). Frequencies count in-cache accesses only.
    /// </summary>
    private static List<long> ScanModel(IReadOnlyList<long> keys, int c, ScanKind kind)
    {
        var last = new Dictionary<long, long>();        // resident -> last access time
        var previous = new Dictionary<long, long>();    // resident -> access before that, 0 if none
        var frequency = new Dictionary<long, long>();
        var history = new Ordered();                    // evicted keys, oldest first (LRU-2)
        var historyTimes = new Dictionary<long, (long Last, long Previous)>();
        var evicted = new List<long>();
        long clock = 0;
        foreach (long x in keys)
        {
            clock++;
            if (last.TryGetValue(x, out long t))
            {
                previous[x] = t;
                last[x] = clock;
                frequency[x]++;
                continue;
            }
            // The newcomer's own history is consumed before the eviction it causes.
            long before = 0;
            if (kind == ScanKind.LruK && historyTimes.Remove(x, out var kept))
            {
                history.Remove(x);
                before = kept.Last;
            }
            if (last.Count == c)
            {
                long victim = kind switch
                {
                    ScanKind.LruK => last.Keys.OrderBy(k => previous[k] == 0 ? 0 : 1).ThenBy(k => previous[k] == 0 ? last[k] : previous[k]).First(),
                    ScanKind.Lfu => last.Keys.OrderBy(k => frequency[k]).ThenBy(k => last[k]).First(),
                    _ => last.Keys.OrderByDescending(k => frequency[k]).ThenBy(k => last[k]).First(),
                };
                if (kind == ScanKind.LruK)
                {
                    if (history.Count == c + 1) historyTimes.Remove(history.RemoveFirst());
                    history.AddLast(victim);
                    historyTimes[victim] = (last[victim], previous[victim]);
                }
                last.Remove(victim);
                previous.Remove(victim);
                frequency.Remove(victim);
                evicted.Add(victim);
            }
            last[x] = clock;
            previous[x] = before;
            frequency[x] = 1;
        }
        return evicted;
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

    // Jiang and Zhang, "LIRS: An Efficient Low Inter-reference Recency Set Replacement Policy",
    // SIGMETRICS 2002, section 3.3, with the non-resident HIR entries in S bounded to c + 1 (the
    // oldest-evicted leaves S first), which is this library's bound.
    private static List<long> LirsReference(IReadOnlyList<long> keys, int c)
    {
        int lirTarget = Math.Max(1, c - Math.Max(1, c / 100));
        int ghostLimit = c + 1;
        Ordered s = new(), q = new(), ghosts = new();   // s: First = bottom; q: First = front
        var lir = new HashSet<long>();
        var resident = new HashSet<long>();
        var evicted = new List<long>();
        void Prune()
        {
            while (s.Count > 0 && !lir.Contains(s.First))
            {
                long y = s.RemoveFirst();
                if (!resident.Contains(y) && ghosts.Contains(y)) ghosts.Remove(y);
            }
        }
        void DemoteBottom()
        {
            long z = s.RemoveFirst();
            lir.Remove(z);
            q.AddLast(z);
            Prune();
        }
        void ToTop(long x)
        {
            if (s.Contains(x)) s.Remove(x);
            s.AddLast(x);
        }
        foreach (long x in keys)
        {
            if (lir.Contains(x))
            {
                bool bottom = s.First == x;
                ToTop(x);
                if (bottom) Prune();
                continue;
            }
            if (resident.Contains(x))
            {
                if (s.Contains(x)) { ToTop(x); q.Remove(x); lir.Add(x); DemoteBottom(); }
                else { ToTop(x); q.Remove(x); q.AddLast(x); }
                continue;
            }
            // A miss. The newcomer's own history is consumed before the eviction it causes, so the
            // history bound never drops it (the unbounded paper has no such case).
            bool wasInS = s.Contains(x);
            if (wasInS) ghosts.Remove(x);
            // Make room (the front of Q, which stays in S as non-resident), then load X.
            if (resident.Count == c)
            {
                long y;
                if (q.Count > 0)
                {
                    y = q.RemoveFirst();
                    if (s.Contains(y))
                    {
                        if (ghosts.Count == ghostLimit) s.Remove(ghosts.RemoveFirst());
                        ghosts.AddLast(y);
                    }
                }
                else
                {
                    y = s.First;   // no resident HIR entry (tiny caches): the bottom LIR entry
                    s.RemoveFirst(); lir.Remove(y); Prune();
                }
                resident.Remove(y);
                evicted.Add(y);
            }
            resident.Add(x);
            if (wasInS)
            {
                ToTop(x);
                lir.Add(x);
                if (lir.Count > lirTarget) DemoteBottom();
            }
            else if (lir.Count < lirTarget)
            {
                ToTop(x);
                lir.Add(x);
            }
            else
            {
                ToTop(x);
                q.AddLast(x);
            }
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

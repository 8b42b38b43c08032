using CacheKit.Policies;

namespace CacheKit.Policies.Tests.Extended;

/// <summary>The building blocks of the extended policies against plain collections.</summary>
public sealed class StructureTests
{
    [TestCase(1, 1)]
    [TestCase(7, 2)]
    [TestCase(100, 3)]
    public void HashIndex_agrees_with_a_dictionary(int capacity, int seed)
    {
        var index = new HashIndex(capacity);
        var model = new Dictionary<ulong, int>();
        var rng = new Random(seed);
        for (int step = 0; step < 20_000; step++)
        {
            // Few distinct keys, many of them colliding in the low bits, so probe runs form and break.
            ulong key = (ulong)rng.Next(capacity * 3) << (rng.Next(2) * 40);
            if (rng.Next(2) == 0 && model.Count < capacity && !model.ContainsKey(key))
            {
                int value = rng.Next(1000);
                index.Add(key, value);
                model[key] = value;
            }
            else
            {
                Assert.That(index.Remove(key), Is.EqualTo(model.Remove(key)));
            }
            Assert.That(index.Count, Is.EqualTo(model.Count));
            ulong probe = (ulong)rng.Next(capacity * 3);
            Assert.That(index.Find(probe), Is.EqualTo(model.TryGetValue(probe, out int v) ? v : -1));
            if (step % 64 == 0) index.ValidateInvariants();
        }
        foreach (var (key, value) in model) Assert.That(index.Find(key), Is.EqualTo(value));
        index.Clear();
        Assert.That(index.Count, Is.Zero);
        index.ValidateInvariants();
    }

    [Test]
    public void IndexedHeap_orders_by_key_then_tie_and_supports_rekeying()
    {
        const int n = 200;
        var heap = new IndexedHeap(n);
        var model = new Dictionary<int, (long Key, long Tie)>();
        var rng = new Random(5);
        for (int step = 0; step < 20_000; step++)
        {
            int h = rng.Next(n);
            long key = rng.Next(50), tie = step;
            if (!heap.Contains(h))
            {
                heap.Insert(h, key, tie);
                model[h] = (key, tie);
            }
            else if (rng.Next(3) == 0)
            {
                heap.Remove(h);
                model.Remove(h);
            }
            else
            {
                heap.Update(h, key, tie);
                model[h] = (key, tie);
            }
            Assert.That(heap.Count, Is.EqualTo(model.Count));
            var ordered = model.OrderBy(kv => kv.Value.Key).ThenBy(kv => kv.Value.Tie).Select(kv => kv.Key).ToArray();
            Assert.That(heap.Min, Is.EqualTo(ordered.Length > 0 ? ordered[0] : -1));
            Assert.That(heap.SecondMin, Is.EqualTo(ordered.Length > 1 ? ordered[1] : -1));
            if (step % 64 == 0) heap.ValidateInvariants();
        }
    }

    [Test]
    public void FrequencyBuckets_track_frequency_and_recency_order()
    {
        const int n = 64;
        var buckets = new FrequencyBuckets(n);
        var freq = new Dictionary<int, long>();
        var touched = new Dictionary<int, long>();
        var rng = new Random(11);
        long clock = 0;
        for (int step = 0; step < 20_000; step++)
        {
            int h = rng.Next(n);
            if (!freq.ContainsKey(h))
            {
                buckets.Add(h, 1);
                freq[h] = 1;
            }
            else if (rng.Next(4) == 0)
            {
                buckets.Remove(h);
                freq.Remove(h);
                touched.Remove(h);
                continue;
            }
            else if (rng.Next(5) == 0)
            {
                buckets.Touch(h);
            }
            else
            {
                buckets.Increment(h);
                freq[h]++;
            }
            touched[h] = ++clock;
            Assert.That(buckets.FrequencyOf(h), Is.EqualTo(freq[h]));
            var lfu = freq.OrderBy(kv => kv.Value).ThenBy(kv => touched[kv.Key]).First().Key;
            var mfu = freq.OrderByDescending(kv => kv.Value).ThenBy(kv => touched[kv.Key]).First().Key;
            Assert.That(buckets.LeastFrequent, Is.EqualTo(lfu));
            Assert.That(buckets.MostFrequent, Is.EqualTo(mfu));
            if (step % 64 == 0) buckets.ValidateInvariants(freq.Count);
        }
    }

    [Test]
    public void GhostHistory_keeps_lists_weights_and_drops_the_oldest_when_full()
    {
        var ghosts = new GhostHistory(slots: 3, listCount: 2);
        ghosts.Add(0, 10, 5, overflowList: 0);
        ghosts.Add(1, 20, 7, overflowList: 0);
        ghosts.Add(0, 30, 1, overflowList: 0);
        Assert.That(ghosts.IsFull, Is.True);
        Assert.That(ghosts.Weight(0), Is.EqualTo(6));
        // Full: the oldest of list 0 (hash 10) makes room.
        ghosts.Add(1, 40, 2, overflowList: 0);
        Assert.That(ghosts.Find(10), Is.EqualTo(-1));
        Assert.That(ghosts.Weight(0), Is.EqualTo(1));
        Assert.That(ghosts.Weight(1), Is.EqualTo(9));
        Assert.That(ghosts.HashOf(ghosts.Oldest(1)), Is.EqualTo(20UL));
        // Re-adding a remembered hash moves it.
        ghosts.Add(0, 20, 3, overflowList: 0);
        Assert.That(ghosts.ListOf(ghosts.Find(20)), Is.EqualTo(0));
        Assert.That(ghosts.Weight(1), Is.EqualTo(2));
        ghosts.ValidateInvariants();
        Assert.That(ghosts.RemoveOldest(0), Is.True);
        Assert.That(ghosts.Find(30), Is.EqualTo(-1));
        ghosts.Clear();
        Assert.That(ghosts.Used, Is.Zero);
        Assert.That(ghosts.RemoveOldest(1), Is.False);
        ghosts.ValidateInvariants();
    }
}

using CacheKit.Policies;

namespace CacheKit.Policies.Tests;

/// <summary>From a review of the read path: random public operations keep every W-TinyLFU invariant.</summary>
[TestFixture]
public sealed class WTinyLfuRandomOpsTests
{
    [Test]
    public void RandomOperationsKeepTheInvariants(
        [Values(1, 2, 3, 10, 64, 300, 5000)] long capacity,
        [Values(null, 0.01, 0.5)] double? window,
        [Values(0, 1, 2)] int weights,
        [Values(1, 2)] int seed)
    {
        const int maxHandles = 128;
        var policy = (WTinyLfuPolicy)PolicyFactory.Create(PolicyKind.WTinyLfu,
            new PolicyOptions { MaxHandles = maxHandles, Capacity = capacity, WindowFraction = window, Seed = seed });
        var random = new Random(seed * 7919 + (int)capacity);
        var tracked = new List<int>();
        var free = new Stack<int>(Enumerable.Range(0, maxHandles).Reverse());
        var buffer = new ReadBuffer(stripes: 1);
        long Weight() => weights switch { 0 => 1, 1 => random.Next(0, 3), _ => random.Next(1, (int)Math.Min(capacity * 2, 1000) + 1) };
        ulong HashOfKey(int key) => (ulong)key * 0x9E3779B97F4A7C15UL + 12345;
        var keyOf = new int[maxHandles];
        for (int step = 0; step < 20_000; step++)
        {
            int op = random.Next(100);
            int key = random.Next(400);
            if (op < 40 && tracked.Count > 0)
            {
                int h = tracked[random.Next(tracked.Count)];
                if (random.Next(2) == 0)
                {
                    policy.OnHit(h, HashOfKey(keyOf[h]));
                }
                else
                {
                    buffer.TryRecordHit(h, HashOfKey(keyOf[h]));
                }
            }
            else if (op < 50)
            {
                if (random.Next(2) == 0) policy.OnMiss(HashOfKey(key)); else buffer.TryRecordMiss(HashOfKey(key));
            }
            else if (op < 80 && free.Count > 0)
            {
                buffer.DrainUnsynchronized(policy);
                int h = free.Pop();
                keyOf[h] = key;
                long w = Weight();
                policy.OnMiss(HashOfKey(key));
                policy.OnAdd(h, HashOfKey(key), w);
                tracked.Add(h);
                int guard = 0;
                while (policy.Weight > policy.Capacity && guard++ < 1000)
                {
                    int v = policy.SelectVictim();
                    Assert.That(v, Is.GreaterThanOrEqualTo(0));
                    Assert.That(tracked, Does.Contain(v));
                    policy.OnRemove(v);
                    tracked.Remove(v);
                    free.Push(v);
                }
            }
            else if (op < 88 && tracked.Count > 0)
            {
                buffer.DrainUnsynchronized(policy);
                int h = tracked[random.Next(tracked.Count)];
                policy.OnUpdate(h, HashOfKey(keyOf[h]), Weight());
                int guard = 0;
                while (policy.Weight > policy.Capacity && guard++ < 1000)
                {
                    int v = policy.SelectVictim();
                    Assert.That(tracked, Does.Contain(v));
                    policy.OnRemove(v);
                    tracked.Remove(v);
                    free.Push(v);
                }
            }
            else if (op < 97 && tracked.Count > 0)
            {
                buffer.DrainUnsynchronized(policy);
                int h = tracked[random.Next(tracked.Count)];
                policy.OnRemove(h);
                tracked.Remove(h);
                free.Push(h);
            }
            else if (op == 99 && random.Next(20) == 0)
            {
                buffer.ClearUnsynchronized();
                policy.Clear();
                foreach (int h in tracked) free.Push(h);
                tracked.Clear();
            }
            else if (tracked.Count > 0)
            {
                int v = policy.SelectVictim();
                Assert.That(tracked, Does.Contain(v), $"step {step}");
            }
            try
            {
                policy.ValidateInvariants();
            }
            catch (Exception e)
            {
                Assert.Fail($"step {step} op {op}: {e.Message}");
            }
            Assert.That(policy.Count, Is.EqualTo(tracked.Count));
        }
    }
}

using CacheKit.Policies;

namespace CacheKit.Policies.Tests;

/// <summary>
/// The hit path's shortcuts decide exactly what the plain code decides: the window shadows' shared sketch,
/// the one-pass list move, the unrolled sketch increment, and W-TinyLFU's batched replay of the read buffer.
/// Each test runs the shortcut and a reference side by side and compares them after every step.
/// </summary>
[TestFixture]
public sealed class FastPathEquivalenceTests
{
    private static ulong Hash(int key) => (ulong)key * 0x9E3779B97F4A7C15UL + 0x1234_5678UL;

    /// <summary>Hot keys, a warm set and one-off keys: hits, misses, evictions and duels in every shadow.</summary>
    private static int NextKey(Random random, int hot) => random.Next(4) switch
    {
        0 => random.Next(hot),
        1 => random.Next(hot * 4),
        2 => random.Next(hot * 30),
        _ => 1_000_000 + random.Next(1_000_000),
    };

    [TestCase(300, 301)]        // all requests sampled, long-memory shadows too
    [TestCase(2_048, 2_100)]    // the largest capacity with long memory
    [TestCase(20_000, 20_001)]  // sampled: one request in ~10
    public void Shared_shadow_sketch_decides_as_private_sketches(int capacity, int maxHandles)
    {
        var shared = new WindowShadows(capacity, maxHandles, seed: 11);
        var reference = new WindowShadows(capacity, maxHandles, seed: 11, shareSketch: false);
        Assert.That(shared.SharesSketch, Is.True);
        Assert.That(reference.SharesSketch, Is.False);
        var random = new Random(capacity);
        int decisions = 0;
        for (int step = 0; step < 60_000; step++)
        {
            ulong hash = Hash(NextKey(random, capacity / 4 + 1));
            bool decided = shared.Record(hash, 1);
            Assert.That(reference.Record(hash, 1), Is.EqualTo(decided), $"step {step}");
            Assert.That(shared.Best, Is.EqualTo(reference.Best), $"step {step}");
            decisions += decided ? 1 : 0;
            if (step % 10_000 == 0)
            {
                shared.ValidateInvariants();
                reference.ValidateInvariants();
            }
        }
        shared.ValidateInvariants();
        Assert.That(decisions, Is.GreaterThan(10), "the stream must end enough decision epochs to compare");
    }

    [Test]
    public void A_byte_budget_keeps_private_shadow_sketches()
    {
        var shadows = new WindowShadows(capacity: 1_000_000, maxHandles: 1_000, seed: 3);
        Assert.That(shadows.SharesSketch, Is.False, "under a byte budget each shadow's sketch grows with its own count");
    }

    [Test]
    public void One_pass_moves_leave_the_lists_as_remove_then_add()
    {
        const int handles = 64, lists = 3;
        var fast = new HandleLists(handles, lists);
        var plain = new HandleLists(handles, lists);
        var random = new Random(5);
        for (int step = 0; step < 20_000; step++)
        {
            int handle = random.Next(handles);
            int list = random.Next(lists);
            if (!plain.IsLinked(handle))
            {
                fast.AddFirst(list, handle);
                plain.AddFirst(list, handle);
            }
            else if (random.Next(8) == 0)
            {
                fast.Remove(handle);
                plain.Remove(handle);
            }
            else if (random.Next(2) == 0)
            {
                int own = plain.ListOf(handle);
                fast.MoveToFirstWithin(own, handle);
                plain.Remove(handle);
                plain.AddFirst(own, handle);
            }
            else
            {
                // Half of these target the handle's own list, often while it is already the head.
                fast.MoveToFirst(list, handle);
                plain.Remove(handle);
                plain.AddFirst(list, handle);
            }
            fast.ValidateInvariants();
            for (int l = 0; l < lists; l++)
            {
                Assert.That(Order(fast, l), Is.EqualTo(Order(plain, l)), $"list {l} at step {step}");
                Assert.That(fast.Count(l), Is.EqualTo(plain.Count(l)));
            }
        }
    }

    private static List<int> Order(HandleLists lists, int list)
    {
        var order = new List<int>();
        for (int h = lists.First(list); h >= 0; h = lists.Next(h))
        {
            order.Add(h);
        }
        return order;
    }

    [TestCase(true, 256)]
    [TestCase(false, 256)]
    [TestCase(true, 3)]       // one doorkeeper block (the smallest filter), a halving every 30 increments
    [TestCase(true, 5_000)]   // 1,024 blocks; 125,000 steps cross four halvings
    public void Sketch_counts_as_the_reference_count_min_sketch(bool doorkeeper, int entries)
    {
        // A halving every 10 x entries increments: at 256 entries the 30,000 steps cross ten of them.
        var sketch = new FrequencySketch(entries, seed: 9, doorkeeper);
        var reference = new ReferenceSketch(entries, seed: 9, doorkeeper);
        var random = new Random(17);
        int steps = Math.Max(30_000, 25 * entries);
        for (int step = 0; step < steps; step++)
        {
            int key = NextKey(random, 40);
            sketch.Increment(Hash(key));
            reference.Increment(Hash(key));
            if (step % 97 == 0)
            {
                for (int k = 0; k < 200; k++)
                {
                    Assert.That(sketch.Frequency(Hash(k)), Is.EqualTo(reference.Frequency(Hash(k))), $"key {k} at step {step}");
                }
                sketch.ValidateInvariants();
            }
        }
    }

    /// <summary>
    /// The sketch as first written (loops, per-row branches, the doorkeeper probed generation by generation),
    /// kept here as the reference: same layout (words in use from 0 rather than from a 64-byte boundary), same hashing.
    /// Its doorkeeper (since the blocked one, 2026-11-29) keeps each generation in an array of its own, swapped at a
    /// halving, where the sketch interleaves them by half block: 4 words per block and generation, one bit per word.
    /// </summary>
    private sealed class ReferenceSketch
    {
        private readonly ulong[] _table;
        private ulong[] _doorkeeper;
        private ulong[] _doorkeeperOld;
        private readonly int _blockMask;
        private readonly int _doorkeeperBlockMask;
        private readonly ulong _seed;
        private readonly int _sampleSize;
        private int _size;

        public ReferenceSketch(int entries, int seed, bool doorkeeper)
        {
            int words = Math.Max((int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)entries), 8);
            _table = new ulong[words];
            _blockMask = (words >> 3) - 1;
            int bits = doorkeeper ? Math.Max((int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)(10 * entries * 4)), 64) : 0;
            int blocks = doorkeeper ? Math.Max(bits >> 8, 1) : 0;   // 256 bits (4 words) per block and generation
            _doorkeeper = new ulong[blocks * 4];
            _doorkeeperOld = new ulong[blocks * 4];
            _doorkeeperBlockMask = Math.Max(blocks - 1, 0);
            _seed = HashMix.SeedOf(seed);
            _sampleSize = 10 * entries;
        }

        public int Frequency(ulong keyHash)
        {
            ulong h = HashMix.Mix(keyHash ^ _seed);
            int min = 15;
            for (int i = 0; i < 4; i++)
            {
                uint c = (uint)(h >> 32) >> (i << 3);
                int slot = ((int)((uint)h & (uint)_blockMask) << 3) + (int)(c & 1) + (i << 1);
                min = Math.Min(min, (int)(_table[slot] >> ((int)((c >> 1) & 15) << 2)) & 0xF);
            }
            if (_doorkeeper.Length > 0 && (Contains(_doorkeeper, h) || Contains(_doorkeeperOld, h)))
            {
                min++;
            }
            return min;
        }

        public void Increment(ulong keyHash)
        {
            ulong h = HashMix.Mix(keyHash ^ _seed);
            bool firstSighting = false;
            if (_doorkeeper.Length > 0 && !Contains(_doorkeeper, h))
            {
                ulong probe = Probe(h);
                int block = Block(probe);
                for (int w = 0; w < 4; w++)
                {
                    _doorkeeper[(block * 4) + w] |= 1UL << (int)((probe >> (6 * w)) & 63);
                }
                firstSighting = !Contains(_doorkeeperOld, h);
            }
            if (!firstSighting)
            {
                for (int i = 0; i < 4; i++)
                {
                    uint c = (uint)(h >> 32) >> (i << 3);
                    int slot = ((int)((uint)h & (uint)_blockMask) << 3) + (int)(c & 1) + (i << 1);
                    int shift = (int)((c >> 1) & 15) << 2;
                    if (((_table[slot] >> shift) & 0xF) != 0xF)
                    {
                        _table[slot] += 1UL << shift;
                    }
                }
            }
            if (++_size >= _sampleSize)
            {
                for (int i = 0; i < _table.Length; i++)
                {
                    _table[i] = (_table[i] >> 1) & 0x7777_7777_7777_7777UL;
                }
                (_doorkeeper, _doorkeeperOld) = (_doorkeeperOld, _doorkeeper);
                Array.Clear(_doorkeeper);
                _size >>= 1;
            }
        }

        private static ulong Probe(ulong h) => System.Numerics.BitOperations.RotateRight(h, 21) * 0x9E3779B97F4A7C15UL;

        private int Block(ulong probe) => (int)(probe >> 40) & _doorkeeperBlockMask;

        private bool Contains(ulong[] filter, ulong h)
        {
            ulong probe = Probe(h);
            int block = Block(probe);
            for (int w = 0; w < 4; w++)
            {
                if ((filter[(block * 4) + w] & (1UL << (int)((probe >> (6 * w)) & 63))) == 0)
                {
                    return false;
                }
            }
            return true;
        }
    }

    [TestCase(200, 256)]        // adaptive, long memory
    [TestCase(5_000, 5_001)]    // adaptive, sampled shadows
    public void Batched_replay_decides_as_calls_through_the_interface(int capacity, int maxHandles)
    {
        // Two W-TinyLFU policies; the buffered one takes its hits and misses from a read buffer (drained in
        // batches by WTinyLfuPolicy.ReplayBatch), the reference the same records through IEvictionPolicy's
        // OnHit/OnMiss at the same moments. The stream has records of entries removed before the drain and
        // of handles out of range, which both must ignore.
        var options = new PolicyOptions { MaxHandles = maxHandles, Capacity = capacity, Seed = 4 };
        var buffered = (WTinyLfuPolicy)PolicyFactory.Create(PolicyKind.WTinyLfu, options);
        IEvictionPolicy reference = PolicyFactory.Create(PolicyKind.WTinyLfu, options);
        var buffer = new ReadBuffer(stripes: 1);
        var pending = new List<(int Handle, ulong Hash)>();   // handle -1: a miss
        var handleOf = new Dictionary<int, int>();
        var keyOf = new Dictionary<int, int>();
        var free = new Stack<int>(Enumerable.Range(0, maxHandles).Reverse());
        var random = new Random(capacity);
        int replayed = 0;

        void Drain()
        {
            replayed += buffer.DrainUnsynchronized(buffered);
            foreach ((int handle, ulong hash) in pending)
            {
                if (handle < 0)
                {
                    reference.OnMiss(hash);
                }
                else if (handle < maxHandles)
                {
                    reference.OnHit(handle, hash);   // ignored when the entry left meanwhile
                }
            }
            pending.Clear();
        }

        void Remove(int victim)
        {
            buffered.OnRemove(victim);
            reference.OnRemove(victim);
            handleOf.Remove(keyOf[victim]);
            free.Push(victim);
        }

        for (int step = 0; step < 60_000; step++)
        {
            int key = NextKey(random, capacity / 3);
            ulong hash = Hash(key);
            if (handleOf.TryGetValue(key, out int handle))
            {
                Assert.That(buffer.TryRecordHit(handle, hash), Is.True);
                pending.Add((handle, hash));
                if (random.Next(50) == 0)
                {
                    int outOfRange = maxHandles + random.Next(3);
                    Assert.That(buffer.TryRecordHit(outOfRange, hash), Is.True);
                    pending.Add((outOfRange, hash));
                }
            }
            else
            {
                Assert.That(buffer.TryRecordMiss(hash), Is.True);
                pending.Add((-1, hash));
                if (random.Next(3) == 0)
                {
                    // The owner stores the key: it replays what it buffered first, then adds and evicts.
                    Drain();
                    handle = free.Pop();
                    handleOf[key] = handle;
                    keyOf[handle] = key;
                    buffered.OnAdd(handle, hash, 1);
                    reference.OnAdd(handle, hash, 1);
                    while (reference.Weight > reference.Capacity)
                    {
                        int victim = reference.SelectVictim();
                        Assert.That(buffered.SelectVictim(), Is.EqualTo(victim), $"step {step}");
                        Remove(victim);
                    }
                }
            }
            if (random.Next(60) == 0 && handleOf.Count > 0)
            {
                Remove(handleOf.ElementAt(random.Next(handleOf.Count)).Value);   // its pending records are now stale
            }
            if (pending.Count >= ReadBuffer.SlotsPerStripe - 4)
            {
                Drain();
            }
        }
        Drain();
        buffered.ValidateInvariants();
        Assert.That(replayed, Is.GreaterThan(60_000), "every record went through the buffer");
        Assert.That(buffered.Count, Is.EqualTo(reference.Count));
        Assert.That(buffered.WindowMaximum, Is.EqualTo(((WTinyLfuPolicy)reference).WindowMaximum));
        Assert.That(buffered.SelectVictim(), Is.EqualTo(reference.SelectVictim()));
    }
}

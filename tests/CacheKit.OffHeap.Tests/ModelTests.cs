using Microsoft.Extensions.Time.Testing;

namespace CacheKit.OffHeap.Tests;

/// <summary>
/// Seeded random operation sequences against a Dictionary model. The eviction listener tells the
/// model every entry the cache drops, so the model is exact: every live key in the model must hit
/// with exactly its last value, every other key must miss, and the counters must agree.
/// Length: CACHEKIT_MODEL_OPS operations per case (default 60 000; several cases run).
/// </summary>
public class ModelTests
{
    private static readonly int Ops = int.TryParse(Environment.GetEnvironmentVariable("CACHEKIT_MODEL_OPS"), out int n) ? n : 60_000;

    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (CachePolicy policy in Enum.GetValues<CachePolicy>())
        {
            yield return new TestCaseData(policy, null, 1, Ops, 500).SetName($"Model_{policy}_BytesOnly");
            yield return new TestCaseData(policy, 3000L, 2, Ops, 500).SetName($"Model_{policy}_MaxEntries");
            yield return new TestCaseData(policy, 400L, 3, 6_000, 1).SetName($"Model_{policy}_InvariantsEveryStep");
            if (policy != CachePolicy.WTinyLfu)
            {
                yield return new TestCaseData(policy, 2000L, 4, Ops / 2, 500).SetName($"Model_{policy}_TinyLfuAdmission");
            }
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void RandomOperationsMatchDictionaryModel(CachePolicy policy, long? maxEntries, int seed, int ops, int validateEvery)
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var model = new Dictionary<int, (byte[] Value, DateTimeOffset? Expires)>();
        long listenedEvictions = 0, listenedExpirations = 0, listenedReclaims = 0;
        var options = new OffHeapCacheOptions
        {
            CapacityBytes = 8 << 20,
            PageSize = 64 * 1024,
            ShardCount = 2,
            MaxKeyBytes = 64,
            MaxEntries = maxEntries,
            Policy = policy,
            TimeProvider = time,
            HashSeed = seed,
            TinyLfuAdmission = seed == 4,
            AverageEntrySizeHint = 128,
            EvictionListener = (key, reason) =>
            {
                int id = TestKeys.IdOf(key);
                Assert.That(model.ContainsKey(id), Is.True, $"listener reported key {id} that the model does not hold");
                if (reason == EvictionReason.Expired)
                {
                    Assert.That(time.GetUtcNow() >= model[id].Expires, Is.True, "an unexpired entry was reported expired");
                    listenedExpirations++;
                }
                else
                {
                    listenedEvictions++;
                    listenedReclaims += reason == EvictionReason.PageReclaimed ? 1 : 0;
                }
                model.Remove(id);
            },
        };
        var cache = new OffHeapCache(options);

        using (cache)
        {
            var rng = new Random(seed * 7919 + (int)policy);
            var buffer = new byte[8192];
            long hits = 0, misses = 0, sets = 0, stored = 0;
            const int KeySpace = 4_000;
            for (int step = 0; step < ops; step++)
            {
                int phase = (int)((long)step * 3 / ops);   // 0: small values, 1: large values, 2: mixed (the size mix shifts)
                int id = rng.Next(KeySpace);
                byte[] key = TestKeys.Key(id);
                int op = rng.Next(100);
                if (op < 40)
                {
                    bool tooSmall = rng.Next(20) == 0;
                    Span<byte> destination = tooSmall ? buffer.AsSpan(0, 3) : buffer;
                    bool hit = cache.TryGet(key, destination, out int written);
                    bool live = model.TryGetValue(id, out var entry) && !(time.GetUtcNow() >= entry.Expires);
                    if (live && entry.Value.Length > destination.Length)
                    {
                        Assert.That(hit, Is.False, "too small a destination must not report a hit");
                        Assert.That(written, Is.EqualTo(entry.Value.Length), "too small: bytesWritten is the needed length");
                        continue;   // not counted: the retry that fits would be the lookup
                    }
                    Assert.That(hit, Is.EqualTo(live), $"step {step}: key {id} hit={hit} but model live={live}");
                    if (hit)
                    {
                        hits++;
                        Assert.That(destination[..written].SequenceEqual(entry.Value), Is.True, $"step {step}: key {id} returned another value");
                    }
                    else
                    {
                        misses++;
                        Assert.That(written, Is.Zero);
                    }
                }
                else if (op < 75)
                {
                    int length = phase switch
                    {
                        0 => rng.Next(0, 120),
                        1 => rng.Next(400, 3000),
                        _ => rng.Next(3) == 0 ? rng.Next(1000, 6000) : rng.Next(0, 200),
                    };
                    byte[] value = TestKeys.Value(id, step, length);
                    bool withTtl = rng.Next(10) < 3;
                    TimeSpan ttl = TimeSpan.FromSeconds(rng.Next(1, 100));
                    bool ok = withTtl ? cache.Set(key, value, ttl) : cache.Set(key, value);
                    sets++;
                    if (ok)
                    {
                        stored++;
                        model[id] = (value, withTtl ? time.GetUtcNow() + ttl : null);
                    }
                    else
                    {
                        model.Remove(id);
                    }
                }
                else if (op < 85)
                {
                    // An expired entry counts as absent: the cache removes it as an expiration (the listener
                    // takes it out of the model) and says false.
                    bool live = model.TryGetValue(id, out var entry) && !(time.GetUtcNow() >= entry.Expires);
                    bool removed = cache.Remove(key);
                    Assert.That(removed, Is.EqualTo(live), $"step {step}: Remove({id})");
                    Assert.That(model.ContainsKey(id), Is.EqualTo(live), $"step {step}: an expired entry was left by Remove({id})");
                    model.Remove(id);
                }
                else if (op < 92)
                {
                    bool contains = cache.ContainsKey(key);
                    bool live = model.TryGetValue(id, out var entry) && !(time.GetUtcNow() >= entry.Expires);
                    Assert.That(contains, Is.EqualTo(live), $"step {step}: ContainsKey({id})");
                    if (contains)
                    {
                        hits++;
                    }
                    else
                    {
                        misses++;
                    }
                }
                else if (op < 99)
                {
                    time.Advance(TimeSpan.FromSeconds(rng.Next(0, 10)));
                }
                else if (rng.Next(200) == 0)
                {
                    cache.Clear();
                    model.Clear();
                }

                CacheStatistics stats = cache.GetStatistics();
                Assert.That(stats.NativeBytes, Is.LessThanOrEqualTo(options.CapacityBytes), "native bytes above the budget");
                Assert.That(stats.Count, Is.EqualTo(model.Count), $"step {step}: count differs from the model");
                if (maxEntries is not null)
                {
                    Assert.That(stats.Count, Is.LessThanOrEqualTo(options.MaxEntries!.Value));
                }
                if (step % validateEvery == 0)
                {
                    cache.ValidateInvariants();
                }
            }

            cache.ValidateInvariants();
            CacheStatistics final = cache.GetStatistics();
            Assert.That(final.Hits, Is.EqualTo(hits), "hits");
            Assert.That(final.Misses, Is.EqualTo(misses), "misses");
            Assert.That(final.Evictions, Is.EqualTo(listenedEvictions), "evictions");
            Assert.That(final.Expirations, Is.EqualTo(listenedExpirations), "expirations");
            Assert.That(final.Rejections, Is.EqualTo(sets - stored), "rejections");
            Assert.That(final.PayloadBytes, Is.EqualTo(model.Sum(kv => TestKeys.Key(kv.Key).Length + (long)kv.Value.Value.Length)), "payload bytes");
            TestContext.Out.WriteLine($"{policy}: {ops} ops, hits {hits}, misses {misses}, evictions {final.Evictions}, expirations {final.Expirations}, rejections {final.Rejections}, count {final.Count}, native {final.NativeBytes}, page-reclaim evictions {listenedReclaims}");
            Assert.That(final.Evictions + final.Expirations, Is.GreaterThan(0), "the sequence must exercise eviction");
        }
    }
}

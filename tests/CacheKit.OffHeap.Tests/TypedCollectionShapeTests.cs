namespace CacheKit.OffHeap.Tests;

/// <summary>The typed cache's dictionary-shaped members beyond the Try* methods: indexer, IsEmpty, Values, enumeration.</summary>
public class TypedCollectionShapeTests
{
    private static OffHeapCacheOptions Options() => new() { CapacityBytes = 4 << 20, PageSize = 64 * 1024 };

    [Test]
    public void TheIndexerGetsWhatWasStoredAndThrowsKeyNotFoundOnAMiss()
    {
        using var cache = new OffHeapCache<string, int>(Options());
        cache["a"] = 1;
        cache["a"] = 2;   // the setter overwrites, as Set does
        Assert.That(cache["a"], Is.EqualTo(2));
        Assert.That(cache.Count, Is.EqualTo(1));

        var missing = Assert.Throws<KeyNotFoundException>(() => _ = cache["b"]);
        Assert.That(missing!.Message, Does.Contain("'b'"));

        cache.TryRemove("a");
        Assert.Throws<KeyNotFoundException>(() => _ = cache["a"]);
        Assert.Throws<ArgumentNullException>(() => _ = cache[null!]);
        Assert.Throws<ArgumentNullException>(() => cache[null!] = 3);
    }

    [Test]
    public void AnExpiredEntryIsNotFoundThroughTheIndexer()
    {
        var clock = new ManualClock();
        using var cache = new OffHeapCache<int, int>(new OffHeapCacheOptions
        {
            CapacityBytes = 4 << 20,
            PageSize = 64 * 1024,
            DefaultTimeToLive = TimeSpan.FromSeconds(10),
            TimeProvider = clock,
        });
        cache[1] = 10;
        Assert.That(cache[1], Is.EqualTo(10));
        clock.Advance(TimeSpan.FromSeconds(11));
        Assert.Throws<KeyNotFoundException>(() => _ = cache[1]);
    }

    [Test]
    public void IsEmptyFollowsTheEntries()
    {
        using var cache = new OffHeapCache<int, long>(Options());
        Assert.That(cache.IsEmpty, Is.True);
        Assert.That(cache.Bytes.IsEmpty, Is.True);
        cache.Set(7, 70L);
        Assert.That(cache.IsEmpty, Is.False);
        Assert.That(cache.Bytes.IsEmpty, Is.False);
        cache.Clear();
        Assert.That(cache.IsEmpty, Is.True);
    }

    [Test]
    public void ValuesAndTheEnumeratorReturnEveryEntryOnce()
    {
        using var cache = new OffHeapCache<int, string>(Options());
        for (int i = 0; i < 500; i++)
        {
            cache[i] = "v" + i;
        }

        Assert.That(cache.Values.OrderBy(v => int.Parse(v.AsSpan(1), System.Globalization.CultureInfo.InvariantCulture)),
            Is.EqualTo(Enumerable.Range(0, 500).Select(i => "v" + i)));

        var seen = new Dictionary<int, string>();
        foreach (KeyValuePair<int, string> pair in cache)
        {
            seen.Add(pair.Key, pair.Value);   // Add throws on a key returned twice
        }
        Assert.That(seen, Has.Count.EqualTo(500));
        Assert.That(seen.All(p => p.Value == "v" + p.Key), Is.True);

        // The non-generic enumerator (as an untyped consumer sees it) returns the same pairs.
        int untyped = 0;
        foreach (object item in (System.Collections.IEnumerable)cache)
        {
            Assert.That(item, Is.InstanceOf<KeyValuePair<int, string>>());
            untyped++;
        }
        Assert.That(untyped, Is.EqualTo(500));
        Assert.That(cache.GetStatistics().Hits + cache.GetStatistics().Misses, Is.Zero, "enumeration is not a lookup");
    }

    [Test]
    public void TheNewMembersThrowObjectDisposedAfterDispose()
    {
        var cache = new OffHeapCache<int, int>(Options());
        cache[1] = 1;
        cache.Dispose();
        Assert.Throws<ObjectDisposedException>(() => _ = cache.IsEmpty);
        Assert.Throws<ObjectDisposedException>(() => _ = cache[1]);
        Assert.Throws<ObjectDisposedException>(() => cache[1] = 2);
        Assert.Throws<ObjectDisposedException>(() => _ = cache.Values);
        Assert.Throws<ObjectDisposedException>(() => cache.GetEnumerator());
        Assert.Throws<ObjectDisposedException>(() => _ = cache.Bytes.IsEmpty);
    }
}

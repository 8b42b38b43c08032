namespace CacheKit.OffHeap.Tests;

public class SmokeTests
{
    [Test]
    public void SetThenGetReturnsTheValue()
    {
        using var cache = new OffHeapCache(new OffHeapCacheOptions { CapacityBytes = 4 << 20 });
        byte[] key = TestKeys.Key(1), value = TestKeys.Value(1, 1, 100);
        Assert.That(cache.Set(key, value), Is.True);
        var buffer = new byte[200];
        Assert.That(cache.TryGet(key, buffer, out int written), Is.True);
        Assert.That(buffer.AsSpan(0, written).ToArray(), Is.EqualTo(value));
        Assert.That(cache.TryGet(TestKeys.Key(2), buffer, out written), Is.False);
        Assert.That(written, Is.Zero);
        Assert.That(cache.Count, Is.EqualTo(1));
        cache.ValidateInvariants();
    }
}

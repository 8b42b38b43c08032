namespace CacheKit.OffHeap.Tests;

/// <summary>A TimeProvider whose timestamp the test sets; allocation-free (for the allocation test).</summary>
internal sealed class ManualClock : TimeProvider
{
    public long Now = 1;

    public override long GetTimestamp() => Volatile.Read(ref Now);

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public void Advance(TimeSpan by) => Interlocked.Add(ref Now, by.Ticks);
}

using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CacheKit.OffHeap;

/// <summary>
/// The counters every operation writes (the in-flight count that <see cref="OffHeapCache.Dispose"/>
/// waits on, and the hit and miss counts), striped per processor so that threads on different cores
/// write different cache lines: one shared line per shard made two threads no faster than one.
/// </summary>
/// <remarks>
/// <para><b>Striping.</b> An operation picks its stripe once, in <see cref="Enter"/>, from
/// <see cref="Thread.GetCurrentProcessorId"/>, and uses that stripe until <see cref="Exit"/> even if
/// the thread migrates meanwhile. Two threads may share a stripe (migration, more threads than
/// stripes); every update is an <c>Interlocked</c> one, so counts stay exact, only slower then.</para>
/// <para><b>Invariant.</b> For each stripe, <see cref="Stripe.Active"/> = Enter calls on it minus Exit
/// calls on it, so it is ≥ 0 and is 0 exactly when no operation registered on that stripe is inside.
/// (Exit always names the stripe Enter returned, so no stripe goes negative.)</para>
/// </remarks>
internal sealed class OperationCounters
{
    private readonly Stripe[] _stripes;
    private readonly int _mask;

    /// <summary>Creates one stripe per processor (rounded up to a power of two, at most 256).</summary>
    public OperationCounters()
    {
        int count = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Clamp(Environment.ProcessorCount, 1, 256));
        _stripes = new Stripe[count];
        _mask = count - 1;
    }

    /// <summary>Number of stripes (a power of two).</summary>
    public int StripeCount => _stripes.Length;

    /// <summary>Registers an operation on the current processor's stripe (full fence); returns the stripe for <see cref="Exit"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Enter()
    {
        int stripe = Thread.GetCurrentProcessorId() & _mask;
        Interlocked.Increment(ref _stripes[stripe].Active);
        return stripe;
    }

    /// <summary>Ends the operation registered by <see cref="Enter"/> on <paramref name="stripe"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Exit(int stripe) => Interlocked.Decrement(ref _stripes[stripe].Active);

    /// <summary>Counts a lookup that hit (or found a value too large for the destination).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void RecordHit(int stripe) => Interlocked.Increment(ref _stripes[stripe].Hits);

    /// <summary>Counts a lookup that missed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void RecordMiss(int stripe) => Interlocked.Increment(ref _stripes[stripe].Misses);

    /// <summary>Sum of the hit counts of every stripe (each read is atomic; the sum may be a few operations behind).</summary>
    public long Hits
    {
        get
        {
            long sum = 0;
            for (int i = 0; i < _stripes.Length; i++)
            {
                sum += Volatile.Read(ref _stripes[i].Hits);
            }
            return sum;
        }
    }

    /// <summary>Sum of the miss counts of every stripe.</summary>
    public long Misses
    {
        get
        {
            long sum = 0;
            for (int i = 0; i < _stripes.Length; i++)
            {
                sum += Volatile.Read(ref _stripes[i].Misses);
            }
            return sum;
        }
    }

    /// <summary>
    /// Spins until every stripe's in-flight count is 0. The caller must have published "disposed" with
    /// a full fence first: then an operation either sees the flag in Enter and backs out, or its
    /// increment is visible to the reads here (Dekker), so waiting for 0 on each stripe in turn waits
    /// for every operation that went ahead.
    /// </summary>
    public void WaitUntilIdle()
    {
        for (int i = 0; i < _stripes.Length; i++)
        {
            var spin = new SpinWait();
            while (Volatile.Read(ref _stripes[i].Active) != 0)
            {
                spin.SpinOnce();
            }
        }
    }

    /// <summary>
    /// One stripe's counters, in the middle of 256 bytes: 128 bytes before them keep them off the
    /// array header's line pair (read by every bounds check) and off the previous stripe's (the
    /// adjacent-line prefetcher pairs 64-byte lines, so 64 bytes of padding would not be enough).
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    private struct Stripe
    {
        /// <summary>Operations inside the cache registered on this stripe (≥ 0, see the class invariant).</summary>
        [FieldOffset(128)]
        public long Active;

        /// <summary>Lookups that hit, counted on this stripe.</summary>
        [FieldOffset(136)]
        public long Hits;

        /// <summary>Lookups that missed, counted on this stripe.</summary>
        [FieldOffset(144)]
        public long Misses;
    }
}

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
/// <see cref="Thread.GetCurrentProcessorId"/>, and uses that stripe until it exits even if the thread
/// migrates meanwhile. Two threads may share a stripe (migration, more threads than stripes); every
/// update is an <c>Interlocked</c> one, so counts stay exact, only slower then.</para>
/// <para><b>Two atomic operations per lookup.</b> A stripe counts entries and exits, not a live
/// in-flight number: <see cref="Enter"/> increments <see cref="Stripe.Entered"/>, and the exit
/// increments exactly one of <see cref="Stripe.Hits"/>, <see cref="Stripe.Misses"/> (a lookup's exit
/// is its hit or miss count) or <see cref="Stripe.OtherExits"/> (every other operation, and a lookup
/// that threw). So a lookup pays two <c>Interlocked</c> operations where an in-flight counter plus a
/// hit counter took three.</para>
/// <para><b>Invariant.</b> For each stripe, Entered − (Hits + Misses + OtherExits) = operations
/// registered on it that have not exited: ≥ 0, and 0 exactly when none is inside. Every exit names
/// the stripe its Enter returned, and counts are only ever incremented.</para>
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

    /// <summary>
    /// Registers an operation on the current processor's stripe (full fence) and returns that stripe;
    /// end the operation with exactly one of <see cref="Exit"/> or <see cref="ExitLookup"/> on it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref Stripe Enter()
    {
        ref Stripe stripe = ref _stripes[Thread.GetCurrentProcessorId() & _mask];
        Interlocked.Increment(ref stripe.Entered);
        return ref stripe;
    }

    /// <summary>Ends an operation that is not a counted lookup (or a lookup that threw).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Exit(ref Stripe stripe) => Interlocked.Increment(ref stripe.OtherExits);

    /// <summary>Ends a lookup and counts it: a hit or a miss (a value too large for the destination ends with <see cref="Exit"/>: its retry is counted).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ExitLookup(ref Stripe stripe, bool hit)
        => Interlocked.Increment(ref hit ? ref stripe.Hits : ref stripe.Misses);

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

    /// <summary>Operations inside the cache now, summed over the stripes (tests; exact only while nothing enters or exits).</summary>
    internal long InFlight
    {
        get
        {
            long sum = 0;
            for (int i = 0; i < _stripes.Length; i++)
            {
                sum += InFlightOn(ref _stripes[i]);
            }
            return sum;
        }
    }

    /// <summary>
    /// Spins until no operation is inside on any stripe. The caller must have published "disposed"
    /// with a full fence first: then an operation either sees the flag after its Enter and backs out
    /// (and exits), or its Enter is visible to the reads here (Dekker), so waiting until each stripe's
    /// exits catch up with its entries waits for every operation that went ahead.
    /// </summary>
    /// <remarks>A <see cref="Thread.Interrupt"/> does not break the wait (Dispose has already marked the cache
    /// disposed, so an escaped interrupt would leave its native memory allocated for good: every later Dispose
    /// returns at once); it is re-armed when the wait ends.</remarks>
    public void WaitUntilIdle()
    {
        bool interrupted = false;
        for (int i = 0; i < _stripes.Length; i++)
        {
            var spin = new SpinWait();
            while (InFlightOn(ref _stripes[i]) != 0)
            {
                try
                {
                    spin.SpinOnce();   // sleeps after a while: interruptible
                }
                catch (ThreadInterruptedException)
                {
                    interrupted = true;
                }
            }
        }
        if (interrupted)
        {
            Thread.CurrentThread.Interrupt();
        }
    }

    /// <summary>
    /// Entered − exits of one stripe. The exits are read first, then Entered: all four only grow and an
    /// exit follows its entry, so exits(t1) ≤ entries(t1) ≤ entries(t2); a result of 0 therefore means
    /// that at t1 every operation that had entered the stripe had exited (never a false 0 from an
    /// operation that entered and exited between the reads while an older one was still inside).
    /// </summary>
    private static long InFlightOn(ref Stripe stripe)
    {
        long exits = Volatile.Read(ref stripe.Hits) + Volatile.Read(ref stripe.Misses) + Volatile.Read(ref stripe.OtherExits);
        long inFlight = Volatile.Read(ref stripe.Entered) - exits;
        System.Diagnostics.Debug.Assert(inFlight >= 0, "a stripe has more exits than entries");
        return inFlight;
    }

    /// <summary>
    /// One stripe's counters, in the middle of 256 bytes: 128 bytes before them keep them off the
    /// array header's line pair (read by every bounds check) and off the previous stripe's (the
    /// adjacent-line prefetcher pairs 64-byte lines, so 64 bytes of padding would not be enough).
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    internal struct Stripe
    {
        /// <summary>Operations registered on this stripe (only grows).</summary>
        [FieldOffset(128)]
        public long Entered;

        /// <summary>Lookups that hit, counted on this stripe at their exit (only grows).</summary>
        [FieldOffset(136)]
        public long Hits;

        /// <summary>Lookups that missed, counted on this stripe at their exit (only grows).</summary>
        [FieldOffset(144)]
        public long Misses;

        /// <summary>Exits of every other operation on this stripe (only grows).</summary>
        [FieldOffset(152)]
        public long OtherExits;
    }
}

using System.Buffers;
using System.Diagnostics;

namespace CacheKit.OffHeap;

/// <summary>Writes the value for <paramref name="key"/> into <paramref name="value"/> (GetOrAdd's factory).</summary>
/// <typeparam name="TState">Caller state, so a static lambda captures nothing and allocates nothing.</typeparam>
/// <param name="key">The key that missed.</param>
/// <param name="state">The state given to GetOrAdd.</param>
/// <param name="value">Where to write the value.</param>
public delegate void ValueFactory<in TState>(ReadOnlySpan<byte> key, TState state, IBufferWriter<byte> value);

/// <summary>Writes the value for <paramref name="key"/> into <paramref name="value"/>, asynchronously (GetOrAddAsync's factory).</summary>
/// <typeparam name="TState">Caller state.</typeparam>
/// <param name="key">The key that missed.</param>
/// <param name="state">The state given to GetOrAddAsync.</param>
/// <param name="value">Where to write the value.</param>
/// <param name="cancellationToken">The token of the call that runs the factory.</param>
public delegate ValueTask AsyncValueFactory<in TState>(ReadOnlyMemory<byte> key, TState state, IBufferWriter<byte> value, CancellationToken cancellationToken);

public sealed partial class OffHeapCache
{
    // Single flight: one entry per key whose factory is running. Guarded by _flightsGate. The miss path adds and
    // removes flights; a write of a key whose slot has a flight looks it up to invalidate it (a hit never allocates or locks).
    private readonly Lock _flightsGate = new();
    private Dictionary<byte[], Flight>? _flights;
    // The flights in _flights per slot of their key hash's low bits, written under _flightsGate and read without it by
    // every write of a key, which takes the gate to look for the key's flight only when its slot has one: so a write
    // pays one read when no flight runs, and writes of other keys do not queue on the gate while flights run. An array
    // of its own: a miss writes it twice, and it must not share a cache line with the fields every get and set reads.
    private const int FlightSlotBits = 10;
    private readonly int[] _flightsBySlot = new int[1 << FlightSlotBits];

    /// <summary>
    /// Copies the value of <paramref name="key"/> into <paramref name="destination"/>; on a miss, runs
    /// <paramref name="factory"/> once for all concurrent callers of the same key, stores its value
    /// (if admitted, and unless a write of the key (<c>Set</c>, <c>TryAdd</c>, <c>TryUpdate</c>, <c>SetMany</c>,
    /// <c>Remove</c>) or a <c>Clear</c> was made while the factory ran: that is newer than what the factory read, so
    /// nothing is stored, and a caller arriving after it runs the factory again) and gives every caller of the flight that value.
    /// </summary>
    /// <returns>True when the value came from the cache; false when a factory produced it (this call's or a concurrent caller's).</returns>
    /// <remarks>
    /// If the factory throws, nothing is cached and every caller waiting on it gets the exception.
    /// A caller whose <paramref name="cancellationToken"/> is cancelled stops waiting with
    /// <see cref="OperationCanceledException"/>; if the caller running the factory was cancelled and the
    /// factory threw <see cref="OperationCanceledException"/>, the others retry (one of them runs the
    /// factory). A factory that returns has made the value: it is stored (unless the key was written or removed meanwhile) and shared
    /// even if the token was cancelled meanwhile; only an eviction listener that throws during the store (an expired
    /// entry of the key leaving, or a victim evicted for room) fails the flight, as it fails any write. The factory runs outside every cache lock; it must not ask for its own key (that
    /// throws <see cref="InvalidOperationException"/>, also through a chain of factories: K's asks for L, L's for
    /// K); two independent callers, each leading one key and waiting for the other's, are found after about five
    /// seconds of waiting and also get <see cref="InvalidOperationException"/> (a cycle that ends sooner, because a factory
    /// gives up a wait after a timeout of its own, is not reported). A <c>GetOrAdd</c> that a factory starts without
    /// awaiting it (a background refresh) counts as the factory waiting, since the factory's flow flows into it: start such
    /// work under <see cref="ExecutionContext.SuppressFlow"/> if it may wait, for over five seconds, for a key whose factory
    /// waits for this one.
    /// </remarks>
    /// <exception cref="ArgumentNullException">factory or destination is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Key too long, value too large, or time to live not positive (other than <see cref="Timeout.InfiniteTimeSpan"/>).</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/>'s <c>GetSpan</c> returned memory overlapping the key.</exception>
    /// <exception cref="InvalidOperationException">Called from inside this key's own factory (directly or through factories it started): it would wait for itself.
    /// Or called from a factory for a key whose factory, in another caller, waits for this caller's (a cycle across callers).
    /// Or <paramref name="destination"/>'s <c>GetSpan</c> or <c>Advance</c> disposed this cache while a hit was copied (a
    /// lookup's destination runs inside the lookup, which Dispose would wait for). Or, from an eviction listener, a wait of
    /// over five seconds for another caller's flight of the key (see <see cref="EvictionListener"/>).</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool GetOrAdd<TState>(ReadOnlySpan<byte> key, TState state, ValueFactory<TState> factory, IBufferWriter<byte> destination,
        TimeSpan? timeToLive = null, CancellationToken cancellationToken = default)
        => GetOrAddCore(key, state, factory, destination, timeToLive, cancellationToken, countLookups: true);

    /// <summary>
    /// <see cref="GetOrAdd{TState}"/> for a caller that has made its own counted lookup of the key already
    /// (the typed facade's fast path): the lookups here are neither counted nor shown to the policy, so a
    /// miss counts once.
    /// </summary>
    internal bool GetOrAddAfterCountedMiss<TState>(ReadOnlySpan<byte> key, TState state, ValueFactory<TState> factory, IBufferWriter<byte> destination,
        TimeSpan? timeToLive, CancellationToken cancellationToken = default)
        => GetOrAddCore(key, state, factory, destination, timeToLive, cancellationToken, countLookups: false);

    private bool GetOrAddCore<TState>(ReadOnlySpan<byte> key, TState state, ValueFactory<TState> factory, IBufferWriter<byte> destination,
        TimeSpan? timeToLive, CancellationToken cancellationToken, bool countLookups)
    {
        ArgumentNullException.ThrowIfNull(factory);
        ArgumentNullException.ThrowIfNull(destination);
        long ttlTicks = timeToLive is { } ttl ? ToTimestampTicks(ttl, nameof(timeToLive)) : _defaultTtlTicks;
        while (true)
        {
            if (countLookups ? TryGet(key, destination) : TryGetUncounted(key, destination))
            {
                return true;
            }
            cancellationToken.ThrowIfCancellationRequested();
            Shard.ThrowIfInListenerOf(this);   // a miss leads or waits for a flight whose store needs shard locks
            Flight flight = JoinFlight(key, out bool leader);
            if (leader)
            {
                try
                {
                    var buffer = new ArrayBufferWriter<byte>();
                    if (TryGetUncounted(flight.Key, buffer))
                    {
                        // A flight that ended between our miss and our join stored it: no second run.
                        CompleteFlight(flight, buffer, fromCache: true, ttlTicks, destination);
                        return true;
                    }
                    FlightChain? outer = EnterFactory(flight);
                    try
                    {
                        factory(flight.Key, state, buffer);
                    }
                    finally
                    {
                        s_factoriesRunning.Value = outer;
                    }
                    // No cancellation check here: the value is made, so it is stored and handed to the waiters
                    // (discarding it would make a waiter run the factory again).
                    CompleteFlight(flight, buffer, fromCache: false, ttlTicks, destination);
                    return false;
                }
                catch (Exception e)
                {
                    FailFlight(flight, e, cancellationToken);
                    throw;
                }
            }

            FlightChain? running = ThrowIfInsideOwnFactory(flight);
            try
            {
                WaitForFlight(flight, running, cancellationToken);
            }
            catch (AggregateException)
            {
                // the factory failed or was cancelled: handled below
            }
            if (TryTakeFlightResult(flight, destination, out bool fromCache))
            {
                return fromCache;
            }
            countLookups = true;   // a retry after a cancelled leader is a lookup of its own
        }
    }

    /// <summary>
    /// The asynchronous <see cref="GetOrAdd{TState}"/>: same single-flight, exception and cancellation rules.
    /// </summary>
    /// <returns>True when the value came from the cache; false when a factory produced it.</returns>
    /// <exception cref="ArgumentNullException">factory or destination is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Key too long, value too large, or time to live not positive (other than <see cref="Timeout.InfiniteTimeSpan"/>).</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/>'s <c>GetSpan</c> returned memory overlapping the key.</exception>
    /// <exception cref="InvalidOperationException">Called from inside this key's own factory (directly or through factories it started),
    /// or in a cycle of factories across callers.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public ValueTask<bool> GetOrAddAsync<TState>(ReadOnlyMemory<byte> key, TState state, AsyncValueFactory<TState> factory,
        IBufferWriter<byte> destination, TimeSpan? timeToLive = null, CancellationToken cancellationToken = default)
        => GetOrAddAsyncCore(key, state, factory, destination, timeToLive, cancellationToken, countLookups: true);

    /// <summary>The asynchronous <see cref="GetOrAddAfterCountedMiss{TState}"/>.</summary>
    internal ValueTask<bool> GetOrAddAsyncAfterCountedMiss<TState>(ReadOnlyMemory<byte> key, TState state, AsyncValueFactory<TState> factory,
        IBufferWriter<byte> destination, TimeSpan? timeToLive, CancellationToken cancellationToken)
        => GetOrAddAsyncCore(key, state, factory, destination, timeToLive, cancellationToken, countLookups: false);

    private async ValueTask<bool> GetOrAddAsyncCore<TState>(ReadOnlyMemory<byte> key, TState state, AsyncValueFactory<TState> factory,
        IBufferWriter<byte> destination, TimeSpan? timeToLive, CancellationToken cancellationToken, bool countLookups)
    {
        ArgumentNullException.ThrowIfNull(factory);
        ArgumentNullException.ThrowIfNull(destination);
        long ttlTicks = timeToLive is { } ttl ? ToTimestampTicks(ttl, nameof(timeToLive)) : _defaultTtlTicks;
        while (true)
        {
            if (countLookups ? TryGet(key.Span, destination) : TryGetUncounted(key.Span, destination))
            {
                return true;
            }
            cancellationToken.ThrowIfCancellationRequested();
            Shard.ThrowIfInListenerOf(this);   // a miss leads or waits for a flight whose store needs shard locks
            Flight flight = JoinFlight(key.Span, out bool leader);
            if (leader)
            {
                try
                {
                    var buffer = new ArrayBufferWriter<byte>();
                    if (TryGetUncounted(flight.Key, buffer))
                    {
                        CompleteFlight(flight, buffer, fromCache: true, ttlTicks, destination);
                        return true;
                    }
                    FlightChain? outer = EnterFactory(flight);
                    try
                    {
                        await factory(flight.Key, state, buffer, cancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        s_factoriesRunning.Value = outer;
                    }
                    CompleteFlight(flight, buffer, fromCache: false, ttlTicks, destination);   // made: stored and shared (as above)
                    return false;
                }
                catch (Exception e)
                {
                    FailFlight(flight, e, cancellationToken);
                    throw;
                }
            }

            FlightChain? running = ThrowIfInsideOwnFactory(flight);
            try
            {
                await WaitForFlightAsync(flight, running, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception) when (!cancellationToken.IsCancellationRequested && flight.Completion.Task.IsCompleted)
            {
                // the factory failed or was cancelled: handled below (not a cycle found while waiting: that propagates)
            }
            if (TryTakeFlightResult(flight, destination, out bool fromCache))
            {
                return fromCache;
            }
            countLookups = true;   // a retry after a cancelled leader is a lookup of its own
        }
    }

    /// <summary>Number of factories running now (tests).</summary>
    internal int FlightCount
    {
        get
        {
            lock (_flightsGate)
            {
                return _flights?.Count ?? 0;
            }
        }
    }

    /// <summary>Joins the key's running flight, or starts one (<paramref name="leader"/>).</summary>
    private Flight JoinFlight(ReadOnlySpan<byte> key, out bool leader)
    {
        byte[] keyCopy = key.ToArray();
        ulong hash = Hash(keyCopy);   // outside the gate: every write whose slot has a flight waits on it
        lock (_flightsGate)
        {
            _flights ??= new Dictionary<byte[], Flight>(ByteArrayComparer.Instance);
            if (_flights.TryGetValue(keyCopy, out Flight? running))
            {
                // A flight invalidated by a write of its key computes from data older than that write: a caller arriving
                // after the write gets a flight of its own (the old one's leader stores nothing and LeaveFlight leaves the
                // new one in place; callers that joined the old one before the write still get its value). Except the
                // old flight's own factory (it wrote its key, then asked for it): it joins, and is refused as any factory
                // asking for its own key (leading a new flight it recursed until the stack overflowed; found by review).
                if (!running.Invalidated || Contains(s_factoriesRunning.Value, running))
                {
                    leader = false;
                    return running;
                }
                var replacement = new Flight(keyCopy, running.Hash);
                _flights[keyCopy] = replacement;   // same key, same slot: _flightsBySlot unchanged
                leader = true;
                return replacement;
            }
            var flight = new Flight(keyCopy, hash);
            _flights.Add(keyCopy, flight);
            ref int inSlot = ref _flightsBySlot[FlightSlot(flight.Hash)];
            Volatile.Write(ref inSlot, inSlot + 1);
            leader = true;
            return flight;
        }
    }

    /// <summary>
    /// The flights whose factories run in the current asynchronous flow, innermost first (an
    /// <see cref="AsyncLocal{T}"/>: it follows a factory into the calls and awaits it makes, on any thread).
    /// Set only on the miss path, around a factory.
    /// </summary>
    private static readonly AsyncLocal<FlightChain?> s_factoriesRunning = new();

    private sealed record FlightChain(Flight Flight, FlightChain? Outer);

    /// <summary>Records that <paramref name="flight"/>'s factory runs in this flow; returns what to restore after it.</summary>
    private static FlightChain? EnterFactory(Flight flight)
    {
        FlightChain? outer = s_factoriesRunning.Value;
        s_factoriesRunning.Value = new FlightChain(flight, outer);
        return outer;
    }

    /// <summary>
    /// A caller about to wait for <paramref name="flight"/> from inside that flight's own factory, directly or
    /// through other factories it started (K's factory asks for L, L's factory asks for K), would wait for
    /// itself forever: it throws instead. Returns the factories running in this flow (null for a plain
    /// caller), for the cross-flow check of <see cref="WaitForFlight"/>.
    /// </summary>
    private static FlightChain? ThrowIfInsideOwnFactory(Flight flight)
    {
        FlightChain? chain = s_factoriesRunning.Value;
        if (Contains(chain, flight))
        {
            throw new InvalidOperationException("GetOrAdd was called for a key from inside that key's own factory (directly or through the factories it started); it would wait for itself. Compute the value directly, or use another key.");
        }
        return chain;
    }

    private static bool Contains(FlightChain? chain, Flight flight)
    {
        for (; chain is not null; chain = chain.Outer)
        {
            if (ReferenceEquals(chain.Flight, flight))
            {
                return true;
            }
        }
        return false;
    }

    // ------------------------------------------------------------------ waits across flows
    //
    // Two independent flows can wait for each other: A leads K and its factory asks for L while B leads L
    // and its factory asks for K. Neither flow's own chain shows it, so the waits form a graph: while a flow
    // waits for flight F, every flight whose factory runs in that flow has an edge to F (an outer factory
    // waits on its inner ones by calling them); a flow waiting for several flights at once (Task.WhenAll)
    // gives each of its flights several edges. Reaching one of the caller's own running flights from the
    // flight it waits for is a cycle: nobody in it can finish unless one of its waits is bounded (a factory
    // that gives up waiting after a timeout). Edges read one at a time can also line up for an instant by
    // accident, and a GetOrAdd that a factory starts without awaiting it also carries the factory's flow (its
    // edges say the factory waits when it does not). So a cycle counts only when CycleConfirmLooks looks in a
    // row (about five seconds) find one; a cycle that ends sooner is never reported. Then the caller throws,
    // which fails its factory and frees the others.

    /// <summary>How long a waiting factory waits between two looks for a cross-flow cycle.</summary>
    private static readonly TimeSpan CycleCheckInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Consecutive looks that must find a cycle before it is reported (with the interval: about 5 s; a real
    /// deadlock waits that long instead of forever, and a cycle that ends sooner fails nobody).</summary>
    private const int CycleConfirmLooks = 50;

    /// <summary>Most flights one look visits (a larger wait graph is not searched further).</summary>
    private const int MaxWaitGraphVisits = 1024;

    /// <summary>Waits for the flight's completion; a caller inside factories also looks for a cross-flow cycle.</summary>
    /// <exception cref="AggregateException">The flight failed or was cancelled (as <see cref="Task.Wait(CancellationToken)"/>).</exception>
    /// <remarks>From inside an eviction listener the wait is bounded (<see cref="Shard.ListenerWaitLimit"/>): the listener's
    /// thread holds its cache's shard lock, which the flight's leader may need (its factory writing to that cache).</remarks>
    private static void WaitForFlight(Flight flight, FlightChain? running, CancellationToken cancellationToken)
    {
        bool inListener = Shard.IsInAnyListener;
        if (running is null && !inListener)
        {
            flight.Completion.Task.Wait(cancellationToken);   // no factory runs here, so nobody can be waiting for this caller
            return;
        }
        if (running is not null)
        {
            MarkWaiting(running, flight);
        }
        try
        {
            int looks = 0;
            long start = Stopwatch.GetTimestamp();
            while (!flight.Completion.Task.Wait(CycleCheckInterval, cancellationToken))
            {
                if (running is not null)
                {
                    looks = CheckForCycle(running, flight, looks);
                }
                if (inListener && Stopwatch.GetElapsedTime(start) >= Shard.ListenerWaitLimit)
                {
                    Shard.ThrowListenerWaitedTooLong("another caller's GetOrAdd factory of the key");
                }
            }
        }
        finally
        {
            if (running is not null)
            {
                UnmarkWaiting(running, flight);
            }
        }
    }

    /// <summary>The asynchronous <see cref="WaitForFlight"/>.</summary>
    private static async Task WaitForFlightAsync(Flight flight, FlightChain? running, CancellationToken cancellationToken)
    {
        if (running is null)
        {
            await flight.Completion.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            return;
        }
        MarkWaiting(running, flight);
        try
        {
            int looks = 0;
            while (true)
            {
                try
                {
                    await flight.Completion.Task.WaitAsync(CycleCheckInterval, cancellationToken).ConfigureAwait(false);
                    return;
                }
                catch (TimeoutException) when (!flight.Completion.Task.IsCompleted)
                {
                    // The interval ran out (a factory's own TimeoutException, from a finished flight, propagates:
                    // caught here it would loop forever, WaitAsync rethrowing it at once).
                    looks = CheckForCycle(running, flight, looks);
                }
            }
        }
        finally
        {
            UnmarkWaiting(running, flight);
        }
    }

    /// <summary>Adds this wait's edges: each running flight of the flow waits for <paramref name="target"/>.</summary>
    private static void MarkWaiting(FlightChain running, Flight target)
    {
        for (FlightChain? c = running; c is not null; c = c.Outer)
        {
            c.Flight.AddWait(target);
        }
    }

    /// <summary>Removes this wait's edges (one each: a concurrent wait of the same flow keeps its own).</summary>
    private static void UnmarkWaiting(FlightChain running, Flight target)
    {
        for (FlightChain? c = running; c is not null; c = c.Outer)
        {
            c.Flight.RemoveWait(target);
        }
    }

    /// <summary>
    /// One look: searches the wait-for graph from <paramref name="target"/> for a flight of <paramref name="running"/>.
    /// Returns the number of consecutive looks that found one (0 if this one did not); throws at <see cref="CycleConfirmLooks"/>.
    /// </summary>
    private static int CheckForCycle(FlightChain running, Flight target, int looksBefore)
    {
        if (!ReachesOwnFlight(running, target))
        {
            return 0;
        }
        if (looksBefore + 1 >= CycleConfirmLooks)
        {
            throw new InvalidOperationException("GetOrAdd from inside a factory would wait forever: the key it waits for is being computed by another caller whose factory waits (directly or through other factories) for a key this caller's factory is computing. Break the cycle: compute one of the values without GetOrAdd, or order the keys.");
        }
        return looksBefore + 1;
    }

    private static bool ReachesOwnFlight(FlightChain running, Flight target)
    {
        var seen = new HashSet<Flight>();
        var pending = new Stack<Flight>();
        pending.Push(target);
        while (pending.Count > 0 && seen.Count < MaxWaitGraphVisits)
        {
            Flight f = pending.Pop();
            if (!seen.Add(f))
            {
                continue;
            }
            if (Contains(running, f))
            {
                return true;
            }
            foreach (Flight next in f.WaitsSnapshot())
            {
                pending.Push(next);
            }
        }
        return false;
    }

    private void CompleteFlight(Flight flight, ArrayBufferWriter<byte> value, bool fromCache, long ttlTicks, IBufferWriter<byte> destination)
    {
        try
        {
            if (!fromCache)
            {
                // Stored if the key is still absent and admitted; the callers get the value either way. A Set of the key
                // that landed while the factory ran is newer than what the factory computed: it invalidated the flight
                // (as a Remove, Clear, TryUpdate or SetMany of the key does), so the value is not stored at all.
                CheckFactoryValue(flight.Key, value.WrittenSpan);   // the key was checked by the first lookup
                WriteWithStableKey(flight.Key, value.WrittenSpan, ttlTicks, SetCondition.IfAbsent, touchOnly: false, flight);
            }
        }
        finally
        {
            // Stored before the flight leaves, so a caller that joins a new flight afterwards finds it
            // with the leader's second lookup (above) instead of running the factory again.
            LeaveFlight(flight);
        }
        byte[] result = value.WrittenSpan.ToArray();
        flight.FromCache = fromCache;   // published by SetResult
        flight.Completion.SetResult(result);
        destination.Write(result);
    }

    private void FailFlight(Flight flight, Exception e, CancellationToken cancellationToken)
    {
        LeaveFlight(flight);
        if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
        {
            flight.Completion.TrySetCanceled(cancellationToken);   // waiters retry; one of them leads
        }
        else
        {
            flight.Completion.TrySetException(e);
        }
    }

    private void LeaveFlight(Flight flight)
    {
        lock (_flightsGate)
        {
            // Only this flight: after it left, a new flight for the same key may already be running.
            if (_flights!.TryGetValue(flight.Key, out Flight? current) && ReferenceEquals(current, flight))
            {
                _flights.Remove(flight.Key);
                ref int inSlot = ref _flightsBySlot[FlightSlot(flight.Hash)];
                Volatile.Write(ref inSlot, inSlot - 1);
            }
        }
    }

    /// <summary>
    /// Marks the running flight of <paramref name="key"/>, if any, as invalidated: its factory's value will not be stored,
    /// and a later caller starts a new flight. Called by every write of the key but Touch (Set, TryAdd, TryUpdate, SetMany,
    /// Remove), under the lock of the key's shard, the lock the leader's store checks the mark under; whatever the write
    /// does (even nothing: a refused Set, a TryUpdate of the absent key), it is newer than what the factory read.
    /// Lock order: shard lock, then <c>_flightsGate</c> (nothing takes a shard lock while holding the gate).
    /// </summary>
    /// <remarks>
    /// The read of the key's <c>_flightsBySlot</c> counter without the gate is one half of a Dekker pair, and both halves
    /// rely on a full fence: the writer's <c>Enter</c> (an interlocked increment) comes after its caller changed the data
    /// and before this read; the leader raises the counter in <see cref="JoinFlight"/> and its second lookup's
    /// <c>Enter</c> comes before its factory reads the data. So either this read sees the flight, or the factory sees the
    /// caller's change. Keep both fences if this code or the leader's second lookup moves.
    /// </remarks>
    /// <param name="key">The key written.</param>
    /// <param name="hash">Its hash (<see cref="Hash"/>).</param>
    internal void InvalidateFlightUnderShardLock(ReadOnlySpan<byte> key, ulong hash)
    {
        if (Volatile.Read(ref _flightsBySlot[FlightSlot(hash)]) == 0)
        {
            return;
        }
        lock (_flightsGate)
        {
            if (_flights!.GetAlternateLookup<ReadOnlySpan<byte>>().TryGetValue(key, out Flight? flight))
            {
                flight.Invalidated = true;
            }
        }
    }

    /// <summary>
    /// Marks every running flight as invalidated (<see cref="Clear"/>, before it clears the shards). A leader that stores
    /// into a shard before Clear reaches it has its value cleared; one that stores after takes that shard's lock after
    /// Clear did, so it sees the mark; a flight that joins after the mark started its factory after the caller's change.
    /// </summary>
    private void InvalidateAllFlights()
    {
        lock (_flightsGate)
        {
            foreach (Flight flight in _flights?.Values ?? Enumerable.Empty<Flight>())
            {
                flight.Invalidated = true;
            }
        }
    }

    private static int FlightSlot(ulong hash) => (int)(hash & ((1u << FlightSlotBits) - 1));

    /// <summary>Tests: every slot's counter equals the flights whose key hash falls in it (a counter at 0 with a flight
    /// would let writes skip invalidating it).</summary>
    private void ValidateFlightCounters()
    {
        lock (_flightsGate)
        {
            var expected = new int[_flightsBySlot.Length];
            foreach (Flight flight in _flights?.Values ?? Enumerable.Empty<Flight>())
            {
                expected[FlightSlot(flight.Hash)]++;
            }
            if (!expected.AsSpan().SequenceEqual(_flightsBySlot))
            {
                throw new InvalidOperationException("Flight counters differ from the running flights.");
            }
        }
    }

    /// <summary>After the flight ended: copies its value (and whether it came from the cache), rethrows its
    /// exception, or returns false (leader cancelled: retry).</summary>
    private static bool TryTakeFlightResult(Flight flight, IBufferWriter<byte> destination, out bool fromCache)
    {
        fromCache = false;
        Task<byte[]> task = flight.Completion.Task;
        if (task.IsCanceled)
        {
            return false;
        }
        byte[] value = task.GetAwaiter().GetResult();   // rethrows the factory's exception unwrapped
        fromCache = flight.FromCache;
        destination.Write(value);
        return true;
    }

    private sealed class Flight(byte[] key, ulong hash)
    {
        public byte[] Key { get; } = key;

        /// <summary>The key's <see cref="Hash"/> (its <c>_flightsBySlot</c> counter).</summary>
        public ulong Hash { get; } = hash;

        /// <summary>The leader found the value in the cache (no factory ran). Written before the completion.</summary>
        public bool FromCache { get; set; }

        /// <summary>
        /// A write of the key (or a <c>Clear</c>) ran while this flight did: what the factory computes may predate it, so
        /// the leader must not store it, and no new caller joins it. Written under <c>_flightsGate</c> (by a key's write
        /// also under its shard lock); read under the gate (<see cref="JoinFlight"/>) or under the key's shard lock (the
        /// leader's store), so a write lands either after the store (and replaces or removes the value) or before it
        /// (and the store is skipped). Volatile for the Clear path, which marks outside the shard locks.
        /// </summary>
        public bool Invalidated
        {
            get => Volatile.Read(ref _invalidated);
            set => Volatile.Write(ref _invalidated, value);
        }

        private bool _invalidated;

        public TaskCompletionSource<byte[]> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        // The flights this flight's factory waits for now, through its flow, one entry per wait in progress: the
        // edges of the wait-for graph (see WaitForFlight). Copy-on-write, so a flight nobody waits through costs
        // nothing (the shared empty array) and a look reads a consistent snapshot without a lock.
        private Flight[] _waits = [];

        public void AddWait(Flight target)
        {
            while (true)
            {
                Flight[] before = Volatile.Read(ref _waits);
                Flight[] after = [.. before, target];
                if (Interlocked.CompareExchange(ref _waits, after, before) == before)
                {
                    return;
                }
            }
        }

        /// <summary>Removes one entry for <paramref name="target"/> (by reference; each AddWait has one RemoveWait).</summary>
        public void RemoveWait(Flight target)
        {
            while (true)
            {
                Flight[] before = Volatile.Read(ref _waits);
                int i = Array.IndexOf(before, target);
                if (i < 0)
                {
                    return;
                }
                Flight[] after = before.Length == 1 ? [] : [.. before.AsSpan(0, i), .. before.AsSpan(i + 1)];
                if (Interlocked.CompareExchange(ref _waits, after, before) == before)
                {
                    return;
                }
            }
        }

        public Flight[] WaitsSnapshot() => Volatile.Read(ref _waits);
    }

    /// <summary>Key equality for the flights; also looks up by span, so <see cref="InvalidateFlightUnderShardLock"/> allocates nothing.</summary>
    private sealed class ByteArrayComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public static readonly ByteArrayComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj) => GetHashCode((ReadOnlySpan<byte>)obj);

        public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

        public int GetHashCode(ReadOnlySpan<byte> alternate)
        {
            var hash = new HashCode();
            hash.AddBytes(alternate);
            return hash.ToHashCode();
        }

        public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
    }
}

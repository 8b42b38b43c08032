using System.Buffers;

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
    // Single flight: one entry per key whose factory is running. Guarded by _flightsGate. Only the
    // miss path touches it (a hit never allocates or locks).
    private readonly Lock _flightsGate = new();
    private Dictionary<byte[], Flight>? _flights;

    /// <summary>
    /// Copies the value of <paramref name="key"/> into <paramref name="destination"/>; on a miss, runs
    /// <paramref name="factory"/> once for all concurrent callers of the same key, stores its value
    /// (if admitted) and gives every caller that value.
    /// </summary>
    /// <returns>True when the value came from the cache; false when a factory produced it (this call's or a concurrent caller's).</returns>
    /// <remarks>
    /// If the factory throws, nothing is cached and every caller waiting on it gets the exception.
    /// A caller whose <paramref name="cancellationToken"/> is cancelled stops waiting with
    /// <see cref="OperationCanceledException"/>; if the cancelled caller was running the factory, the
    /// others retry (one of them runs the factory). The factory runs outside every cache lock.
    /// </remarks>
    /// <exception cref="ArgumentNullException">factory or destination is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Key too long, value too large, or time to live not positive.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool GetOrAdd<TState>(ReadOnlySpan<byte> key, TState state, ValueFactory<TState> factory, IBufferWriter<byte> destination,
        TimeSpan? timeToLive = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(factory);
        ArgumentNullException.ThrowIfNull(destination);
        long ttlTicks = timeToLive is { } ttl ? ToTimestampTicks(ttl, nameof(timeToLive)) : _defaultTtlTicks;
        while (true)
        {
            if (TryGet(key, destination))
            {
                return true;
            }
            cancellationToken.ThrowIfCancellationRequested();
            Flight flight = JoinFlight(key, out bool leader);
            if (leader)
            {
                try
                {
                    var buffer = new ArrayBufferWriter<byte>();
                    if (TryGetUncounted(flight.Key, buffer))
                    {
                        // A flight that ended between our miss and our join stored it: no second run.
                        CompleteFlight(flight, buffer, store: false, ttlTicks, destination);
                        return true;
                    }
                    factory(flight.Key, state, buffer);
                    cancellationToken.ThrowIfCancellationRequested();
                    CompleteFlight(flight, buffer, store: true, ttlTicks, destination);
                    return false;
                }
                catch (Exception e)
                {
                    FailFlight(flight, e, cancellationToken);
                    throw;
                }
            }

            try
            {
                flight.Completion.Task.Wait(cancellationToken);
            }
            catch (AggregateException)
            {
                // the factory failed or was cancelled: handled below
            }
            if (TryTakeFlightResult(flight, destination))
            {
                return false;
            }
        }
    }

    /// <summary>
    /// The asynchronous <see cref="GetOrAdd{TState}"/>: same single-flight, exception and cancellation rules.
    /// </summary>
    /// <returns>True when the value came from the cache; false when a factory produced it.</returns>
    /// <exception cref="ArgumentNullException">factory or destination is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Key too long, value too large, or time to live not positive.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public async ValueTask<bool> GetOrAddAsync<TState>(ReadOnlyMemory<byte> key, TState state, AsyncValueFactory<TState> factory,
        IBufferWriter<byte> destination, TimeSpan? timeToLive = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(factory);
        ArgumentNullException.ThrowIfNull(destination);
        long ttlTicks = timeToLive is { } ttl ? ToTimestampTicks(ttl, nameof(timeToLive)) : _defaultTtlTicks;
        while (true)
        {
            if (TryGet(key.Span, destination))
            {
                return true;
            }
            cancellationToken.ThrowIfCancellationRequested();
            Flight flight = JoinFlight(key.Span, out bool leader);
            if (leader)
            {
                try
                {
                    var buffer = new ArrayBufferWriter<byte>();
                    if (TryGetUncounted(flight.Key, buffer))
                    {
                        CompleteFlight(flight, buffer, store: false, ttlTicks, destination);
                        return true;
                    }
                    await factory(flight.Key, state, buffer, cancellationToken).ConfigureAwait(false);
                    cancellationToken.ThrowIfCancellationRequested();
                    CompleteFlight(flight, buffer, store: true, ttlTicks, destination);
                    return false;
                }
                catch (Exception e)
                {
                    FailFlight(flight, e, cancellationToken);
                    throw;
                }
            }

            try
            {
                await flight.Completion.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception) when (!cancellationToken.IsCancellationRequested)
            {
                // the factory failed or was cancelled: handled below
            }
            if (TryTakeFlightResult(flight, destination))
            {
                return false;
            }
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

    private Flight JoinFlight(ReadOnlySpan<byte> key, out bool leader)
    {
        byte[] keyCopy = key.ToArray();
        lock (_flightsGate)
        {
            _flights ??= new Dictionary<byte[], Flight>(ByteArrayComparer.Instance);
            if (_flights.TryGetValue(keyCopy, out Flight? running))
            {
                leader = false;
                return running;
            }
            var flight = new Flight(keyCopy);
            _flights.Add(keyCopy, flight);
            leader = true;
            return flight;
        }
    }

    private void CompleteFlight(Flight flight, ArrayBufferWriter<byte> value, bool store, long ttlTicks, IBufferWriter<byte> destination)
    {
        try
        {
            if (store)
            {
                SetCore(flight.Key, value.WrittenSpan, ttlTicks);   // stored if admitted; the callers get the value either way
            }
        }
        finally
        {
            // Stored before the flight leaves, so a caller that joins a new flight afterwards finds it
            // with the leader's second lookup (above) instead of running the factory again.
            LeaveFlight(flight);
        }
        byte[] result = value.WrittenSpan.ToArray();
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
            }
        }
    }

    /// <summary>After the flight ended: copies its value, rethrows its exception, or returns false (leader cancelled: retry).</summary>
    private static bool TryTakeFlightResult(Flight flight, IBufferWriter<byte> destination)
    {
        Task<byte[]> task = flight.Completion.Task;
        if (task.IsCanceled)
        {
            return false;
        }
        byte[] value = task.GetAwaiter().GetResult();   // rethrows the factory's exception unwrapped
        destination.Write(value);
        return true;
    }

    private sealed class Flight(byte[] key)
    {
        public byte[] Key { get; } = key;

        public TaskCompletionSource<byte[]> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class ByteArrayComparer : IEqualityComparer<byte[]>
    {
        public static readonly ByteArrayComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj)
        {
            var hash = new HashCode();
            hash.AddBytes(obj);
            return hash.ToHashCode();
        }
    }
}

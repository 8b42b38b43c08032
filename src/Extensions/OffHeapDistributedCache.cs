using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Hashing;
using System.Text;
using Microsoft.Extensions.Caching.Distributed;

namespace CacheKit.OffHeap.Extensions;

/// <summary>
/// An <see cref="IDistributedCache"/> and <see cref="IBufferDistributedCache"/> over an
/// <see cref="OffHeapCache"/>: a drop-in for <c>MemoryDistributedCache</c> whose values live outside
/// the GC heap, and the L2 of HybridCache. Honours <see cref="DistributedCacheEntryOptions"/>:
/// absolute, relative-to-now and sliding expiration, as MemoryDistributedCache does; an entry set with none never
/// expires (the cache's <see cref="OffHeapCacheOptions.DefaultTimeToLive"/> applies only to the byte and typed APIs).
/// </summary>
/// <remarks>
/// <para>Keys are stored as UTF-8. A key longer than the cache's <see cref="OffHeapCache.MaxKeyBytes"/> (as UTF-8) is
/// refused by Set (<see cref="ArgumentOutOfRangeException"/>) and so is never stored: Get and TryGet report a miss
/// for it, Refresh and Remove do nothing, as MemoryDistributedCache does for a key it does not hold. A key that is not
/// valid UTF-16 (a lone surrogate) has no UTF-8 form: every method throws <see cref="ArgumentException"/> for it
/// (rather than map it, as <c>Encoding.UTF8</c> would, onto the key with U+FFFD in its place).</para>
/// <para>Each value carries a 24-byte header (absolute expiry in UTC ticks, sliding window in ticks, and a check word: a
/// hash of the two and of the value's length, so that an entry another API wrote to the same cache is refused with
/// <see cref="InvalidOperationException"/>, not read as an expiry and a shorter value; it passes the check with a
/// probability of 2^-64); the engine's own time to live is set to the nearer of the two, so
/// expired entries free their memory without being read. A read of a sliding entry gives it a fresh engine
/// time to live in place (<see cref="OffHeapCache.Touch"/>: nothing rewritten, allocated or evicted), after re-reading
/// only the entry's header under the key's write lock (a Get racing a Set of its key returns the value it read
/// and renews the one now stored); that is not an access for the eviction policy, so a Get or Refresh counts as one
/// access whether the entry slides or not. Get allocates the returned
/// array only, and Refresh and TryGet nothing of their own, once the shared array pool is warm.</para>
/// <para>Writes (set, remove, and the renewal of a sliding entry by a read or refresh) take one of 64 striped locks by a
/// hash of the whole key, so a refresh never resurrects a value a concurrent set replaced; reads and refreshes of
/// non-sliding entries take no lock. A read counted as a hit in the cache's statistics can still return nothing when
/// the entry expires or is removed between its first read and the renewal (a race of a few instructions). Everything
/// that writes the underlying cache should therefore go through this object.</para>
/// <para>The async methods complete synchronously (the work is a memory copy) and honour cancellation
/// before they start: an already-cancelled token gives a cancelled task (null arguments still throw at the call).</para>
/// </remarks>
public sealed class OffHeapDistributedCache : IBufferDistributedCache
{
    /// <summary>Bytes of the expiration header in front of each stored value: absolute expiry, sliding window, check word.</summary>
    public const int HeaderBytes = 24;

    /// <summary>Seed of the header's check word (any fixed value: it tells this adapter's entries from other bytes).</summary>
    private const long HeaderCheckSeed = 0x4F66_6648_6561_7044;   // OffHeapD in ASCII

    private const int StackKeyBytes = 256;
    private const int InitialReadBytes = 1024;
    private const int LockStripeBits = 6;
    private const int LockStripes = 1 << LockStripeBits;

    private readonly OffHeapCache _cache;
    private readonly TimeProvider _time;
    private readonly OffHeapCacheMetrics? _metrics;
    private readonly Lock[] _stripes;

    /// <summary>Wraps <paramref name="cache"/>; the caller keeps owning (and disposes) it.</summary>
    /// <param name="cache">The off-heap cache that stores the entries.</param>
    /// <param name="timeProvider">The clock: the cache's own <see cref="OffHeapCacheOptions.TimeProvider"/>, which is the
    /// default (null). The expiration headers are read by this clock and the engine's time to live runs on the cache's, so
    /// another clock is refused.</param>
    /// <param name="metrics">Where to record the opt-in latency histogram; null = no timing.</param>
    /// <exception cref="ArgumentNullException"><paramref name="cache"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="timeProvider"/> is not the cache's clock, or the cache's
    /// <see cref="OffHeapCache.MaxValueBytes"/> cannot hold the <see cref="HeaderBytes"/>-byte expiration header.</exception>
    public OffHeapDistributedCache(OffHeapCache cache, TimeProvider? timeProvider = null, OffHeapCacheMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(cache);
        if (timeProvider is not null && !ReferenceEquals(timeProvider, cache.TimeProvider))
        {
            // Two clocks: a Set by one would see an expiry as past (or far off) that the other does not (found by review).
            throw new ArgumentException("The distributed cache must use the cache's own TimeProvider (OffHeapCacheOptions.TimeProvider); pass null to use it.", nameof(timeProvider));
        }
        if (cache.MaxValueBytes < HeaderBytes)
        {
            throw new ArgumentException(
                $"The cache's MaxValueBytes is {cache.MaxValueBytes}; a distributed cache needs at least {HeaderBytes} (its expiration header) plus the values.", nameof(cache));
        }
        _cache = cache;
        _time = cache.TimeProvider;
        _metrics = metrics is { LatencyHistogramEnabled: true } ? metrics : null;
        _stripes = new Lock[LockStripes];
        for (int i = 0; i < _stripes.Length; i++)
        {
            _stripes[i] = new Lock();
        }
    }

    /// <summary>The largest value (payload) accepted with a short key: the cache's limit less <see cref="HeaderBytes"/>.</summary>
    public int MaxValueBytes => _cache.MaxValueBytes - HeaderBytes;

    /// <inheritdoc />
    public byte[]? Get(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        long start = Stopwatch.GetTimestamp();
        byte[]? result = WithReadKey(key, this, null, static (keyBytes, self) => self.ReadLive(keyBytes, null, copy: true, out byte[]? value) ? value : null);
        _metrics?.RecordDuration("get", start);
        return result;
    }

    /// <inheritdoc />
    public Task<byte[]?> GetAsync(string key, CancellationToken token = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        return token.IsCancellationRequested ? Task.FromCanceled<byte[]?>(token) : Task.FromResult(Get(key));
    }

    /// <inheritdoc />
    public bool TryGet(string key, IBufferWriter<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(destination);
        long start = Stopwatch.GetTimestamp();
        bool hit = WithReadKey(key, (this, destination), false,
            static (keyBytes, state) => state.Item1.ReadLive(keyBytes, state.destination, copy: false, out _));
        _metrics?.RecordDuration("get", start);
        return hit;
    }

    /// <inheritdoc />
    public ValueTask<bool> TryGetAsync(string key, IBufferWriter<byte> destination, CancellationToken token = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(destination);
        return token.IsCancellationRequested ? ValueTask.FromCanceled<bool>(token) : ValueTask.FromResult(TryGet(key, destination));
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentOutOfRangeException">The key (as UTF-8) or the value is longer than the cache accepts; nothing changed.</exception>
    public void Set(string key, byte[] value, DistributedCacheEntryOptions options)
    {
        ArgumentNullException.ThrowIfNull(key);   // first, as MemoryDistributedCache: Set(null, null, o) names the key
        ArgumentNullException.ThrowIfNull(value);
        Set(key, new ReadOnlySequence<byte>(value), options);
    }

    /// <inheritdoc />
    public Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(options);
        if (token.IsCancellationRequested)
        {
            return Task.FromCanceled(token);
        }
        Set(key, value, options);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentOutOfRangeException">The key (as UTF-8) or the value is longer than the cache accepts; nothing changed.</exception>
    public void Set(string key, ReadOnlySequence<byte> value, DistributedCacheEntryOptions options)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(options);
        if (value.Length > MaxValueBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value.Length,
                $"value is {value.Length} bytes; the limit is {MaxValueBytes} bytes (the cache's MaxValueBytes less the {HeaderBytes}-byte expiration header).");
        }
        long start = Stopwatch.GetTimestamp();
        long nowTicks = _time.GetUtcNow().UtcTicks;
        long absolute = AbsoluteExpiryTicks(options, nowTicks);
        long sliding = options.SlidingExpiration is { } s ? s.Ticks : 0;

        int length = HeaderBytes + (int)value.Length;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            WriteHeader(buffer, absolute, sliding, length);
            value.CopyTo(buffer.AsSpan(HeaderBytes));
            WithKey(key, (this, buffer, length, absolute, sliding, nowTicks), static (keyBytes, state) =>
            {
                (OffHeapDistributedCache self, byte[] buf, int len, long abs, long slide, long now) = state;
                lock (self.StripeOf(keyBytes))
                {
                    if (abs != 0 && abs <= now)
                    {
                        // Already expired: store nothing and drop the old value, as MemoryDistributedCache does.
                        self._cache.Remove(keyBytes);
                        return true;
                    }
                    self.Store(keyBytes, buf.AsSpan(0, len), abs, slide, now);
                    return true;
                }
            });
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        _metrics?.RecordDuration("set", start);
    }

    /// <inheritdoc />
    public ValueTask SetAsync(string key, ReadOnlySequence<byte> value, DistributedCacheEntryOptions options, CancellationToken token = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(options);
        if (token.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(token);
        }
        Set(key, value, options);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public void Refresh(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        long start = Stopwatch.GetTimestamp();
        // A live sliding entry gets a fresh window from the read itself (Touch, in place); the payload goes nowhere.
        WithReadKey(key, this, false, static (keyBytes, self) => self.ReadLive(keyBytes, null, copy: false, out _));
        _metrics?.RecordDuration("refresh", start);
    }

    /// <inheritdoc />
    public Task RefreshAsync(string key, CancellationToken token = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (token.IsCancellationRequested)
        {
            return Task.FromCanceled(token);
        }
        Refresh(key);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public void Remove(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        long start = Stopwatch.GetTimestamp();
        WithReadKey(key, this, false, static (keyBytes, self) =>
        {
            lock (self.StripeOf(keyBytes))
            {
                return self._cache.Remove(keyBytes);
            }
        });
        _metrics?.RecordDuration("remove", start);
    }

    /// <inheritdoc />
    public Task RemoveAsync(string key, CancellationToken token = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (token.IsCancellationRequested)
        {
            return Task.FromCanceled(token);
        }
        Remove(key);
        return Task.CompletedTask;
    }

    // ------------------------------------------------------------------ internals

    /// <summary>
    /// Looks up <paramref name="key"/> (one counted lookup, one access for the policy) and renews a live sliding entry.
    /// On a hit the payload is appended to <paramref name="destination"/> when given, and returned in
    /// <paramref name="value"/> (one new array, the only allocation) when <paramref name="copy"/>; else it goes nowhere
    /// (Refresh). The stored bytes pass through a pooled buffer: the header must be read before the payload is used.
    /// </summary>
    private bool ReadLive(ReadOnlySpan<byte> key, IBufferWriter<byte>? destination, bool copy, out byte[]? value)
    {
        value = null;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(InitialReadBytes);
        try
        {
            if (!ReadRaw(key, ref buffer, counted: true, out int length))
            {
                return false;
            }
            (long absolute, long sliding) = ReadHeader(buffer, length);
            long now = _time.GetUtcNow().UtcTicks;
            if (absolute != 0 && absolute <= now)
            {
                return false;   // the engine's time to live ends at the same instant; it frees the entry itself
            }
            if (sliding != 0)
            {
                Span<byte> header = stackalloc byte[HeaderBytes];
                lock (StripeOf(key))
                {
                    // Re-read the expiration header under the stripe lock: the entry to renew is the latest one, with its
                    // own window (a Set since the read above may have replaced it). Only the header: Touch needs nothing
                    // else. Not counted: the statistics and the policy saw this Get's lookup above.
                    if (!_cache.TryGetPrefixUncounted(key, header, out int storedLength))
                    {
                        return false;
                    }
                    CheckHeaderFits(storedLength);
                    (absolute, sliding) = ReadHeader(header, storedLength);
                    if (absolute != 0 && absolute <= now)
                    {
                        return false;
                    }
                    if (sliding != 0)
                    {
                        // A new engine time to live in place (not an access either: the counted lookup above was this
                        // Get's one access). The header read under the lock is the current entry's, so the window renewed
                        // is that entry's own, even if a Set replaced the value read above (which is still returned: it
                        // was the value when it was read).
                        _cache.Touch(key, TimeSpan.FromTicks(EngineTimeToLive(absolute, sliding, now)));
                    }
                }
            }
            ReadOnlySpan<byte> payload = buffer.AsSpan(HeaderBytes, length - HeaderBytes);
            destination?.Write(payload);
            if (copy)
            {
                value = payload.ToArray();
            }
            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Reads the stored bytes (header included) into <paramref name="buffer"/>, growing it (pooled) as needed.
    /// When <paramref name="counted"/>, the read is a lookup the statistics and the policy see once: a read into a
    /// buffer that is too small counts nothing, so only the read that fits (or misses) is counted.
    /// </summary>
    private bool ReadRaw(ReadOnlySpan<byte> key, ref byte[] buffer, bool counted, out int length)
    {
        while (true)
        {
            bool hit = counted ? _cache.TryGet(key, buffer, out length) : _cache.TryGetUncounted(key, buffer, out length);
            if (hit)
            {
                CheckHeaderFits(length);
                return true;
            }
            if (length == 0)
            {
                return false;   // miss
            }
            ArrayPool<byte>.Shared.Return(buffer);
            buffer = ArrayPool<byte>.Shared.Rent(length);   // too small: the value's length is known now
        }
    }

    /// <summary>Refuses an entry too short to hold the expiration header (the cache was written around this object).</summary>
    private static void CheckHeaderFits(int length)
    {
        if (length < HeaderBytes)
        {
            throw new InvalidOperationException(
                $"The entry of this key is {length} bytes, shorter than the {HeaderBytes}-byte expiration header: it was written to the cache around OffHeapDistributedCache (through the OffHeapCache or a typed view of it). Give the distributed cache a cache of its own.");
        }
    }

    /// <summary>Stores header + payload with the engine time to live that ends at the nearer expiry; an entry with
    /// neither never expires (as in MemoryDistributedCache), whatever the cache's <see cref="OffHeapCacheOptions.DefaultTimeToLive"/>.</summary>
    private void Store(ReadOnlySpan<byte> key, ReadOnlySpan<byte> entry, long absolute, long sliding, long now)
    {
        _cache.Set(key, entry, absolute == 0 && sliding == 0 ? Timeout.InfiniteTimeSpan : TimeSpan.FromTicks(EngineTimeToLive(absolute, sliding, now)));
    }

    /// <summary>Ticks from <paramref name="now"/> to the nearer of the absolute expiry and the end of a sliding window
    /// starting now; at least one of the two is set (a live entry's absolute expiry is after now).</summary>
    private static long EngineTimeToLive(long absolute, long sliding, long now)
    {
        Debug.Assert(absolute != 0 || sliding != 0, "an entry without expiry has no engine time to live");
        long ttl = absolute != 0 ? absolute - now : long.MaxValue;
        return sliding != 0 ? Math.Min(ttl, sliding) : ttl;
    }

    /// <summary>Absolute expiry in UTC ticks, or 0 for none; with both an absolute and a relative-to-now expiration, the
    /// nearer one, as MemoryCache's <c>CacheEntry</c> (a first version let the relative one win, as MemoryCache did
    /// before .NET 7, so an entry outlived the absolute expiration it was given).</summary>
    private static long AbsoluteExpiryTicks(DistributedCacheEntryOptions options, long nowTicks)
    {
        long fromRelative = options.AbsoluteExpirationRelativeToNow is { } relative
            ? (relative.Ticks > long.MaxValue - nowTicks ? long.MaxValue : nowTicks + relative.Ticks)
            : 0;
        long fromAbsolute = options.AbsoluteExpiration is { } absolute ? Math.Max(1, absolute.UtcTicks) : 0;
        return fromRelative == 0 ? fromAbsolute : fromAbsolute == 0 ? fromRelative : Math.Min(fromRelative, fromAbsolute);
    }

    private static void WriteHeader(Span<byte> buffer, long absolute, long sliding, int storedLength)
    {
        BinaryPrimitives.WriteInt64LittleEndian(buffer, absolute);
        BinaryPrimitives.WriteInt64LittleEndian(buffer[8..], sliding);
        BinaryPrimitives.WriteUInt64LittleEndian(buffer[16..], HeaderCheck(absolute, sliding, storedLength));
    }

    /// <summary>The expiry fields of a stored entry of <paramref name="storedLength"/> bytes (header included), after its
    /// check word: an entry written to the cache around this object is refused, not misread.</summary>
    private static (long Absolute, long Sliding) ReadHeader(ReadOnlySpan<byte> buffer, int storedLength)
    {
        long absolute = BinaryPrimitives.ReadInt64LittleEndian(buffer);
        long sliding = BinaryPrimitives.ReadInt64LittleEndian(buffer[8..]);
        if (BinaryPrimitives.ReadUInt64LittleEndian(buffer[16..]) != HeaderCheck(absolute, sliding, storedLength))
        {
            throw new InvalidOperationException(
                $"The entry of this key ({storedLength} bytes) has no valid {HeaderBytes}-byte expiration header: it was written to the cache around OffHeapDistributedCache (through the OffHeapCache or a typed view of it). Give the distributed cache a cache of its own.");
        }
        return (absolute, sliding);
    }

    /// <summary>The header's check word: a seeded hash of both expiry fields and the entry's length.</summary>
    private static ulong HeaderCheck(long absolute, long sliding, int storedLength)
    {
        Span<byte> fields = stackalloc byte[20];
        BinaryPrimitives.WriteInt64LittleEndian(fields, absolute);
        BinaryPrimitives.WriteInt64LittleEndian(fields[8..], sliding);
        BinaryPrimitives.WriteInt32LittleEndian(fields[16..], storedLength);
        return XxHash3.HashToUInt64(fields, HeaderCheckSeed);
    }

    private Lock StripeOf(ReadOnlySpan<byte> key)
    {
        // The whole key: keys that differ only after a long common prefix ("Service.Method:tenant=...:000123")
        // still spread over the stripes.
        ulong hash = XxHash3.HashToUInt64(key);
        return _stripes[hash >> (64 - LockStripeBits)];
    }

    /// <summary>Runs <paramref name="action"/> over the UTF-8 bytes of <paramref name="key"/> (on the stack when short).</summary>
    private static TResult WithKey<TState, TResult>(string key, TState state, KeyFunc<TState, TResult> action)
    {
        int max = StrictUtf8.GetMaxByteCount(key.Length);
        if (max <= StackKeyBytes)
        {
            Span<byte> bytes = stackalloc byte[StackKeyBytes];
            int n = StrictUtf8.GetBytes(key, bytes, nameof(key));
            return action(bytes[..n], state);
        }
        byte[] rented = ArrayPool<byte>.Shared.Rent(max);
        try
        {
            int n = StrictUtf8.GetBytes(key, rented, nameof(key));
            return action(rented.AsSpan(0, n), state);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// <see cref="WithKey{TState, TResult}"/> for a read, Refresh or Remove: a key longer than the cache's <see cref="OffHeapCache.MaxKeyBytes"/>
    /// cannot be stored (Set refuses it), so it is absent: <paramref name="absent"/> is returned without calling
    /// <paramref name="action"/>, as MemoryDistributedCache (no key limit) answers for a key it does not hold.
    /// </summary>
    private TResult WithReadKey<TState, TResult>(string key, TState state, TResult absent, KeyFunc<TState, TResult> action)
    {
        // UTF-8 takes at least one byte per UTF-16 char: a key with more chars than the limit is too long unencoded.
        if (key.Length > _cache.MaxKeyBytes)
        {
            // Not encoded, but refused as an encoded key would be: a lone surrogate, a disposed cache (found by review).
            StrictUtf8.ThrowIfInvalid(key, nameof(key));
            _cache.ThrowIfDisposed();
            return absent;
        }
        return WithKey(key, (state, absent, action, cache: _cache), static (keyBytes, s) =>
        {
            if (keyBytes.Length > s.cache.MaxKeyBytes)
            {
                s.cache.ThrowIfDisposed();
                return s.absent;
            }
            return s.action(keyBytes, s.state);
        });
    }

    private delegate TResult KeyFunc<in TState, out TResult>(ReadOnlySpan<byte> key, TState state);
}

using System.Buffers;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CacheKit.OffHeap;

/// <summary>
/// A typed cache over <see cref="OffHeapCache"/>: keys and values are serialized into native memory
/// with an <see cref="ICacheSerializer{T}"/> (defaults from <see cref="CacheSerializers.GetDefault{T}"/>),
/// shaped like <c>ConcurrentDictionary</c> / <c>MemoryCache</c>. Thread-safe.
/// </summary>
/// <remarks>
/// With <see cref="UnmanagedSerializer{T}"/> keys and values, <see cref="TryGetValue"/> and
/// <see cref="Set(TKey, TValue)"/> allocate nothing (the bytes of the built-in serializers' keys and values are put on
/// the stack or used in place; other serializers write into per-thread buffers).
/// Each call borrows the thread's key and value buffers for its duration, so a serializer may itself use typed caches,
/// this one included, and an eviction listener may read them (a listener may not write to its own cache: see
/// <see cref="EvictionListener"/>): a call made while the buffers are out gets buffers of its own (and allocates them).
/// An exception a serializer throws (a <see cref="System.Text.Json.JsonException"/> from <see cref="SystemTextJsonSerializer{T}"/>,
/// say) propagates out of the call: a write then stores nothing, a lookup leaves the entry in place (a
/// <c>TryRemove(key, out value)</c> deserializes after it removed the entry: see there).
/// </remarks>
/// <typeparam name="TKey">Key type.</typeparam>
/// <typeparam name="TValue">Value type.</typeparam>
public sealed class OffHeapCache<TKey, TValue> : IEnumerable<KeyValuePair<TKey, TValue>>, IDisposable
{
    // Whether a TKey can be null at all: `key is null` on a non-nullable value type boxes the key in
    // unoptimized (Debug) code, 24 bytes per call; the optimizing JIT folds both away.
    private static readonly bool s_keyMayBeNull = !typeof(TKey).IsValueType || Nullable.GetUnderlyingType(typeof(TKey)) is not null;

    private readonly OffHeapCache _cache;
    private readonly ICacheSerializer<TKey> _keys;
    private readonly ICacheSerializer<TValue> _values;
    private readonly bool _ownsCache;

    // Shortcuts for the built-in serializers, decided once: their bytes are known without calling them, so a call
    // skips the per-thread buffers and the interface calls (the bytes stored are the same either way). A string key is
    // encoded into a stack buffer and an unmanaged key copied there; an unmanaged value is stored from, and read into,
    // its own bytes; a byte[] value is read into an array of its exact length. Everything else goes through the
    // serializer and the thread's buffers.
    private readonly bool _keysAreUtf8;       // _keys is the built-in Utf8StringSerializer
    private readonly bool _keysAreRaw;        // _keys is an UnmanagedSerializer<TKey>
    private readonly bool _valuesAreArrays;   // _values is the built-in ByteArraySerializer
    private readonly bool _valuesAreRaw;      // _values is an UnmanagedSerializer<TValue> of at most RawValueStackBytes

    /// <summary>Stack bytes for a key on the shortcut paths: strings of up to a third as many characters (3 UTF-8 bytes
    /// a UTF-16 unit at most), unmanaged keys of up to as many bytes; longer keys use the thread's buffer.</summary>
    private const int KeyScratchBytes = 192;

    /// <summary>The largest unmanaged value read through a stack buffer.</summary>
    private const int RawValueStackBytes = 256;

    /// <summary>Creates a typed cache that owns a new <see cref="OffHeapCache"/>.</summary>
    /// <param name="options">The byte cache's options.</param>
    /// <param name="keySerializer">Key serializer; null = <see cref="CacheSerializers.GetDefault{T}"/>.</param>
    /// <param name="valueSerializer">Value serializer; null = <see cref="CacheSerializers.GetDefault{T}"/>.</param>
    /// <exception cref="ArgumentException">No serializer was given and no built-in one fits the type.</exception>
    public OffHeapCache(OffHeapCacheOptions options, ICacheSerializer<TKey>? keySerializer = null, ICacheSerializer<TValue>? valueSerializer = null)
    {
        _keys = keySerializer ?? CacheSerializers.GetDefault<TKey>();
        _values = valueSerializer ?? CacheSerializers.GetDefault<TValue>();
        _cache = new OffHeapCache(options);
        _ownsCache = true;
        (_keysAreUtf8, _keysAreRaw, _valuesAreArrays, _valuesAreRaw) = Shortcuts(_keys, _values);
    }

    /// <summary>
    /// Creates a typed view over an existing byte cache, for example the one a host registered with
    /// <c>services.AddOffHeapCache(...)</c> (<c>IOffHeapCacheProvider.GetCache(name)</c>), so that the configured, metered
    /// cache serves typed callers too. Several views may share one byte cache, but they share one key space: give each a
    /// key serializer whose bytes cannot collide with the others' (a distinct prefix per view). Different key types are
    /// not enough (a <c>long</c> and a <c>double</c>, or a <c>string</c> and its UTF-8 <c>byte[]</c>, serialize to the same
    /// bytes). <see cref="Count"/>, <see cref="GetStatistics"/> and <see cref="Clear"/> cover the whole byte cache.
    /// </summary>
    /// <param name="bytes">The byte cache to read and write through.</param>
    /// <param name="keySerializer">Key serializer; null = <see cref="CacheSerializers.GetDefault{T}"/>.</param>
    /// <param name="valueSerializer">Value serializer; null = <see cref="CacheSerializers.GetDefault{T}"/>.</param>
    /// <param name="ownsCache">Whether <see cref="Dispose"/> disposes <paramref name="bytes"/>. Default false: the byte
    /// cache's owner (the host, for a registered one) disposes it, and after that every call of the view throws
    /// <see cref="ObjectDisposedException"/>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="bytes"/> is null.</exception>
    /// <exception cref="ArgumentException">No serializer was given and no built-in one fits the type.</exception>
    public OffHeapCache(OffHeapCache bytes, ICacheSerializer<TKey>? keySerializer = null, ICacheSerializer<TValue>? valueSerializer = null, bool ownsCache = false)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        _keys = keySerializer ?? CacheSerializers.GetDefault<TKey>();
        _values = valueSerializer ?? CacheSerializers.GetDefault<TValue>();
        _cache = bytes;
        _ownsCache = ownsCache;
        (_keysAreUtf8, _keysAreRaw, _valuesAreArrays, _valuesAreRaw) = Shortcuts(_keys, _values);
    }

    /// <summary>Which shortcuts the serializers allow (see the fields).</summary>
    private static (bool KeysAreUtf8, bool KeysAreRaw, bool ValuesAreArrays, bool ValuesAreRaw) Shortcuts(ICacheSerializer<TKey> keys, ICacheSerializer<TValue> values)
        => (keys is Utf8StringSerializer,
            keys is UnmanagedSerializer<TKey> && Unsafe.SizeOf<TKey>() <= KeyScratchBytes,
            values is ByteArraySerializer,
            values is UnmanagedSerializer<TValue> && Unsafe.SizeOf<TValue>() <= RawValueStackBytes);

    /// <summary>The byte cache underneath (statistics, span access).</summary>
    public OffHeapCache Bytes => _cache;

    /// <summary>Number of entries stored (see <see cref="OffHeapCache.Count"/>).</summary>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public long Count => _cache.Count;

    /// <summary>Whether the byte cache holds no entry (expired ones not yet reclaimed count, as in <see cref="Count"/>).</summary>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool IsEmpty => _cache.IsEmpty;

    /// <summary>
    /// Gets or sets the value of <paramref name="key"/>, as <c>ConcurrentDictionary</c>'s indexer: the getter throws
    /// <see cref="KeyNotFoundException"/> on a miss (a cache's entries leave by eviction and expiry: prefer
    /// <see cref="TryGetValue"/> or <see cref="GetOrAdd(TKey, Func{TKey, TValue}, TimeSpan?)"/>); the setter is
    /// <see cref="Set(TKey, TValue)"/> (default time to live) and, as it, stores nothing when admission refuses the value.
    /// </summary>
    /// <exception cref="KeyNotFoundException">Get: no live entry for <paramref name="key"/>.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> (or, set, a value the serializer refuses) is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The serialized key or value is longer than the cache accepts.</exception>
    /// <exception cref="ArgumentException">A string key or value is not valid UTF-16 (a lone surrogate).</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public TValue this[TKey key]
    {
        get => TryGetValue(key, out TValue? value) ? value : throw KeyNotFound(key);
        set => Set(key, value);
    }

    private static KeyNotFoundException KeyNotFound(TKey key)
        => new($"The given key '{key}' was not present in the cache (never stored, removed, evicted or expired).");

    /// <summary>Gets the value of <paramref name="key"/>.</summary>
    /// <returns>True on a hit.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is null (the typed cache refuses null keys).</exception>
    /// <exception cref="ArgumentOutOfRangeException">The serialized key is longer than <see cref="OffHeapCache.MaxKeyBytes"/>.</exception>
    /// <exception cref="ArgumentException">A string key is not valid UTF-16 (a lone surrogate).</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    [SkipLocalsInit]
    public bool TryGetValue(TKey key, [MaybeNullWhen(false)] out TValue value)
    {
        Span<byte> scratch = stackalloc byte[KeyScratchBytes];
        if (_valuesAreArrays && TryEncodeStringKey(key, scratch, out int length))
        {
            return TryGetArray(scratch[..length], out value);   // the commonest typed cache, <string, byte[]>: no key lease
        }
        using KeyLease keyBytes = SerializeKey(key, scratch);
        if (_valuesAreArrays)
        {
            return TryGetArray(keyBytes.Bytes, out value);
        }
        if (_valuesAreRaw && TryReadRaw(keyBytes.Bytes, out bool found, out value))
        {
            return found;
        }
        using var lease = new ValueLease();
        return lease.TryRead(_cache, keyBytes.Bytes, _values, out value);
    }

    /// <summary>The lookup of a <c>byte[]</c> value (<see cref="_valuesAreArrays"/>) into an array of its exact length.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryGetArray(ReadOnlySpan<byte> key, [MaybeNullWhen(false)] out TValue value)
    {
        bool hit = _cache.TryGetNewArray(key, out byte[]? array);
        // The serializer is ByteArraySerializer, an ICacheSerializer<byte[]> (invariant), so TValue is byte[]: a
        // reinterpretation, not a cast, which the code shared by reference types would check through a type lookup.
        Debug.Assert(typeof(TValue) == typeof(byte[]), "the byte[] shortcut serves byte[] values only");
        value = hit ? Unsafe.As<byte[], TValue>(ref array!) : default;
        return hit;
    }

    /// <summary>
    /// The lookup of an unmanaged value into a stack buffer of its size: true when that decided it (a hit, with
    /// <paramref name="found"/> true, or a miss); false when the stored value is longer than <typeparamref name="TValue"/>
    /// (written through the byte API): nothing was counted, and the caller's general path reports it as the serializer does.
    /// </summary>
    [SkipLocalsInit]
    private bool TryReadRaw(ReadOnlySpan<byte> key, out bool found, [MaybeNullWhen(false)] out TValue value)
    {
        int size = Unsafe.SizeOf<TValue>();
        Span<byte> scratch = stackalloc byte[RawValueStackBytes];
        scratch = scratch[..size];
        found = _cache.TryGetIntoSeparateBuffer(key, scratch, out int length);
        if (found)
        {
            // A shorter stored value: the serializer's own refusal (ArgumentException), as on the general path.
            value = length == size ? Unsafe.ReadUnaligned<TValue>(ref MemoryMarshal.GetReference(scratch)) : _values.Deserialize(scratch[..length]);
            return true;
        }
        value = default;
        return length == 0;   // 0: a miss; else too long for the buffer
    }

    /// <summary>A set of <paramref name="value"/>'s bytes, taken with the built-in serializers' shortcuts (see the fields) or
    /// else through the thread's value buffer.</summary>
    private bool SetValue(ReadOnlySpan<byte> key, ref TValue value, long ttlTicks, SetCondition condition)
    {
        if (_valuesAreRaw)
        {
            return _cache.SetCore(key, RawBytes(ref value), ttlTicks, condition);
        }
        if (_valuesAreArrays && value is byte[] array)   // (a null one: the serializer's refusal, below)
        {
            return _cache.SetCore(key, array, ttlTicks, condition);
        }
        using var lease = new ValueLease();
        return _cache.SetCore(key, lease.Serialize(_values, value), ttlTicks, condition);
    }

    /// <summary>The bytes an <see cref="UnmanagedSerializer{T}"/> writes for <paramref name="value"/>: its own, in place.</summary>
    private static ReadOnlySpan<byte> RawBytes(ref TValue value)
        => MemoryMarshal.CreateReadOnlySpan(ref Unsafe.As<TValue, byte>(ref value), Unsafe.SizeOf<TValue>());

    /// <summary>Stores <paramref name="value"/> with the default time to live; false if admission refused it.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> or <paramref name="value"/> is null (a null value: refused by the serializers of <see cref="CacheSerializers.GetDefault{T}"/>; <see cref="SystemTextJsonSerializer{T}"/> stores it).</exception>
    /// <exception cref="ArgumentOutOfRangeException">The serialized key or value is longer than the cache accepts (parameter <c>key</c> or <c>value</c>).</exception>
    /// <exception cref="ArgumentException">A string key or value is not valid UTF-16 (a lone surrogate).</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    [SkipLocalsInit]
    public bool Set(TKey key, TValue value)
    {
        using KeyLease keyBytes = SerializeKey(key, stackalloc byte[KeyScratchBytes]);
        return SetValue(keyBytes.Bytes, ref value, _cache.DefaultTimeToLiveTicks, SetCondition.Always);
    }

    /// <summary>Stores <paramref name="value"/> expiring after <paramref name="timeToLive"/> (<see cref="Timeout.InfiniteTimeSpan"/>: never);
    /// false if admission refused it.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> or <paramref name="value"/> is null (a null value: refused by the serializers of <see cref="CacheSerializers.GetDefault{T}"/>; <see cref="SystemTextJsonSerializer{T}"/> stores it).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeToLive"/> is not positive (other than <see cref="Timeout.InfiniteTimeSpan"/>), or the serialized key or value is too long.</exception>
    /// <exception cref="ArgumentException">A string key or value is not valid UTF-16 (a lone surrogate).</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    [SkipLocalsInit]
    public bool Set(TKey key, TValue value, TimeSpan timeToLive)
    {
        using KeyLease keyBytes = SerializeKey(key, stackalloc byte[KeyScratchBytes]);
        if (_valuesAreRaw || (_valuesAreArrays && value is not null))
        {
            // These shortcuts cannot refuse the value, so checking the time to live first keeps the order of refusals.
            return SetValue(keyBytes.Bytes, ref value, _cache.ToTimestampTicks(timeToLive, nameof(timeToLive)), SetCondition.Always);
        }
        using var lease = new ValueLease();
        return _cache.Set(keyBytes.Bytes, lease.Serialize(_values, value), timeToLive);
    }

    /// <summary>The cached value, or the factory's (run once for concurrent callers of one key, then cached unless the key was written, removed or cleared meanwhile).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="valueFactory"/> or <paramref name="key"/> is null, or the factory returned
    /// null (named <c>value</c>) and its serializer refuses null (those of <see cref="CacheSerializers.GetDefault{T}"/> do).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeToLive"/> is not positive (other than <see cref="Timeout.InfiniteTimeSpan"/>) (checked before the lookup), or the
    /// serialized key or value is too long (a value the factory returned too long for the cache is named <c>factory</c>).</exception>
    /// <exception cref="InvalidOperationException">The factory asked for its own key, or a cycle of factories (see <see cref="OffHeapCache.GetOrAdd{TState}"/>).</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public TValue GetOrAdd(TKey key, Func<TKey, TValue> valueFactory, TimeSpan? timeToLive = null)
    {
        ArgumentNullException.ThrowIfNull(valueFactory);
        return GetOrAdd(key, static (k, f) => f(k), valueFactory, timeToLive);
    }

    /// <summary>The cached value, or the factory's (run once for concurrent callers of one key, then cached unless the key was written, removed or cleared meanwhile).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="valueFactory"/> or <paramref name="key"/> is null, or the factory returned null (named <c>value</c>) and its serializer refuses null (those of <see cref="CacheSerializers.GetDefault{T}"/> do).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeToLive"/> is not positive (other than <see cref="Timeout.InfiniteTimeSpan"/>) (checked before the lookup), or the serialized key or value is too long (a value the factory returned too long for the cache is named <c>factory</c>).</exception>
    /// <exception cref="InvalidOperationException">The factory asked for its own key, or a cycle of factories (see <see cref="OffHeapCache.GetOrAdd{TState}"/>).</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public TValue GetOrAdd<TArg>(TKey key, Func<TKey, TArg, TValue> valueFactory, TArg factoryArgument, TimeSpan? timeToLive = null)
    {
        ArgumentNullException.ThrowIfNull(valueFactory);
        CheckTimeToLive(timeToLive);
        if (TryGetValue(key, out TValue? cached))
        {
            return cached;
        }
        byte[] keyBytes = SerializeKeyToArray(key);
        var destination = new ArrayBufferWriter<byte>();
        var state = (Key: key, Factory: valueFactory, Argument: factoryArgument, Values: _values);
        // Our lookup above counted the miss; the byte cache's own lookups are not counted again.
        _cache.GetOrAddAfterCountedMiss(keyBytes, state,
            static (_, s, writer) => s.Values.Serialize(s.Factory(s.Key, s.Argument), writer),
            destination, timeToLive);
        return _values.Deserialize(destination.WrittenSpan);
    }

    /// <summary>The cached value, or the asynchronous factory's (run once for concurrent callers of one key, then cached unless the key was written, removed or cleared meanwhile).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="valueFactory"/> or <paramref name="key"/> is null, or the factory returned null (named <c>value</c>) and its serializer refuses null (those of <see cref="CacheSerializers.GetDefault{T}"/> do).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeToLive"/> is not positive (other than <see cref="Timeout.InfiniteTimeSpan"/>) (checked before the lookup), or the serialized key or value is too long (a value the factory returned too long for the cache is named <c>factory</c>).</exception>
    /// <exception cref="InvalidOperationException">The factory asked for its own key, or a cycle of factories (see <see cref="OffHeapCache.GetOrAdd{TState}"/>).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled while waiting.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public async ValueTask<TValue> GetOrAddAsync(TKey key, Func<TKey, CancellationToken, ValueTask<TValue>> valueFactory,
        TimeSpan? timeToLive = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(valueFactory);
        CheckTimeToLive(timeToLive);
        if (TryGetValue(key, out TValue? cached))
        {
            return cached;
        }
        byte[] keyBytes = SerializeKeyToArray(key);
        var destination = new ArrayBufferWriter<byte>();
        var state = (Key: key, Factory: valueFactory, Values: _values);
        await _cache.GetOrAddAsyncAfterCountedMiss(keyBytes, state,
            static async (_, s, writer, ct) => s.Values.Serialize(await s.Factory(s.Key, ct).ConfigureAwait(false), writer),
            destination, timeToLive, cancellationToken).ConfigureAwait(false);
        return _values.Deserialize(destination.WrittenSpan);
    }

    /// <summary>
    /// Stores <paramref name="addValue"/> if the key is absent, else the update factory's result for the current value,
    /// atomically as <c>ConcurrentDictionary.AddOrUpdate</c>: the write applies only if the key is still absent, or
    /// still holds the value the factory saw (compared as serialized bytes); when another writer got in first, the
    /// lookup and the factory run again. So the factory may run more than once, and each retry is a counted lookup.
    /// </summary>
    /// <returns>The value written: stored unless the cache refused it (admission or no room, as <see cref="Set(TKey, TValue)"/> returning false).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="updateValueFactory"/> or <paramref name="key"/> is null, or the value to write is null (named <c>value</c>) and its serializer refuses null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeToLive"/> is not positive (other than <see cref="Timeout.InfiniteTimeSpan"/>) (checked before the lookup and the factory), or the serialized key or value is too long.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public TValue AddOrUpdate(TKey key, TValue addValue, Func<TKey, TValue, TValue> updateValueFactory, TimeSpan? timeToLive = null)
    {
        ArgumentNullException.ThrowIfNull(updateValueFactory);
        return AddOrUpdateCore(key, addValue, static (_, value) => value, updateValueFactory, timeToLive);
    }

    /// <summary>
    /// As <see cref="AddOrUpdate(TKey, TValue, Func{TKey, TValue, TValue}, TimeSpan?)"/>, with the value to add made by
    /// <paramref name="addValueFactory"/> when the key is absent (<c>ConcurrentDictionary.AddOrUpdate(key, addValueFactory,
    /// updateValueFactory)</c>). Either factory may run more than once when other writers get in first (each retry is a
    /// counted lookup), and the add factory's value is not stored if another writer added the key meanwhile.
    /// </summary>
    /// <returns>The value written: stored unless the cache refused it (admission or no room).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="addValueFactory"/>, <paramref name="updateValueFactory"/> or <paramref name="key"/> is null, or the value to write is null (named <c>value</c>) and its serializer refuses null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeToLive"/> is not positive (other than <see cref="Timeout.InfiniteTimeSpan"/>) (checked before the lookup and the factories), or the serialized key or value is too long.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public TValue AddOrUpdate(TKey key, Func<TKey, TValue> addValueFactory, Func<TKey, TValue, TValue> updateValueFactory, TimeSpan? timeToLive = null)
    {
        ArgumentNullException.ThrowIfNull(addValueFactory);
        ArgumentNullException.ThrowIfNull(updateValueFactory);
        return AddOrUpdateCore(key, addValueFactory, static (k, factory) => factory(k), updateValueFactory, timeToLive);
    }

    /// <summary>The compare-and-swap loop of both AddOrUpdate overloads; <paramref name="add"/> makes the value to add from the key and <paramref name="addArgument"/>.</summary>
    private TValue AddOrUpdateCore<TArg>(TKey key, TArg addArgument, Func<TKey, TArg, TValue> add, Func<TKey, TValue, TValue> updateValueFactory, TimeSpan? timeToLive)
    {
        long ttlTicks = _cache.ToTimestampTicksOrDefault(timeToLive, nameof(timeToLive));
        using KeyLease keyBytes = SerializeKey(key);
        while (true)
        {
            using var lease = new ValueLease();
            if (!_cache.TryGet(keyBytes.Bytes, lease.Buffer))
            {
                TValue addValue = add(key, addArgument);
                if (_cache.SetWithOutcome(keyBytes.Bytes, lease.Serialize(_values, addValue), ttlTicks, SetCondition.IfAbsent) != SetOutcome.ConditionFailed)
                {
                    return addValue;
                }
                continue;   // added by another writer since the lookup
            }
            // The value seen, copied out: the lease's buffer takes the new value.
            int length = lease.Buffer.WrittenCount;
            byte[] seen = ArrayPool<byte>.Shared.Rent(length);
            try
            {
                lease.Buffer.WrittenSpan.CopyTo(seen);
                TValue updated = updateValueFactory(key, _values.Deserialize(seen.AsSpan(0, length)));
                if (_cache.SetWithOutcome(keyBytes.Bytes, lease.Serialize(_values, updated), ttlTicks, SetCondition.IfValueEquals, seen.AsSpan(0, length))
                    != SetOutcome.ConditionFailed)
                {
                    return updated;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(seen);
            }
        }
    }

    /// <summary>Refuses a time to live the byte cache would refuse, before any lookup or factory runs.</summary>
    private void CheckTimeToLive(TimeSpan? timeToLive, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(timeToLive))] string paramName = "")
    {
        if (timeToLive is { } ttl)
        {
            _ = _cache.ToTimestampTicks(ttl, paramName);
        }
    }

    /// <summary>Stores the value only if the key has no live entry, atomically (<c>ConcurrentDictionary.TryAdd</c>);
    /// see <see cref="OffHeapCache.TryAdd(ReadOnlySpan{byte}, ReadOnlySpan{byte}, TimeSpan)"/>.</summary>
    /// <returns>Whether the value is now stored: false when a live entry exists, or the cache refused the newcomer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is null, or the value is null where its serializer refuses null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The time to live is not positive (other than <see cref="Timeout.InfiniteTimeSpan"/>),
    /// or the serialized key or value is too long.</exception>
    /// <exception cref="ArgumentException">A string key or value is not valid UTF-16 (a lone surrogate).</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    [SkipLocalsInit]
    public bool TryAdd(TKey key, TValue value, TimeSpan? timeToLive = null)
    {
        long ttlTicks = _cache.ToTimestampTicksOrDefault(timeToLive, nameof(timeToLive));
        using KeyLease keyBytes = SerializeKey(key, stackalloc byte[KeyScratchBytes]);
        return SetValue(keyBytes.Bytes, ref value, ttlTicks, SetCondition.IfAbsent);
    }

    /// <summary>Replaces the value only if the key has a live entry, atomically (a key removed or expired meanwhile is
    /// not brought back); see <see cref="OffHeapCache.TryUpdate(ReadOnlySpan{byte}, ReadOnlySpan{byte}, TimeSpan)"/>.</summary>
    /// <returns>Whether the new value is now stored: false when the key has no live entry, or when no room could be made
    /// for the new value (then the old one is gone too, as after any set that fails).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is null, or the value is null where its serializer refuses null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The time to live is not positive (other than <see cref="Timeout.InfiniteTimeSpan"/>),
    /// or the serialized key or value is too long.</exception>
    /// <exception cref="ArgumentException">A string key or value is not valid UTF-16 (a lone surrogate).</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    [SkipLocalsInit]
    public bool TryUpdate(TKey key, TValue value, TimeSpan? timeToLive = null)
    {
        long ttlTicks = _cache.ToTimestampTicksOrDefault(timeToLive, nameof(timeToLive));
        using KeyLease keyBytes = SerializeKey(key, stackalloc byte[KeyScratchBytes]);
        return SetValue(keyBytes.Bytes, ref value, ttlTicks, SetCondition.IfPresent);
    }

    /// <summary>Removes the key; false if it was absent.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The serialized key is longer than <see cref="OffHeapCache.MaxKeyBytes"/>.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    [SkipLocalsInit]
    public bool TryRemove(TKey key)
    {
        using KeyLease keyBytes = SerializeKey(key, stackalloc byte[KeyScratchBytes]);
        return _cache.Remove(keyBytes.Bytes);
    }

    /// <summary>Removes the key and returns the value it had, in one step (<c>ConcurrentDictionary.TryRemove(key, out value)</c>):
    /// the value returned is the one removed, never one a racing set replaced. Not a lookup for the statistics or the policy.
    /// The value is deserialized after the removal: if the serializer throws (bytes it cannot read), the entry is gone all the same.</summary>
    /// <returns>True when the key was removed, with the value it held; false and default when it was absent.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The serialized key is too long.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    [SkipLocalsInit]
    public bool TryRemove(TKey key, [MaybeNullWhen(false)] out TValue value)
    {
        using KeyLease keyBytes = SerializeKey(key, stackalloc byte[KeyScratchBytes]);
        using var lease = new ValueLease();
        return lease.TryRemove(_cache, keyBytes.Bytes, _values, out value);
    }

    /// <summary>Removes the key only if it holds <paramref name="item"/>'s value, in one step
    /// (<c>ConcurrentDictionary.TryRemove(KeyValuePair)</c>). Values are compared as their serialized bytes (so byte
    /// arrays by content, strings ordinally, unmanaged structs bit for bit). Not a lookup for the statistics or the policy.</summary>
    /// <returns>Whether the key was removed: false when it was absent or held another value, or when the value is one its
    /// serializer refuses (for strings: null or a lone surrogate; no entry can hold it); then no entry changes.</returns>
    /// <exception cref="ArgumentNullException">The key is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The serialized key is too long.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool TryRemove(KeyValuePair<TKey, TValue> item)
    {
        using KeyLease key = SerializeKey(item.Key);   // first: a null key is reported as the key
        using var lease = new ValueLease();
        return TrySerializeComparison(lease, item.Value, out ReadOnlySpan<byte> comparison)
            ? _cache.RemoveIfEquals(key.Bytes, comparison)
            : NoComparisonMatches(key.Bytes);
    }

    /// <summary>A conditional write whose comparison value the serializer refuses matches no entry: false, after the checks the
    /// write would have made (the key's length, a disposed cache), which the refusal used to skip (found by review).</summary>
    private bool NoComparisonMatches(ReadOnlySpan<byte> keyBytes)
    {
        _cache.CheckKey(keyBytes);
        Shard.ThrowIfInListenerOf(_cache);
        _cache.ThrowIfDisposed();
        return false;
    }

    /// <summary>The bytes a stored value equal to <paramref name="comparisonValue"/> would have; false when the serializer
    /// refuses it (a null or a lone-surrogate string, say): no stored value can then equal it.</summary>
    private bool TrySerializeComparison(ValueLease lease, TValue comparisonValue, out ReadOnlySpan<byte> bytes)
    {
        try
        {
            bytes = lease.Serialize(_values, comparisonValue);
            return true;
        }
        catch (ArgumentException e) when (e.ParamName == "value")
        {
            bytes = default;
            return false;
        }
    }

    /// <summary>
    /// Replaces the key's value with <paramref name="newValue"/> only if it is <paramref name="comparisonValue"/>, in one step
    /// (the compare-and-swap of <c>ConcurrentDictionary.TryUpdate(key, newValue, comparisonValue)</c>). Values are compared
    /// as their serialized bytes (byte arrays by content, strings ordinally, unmanaged structs bit for bit).
    /// </summary>
    /// <remarks>Named apart from <see cref="TryUpdate(TKey, TValue, TimeSpan?)"/> on purpose: as an overload of it, a cache of
    /// <see cref="TimeSpan"/> values would bind <c>TryUpdate(key, value, timeToLive)</c> to the comparison.</remarks>
    /// <param name="key">The key.</param>
    /// <param name="newValue">The value to store.</param>
    /// <param name="comparisonValue">The value the key must hold now.</param>
    /// <param name="timeToLive">The new entry's time to live; null for the cache's default.</param>
    /// <returns>Whether <paramref name="newValue"/> is now stored: false when the key is absent or holds another value (then
    /// nothing changes), or when no room could be made for the new value (then the old one is gone too, as after any set
    /// that fails).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is null, or <paramref name="newValue"/> is null where its
    /// serializer refuses null (a <paramref name="comparisonValue"/> that the serializer refuses matches no entry: false).</exception>
    /// <exception cref="ArgumentOutOfRangeException">The time to live is not positive (other than <see cref="Timeout.InfiniteTimeSpan"/>),
    /// or the serialized key or new value (<paramref name="newValue"/>) is too long.</exception>
    /// <exception cref="ArgumentException">A string key or new value is not valid UTF-16 (a lone surrogate).</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool TryUpdateIfEquals(TKey key, TValue newValue, TValue comparisonValue, TimeSpan? timeToLive = null)
    {
        long ttlTicks = _cache.ToTimestampTicksOrDefault(timeToLive, nameof(timeToLive));
        using KeyLease keyLease = SerializeKey(key);   // first: a null key is reported as the key
        ReadOnlySpan<byte> keyBytes = keyLease.Bytes;
        using var lease = new ValueLease();
        // The new value's bytes, checked (whatever the comparison) and copied out: the lease's buffer then takes the comparison.
        _cache.CheckKey(keyBytes);   // before the value: a key too long is reported as the key
        ReadOnlySpan<byte> newBytes = SerializeNewValue(lease, keyBytes, newValue);
        int length = newBytes.Length;
        byte[] copy = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            newBytes.CopyTo(copy);
            return TrySerializeComparison(lease, comparisonValue, out ReadOnlySpan<byte> comparison)
                ? _cache.SetWithOutcome(keyBytes, copy.AsSpan(0, length), ttlTicks, SetCondition.IfValueEquals, comparison) == SetOutcome.Stored
                : NoComparisonMatches(keyBytes);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(copy);
        }
    }

    /// <summary>Serializes and checks the new value of <see cref="TryUpdateIfEquals"/>: a refusal names <c>newValue</c>.</summary>
    private ReadOnlySpan<byte> SerializeNewValue(ValueLease lease, ReadOnlySpan<byte> keyBytes, TValue newValue)
    {
        try
        {
            ReadOnlySpan<byte> bytes = lease.Serialize(_values, newValue);
            _cache.CheckValue(keyBytes, bytes);
            return bytes;
        }
        catch (ArgumentException e) when (e.ParamName == "value")
        {
            throw Renamed(e, nameof(newValue));
        }
    }

    /// <summary>The serializer's or the byte cache's refusal of its <c>value</c> argument, named as the caller's argument
    /// <paramref name="paramName"/> (same exception type and message; a plain ArgumentException keeps the original as its
    /// inner exception, the null and range exceptions have no constructor for both).</summary>
    private static ArgumentException Renamed(ArgumentException e, string paramName)
    {
        string message = e.Message.Replace(" (Parameter 'value')", "", StringComparison.Ordinal);
        return e switch
        {
            ArgumentNullException => new ArgumentNullException(paramName, message),
            // Its Message has the actual value appended: keep that as ActualValue, not baked into the new message.
            ArgumentOutOfRangeException { ActualValue: { } actual } => new ArgumentOutOfRangeException(paramName, actual,
                message.Replace($"{Environment.NewLine}Actual value was {actual}.", "", StringComparison.Ordinal)),
            ArgumentOutOfRangeException => new ArgumentOutOfRangeException(paramName, message),
            _ => new ArgumentException(message, paramName, e),
        };
    }

    /// <summary>Gives the key's live entry a new time to live from now without reading or rewriting its value; not a
    /// lookup for the statistics or the policy. See <see cref="OffHeapCache.Touch"/>.</summary>
    /// <returns>Whether the entry exists with the new time to live (false when absent or expired).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeToLive"/> is not positive (other than
    /// <see cref="Timeout.InfiniteTimeSpan"/>), or the serialized key is too long.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    [SkipLocalsInit]
    public bool Touch(TKey key, TimeSpan timeToLive)
    {
        using KeyLease keyBytes = SerializeKey(key, stackalloc byte[KeyScratchBytes]);
        return _cache.Touch(keyBytes.Bytes, timeToLive);
    }

    /// <summary>Whether a live entry exists for the key.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The serialized key is longer than <see cref="OffHeapCache.MaxKeyBytes"/>.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    [SkipLocalsInit]
    public bool ContainsKey(TKey key)
    {
        using KeyLease keyBytes = SerializeKey(key, stackalloc byte[KeyScratchBytes]);
        return _cache.ContainsKey(keyBytes.Bytes);
    }

    /// <summary>
    /// The keys of the live entries, deserialized; weakly consistent, as <see cref="OffHeapCache.Keys"/> (not a snapshot;
    /// a key that stays unchanged for the whole enumeration is returned exactly once, one removed and added again meanwhile
    /// may be returned twice; the caller may write meanwhile).
    /// Covers the whole byte cache: a view sharing it with other views meets their keys too (and their bytes may not
    /// deserialize as <typeparamref name="TKey"/>).
    /// </summary>
    /// <exception cref="ObjectDisposedException">The cache was disposed (also from the enumeration's next batch).</exception>
    /// <exception cref="InvalidOperationException">Enumerated from an eviction listener.</exception>
    /// <remarks>A key its serializer cannot read (another view's, sharing the byte cache) ends the enumeration with the
    /// serializer's exception (<see cref="ArgumentException"/> from <see cref="UnmanagedSerializer{T}"/>,
    /// <see cref="System.Text.Json.JsonException"/> from <see cref="SystemTextJsonSerializer{T}"/>).</remarks>
    public IEnumerable<TKey> Keys
    {
        get
        {
            _cache.ThrowIfDisposed();
            ICacheSerializer<TKey> keys = _keys;
            return _cache.EnumerateEntries(withValues: false, (key, _) => keys.Deserialize(key));
        }
    }

    /// <summary>
    /// The live entries, deserialized; weakly consistent, as <see cref="OffHeapCache.Entries"/> (not a snapshot; each pair
    /// is one consistent version of its entry; an entry that stays unchanged for the whole enumeration is returned exactly
    /// once, one removed and added again meanwhile may be returned twice; the caller may write meanwhile). Not a lookup:
    /// statistics and the policy do not see it, and no time to live is renewed. The keys and values are deserialized outside the
    /// cache's locks. Covers the whole byte cache, as <see cref="Keys"/> does.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The cache was disposed (also from the enumeration's next batch).</exception>
    /// <exception cref="InvalidOperationException">Enumerated from an eviction listener.</exception>
    /// <remarks>A key or value its serializer cannot read (another view's, sharing the byte cache) ends the enumeration with
    /// the serializer's exception, as in <see cref="Keys"/>.</remarks>
    public IEnumerable<KeyValuePair<TKey, TValue>> Entries
    {
        get
        {
            _cache.ThrowIfDisposed();
            ICacheSerializer<TKey> keys = _keys;
            ICacheSerializer<TValue> values = _values;
            return _cache.EnumerateEntries(withValues: true, (key, value) => new KeyValuePair<TKey, TValue>(keys.Deserialize(key), values.Deserialize(value)));
        }
    }

    /// <summary>
    /// The values of the live entries, deserialized; read as <see cref="Entries"/> reads them (weakly consistent, not a
    /// lookup). Covers the whole byte cache, as <see cref="Keys"/> does.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The cache was disposed (also from the enumeration's next batch).</exception>
    /// <exception cref="InvalidOperationException">Enumerated from an eviction listener.</exception>
    public IEnumerable<TValue> Values
    {
        get
        {
            _cache.ThrowIfDisposed();
            ICacheSerializer<TValue> values = _values;
            return _cache.EnumerateEntries(withValues: true, (_, value) => values.Deserialize(value));
        }
    }

    /// <summary>Enumerates <see cref="Entries"/> (weakly consistent, not a snapshot, not a lookup).</summary>
    /// <exception cref="ObjectDisposedException">The cache was disposed (also from the enumeration's next batch).</exception>
    /// <exception cref="InvalidOperationException">Enumerated from an eviction listener.</exception>
    public IEnumerator<KeyValuePair<TKey, TValue>> GetEnumerator() => Entries.GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Removes every entry of the byte cache (of every view that shares it).</summary>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public void Clear() => _cache.Clear();

    /// <summary>Removes every entry of the byte cache (of every view that shares it) past its time to live now; returns how many
    /// (see <see cref="OffHeapCache.RemoveExpired"/>).</summary>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    /// <exception cref="InvalidOperationException">Called from this cache's eviction listener.</exception>
    public long RemoveExpired() => _cache.RemoveExpired();

    /// <summary>The byte cache's counters.</summary>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public CacheStatistics GetStatistics() => _cache.GetStatistics();

    /// <summary>Disposes the byte cache (waits for operations in flight, frees all native memory) when this typed cache owns
    /// it (created from options, or a view with <c>ownsCache: true</c>); a view of a cache it does not own does nothing.</summary>
    public void Dispose()
    {
        if (_ownsCache)
        {
            _cache.Dispose();
        }
    }

    /// <summary>
    /// The key's bytes in <paramref name="scratch"/> when a built-in serializer's shortcut fits it there (a string of at
    /// most a third as many characters, an unmanaged key), else in a key buffer lent for the call (<see cref="SerializeKey(TKey)"/>).
    /// The same bytes and the same refusals either way.
    /// </summary>
    private KeyLease SerializeKey(TKey key, Span<byte> scratch)
    {
        if (TryEncodeStringKey(key, scratch, out int length))
        {
            return new KeyLease(scratch[..length]);
        }
        if (_keysAreRaw)
        {
            if (s_keyMayBeNull && key is null)
            {
                ThrowKeyNull();   // a null Nullable<T>: refused as on the general path (its bytes would be a key of their own)
            }
            Unsafe.WriteUnaligned(ref MemoryMarshal.GetReference(scratch), key);   // KeyScratchBytes >= sizeof(TKey) (Shortcuts)
            return new KeyLease(scratch[..Unsafe.SizeOf<TKey>()]);
        }
        return SerializeKey(key);
    }

    /// <summary>With the built-in string serializer, a key of at most a third as many characters as <paramref name="scratch"/>
    /// has bytes, encoded there (a null key is left to the general path, which refuses it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryEncodeStringKey(TKey key, Span<byte> scratch, out int length)
    {
        if (_keysAreUtf8 && key is string text && text.Length <= scratch.Length / 3)
        {
            length = EncodeShortKey(text, scratch);
            return true;
        }
        length = 0;
        return false;
    }

    /// <summary>The UTF-8 of a string key into <paramref name="scratch"/> (at least 3 bytes a character); returns its length.</summary>
    /// <exception cref="ArgumentException">A lone surrogate, named "key" and wrapping the encoder's refusal, as the
    /// serializer's is on the general path.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int EncodeShortKey(string text, Span<byte> scratch)
        => StrictUtf8.TryGetShortAsciiBytes(text, scratch) ? text.Length : EncodeShortKeyGeneral(text, scratch);

    /// <summary><see cref="EncodeShortKey"/> for a text that is not short ASCII (its refusal renamed here, apart from the hot path).</summary>
    private static int EncodeShortKeyGeneral(string text, Span<byte> scratch)
    {
        try
        {
            return StrictUtf8.GetBytes(text, scratch, "value");
        }
        catch (ArgumentException e) when (e.ParamName == "value" && e.GetType() == typeof(ArgumentException))
        {
            throw Renamed(e, "key");   // a lone surrogate, reported as the serializer's is below
        }
    }

    /// <summary>Serializes <paramref name="key"/> into a key buffer lent for the call (see <see cref="KeyLease"/>).</summary>
    private KeyLease SerializeKey(TKey key)
    {
        if (s_keyMayBeNull && key is null)
        {
            ThrowKeyNull();   // not the serializer's "value": every public member calls its parameter "key"
        }
        ArrayBufferWriter<byte> buffer = TypedCallBuffers.RentKey();
        bool serialized = false;
        try
        {
            _keys.Serialize(key, buffer);
            serialized = true;
        }
        catch (ArgumentException e) when (e.ParamName == "value" && e.GetType() == typeof(ArgumentException))
        {
            // The serializer's parameter is "value"; here it is the caller's key (a string with a lone surrogate, say).
            throw Renamed(e, "key");
        }
        finally
        {
            if (!serialized)
            {
                TypedCallBuffers.ReturnKey(buffer);
            }
        }
        return new KeyLease(buffer);
    }

    /// <summary>The serialized key in an array of its own (for the calls that keep it past the call's buffers).</summary>
    private byte[] SerializeKeyToArray(TKey key)
    {
        using KeyLease keyBytes = SerializeKey(key);
        return keyBytes.Bytes.ToArray();
    }

    /// <summary>
    /// A serialized key in this thread's key buffer, taken out of its slot for one call (<see cref="TypedCallBuffers"/>):
    /// a serializer or listener that calls a typed cache during the call gets a buffer of its own, so it cannot overwrite
    /// the key being looked up or stored. <see cref="Dispose"/> puts the buffer back.
    /// </summary>
    private readonly ref struct KeyLease
    {
        private readonly ArrayBufferWriter<byte>? _buffer;   // null: the key is _bytes (the caller's stack)
        private readonly ReadOnlySpan<byte> _bytes;

        public KeyLease(ArrayBufferWriter<byte> buffer) => _buffer = buffer;

        public KeyLease(ReadOnlySpan<byte> bytes) => _bytes = bytes;

        public ReadOnlySpan<byte> Bytes => _buffer is null ? _bytes : _buffer.WrittenSpan;

        public void Dispose()
        {
            if (_buffer is not null)
            {
                TypedCallBuffers.ReturnKey(_buffer);
            }
        }
    }

    [DoesNotReturn]
    private static void ThrowKeyNull() => throw new ArgumentNullException("key");

    /// <summary>
    /// This thread's value buffer, taken out of its slot for one call. The cache may run the eviction listener before it
    /// copies the value being stored, and the listener may read this facade: with the buffer left in its slot, that read
    /// overwrote the bytes the outer Set then stored (another entry's value, or a mix of two; found by review). A call
    /// made during the lease finds the slot empty and uses a buffer of its own (the only case that allocates).
    /// <see cref="Dispose"/> puts the buffer back, or lets it go if it grew past <see cref="TypedCallBuffers.RetainedBufferBytes"/>.
    /// </summary>
    private ref struct ValueLease
    {
        private readonly ArrayBufferWriter<byte> _buffer;

        public ValueLease()
        {
            _buffer = TypedCallBuffers.RentValue();
        }

        public readonly ArrayBufferWriter<byte> Buffer => _buffer;

        /// <summary>
        /// The bytes of <paramref name="value"/>: for the built-in <see cref="ByteArraySerializer"/>, the array itself (no
        /// copy; the cache copies it into native memory as it copies a span API caller's bytes, so a multi-megabyte
        /// value no longer passes through, and allocates, a buffer of its size); else the serializer's output in the
        /// buffer (replacing what it held).
        /// </summary>
        public readonly ReadOnlySpan<byte> Serialize(ICacheSerializer<TValue> serializer, TValue value)
        {
            if (serializer is ByteArraySerializer && value is byte[] raw)
            {
                return raw;
            }
            _buffer.ResetWrittenCount();
            serializer.Serialize(value, _buffer);
            return _buffer.WrittenSpan;
        }

        /// <summary>
        /// Reads the value of <paramref name="key"/> and deserializes it; false on a miss. A read into too short a span is
        /// not counted by the cache (<see cref="OffHeapCache.TryGet(ReadOnlySpan{byte}, Span{byte}, out int)"/>).
        /// </summary>
        public readonly bool TryRead(OffHeapCache cache, ReadOnlySpan<byte> key, ICacheSerializer<TValue> serializer, [MaybeNullWhen(false)] out TValue value)
            => TryCopyOut<ReadCopy>(cache, key, serializer, out value);

        /// <summary>
        /// Removes the entry of <paramref name="key"/> and deserializes the value it held, in one step; false when there was
        /// none. A try whose destination is too short removes nothing
        /// (<see cref="OffHeapCache.Remove(ReadOnlySpan{byte}, Span{byte}, out int)"/>).
        /// </summary>
        public readonly bool TryRemove(OffHeapCache cache, ReadOnlySpan<byte> key, ICacheSerializer<TValue> serializer, [MaybeNullWhen(false)] out TValue value)
            => TryCopyOut<RemoveCopy>(cache, key, serializer, out value);

        /// <summary>
        /// The value of <paramref name="key"/>, copied out by <typeparamref name="TCopy"/> and deserialized; false when there
        /// is none. The value is copied into the buffer through the span API; one longer than the buffer is copied again
        /// into a buffer grown to its length or, for the built-in <see cref="ByteArraySerializer"/>, straight into the array
        /// returned (a multi-megabyte value used to grow a buffer to its size on every call, then be copied once more).
        /// </summary>
        private readonly bool TryCopyOut<TCopy>(OffHeapCache cache, ReadOnlySpan<byte> key, ICacheSerializer<TValue> serializer, [MaybeNullWhen(false)] out TValue value)
            where TCopy : struct, IValueCopy
        {
            _buffer.ResetWrittenCount();
            Span<byte> destination = _buffer.GetSpan();
            byte[]? exact = null;   // the array a byte[] value is copied into when it did not fit the buffer
            while (true)
            {
                if (default(TCopy).TryCopy(cache, key, destination, out int length))
                {
                    value = exact is not null && length == exact.Length
                        ? (TValue)(object)exact   // the serializer is ByteArraySerializer, so TValue is byte[]
                        : serializer.Deserialize(destination[..length]);
                    return true;
                }
                if (length == 0)
                {
                    value = default;
                    return false;
                }
                // Too short (nothing counted or removed): the value has `length` bytes now (a racing set may change that
                // before the next try; then this repeats).
                destination = serializer is ByteArraySerializer ? (exact = new byte[length]) : _buffer.GetSpan(length);
            }
        }

        public readonly void Dispose() => TypedCallBuffers.ReturnValue(_buffer);
    }
}

/// <summary>How the typed facade's value lease copies a value out (non-generic, so the shared code of reference-type
/// instantiations needs no runtime type lookup to reach it): true with its length when it fit <c>destination</c>; false
/// with 0 when there is none, or with the length needed when it did not fit.</summary>
internal interface IValueCopy
{
    bool TryCopy(OffHeapCache cache, ReadOnlySpan<byte> key, Span<byte> destination, out int length);
}

/// <summary>A counted lookup.</summary>
internal readonly struct ReadCopy : IValueCopy
{
    public bool TryCopy(OffHeapCache cache, ReadOnlySpan<byte> key, Span<byte> destination, out int length)
        => cache.TryGetIntoSeparateBuffer(key, destination, out length);
}

/// <summary>A removal that returns the value removed.</summary>
internal readonly struct RemoveCopy : IValueCopy
{
    public bool TryCopy(OffHeapCache cache, ReadOnlySpan<byte> key, Span<byte> destination, out int length)
        => cache.Remove(key, destination, out length);
}

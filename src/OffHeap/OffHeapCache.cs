using System.Buffers;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.IO.Hashing;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using CacheKit.Policies;
using CacheKit.Slab;

namespace CacheKit.OffHeap;

/// <summary>Visits one entry for <see cref="OffHeapCache.ForEachEntry{TState}"/>; returns false to stop the walk.</summary>
/// <typeparam name="TState">Caller state, so a static lambda captures nothing and allocates nothing.</typeparam>
/// <param name="key">The entry's key (valid only during the call).</param>
/// <param name="value">The entry's value (valid only during the call).</param>
/// <param name="state">The state given to ForEachEntry.</param>
public delegate bool EntryVisitor<in TState>(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, TState state);

/// <summary>
/// A cache of byte keys and byte values held in native memory, outside the garbage-collected heap,
/// within an exact byte budget (<see cref="OffHeapCacheOptions.CapacityBytes"/>). Thread-safe in any
/// mix of calls: writes lock one shard; reads validate optimistically and do not wait for writers, except a read that
/// keeps losing to writers of its bucket (it then takes the shard lock) and, for policies that buffer hits, the read that
/// finds its buffer stripe full and replays 8 of its records (it tries the lock and never waits for it).
/// </summary>
/// <remarks>
/// <para>A key is hashed with a per-instance seeded XxHash3; the top 8 bits pick the shard. Each shard
/// holds an index of 64-byte buckets and a slab arena of entries; an eviction policy per shard picks
/// victims. See docs/engine.md for layouts and the concurrency argument.</para>
/// <para>The span get and set paths allocate nothing on the managed heap, on hits, misses, evictions
/// and expirations alike.</para>
/// </remarks>
public sealed partial class OffHeapCache : IDisposable
{
    private readonly SlabPool _pool;
    private readonly Shard[] _shards;
    private readonly int _shardShift;          // shard = (hash >> 56) >> _shardShift
    private readonly long _seed;
    private readonly TimeProvider _time;

    /// <summary>The clock the cache measures time to live with (<see cref="OffHeapCacheOptions.TimeProvider"/>): the
    /// distributed cache reads its expiration headers by it.</summary>
    internal TimeProvider TimeProvider => _time;
    private readonly long _defaultTtlTicks;    // 0 = never expire
    private readonly int _maxKeyBytes;
    private readonly int _maxValueBytes;
    private readonly int _maxEntryBytes;       // the largest chunk: header + key + value must fit
    private readonly long _capacityBytes;
    private readonly long _entryBound;   // the sum of the shards' policy capacities (CacheStatistics.EntryBound)
    private readonly OperationCounters _counters = new();   // in-flight (Dispose), hits, misses; per processor
    private int _disposed;                     // 0 = open, 1 = disposed (or disposing)

    /// <summary>Creates a cache; allocates its index at once (counted in the budget), pages on demand.</summary>
    /// <param name="options">The configuration; validated, then copied (later changes have no effect).</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> or its TimeProvider is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A value is outside its documented range; the message names it and the limit.</exception>
    /// <exception cref="ArgumentException">The policy is not available.</exception>
    public OffHeapCache(OffHeapCacheOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(options.TimeProvider, nameof(options.TimeProvider));
        if (options.TimeProvider.TimestampFrequency <= 0)
        {
            // Every time to live is converted to timestamp ticks with this frequency (ToTimestampTicks): 0 or less
            // would silently turn each one into a single tick.
            throw new ArgumentOutOfRangeException(nameof(options.TimeProvider), options.TimeProvider.TimestampFrequency,
                "TimeProvider.TimestampFrequency must be positive (timestamp ticks per second).");
        }
        CacheLayout layout = CacheLayout.Compute(options);

        _capacityBytes = options.CapacityBytes;
        for (int shard = 0; shard < layout.ShardCount; shard++)
        {
            _entryBound += layout.PolicyCapacity(shard);
        }
        _time = options.TimeProvider;
        _defaultTtlTicks = options.DefaultTimeToLive is { } ttl ? ToTimestampTicks(ttl, nameof(options.DefaultTimeToLive)) : 0;
        _maxKeyBytes = options.MaxKeyBytes;
        _maxEntryBytes = layout.MaxEntryBytes;
        _maxValueBytes = layout.MaxValueBytes;
        _seed = options.HashSeed ?? BitConverter.ToInt64(RandomNumberGenerator.GetBytes(8));
        _shardShift = 8 - BitOperations.Log2((uint)layout.ShardCount);

        var slabOptions = new SlabOptions { BudgetBytes = options.CapacityBytes, PageSize = layout.PageSize, SizeClassStepsPerDoubling = layout.SizeClassStepsPerDoubling };
        if (options.PoisonFreedMemory is bool poison)
        {
            slabOptions.PoisonFreedMemory = poison;
        }
        SharedWindowChoice? sharedWindow = SharesWindowChoice(options, layout) ? new SharedWindowChoice() : null;
        _pool = new SlabPool(slabOptions);
        try
        {
            _shards = new Shard[layout.ShardCount];
            for (int i = 0; i < _shards.Length; i++)
            {
                nuint indexBytes = checked((nuint)layout.BucketsPerShard * (nuint)Unsafe.SizeOf<IndexBucket>());   // a 32-bit process must not wrap
                if (!_pool.TryAllocateBlock(indexBytes, out NativeBlock block))
                {
                    throw new ArgumentOutOfRangeException(nameof(options.CapacityBytes), options.CapacityBytes,
                        $"CapacityBytes is too small for the index ({layout.IndexBytes} bytes) and one page per shard ({layout.ShardCount} x {layout.PageSize}); the minimum for these options is {layout.MinimumCapacity}.");
                }
                IEvictionPolicy policy = CreatePolicy(options, layout, i, sharedWindow);
                _shards[i] = new Shard(this, _pool, block, (uint)layout.BucketsPerShard, policy, _time,
                    options.EvictionListener, _seed, options.MaxEvictionsPerInsert, options.BackgroundReadReplay, options.ReadBufferStripes);
            }
        }
        catch
        {
            _pool.Dispose();
            throw;
        }
    }

    /// <summary>Whether no entry is stored (expired ones not yet reclaimed count, as in <see cref="Count"/>): stops at the first
    /// shard that holds one.</summary>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool IsEmpty
    {
        get
        {
            ThrowIfDisposed();
            foreach (Shard shard in _shards)
            {
                if (shard.Count != 0)
                {
                    return false;
                }
            }
            return true;
        }
    }

    /// <summary>Number of entries stored, including expired ones not yet reclaimed: a read never returns an entry past its
    /// time to live, but the entry leaves only when a write of its key, a write that needs room, or <see cref="RemoveExpired"/>
    /// reaches it (the statistics' <see cref="CacheStatistics.PayloadBytes"/> and the metrics count it until then).</summary>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public long Count
    {
        get
        {
            ThrowIfDisposed();
            long count = 0;
            foreach (Shard shard in _shards)
            {
                count += shard.Count;
            }
            return count;
        }
    }

    /// <summary>The largest key accepted (<see cref="OffHeapCacheOptions.MaxKeyBytes"/>).</summary>
    public int MaxKeyBytes => _maxKeyBytes;

    /// <summary>The largest value accepted with a key of <see cref="MaxKeyBytes"/>; shorter keys leave room for no more (the limit is per value).</summary>
    public int MaxValueBytes => _maxValueBytes;

    /// <summary>Number of shards.</summary>
    public int ShardCount => _shards.Length;

    /// <summary>
    /// Copies the value of <paramref name="key"/> into <paramref name="destination"/>.
    /// </summary>
    /// <returns>
    /// True on a hit (<paramref name="bytesWritten"/> = the value's length). False on a miss
    /// (<paramref name="bytesWritten"/> = 0) and when <paramref name="destination"/> is too small
    /// (<paramref name="bytesWritten"/> = the value's length, always &gt; 0, so the two are told apart;
    /// retry with a buffer at least that long). After false the destination's content is unspecified, and after
    /// true so are its bytes past <paramref name="bytesWritten"/> (a failed optimistic attempt may have written
    /// there). The destination may overlap the key (one buffer for both): the key is then copied before the lookup.
    /// A read into a too-small destination is neither counted in the statistics nor shown to the eviction
    /// policy: the retry that fits is the lookup counted (a caller that never retries is not counted at all).
    /// </returns>
    /// <exception cref="ArgumentOutOfRangeException">The key is longer than <see cref="MaxKeyBytes"/>.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool TryGet(ReadOnlySpan<byte> key, Span<byte> destination, out int bytesWritten)
    {
        return SpansOverlap(key, destination)
            ? TryGetIntoKeyBuffer(key, destination, out bytesWritten)
            : TryGetIntoSeparateBuffer(key, destination, out bytesWritten);
    }

    /// <summary>
    /// <c>destination.Overlaps(key)</c>, inlined: the framework's generic check is a call of about 15 instructions on
    /// every span get. Two byte spans overlap when each starts before the other ends (an empty one overlaps nothing);
    /// with the offset between their starts, as <see cref="MemoryExtensions.Overlaps{T}(Span{T}, ReadOnlySpan{T})"/>
    /// computes it (no memory is read through the references).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool SpansOverlap(ReadOnlySpan<byte> key, ReadOnlySpan<byte> destination)
    {
        nint offset = Unsafe.ByteOffset(ref MemoryMarshal.GetReference(key), ref MemoryMarshal.GetReference(destination));
        return key.Length != 0 && destination.Length != 0
            && ((nuint)offset < (nuint)key.Length || (nuint)(-offset) < (nuint)destination.Length);
    }

    /// <summary>
    /// <see cref="TryGet(ReadOnlySpan{byte}, Span{byte}, out int)"/> for a caller whose destination cannot overlap the key
    /// (the typed facade: its key and value buffers are distinct arrays), without the overlap check.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool TryGetIntoSeparateBuffer(ReadOnlySpan<byte> key, Span<byte> destination, out int bytesWritten)
    {
        Debug.Assert(!destination.Overlaps(key), "the caller promised a destination apart from the key");
        var sink = new SpanSink(destination);
        ReadResult result = Read(key, ref sink, out int length);
        bytesWritten = result == ReadResult.Miss ? 0 : length;
        return result == ReadResult.Hit;
    }

    /// <summary>The typed facade's lookup of a <c>byte[]</c> value: on a hit, the value in a new array of its length
    /// (<see cref="NewArraySink"/>), counted as <see cref="TryGet(ReadOnlySpan{byte}, Span{byte}, out int)"/> is.</summary>
    internal bool TryGetNewArray(ReadOnlySpan<byte> key, [NotNullWhen(true)] out byte[]? value)
    {
        var sink = default(NewArraySink);
        bool hit = Read(key, ref sink, out _) == ReadResult.Hit;
        value = hit ? sink.Array : null;
        return hit;
    }

    /// <summary>
    /// <see cref="TryGet(ReadOnlySpan{byte}, Span{byte}, out int)"/> with a destination that overlaps the key (one
    /// buffer for both): an optimistic attempt that fails validation has already copied value bytes over the key,
    /// and its retry would look up those bytes (a miss for a key present throughout, or another key's value). So
    /// the key is copied first (<see cref="StableCopy"/>: the stack, or a pooled array for a long key), and the
    /// lookup uses the copy.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    [SkipLocalsInit]
    private bool TryGetIntoKeyBuffer(ReadOnlySpan<byte> key, Span<byte> destination, out int bytesWritten)
    {
        CheckKey(key);   // before copying a key of any length
        using var stable = new StableCopy(key, stackalloc byte[StableCopy.StackBytes]);
        return TryGet(stable.Bytes, destination, out bytesWritten);   // the copy overlaps nothing
    }

    /// <summary>Appends the value of <paramref name="key"/> to <paramref name="destination"/>; false (nothing written) on a miss.</summary>
    /// <remarks><paramref name="destination"/>'s <c>GetSpan</c> may run while the key's shard is locked (a contended
    /// read), so it must not call this cache. A write from there takes effect, but if it keeps moving the entry
    /// being read the lookup ends with <see cref="InvalidOperationException"/> (never a torn value);
    /// <see cref="Dispose"/> from there (or from <c>Advance</c>) throws <see cref="InvalidOperationException"/>: it would
    /// wait for this lookup, which is calling it.</remarks>
    /// <exception cref="ArgumentNullException"><paramref name="destination"/> is null.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="destination"/> wrote to this cache from <c>GetSpan</c> (see remarks).</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/>'s <c>GetSpan</c> returned memory that overlaps
    /// <paramref name="key"/> (a failed optimistic copy would overwrite the key being looked up), or fewer bytes than it
    /// was asked for (ParamName <c>destination</c>); nothing is advanced.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The key is longer than <see cref="MaxKeyBytes"/>.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool TryGet(ReadOnlySpan<byte> key, IBufferWriter<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var sink = new BufferWriterSink(destination, this);
        return Read(key, ref sink, out _) == ReadResult.Hit;
    }

    /// <summary>Whether a live (not expired) entry for <paramref name="key"/> is stored. Counts as a lookup.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The key is longer than <see cref="MaxKeyBytes"/>.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool ContainsKey(ReadOnlySpan<byte> key)
    {
        var sink = default(NoCopySink);
        return Read(key, ref sink, out _) == ReadResult.Hit;
    }

    /// <summary>
    /// Stores <paramref name="value"/> under <paramref name="key"/> with the default time to live.
    /// </summary>
    /// <returns>
    /// Whether the entry is now stored. False when admission refused it or no room could be made
    /// within the per-insert eviction cap; then any earlier value of the key is gone too.
    /// </returns>
    /// <exception cref="ArgumentOutOfRangeException">The key is longer than <see cref="MaxKeyBytes"/>, or the value longer than <see cref="MaxValueBytes"/>; the cache is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool Set(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value) => SetCore(key, value, _defaultTtlTicks);

    /// <summary>Stores <paramref name="value"/> under <paramref name="key"/>, expiring after <paramref name="timeToLive"/>
    /// (<see cref="Timeout.InfiniteTimeSpan"/>: never, whatever <see cref="OffHeapCacheOptions.DefaultTimeToLive"/> says).</summary>
    /// <returns>Whether the entry is now stored (see <see cref="Set(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>).</returns>
    /// <exception cref="ArgumentOutOfRangeException">The time to live is zero or negative (other than <see cref="Timeout.InfiniteTimeSpan"/>);
    /// the key or value is too long. The cache is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool Set(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, TimeSpan timeToLive)
        => SetCore(key, value, ToTimestampTicks(timeToLive, nameof(timeToLive)));

    /// <summary>
    /// Stores <paramref name="value"/> under <paramref name="key"/> with the default time to live only if the key has no
    /// live entry (<c>ConcurrentDictionary.TryAdd</c>), atomically: of concurrent adds of one key, at most one stores.
    /// An entry past its time to live counts as absent (it leaves as an expiration first).
    /// </summary>
    /// <returns>Whether the value is now stored. False when a live entry exists (it is left as it is, and the attempt
    /// is not an access for the eviction policy), or when admission refused the newcomer or no room could be made.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The key is longer than <see cref="MaxKeyBytes"/>, or the value longer than <see cref="MaxValueBytes"/>; the cache is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool TryAdd(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value) => SetCore(key, value, _defaultTtlTicks, SetCondition.IfAbsent);

    /// <summary><see cref="TryAdd(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/> with its own time to live
    /// (<see cref="Timeout.InfiniteTimeSpan"/>: never expires).</summary>
    /// <returns>Whether the value is now stored (see <see cref="TryAdd(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>).</returns>
    /// <exception cref="ArgumentOutOfRangeException">The time to live is zero or negative (other than <see cref="Timeout.InfiniteTimeSpan"/>);
    /// the key or value is too long. The cache is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool TryAdd(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, TimeSpan timeToLive)
        => SetCore(key, value, ToTimestampTicks(timeToLive, nameof(timeToLive)), SetCondition.IfAbsent);

    /// <summary>
    /// Replaces the value of <paramref name="key"/> (new time to live: the default) only if the key has a live entry,
    /// atomically: a key removed, evicted or expired meanwhile is not brought back.
    /// </summary>
    /// <returns>Whether the new value is now stored. False when there is no live entry (an expired one leaves as an
    /// expiration), or when no room could be made for the new value (then the old one is gone too, as after a failed set); also when making room evicted the entry itself (it is then absent, as the eviction listener was told).</returns>
    /// <exception cref="ArgumentOutOfRangeException">The key is longer than <see cref="MaxKeyBytes"/>, or the value longer than <see cref="MaxValueBytes"/>; the cache is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool TryUpdate(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value) => SetCore(key, value, _defaultTtlTicks, SetCondition.IfPresent);

    /// <summary><see cref="TryUpdate(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/> with its own time to live
    /// (<see cref="Timeout.InfiniteTimeSpan"/>: never expires).</summary>
    /// <returns>Whether the new value is now stored (see <see cref="TryUpdate(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>).</returns>
    /// <exception cref="ArgumentOutOfRangeException">The time to live is zero or negative (other than <see cref="Timeout.InfiniteTimeSpan"/>);
    /// the key or value is too long. The cache is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool TryUpdate(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, TimeSpan timeToLive)
        => SetCore(key, value, ToTimestampTicks(timeToLive, nameof(timeToLive)), SetCondition.IfPresent);

    /// <summary>
    /// Replaces the value of <paramref name="key"/> (new time to live: the default) only if its live entry holds exactly the
    /// bytes of <paramref name="comparisonValue"/>, atomically: a compare-and-swap on the value, as
    /// <c>ConcurrentDictionary.TryUpdate(key, newValue, comparisonValue)</c>. Read the value, compute the new one from it,
    /// and retry from the read when this returns false because another writer changed it first.
    /// </summary>
    /// <returns>Whether the new value is now stored. False when there is no live entry, when it holds other bytes (nothing
    /// changes), or when no room could be made for the new value (then the old one is gone too, as after a failed set); also when making room evicted the entry itself (it is then absent, as the eviction listener was told).</returns>
    /// <exception cref="ArgumentOutOfRangeException">The key is longer than <see cref="MaxKeyBytes"/>, or the value longer than <see cref="MaxValueBytes"/>; the cache is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool TryUpdate(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ReadOnlySpan<byte> comparisonValue)
        => SetWithOutcome(key, value, _defaultTtlTicks, SetCondition.IfValueEquals, comparisonValue) == SetOutcome.Stored;

    /// <summary><see cref="TryUpdate(ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{byte})"/> with its own time to live
    /// (<see cref="Timeout.InfiniteTimeSpan"/>: never expires).</summary>
    /// <returns>Whether the new value is now stored (see <see cref="TryUpdate(ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>).</returns>
    /// <exception cref="ArgumentOutOfRangeException">The time to live is zero or negative (other than <see cref="Timeout.InfiniteTimeSpan"/>);
    /// the key or value is too long. The cache is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool TryUpdate(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ReadOnlySpan<byte> comparisonValue, TimeSpan timeToLive)
        => SetWithOutcome(key, value, ToTimestampTicks(timeToLive, nameof(timeToLive)), SetCondition.IfValueEquals, comparisonValue) == SetOutcome.Stored;

    /// <summary>Removes the entry of <paramref name="key"/>; false if there was none. An entry past its time to live counts
    /// as none (as for <see cref="ContainsKey"/>): it is removed as an expiration, reported to the eviction listener as
    /// <see cref="EvictionReason.Expired"/>, and the call returns false (or throws what the listener threw; the entry is gone either way).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The key is longer than <see cref="MaxKeyBytes"/>.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool Remove(ReadOnlySpan<byte> key)
        => RemoveCore(key, compareValue: false, comparisonValue: default, copyValue: false, destination: default, out _) == RemoveOutcome.Removed;

    /// <summary>
    /// Removes the entry of <paramref name="key"/> and copies the value it held into <paramref name="destination"/>, in one
    /// step under the key's lock (<c>ConcurrentDictionary.TryRemove(key, out value)</c>): the value returned is the one
    /// removed, never one a racing set replaced. Not a lookup for the statistics or the policy. An entry past its time to
    /// live counts as none, as for <see cref="Remove(ReadOnlySpan{byte})"/>.
    /// </summary>
    /// <returns>True when the entry was removed (<paramref name="bytesWritten"/> = its value's length). False when there was
    /// none (<paramref name="bytesWritten"/> = 0), or when its value is longer than <paramref name="destination"/>: then
    /// no entry is removed and <paramref name="bytesWritten"/> is the length needed (always &gt; 0, so the two are told
    /// apart; retry with a buffer at least that long). The destination may overlap the key (the key is read before the
    /// value is copied); its bytes past the value, and all of them after false, are unspecified. Like every write of the
    /// key, any outcome keeps the value of a <c>GetOrAdd</c> of the key running meanwhile out of the cache.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The key is longer than <see cref="MaxKeyBytes"/>.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool Remove(ReadOnlySpan<byte> key, Span<byte> destination, out int bytesWritten)
    {
        RemoveOutcome outcome = RemoveCore(key, compareValue: false, comparisonValue: default, copyValue: true, destination, out int length);
        bytesWritten = outcome == RemoveOutcome.Absent ? 0 : length;
        return outcome == RemoveOutcome.Removed;
    }

    /// <summary>
    /// Removes the entry of <paramref name="key"/> and appends the value it held to <paramref name="destination"/>, in one
    /// step (see <see cref="Remove(ReadOnlySpan{byte}, Span{byte}, out int)"/>); false, nothing written, if there was none.
    /// </summary>
    /// <remarks><paramref name="destination"/>'s <c>GetSpan</c> and <c>Advance</c> run outside the cache's locks. When the
    /// value is longer than the span it got (the first span is the writer's default size; later, a set racing the call), the
    /// call asks again for the value's length (nothing is removed meanwhile), so <c>GetSpan</c> may run more than once;
    /// <c>Advance</c> runs once, after the removal.</remarks>
    /// <exception cref="ArgumentNullException"><paramref name="destination"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/>'s <c>GetSpan(sizeHint)</c> returned fewer bytes than
    /// asked (nothing was removed).</exception>
    /// <exception cref="ArgumentOutOfRangeException">The key is longer than <see cref="MaxKeyBytes"/>.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool Remove(ReadOnlySpan<byte> key, IBufferWriter<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        CheckKey(key);   // these three before the caller's GetSpan
        ThrowIfDisposed();
        Shard.ThrowIfInListenerOf(this);
        int sizeHint = 0;
        while (true)
        {
            Span<byte> buffer = destination.GetSpan(sizeHint);
            if (buffer.Length < sizeHint)
            {
                // A writer that breaks GetSpan's contract would make this loop ask for the same length forever.
                throw new ArgumentException($"The destination's GetSpan({sizeHint}) returned {buffer.Length} bytes, fewer than asked; nothing was removed.", nameof(destination));
            }
            switch (RemoveCheckedKey(key, compareValue: false, comparisonValue: default, copyValue: true, buffer, out int length))
            {
                case RemoveOutcome.Removed:
                    destination.Advance(length);
                    return true;
                case RemoveOutcome.Absent:
                    return false;
                default:
                    // Too small: the value is longer than this span, which is at least sizeHint long. So each length that
                    // fails is longer than the one before (a racing set made the value longer), up to MaxValueBytes: the
                    // loop ends.
                    sizeHint = length;
                    break;
            }
        }
    }

    /// <summary>
    /// Removes the entry of <paramref name="key"/> only if its value is exactly <paramref name="comparisonValue"/>, in one
    /// step under the key's lock (<c>ConcurrentDictionary.TryRemove(KeyValuePair)</c>): a compare-and-delete that loses
    /// to a racing set of another value. Not a lookup for the statistics or the policy. An entry past its time to live
    /// counts as none.
    /// </summary>
    /// <returns>Whether the entry was removed: false when there was none or its value differs (then no entry changes; like
    /// every write of the key, either outcome keeps the value of a <c>GetOrAdd</c> of the key running meanwhile out of the
    /// cache).</returns>
    /// <exception cref="ArgumentOutOfRangeException">The key is longer than <see cref="MaxKeyBytes"/>.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public bool RemoveIfEquals(ReadOnlySpan<byte> key, ReadOnlySpan<byte> comparisonValue)
        => RemoveCore(key, compareValue: true, comparisonValue, copyValue: false, destination: default, out _) == RemoveOutcome.Removed;

    /// <summary>
    /// The one remove path: the key is copied once, before it is hashed, and only the copy is used (as in
    /// <see cref="WriteWithStableKey"/>: another thread changing the caller's key buffer meanwhile cannot make the key
    /// looked up, or the running <c>GetOrAdd</c> flight marked, disagree with the hash). The flight is marked first, and
    /// whatever the outcome, as by every write of the key: a remove of an absent key is how the invalidate-on-write
    /// pattern tells a running <c>GetOrAdd</c> that its source changed, and even a remove that throws (an expired entry's
    /// listener) has removed the entry.
    /// </summary>
    private RemoveOutcome RemoveCore(ReadOnlySpan<byte> key, bool compareValue, ReadOnlySpan<byte> comparisonValue, bool copyValue,
        Span<byte> destination, out int valueLength)
    {
        CheckKey(key);
        Shard.ThrowIfInListenerOf(this);
        return RemoveCheckedKey(key, compareValue, comparisonValue, copyValue, destination, out valueLength);
    }

    /// <summary><see cref="RemoveCore"/> after its key and listener checks (the buffer-writer loop makes them once, before
    /// the caller's first <c>GetSpan</c>).</summary>
    [SkipLocalsInit]
    private RemoveOutcome RemoveCheckedKey(ReadOnlySpan<byte> key, bool compareValue, ReadOnlySpan<byte> comparisonValue, bool copyValue,
        Span<byte> destination, out int valueLength)
    {
        using var stable = new StableCopy(key, stackalloc byte[StableCopy.StackBytes]);
        ulong hash = Hash(stable.Bytes);
        ref OperationCounters.Stripe stripe = ref Enter();
        Shard shard = ShardOf(hash);
        try
        {
            using (shard.EnterGate())
            {
                InvalidateFlightUnderShardLock(stable.Bytes, hash);
                return shard.RemoveUnsynchronized(hash, stable.Bytes, compareValue, comparisonValue, copyValue, destination, out valueLength);
            }
        }
        finally
        {
            Exit(ref stripe);
        }
    }

    /// <summary>
    /// Gives the live entry of <paramref name="key"/> a new time to live, counted from now, without reading or rewriting
    /// its value (memcached's <c>touch</c>, Redis's <c>EXPIRE</c>): what a sliding expiration needs on each read.
    /// <see cref="Timeout.InfiniteTimeSpan"/> makes it never expire. Not a lookup: hit and miss counts and the eviction
    /// policy do not see it (read the entry for that).
    /// </summary>
    /// <remarks>Changes the entry in place (nothing allocated, nothing evicted), except for an entry stored before its
    /// shard held any entry with an expiry: the first finite time to live given to such an entry writes it again with
    /// room for the expiry (in place too when the 8 more bytes keep its size class and it is at most 4 KiB; otherwise in a new
    /// chunk, which may make room by evicting, like a <see cref="Set(ReadOnlySpan{byte}, ReadOnlySpan{byte}, TimeSpan)"/>).</remarks>
    /// <returns>Whether the entry exists with the new time to live. False when there is no entry, or it is past its
    /// time to live (then it is removed as an expiration, as <see cref="Remove(ReadOnlySpan{byte})"/> does), or, in the rewrite above, when
    /// no room could be made (then the entry is gone, as after a failed set); also when making room evicted the entry itself (it is then absent, as the eviction listener was told).</returns>
    /// <exception cref="ArgumentOutOfRangeException">The time to live is zero or negative (other than
    /// <see cref="Timeout.InfiniteTimeSpan"/>); the key is longer than <see cref="MaxKeyBytes"/>. The cache is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    [SkipLocalsInit]
    public bool Touch(ReadOnlySpan<byte> key, TimeSpan timeToLive)
    {
        long ttlTicks = ToTimestampTicks(timeToLive, nameof(timeToLive));
        CheckKey(key);
        return WriteWithStableKey(key, value: default, ttlTicks, SetCondition.Always, touchOnly: true) == SetOutcome.Stored;
    }

    /// <summary>Removes every entry (statistics counters are kept).</summary>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    /// <exception cref="InvalidOperationException">Called from this cache's eviction listener; or from another cache's, after
    /// waiting 5 s for one of this cache's shard locks (see <see cref="EvictionListener"/>): the shards cleared before that stay
    /// cleared.</exception>
    public void Clear()
    {
        Shard.ThrowIfInListenerOf(this);
        ref OperationCounters.Stripe stripe = ref Enter();
        try
        {
            InvalidateAllFlights();
            foreach (Shard shard in _shards)
            {
                using (shard.EnterGate())
                {
                    shard.ClearUnsynchronized();
                }
            }
        }
        finally
        {
            Exit(ref stripe);
        }
    }

    /// <summary>Buckets one batch of <see cref="RemoveExpired"/> examines under a shard's lock (a writer of that shard waits at most that long).</summary>
    private const uint RemoveExpiredBatchBuckets = 4096;

    /// <summary>
    /// Removes every entry that is past its time to live now and returns how many it removed. Each leaves as an expiration:
    /// counted in <see cref="CacheStatistics.Expirations"/> and reported to the eviction listener as
    /// <see cref="EvictionReason.Expired"/>. A read never returns an expired entry, but the cache reclaims one only when a
    /// write of its key or a write that needs room reaches it, so until then it stays in <see cref="Count"/>, in the
    /// statistics' payload bytes and in the metrics; call this (from a timer, as MemoryCache scans on its
    /// <c>ExpirationScanFrequency</c>) when those figures must follow the clock. The shards are swept in batches of
    /// 4,096 index buckets (28,672 slots) under each shard's lock, so writers wait at most one batch; reads do not take the
    /// lock (a read that keeps meeting a bucket being changed falls back to it, as beside any writer).
    /// Costs one pass over the index and a header read per entry; a shard that holds no entry with a time to live is skipped.
    /// Neither a hit nor a miss for the statistics or the policy.
    /// </summary>
    /// <returns>The number of entries removed.</returns>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    /// <exception cref="InvalidOperationException">Called from this cache's eviction listener (which runs inside an eviction,
    /// under a shard's lock), as for every write; a listener may sweep another cache, but gives up after waiting 5 s for one
    /// of its shard locks (see <see cref="EvictionListener"/>; the shards swept before that stay swept).</exception>
    /// <remarks>An exception thrown by the eviction listener propagates; the entries removed before it stay removed (the
    /// one being reported included), the rest stay until the next sweep.</remarks>
    public long RemoveExpired()
    {
        Shard.ThrowIfInListenerOf(this);
        ref OperationCounters.Stripe stripe = ref Enter();
        try
        {
            long removed = 0;
            foreach (Shard shard in _shards)
            {
                for (uint first = 0; first < shard.BucketCount; first += RemoveExpiredBatchBuckets)
                {
                    using (shard.EnterGate())
                    {
                        removed += shard.RemoveExpiredUnsynchronized(first, RemoveExpiredBatchBuckets);
                    }
                }
            }
            return removed;
        }
        finally
        {
            Exit(ref stripe);
        }
    }

    /// <summary>
    /// The keys of the live entries, each as a new array, read shard by shard in batches copied under the shard's lock
    /// (each batch visits at most 28,672 index slots, 4,096 buckets' worth, and copies at most 4,096 keys and 64 KiB: a
    /// writer of that shard waits at most that long). Weakly consistent, not a snapshot: a key that stays in the cache, unchanged, for the whole
    /// enumeration is returned exactly once; one added, removed, rewritten or expiring meanwhile may or may not be, and one
    /// removed and added again may be returned twice (it can land in a later slot of its window), so do not build a
    /// dictionary from it under churn (and give a dictionary of <c>byte[]</c> keys a comparer of contents: arrays compare by
    /// reference). The caller may write to the cache while it enumerates
    /// (<c>foreach (byte[] key in cache.Keys) { if (...) cache.Remove(key); }</c>). Neither a hit nor a miss: statistics and
    /// the policy do not see it. An order is not promised.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The cache was disposed (also from the enumeration's next batch).</exception>
    /// <exception cref="InvalidOperationException">Enumerated from an eviction listener (of any cache: a listener holds a
    /// shard's lock in the middle of an eviction).</exception>
    public IEnumerable<byte[]> Keys
    {
        get
        {
            ThrowIfDisposed();
            return EnumerateEntries(withValues: false, static (key, _) => key.ToArray());
        }
    }

    /// <summary>
    /// The live entries, each key and value as a new array, read as <see cref="Keys"/> reads the keys: in batches copied
    /// under each shard's lock (at most 28,672 index slots visited and 4,096 entries and 64 KiB of keys and values copied
    /// per batch; an entry larger than 64 KiB comes alone, in a buffer grown for it outside the lock). Each pair is one consistent version of its entry (key and value copied in the
    /// same lock hold). Weakly consistent as <see cref="Keys"/>: an entry that stays unchanged for the whole enumeration is
    /// returned exactly once, with its value; one written meanwhile may be returned with either value, or not at all, and
    /// one removed and added again may be returned twice. The caller may write meanwhile. Not a lookup: statistics and the
    /// policy do not see it, and no time to live is renewed (an entry read this way is not kept any longer for it).
    /// Dispose the enumerator (as <c>foreach</c> and LINQ do): it returns its pooled buffers then.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The cache was disposed (also from the enumeration's next batch).</exception>
    /// <exception cref="InvalidOperationException">Enumerated from an eviction listener (of any cache).</exception>
    public IEnumerable<KeyValuePair<byte[], byte[]>> Entries
    {
        get
        {
            ThrowIfDisposed();
            return EnumerateEntries(withValues: true, static (key, value) => new KeyValuePair<byte[], byte[]>(key.ToArray(), value.ToArray()));
        }
    }

    /// <summary>
    /// Calls <paramref name="visitor"/> for each live entry, with its key and value as spans, until it returns false:
    /// <see cref="Entries"/> without an array per pair: with a static (non-capturing) visitor, one small object per call
    /// and nothing per entry once the shared array pool holds the batch's buffers (a buffer grown for an entry over 64 KiB
    /// is rented from it too). The spans point into a batch copied under a shard's lock and are valid only during the
    /// call, which runs outside the cache: the visitor may read and write the cache, even dispose it (the rest of the
    /// batch in hand, up to 4,096 entries, is still visited; the next batch throws <see cref="ObjectDisposedException"/>).
    /// Weakly consistent and not a lookup, as <see cref="Entries"/>.
    /// </summary>
    /// <typeparam name="TState">Caller state, so a static lambda captures nothing and allocates nothing.</typeparam>
    /// <param name="state">Passed to every call of <paramref name="visitor"/>.</param>
    /// <param name="visitor">Called per entry; returns false to stop the walk.</param>
    /// <exception cref="ArgumentNullException"><paramref name="visitor"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The cache was disposed (also between batches).</exception>
    /// <exception cref="InvalidOperationException">Called from an eviction listener (of any cache).</exception>
    public void ForEachEntry<TState>(TState state, EntryVisitor<TState> visitor)
    {
        ArgumentNullException.ThrowIfNull(visitor);
        ThrowIfDisposed();
        using var batch = new EntryBatch(withValues: true);
        var position = default(WalkPosition);
        while (FillNextBatch(ref position, batch))
        {
            for (int i = 0; i < batch.Count; i++)
            {
                if (!visitor(batch.KeyAt(i), batch.ValueAt(i), state))
                {
                    return;
                }
            }
        }
    }

    /// <summary>The live entries, each passed through <paramref name="project"/> (see <see cref="Keys"/>; the value span
    /// is empty unless <paramref name="withValues"/>); the spans are valid only during the call, which runs outside the
    /// cache (no lock held).</summary>
    internal IEnumerable<T> EnumerateEntries<T>(bool withValues, Func<ReadOnlySpan<byte>, ReadOnlySpan<byte>, T> project)
    {
        using var batch = new EntryBatch(withValues);
        var position = default(WalkPosition);
        while (FillNextBatch(ref position, batch))
        {
            for (int i = 0; i < batch.Count; i++)
            {
                T item = project(batch.KeyAt(i), batch.ValueAt(i));
                yield return item;
            }
        }
    }

    /// <summary>Where an enumeration resumes: a shard and the first of its index slots not yet taken.</summary>
    private struct WalkPosition
    {
        public int Shard;
        public int Slot;
    }

    /// <summary>Refills <paramref name="batch"/> with the next entries after <paramref name="position"/> (advancing it), shard
    /// by shard; false when every slot of every shard was walked. Never returns true with an empty batch.</summary>
    private bool FillNextBatch(ref WalkPosition position, EntryBatch batch)
    {
        while (position.Shard < _shards.Length)
        {
            Shard shard = _shards[position.Shard];
            if (position.Slot >= shard.SlotCount)
            {
                position.Shard++;
                position.Slot = 0;
                continue;
            }
            batch.Clear();   // outside the lock: a buffer grown for a large entry goes back here
            position.Slot = CopyEntries(shard, position.Slot, batch);
            while (batch.NeededBytes != 0)
            {
                // The entry at that slot is larger than the whole buffer: grow it here, outside the lock, and take the slot
                // again. Terminates: each refusal needs an entry larger than the buffer just grown, and entries are
                // bounded by the largest chunk.
                batch.GrowForRefusedEntry();
                position.Slot = CopyEntries(shard, position.Slot, batch);
            }
            if (batch.Count != 0)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>One batch of <see cref="EnumerateEntries"/>: an operation of its own (Dispose waits for it, not for the
    /// caller's loop between batches), under the shard's lock.</summary>
    private int CopyEntries(Shard shard, int slot, EntryBatch batch)
    {
        // Any listener, not only this cache's: a listener holds its own cache's shard lock, and enumerating another cache
        // would take every shard lock of that one meanwhile (a deadlock with that cache's listener writing back).
        if (Shard.IsInAnyListener)
        {
            throw new InvalidOperationException("An eviction listener enumerated a cache's keys or entries; a listener runs under a shard's lock in the middle of an eviction and may only read single keys.");
        }
        ref OperationCounters.Stripe stripe = ref Enter();
        try
        {
            using (shard.EnterGate())
            {
                return shard.CopyEntriesUnsynchronized(slot, batch);
            }
        }
        finally
        {
            Exit(ref stripe);
        }
    }

    /// <summary>A snapshot of the counters; cheap (sums one set of counters per shard).</summary>
    /// <exception cref="ObjectDisposedException">The cache was disposed.</exception>
    public CacheStatistics GetStatistics()
    {
        ThrowIfDisposed();
        long hits = _counters.Hits, misses = _counters.Misses, evictions = 0, expirations = 0, rejections = 0, count = 0, payload = 0, reclaims = 0, capacityEvictions = 0;
        foreach (Shard shard in _shards)
        {
            evictions += shard.Evictions;
            expirations += shard.Expirations;
            reclaims += shard.PageReclaims;
            capacityEvictions += shard.CapacityEvictions;
            rejections += shard.Rejections;
            count += shard.Count;
            payload += shard.PayloadBytes;
        }
        return new CacheStatistics(hits, misses, evictions, expirations, rejections, count, payload, _pool.OwnedBytes, _capacityBytes)
        {
            PageReclaims = reclaims,
            CapacityEvictions = capacityEvictions,
            EntryBound = _entryBound,
        };
    }

    /// <summary>
    /// Waits until no operation is inside the cache, then frees every native byte. A second call does
    /// nothing (a second call racing the first may return before the first has freed the memory); any later operation throws <see cref="ObjectDisposedException"/> (the configuration properties
    /// <see cref="MaxKeyBytes"/>, <see cref="MaxValueBytes"/> and <see cref="ShardCount"/> stay readable, and a call
    /// with an argument that is invalid anyway, such as a too-long key, may report that first).
    /// </summary>
    /// <exception cref="InvalidOperationException">Called from this cache's eviction listener (it would wait forever for the
    /// operation that runs the listener); the cache is not disposed.</exception>
    public void Dispose()
    {
        Shard.ThrowIfInListenerOf(this);
        ThrowIfInCallerCodeOf(this);
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        // Dekker handshake with Enter: it increments its stripe's Entered (full fence) then reads
        // _disposed; we wrote _disposed (full fence) and now read every stripe's counts. Either it sees 1
        // and backs out, or we see its entry and wait until the stripe's exits catch up with it.
        _counters.WaitUntilIdle();
        _pool.Dispose();
    }

    // ------------------------------------------------------------------ caller code inside a lookup

    // The caches whose lookup is running a caller's IBufferWriter (GetSpan or Advance) on this thread. Dispose of one of
    // them from there would wait for the lookup that is calling it, forever (found by an adversarial review, 2026-11-30):
    // it throws instead.
    [ThreadStatic]
    private static CacheNesting t_callerCode;

    /// <summary>Marks this thread as running <paramref name="cache"/>'s caller code; returns what to pass to <see cref="ExitCallerCode"/>.</summary>
    internal static OffHeapCache? EnterCallerCode(OffHeapCache cache) => t_callerCode.Enter(cache);

    /// <summary>Ends <see cref="EnterCallerCode"/> (in a finally block).</summary>
    internal static void ExitCallerCode(OffHeapCache? outer) => t_callerCode.Exit(outer);

    private static void ThrowIfInCallerCodeOf(OffHeapCache cache)
    {
        if (t_callerCode.Contains(cache))
        {
            throw new InvalidOperationException("Dispose was called from a destination's GetSpan or Advance, which run inside a lookup of this cache; Dispose waits for every running operation, so it would wait for this one forever. Dispose the cache after the lookup returns.");
        }
    }

    // ------------------------------------------------------------------ internals

    /// <summary>
    /// A lookup that neither the statistics nor the policy see: GetOrAdd's flight leader re-checks the key
    /// after joining, and the caller's own lookup was already counted.
    /// </summary>
    internal bool TryGetUncounted(ReadOnlySpan<byte> key, IBufferWriter<byte> destination)
    {
        var sink = new BufferWriterSink(destination, this);
        return ReadUncounted(key, ref sink, out _) == ReadResult.Hit;
    }

    /// <summary>
    /// <see cref="TryGet(ReadOnlySpan{byte}, Span{byte}, out int)"/> that neither the statistics nor the policy
    /// see: a caller's second read of a key it has just looked up (the distributed cache's retry with a buffer
    /// of the length the first read reported).
    /// </summary>
    internal bool TryGetUncounted(ReadOnlySpan<byte> key, Span<byte> destination, out int bytesWritten)
    {
        var sink = new SpanSink(destination);
        ReadResult result = ReadUncounted(key, ref sink, out int length);
        bytesWritten = result == ReadResult.Miss ? 0 : length;
        return result == ReadResult.Hit;
    }

    /// <summary>
    /// The first <c>destination.Length</c> bytes of the key's value (fewer if the value is shorter), without the
    /// statistics or the policy seeing the lookup: the distributed cache's re-read of an entry's expiration header
    /// before it renews a sliding entry. <paramref name="valueLength"/> is the whole value's length on a hit.
    /// </summary>
    internal bool TryGetPrefixUncounted(ReadOnlySpan<byte> key, Span<byte> destination, out int valueLength)
    {
        var sink = new PrefixSink(destination);
        ReadResult result = ReadUncounted(key, ref sink, out valueLength);
        Debug.Assert(result != ReadResult.DestinationTooSmall, "a prefix read is never too small");
        if (result != ReadResult.Hit)
        {
            valueLength = 0;
        }
        return result == ReadResult.Hit;
    }

    private ReadResult ReadUncounted<TSink>(ReadOnlySpan<byte> key, ref TSink sink, out int valueLength)
        where TSink : IValueSink, allows ref struct
    {
        CheckKey(key);
        ulong hash = Hash(key);
        ref OperationCounters.Stripe stripe = ref Enter();
        Shard shard = ShardOf(hash);
        try
        {
            return shard.Read(hash, key, ref sink, out valueLength, recordAccess: false);
        }
        finally
        {
            Exit(ref stripe);
        }
    }

    private ReadResult Read<TSink>(ReadOnlySpan<byte> key, ref TSink sink, out int valueLength)
        where TSink : IValueSink, allows ref struct
    {
        CheckKey(key);
        ulong hash = Hash(key);
        ref OperationCounters.Stripe stripe = ref Enter();
        ReadResult result;
        try
        {
            result = ShardOf(hash).Read(hash, key, ref sink, out valueLength);
        }
        catch
        {
            Exit(ref stripe);   // a throwing sink (a caller's IBufferWriter): the lookup is not counted
            throw;
        }
        if (result == ReadResult.DestinationTooSmall)
        {
            Exit(ref stripe);   // not a lookup yet: the caller's retry with a buffer that fits is the one counted
        }
        else
        {
            OperationCounters.ExitLookup(ref stripe, result == ReadResult.Hit);   // the exit counts the hit or miss
        }
        return result;
    }

    /// <summary>A set (any condition but a value comparison) with its arguments checked, from a byte or typed API call: whether it stored.</summary>
    internal bool SetCore(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long ttlTicks, SetCondition condition = SetCondition.Always)
        => SetWithOutcome(key, value, ttlTicks, condition) == SetOutcome.Stored;

    /// <summary>A set with its arguments checked, telling a false condition from a refusal (the typed AddOrUpdate retries
    /// only the first). <paramref name="comparisonValue"/>: the value <see cref="SetCondition.IfValueEquals"/> compares with.</summary>
    internal SetOutcome SetWithOutcome(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long ttlTicks, SetCondition condition,
        ReadOnlySpan<byte> comparisonValue = default)
    {
        CheckKey(key);
        CheckValue(key, value);
        return WriteWithStableKey(key, value, ttlTicks, condition, touchOnly: false, comparisonValue: comparisonValue);
    }

    /// <summary>A time to live in timestamp ticks, or the cache's default when none is given (the typed facade's optional one).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Zero or negative, other than <see cref="Timeout.InfiniteTimeSpan"/>.</exception>
    /// <summary>The time to live of a write that names none, in timestamp ticks (0: never expires).</summary>
    internal long DefaultTimeToLiveTicks => _defaultTtlTicks;

    internal long ToTimestampTicksOrDefault(TimeSpan? timeToLive, string paramName)
        => timeToLive is { } ttl ? ToTimestampTicks(ttl, paramName) : _defaultTtlTicks;

    /// <summary>
    /// The one write path of a single key (Set, TryAdd, TryUpdate, Touch; arguments already checked): the shard's set,
    /// or its touch when <paramref name="touchOnly"/> (a missing entry is a false condition), under the shard lock.
    /// </summary>
    /// <remarks>
    /// The key is copied once, before it is hashed, and only the copy is used: another thread writing to the
    /// caller's key buffer meanwhile (the caller's race) cannot make the bytes looked up or stored disagree with the
    /// hash that placed them (see <see cref="Shard.SetUnsynchronized"/> for what that used to break; Touch may write
    /// the entry again under that hash). One hash per write. <paramref name="flight"/>: GetOrAdd's store, skipped
    /// (<see cref="SetOutcome.ConditionFailed"/>) when a write of the key or a Clear invalidated the flight while its factory
    /// ran; every other write (but Touch) marks the key's flight, if one runs. <paramref name="comparisonValue"/>: see
    /// <see cref="SetCondition.IfValueEquals"/>.
    /// </remarks>
    [SkipLocalsInit]
    private SetOutcome WriteWithStableKey(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long ttlTicks, SetCondition condition, bool touchOnly,
        Flight? flight = null, ReadOnlySpan<byte> comparisonValue = default)
    {
        Shard.ThrowIfInListenerOf(this);   // before any shard lock: a listener holds its own shard's
        using var stable = new StableCopy(key, stackalloc byte[StableCopy.StackBytes]);
        ulong hash = Hash(stable.Bytes);
        ref OperationCounters.Stripe stripe = ref Enter();
        Shard shard = ShardOf(hash);
        try
        {
            long expiresAt = ExpiresAt(ttlTicks);
            using (shard.EnterGate())
            {
                if (touchOnly)
                {
                    return shard.TouchUnsynchronized(hash, stable.Bytes, expiresAt) ? SetOutcome.Stored : SetOutcome.ConditionFailed;
                }
                if (flight is null)
                {
                    InvalidateFlightUnderShardLock(stable.Bytes, hash);   // a GetOrAdd running for this key must not store what it computed
                }
                else if (flight.Invalidated)
                {
                    return SetOutcome.ConditionFailed;   // invalidated by a write (marked under this lock): the value is not stored
                }
                return shard.SetStableKeyUnsynchronized(hash, stable.Bytes, value, expiresAt, condition: condition, comparisonValue: comparisonValue);
            }
        }
        finally
        {
            Exit(ref stripe);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong Hash(ReadOnlySpan<byte> key) => XxHash3.HashToUInt64(key, _seed);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal Shard ShardOf(ulong hash) => _shards[ShardIndex(hash)];

    /// <summary>
    /// Registers an operation on the current processor's stripe of <see cref="_counters"/> and returns
    /// that stripe; throws if disposed. End the operation with exactly one <see cref="Exit"/> (or, for a
    /// counted lookup, <see cref="OperationCounters.ExitLookup"/>) on the stripe returned.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ref OperationCounters.Stripe Enter()
    {
        ref OperationCounters.Stripe stripe = ref _counters.Enter();   // full fence before the read of _disposed (see Dispose)
        if (Volatile.Read(ref _disposed) != 0)
        {
            OperationCounters.Exit(ref stripe);
            ThrowDisposed();
        }
        return ref stripe;
    }

    /// <summary>
    /// Runs a shard's queued background read replay as an operation of the cache, so that Dispose waits for it
    /// (its hit filter reads the native index); after Dispose the replay does nothing but end. Registered before
    /// the test of <c>_disposed</c>, as in <see cref="Enter"/> (the Dekker handshake of <see cref="Dispose"/>).
    /// </summary>
    internal void RunBackgroundReplay(Shard shard)
    {
        ref OperationCounters.Stripe stripe = ref _counters.Enter();
        try
        {
            shard.ReplayInBackground(cacheAlive: Volatile.Read(ref _disposed) == 0);
        }
        finally
        {
            OperationCounters.Exit(ref stripe);
        }
    }

    /// <summary>Ends an operation registered by <see cref="Enter"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Exit(ref OperationCounters.Stripe stripe) => OperationCounters.Exit(ref stripe);

    /// <summary>Background read replays run, over all shards (tests).</summary>
    internal long BackgroundReplays => _shards.Sum(s => s.BackgroundReplays);

    /// <summary>Reads waiting in the shards' read buffers (tests; exact only while nothing reads or writes).</summary>
    internal long PendingReads => _shards.Sum(s => s.PendingReads);

    /// <summary>Operations inside the cache now (tests: 0 whenever no call is running).</summary>
    internal long InFlightOperations => _counters.InFlight;

    internal bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    internal void ThrowIfDisposed()
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            ThrowDisposed();
        }
    }

    internal long ExpiresAt(long ttlTicks)
    {
        if (ttlTicks == 0)
        {
            return 0;
        }
        long now = _time.GetTimestamp();
        long at = now > long.MaxValue - ttlTicks ? long.MaxValue : now + ttlTicks;
        return at == 0 ? 1 : at;   // 0 means "never"
    }

    /// <summary>A time to live in timestamp ticks; 0 (never expires) for <see cref="Timeout.InfiniteTimeSpan"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Zero or negative, other than <see cref="Timeout.InfiniteTimeSpan"/>.</exception>
    internal long ToTimestampTicks(TimeSpan timeToLive, string paramName)
    {
        if (timeToLive == Timeout.InfiniteTimeSpan)
        {
            return 0;
        }
        if (timeToLive <= TimeSpan.Zero)
        {
            ThrowTtl(timeToLive, paramName);
        }
        Int128 ticks = (Int128)timeToLive.Ticks * _time.TimestampFrequency / TimeSpan.TicksPerSecond;
        return ticks >= long.MaxValue ? long.MaxValue : Math.Max(1, (long)ticks);
    }

    /// <summary>Refuses a key above <see cref="MaxKeyBytes"/> (<see cref="ArgumentOutOfRangeException"/>, parameter <c>key</c>).</summary>
    /// <param name="key">The key.</param>
    /// <param name="batch">For a batch item: the batch parameter's name (<c>items</c>, <c>keys</c>), so that the message
    /// names the bad item as <c>items[index]</c>; null for a single key.</param>
    /// <param name="index">The item's index in <paramref name="batch"/>.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void CheckKey(ReadOnlySpan<byte> key, string? batch = null, int index = 0)
    {
        if (key.Length > _maxKeyBytes)
        {
            ThrowKeyTooLong(key.Length, _maxKeyBytes, batch, index);
        }
    }

    /// <summary>Refuses a value above <see cref="MaxValueBytes"/> or one that does not fit the largest chunk with its key.</summary>
    /// <param name="key">The value's key.</param>
    /// <param name="value">The value.</param>
    /// <param name="batch">As for <see cref="CheckKey"/>.</param>
    /// <param name="index">As for <see cref="CheckKey"/>.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void CheckValue(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, string? batch = null, int index = 0)
    {
        if (!ValueFits(key.Length, value.Length))
        {
            ThrowValueTooLarge(value.Length, ValueLimit(key.Length), batch, index);
        }
    }

    /// <summary>Whether a value of <paramref name="valueLength"/> bytes is accepted with a key of <paramref name="keyLength"/>:
    /// at most <see cref="MaxValueBytes"/>, and the largest header + key + value fit the largest chunk.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ValueFits(int keyLength, int valueLength)
        => valueLength <= _maxValueBytes && EntryHeader.MaxSize + keyLength + valueLength <= _maxEntryBytes;

    /// <summary>The largest value <see cref="ValueFits"/> accepts with a key of <paramref name="keyLength"/> bytes.</summary>
    private int ValueLimit(int keyLength) => Math.Min(_maxValueBytes, _maxEntryBytes - EntryHeader.MaxSize - keyLength);

    /// <summary><see cref="CheckValue"/> for the value a GetOrAdd factory wrote: the error names the factory (GetOrAdd has no
    /// value parameter) and says the value was not stored.</summary>
    private void CheckFactoryValue(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        if (!ValueFits(key.Length, value.Length))
        {
            throw new ArgumentOutOfRangeException("factory", value.Length, $"The factory wrote a value of {value.Length} bytes; the limit for this key is {ValueLimit(key.Length)} bytes (MaxValueBytes, and header + key + value must fit the largest chunk). Nothing was stored.");
        }
    }

    internal IReadOnlyList<Shard> Shards => _shards;

    /// <summary>Largest probe distance any insert has used, over all shards (0..<see cref="Shard.ProbeBuckets"/> - 1).</summary>
    internal int LongestProbe => _shards.Max(static s => s.LongestProbe);

    /// <summary>Inserts that found their probe window full (one window entry removed), over all shards.</summary>
    internal long FullWindowEvictions => _shards.Sum(static s => s.FullWindowEvictions);

    internal SlabPool Pool => _pool;

    /// <summary>
    /// Checks the invariants of every shard (index, counters), its policy and the slab pool with all
    /// shard locks held (taken in index order); tests call it after steps. Throws
    /// <see cref="InvalidOperationException"/> naming the first invariant broken.
    /// </summary>
    internal void ValidateInvariants()
    {
        // Registered like any operation: the shards read entries through the unchecked slab path, which
        // relies on Dispose waiting for every operation inside (throws ObjectDisposedException after Dispose).
        ref OperationCounters.Stripe stripe = ref Enter();
        try
        {
            ValidateInvariantsRegistered();
        }
        finally
        {
            Exit(ref stripe);
        }
    }

    private void ValidateInvariantsRegistered()
    {
        ValidateFlightCounters();
        int locked = 0;
        try
        {
            for (; locked < _shards.Length; locked++)
            {
                _shards[locked].Gate.Enter();
            }
            foreach (Shard shard in _shards)
            {
                shard.ValidateInvariantsUnsynchronized();
                switch (shard.Policy)
                {
                    case PolicyBase core:
                        core.ValidateInvariants();
                        break;
                    case TinyLfuAdmissionPolicy:
                        break;   // its inner policy is private to the wrapper; the shard checks still cover its count
                    default:
                        ExtendedPolicies.ValidateInvariants(shard.Policy);
                        break;
                }
            }
            _pool.ValidateInvariants();   // no arena is working: we hold every shard's lock
            long entries = 0;
            foreach (Shard shard in _shards)
            {
                entries += shard.Count;
            }
            long liveChunks = 0;
            foreach (SlabClassStatistics c in _pool.GetStatistics().Classes)
            {
                liveChunks += c.LiveChunks;
            }
            if (liveChunks != entries)
            {
                throw new InvalidOperationException($"The slab holds {liveChunks} live chunks but the index {entries} entries: a chunk leaked or an entry lost its chunk.");
            }
        }
        finally
        {
            for (int i = locked - 1; i >= 0; i--)
            {
                _shards[i].Gate.Exit();
            }
        }
        if (_pool.OwnedBytes > _capacityBytes)
        {
            throw new InvalidOperationException($"Native bytes {_pool.OwnedBytes} exceed CapacityBytes {_capacityBytes}.");
        }
    }

    /// <summary>
    /// Whether the shards' W-TinyLFU policies share one adaptive-window decision (shard 0's shadows; see
    /// <see cref="SharedWindowChoice"/>): several shards, each above the size where its shadows sample its
    /// requests anyway. Below it every shard keeps its own shadows, as a cache that small needs.
    /// </summary>
    private static bool SharesWindowChoice(OffHeapCacheOptions options, CacheLayout layout)
    {
        long smallestShard = layout.PolicyCapacity(layout.ShardCount - 1);   // shards differ by at most one entry, the last the smallest
        return layout.ShardCount > 1
            && options.Policy == CachePolicy.WTinyLfu
            && smallestShard <= (long)layout.BucketsPerShard * IndexBucket.SlotCount
            && SharedWindowChoice.PaysOff(smallestShard);
    }

    private static IEvictionPolicy CreatePolicy(OffHeapCacheOptions options, CacheLayout layout, int shardIndex, SharedWindowChoice? sharedWindow)
    {
        var policyOptions = new PolicyOptions
        {
            MaxHandles = layout.BucketsPerShard * IndexBucket.SlotCount,
            Capacity = layout.PolicyCapacity(shardIndex),
            Seed = 0x5EED + shardIndex,
            TinyLfuAdmission = options.TinyLfuAdmission,
            SharedWindow = sharedWindow,
            LeadsSharedWindow = shardIndex == 0,
        };
        try
        {
            return PolicyFactory.Create(options.Policy.ToPolicyKind(), policyOptions);
        }
        catch (NotSupportedException e)
        {
            throw new ArgumentException($"Policy {options.Policy} is not available in this build: {e.Message}", nameof(options.Policy), e);
        }
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowDisposed() => throw new ObjectDisposedException(nameof(OffHeapCache));

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowKeyTooLong(int length, int limit, string? batch, int index)
        => throw new ArgumentOutOfRangeException(batch ?? "key", length, $"{BatchItem(batch, index)}key is {length} bytes; the limit is {limit} bytes (MaxKeyBytes).");

    /// <summary>"items[3]: " for an item of a batch (which item to fix: the parameter name alone does not say), else "".</summary>
    private static string BatchItem(string? batch, int index) => batch is null ? "" : $"{batch}[{index}]: ";

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowValueTooLarge(int length, int limit, string? batch, int index)
        => throw new ArgumentOutOfRangeException(batch ?? "value", length, $"{BatchItem(batch, index)}value is {length} bytes; the limit for this key is {limit} bytes (MaxValueBytes, and header + key + value must fit the largest chunk).");

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowTtl(TimeSpan ttl, string paramName)
        => throw new ArgumentOutOfRangeException(paramName, ttl, $"{paramName} must be positive (greater than TimeSpan.Zero), or Timeout.InfiniteTimeSpan for no expiry.");
}

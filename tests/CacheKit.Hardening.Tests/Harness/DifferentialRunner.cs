using System.Buffers;
using CacheKit.OffHeap;

namespace CacheKit.Hardening.Harness;

/// <summary>A cache configuration for the differential harness and the fuzzer.</summary>
internal sealed record DiffConfig(
    string Name,
    CachePolicy Policy,
    long Capacity,
    int PageSize,
    int Shards,
    long? MaxEntries,
    int KeySpace,
    int MaxKeyPad,
    int MaxValue,
    bool Roomy,
    bool Poison = false,
    long HashSeed = 12345,
    int? PlantedForgetRemoveOfKey = null,
    int FaultPercent = 0)
{
    public OffHeapCacheOptions Options(TimeProvider clock, EvictionListener listener) => new()
    {
        CapacityBytes = Capacity,
        PageSize = PageSize,
        ShardCount = Shards,
        MaxEntries = MaxEntries,
        MaxKeyBytes = 4 + MaxKeyPad,
        Policy = Policy,
        TimeProvider = clock,
        EvictionListener = listener,
        HashSeed = HashSeed,
        PoisonFreedMemory = Poison,
    };

    public override string ToString() => $"{Name}/{Policy}";
}

/// <summary>The first disagreement between the cache and the model.</summary>
/// <param name="Step">Index of the operation after which it showed.</param>
/// <param name="Kind">Its category (shrinking keeps failures of the same category).</param>
/// <param name="Message">What disagreed.</param>
internal sealed record Failure(int Step, string Kind, string Message)
{
    public override string ToString() => $"step {Step}: [{Kind}] {Message}";
}

/// <summary>
/// Runs an operation list against an <see cref="OffHeapCache"/> and a plain dictionary model side by side and
/// returns the first disagreement (null if none). The eviction listener tells the model every entry the cache
/// drops, so the model is exact: a live model key must hit with exactly its last value, every other key must
/// miss; counts, payload bytes, hits, misses, evictions and expirations must agree; native bytes never exceed the
/// budget; with MaxEntries the count never exceeds it; invariants hold (every <c>validateEvery</c> steps).
/// </summary>
internal sealed class DifferentialRunner
{
    private readonly DiffConfig _config;
    private readonly TestClock _clock = new();
    private readonly Dictionary<int, (byte[] Value, long ExpiresAt)> _model = [];
    private readonly Dictionary<int, byte[]> _keys = [];
    private long _listenedEvictions, _listenedExpirations, _expectedHits, _expectedMisses;
    private bool _lenientListener;
    // During a SetMany: the batch's keys. The model learns the batch's outcome only after the call, so while it runs a
    // batch key's model entry may be the one the batch already replaced: the listener can hear the new (live) value
    // evicted by a later item of the same batch, while the model still holds the old one, expired.
    private HashSet<int>? _batchKeys;
    private string? _listenerError;
    private int _version;

    /// <summary>Totals over every run of this process (reported by the tests).</summary>
    public static long OperationsRun;

    /// <summary>Native allocations failed on purpose (FaultPercent), over every run of this process.</summary>
    public static long FaultsInjected;

    /// <summary>Operations that surfaced an injected allocation failure as OutOfMemoryException.</summary>
    public static long FaultsSurfaced;

    private DifferentialRunner(DiffConfig config) => _config = config;

    public static Failure? Run(DiffConfig config, IReadOnlyList<Op> ops, int validateEvery = 64)
        => new DifferentialRunner(config).Execute(ops, validateEvery);

    /// <summary>
    /// Delta debugging: removes chunks of operations (halves, then smaller) while the run still fails with the
    /// same kind of failure, and trims after the failing step. At most <paramref name="maxRuns"/> replays.
    /// </summary>
    public static (List<Op> Ops, Failure Failure) Shrink(DiffConfig config, IReadOnlyList<Op> ops, Failure failure,
        int validateEvery = 1, int maxRuns = 400)
    {
        var current = ops.Take(failure.Step + 1).ToList();
        Failure best = Run(config, current, validateEvery) ?? failure;
        int runs = 1;
        for (int chunk = Math.Max(1, current.Count / 2); chunk >= 1 && runs < maxRuns; chunk /= 2)
        {
            bool removed = true;
            while (removed && runs < maxRuns)
            {
                removed = false;
                for (int start = 0; start < current.Count && runs < maxRuns; start += chunk)
                {
                    var candidate = new List<Op>(current);
                    candidate.RemoveRange(start, Math.Min(chunk, candidate.Count - start));
                    Failure? f = Run(config, candidate, validateEvery);
                    runs++;
                    if (f is not null && f.Kind == best.Kind)
                    {
                        current = candidate.Take(f.Step + 1).ToList();
                        best = f;
                        removed = true;
                    }
                }
            }
            if (chunk == 1)
            {
                break;
            }
        }
        return (current, best);
    }

    private byte[] KeyOf(int id)
    {
        if (!_keys.TryGetValue(id, out byte[]? key))
        {
            key = Keys.Of(id, _config.MaxKeyPad);
            _keys[id] = key;
        }
        return key;
    }

    /// <summary>A value that differs from <paramref name="value"/> only in its last byte (or, for an empty value, a single
    /// byte): the hardest case for a comparison that checks lengths or a prefix only.</summary>
    private static byte[] OtherValue(byte[] value) => value.Length == 0 ? [0] : [.. value[..^1], (byte)(value[^1] ^ 1)];

    private bool Live(int id, out byte[] value)
    {
        if (_model.TryGetValue(id, out var e) && (e.ExpiresAt == 0 || _clock.GetTimestamp() < e.ExpiresAt))
        {
            value = e.Value;
            return true;
        }
        value = [];
        return false;
    }

    /// <summary>The model after a write that may be refused: stored, the key holds the value; refused, no value of the key
    /// remains (as after any failed set), which a roomy budget must never need (then <paramref name="refusal"/>).</summary>
    /// <remarks><paramref name="updateOfLiveKey"/>: a TryUpdate or Touch of a key the model held live that counted no rejection.
    /// Its room-making may evict the key itself (a roomy budget in bytes can still be short of pages for a size class): the
    /// listener then took the key out of the model during the call, and the update fails as a failed condition (no
    /// rejection) without bringing it back, which is no refusal. A refusal for want of room still counts a rejection.</remarks>
    private string? RecordWrite(int id, bool stored, byte[] value, long expiresAt, string refusal, bool updateOfLiveKey = false)
    {
        if (stored)
        {
            _model[id] = (value, expiresAt);
            return null;
        }
        bool evictedByTheCall = updateOfLiveKey && !_model.ContainsKey(id);
        _model.Remove(id);
        return _config.Roomy && !evictedByTheCall ? refusal : null;
    }

    private void OnEvicted(ReadOnlySpan<byte> key, EvictionReason reason)
    {
        int id = Keys.IdOf(key);
        if (!_model.TryGetValue(id, out var entry))
        {
            if (!_lenientListener)
            {
                _listenerError ??= $"listener reported k{id} ({reason}), which the model does not hold";
            }
        }
        else if (reason != EvictionReason.Expired && _batchKeys?.Contains(id) == true)
        {
            // Its model entry may be stale (see _batchKeys): an eviction of the batch's new value cannot be checked
            // against the old entry's expiry. An expiration still can: the batch stores no expiry, and the clock stands still.
        }
        else if (reason == EvictionReason.Expired && !(entry.ExpiresAt != 0 && _clock.GetTimestamp() >= entry.ExpiresAt))
        {
            _listenerError ??= $"listener reported k{id} expired but it expires at {entry.ExpiresAt} (now {_clock.GetTimestamp()})";
        }
        else if (reason != EvictionReason.Expired && entry.ExpiresAt != 0 && _clock.GetTimestamp() >= entry.ExpiresAt)
        {
            // Evictions count live entries only: an expired entry is an expiration whichever path removes it.
            _listenerError ??= $"listener reported k{id} {reason} but it had expired at {entry.ExpiresAt} (now {_clock.GetTimestamp()})";
        }
        if (reason == EvictionReason.Expired)
        {
            _listenedExpirations++;
        }
        else
        {
            _listenedEvictions++;
        }
        _model.Remove(id);
    }

    private Failure? Execute(IReadOnlyList<Op> ops, int validateEvery)
    {
        OffHeapCache cache;
        try
        {
            cache = new OffHeapCache(_config.Options(_clock, OnEvicted));
        }
        catch (Exception e)
        {
            return new Failure(-1, "construction", e.ToString());
        }

        // Fault mode: once the cache is built, fail FaultPercent of native page allocations (deterministically).
        var faults = new Random(_config.HashSeed.GetHashCode());
        if (_config.FaultPercent > 0)
        {
            SlabHook.Install(_ =>
            {
                bool fail = faults.Next(100) < _config.FaultPercent;
                if (fail)
                {
                    Interlocked.Increment(ref FaultsInjected);
                }
                return !fail;
            });
        }
        using var unhook = new SlabHook.Scope(_config.FaultPercent > 0);
        using (cache)
        {
            var buffer = new byte[cache.MaxValueBytes + 1];
            for (int step = 0; step < ops.Count; step++)
            {
                Interlocked.Increment(ref OperationsRun);
                string? error;
                try
                {
                    try
                    {
                        error = Apply(cache, _config.FaultPercent > 0 && ops[step].Kind == OpKind.SetMany ? ops[step] with { Kind = OpKind.Set } : ops[step], buffer);
                    }
                    catch (OutOfMemoryException) when (_config.FaultPercent > 0)
                    {
                        // An injected failure: the write must leave no trace, so the model stays as it was.
                        Interlocked.Increment(ref FaultsSurfaced);
                        error = null;
                    }
                    error ??= _listenerError;
                    error ??= CheckState(cache, step, validateEvery);
                    if (error is null && (step + 1) % 2000 == 0)
                    {
                        error = Sweep(cache, buffer);
                    }
                }
                catch (Exception e)
                {
                    return new Failure(step, "exception " + e.GetType().Name, $"{ops[step]} threw {e}");
                }
                if (error is not null)
                {
                    return new Failure(step, Category(error), $"{ops[step]}: {error}");
                }
            }
            try
            {
                string? end = Sweep(cache, buffer) ?? CheckState(cache, ops.Count - 1, 1);
                if (end is not null)
                {
                    return new Failure(ops.Count - 1, Category(end), "final sweep: " + end);
                }
            }
            catch (Exception e)
            {
                return new Failure(ops.Count - 1, "exception " + e.GetType().Name, "final sweep threw " + e);
            }
        }
        return null;
    }

    private static string Category(string error)
    {
        int colon = error.IndexOf(':', StringComparison.Ordinal);
        return colon > 0 ? error[..colon] : error;
    }

    private string? Apply(OffHeapCache cache, Op op, byte[] buffer)
    {
        byte[] key = KeyOf(op.Key);
        int length = Math.Min(op.Length, cache.MaxValueBytes);
        switch (op.Kind)
        {
            case OpKind.Get:
            {
                bool hit = cache.TryGet(key, buffer, out int written);
                return CheckRead(op.Key, hit, written, buffer);
            }
            case OpKind.GetTooSmall:
            {
                bool live = Live(op.Key, out byte[] value);
                Span<byte> destination = buffer.AsSpan(0, live && value.Length > 0 ? value.Length - 1 : 0);
                bool hit = cache.TryGet(key, destination, out int written);
                if (live && value.Length > 0)
                {
                    // Not a lookup yet: a too-small read counts nothing (its retry would be counted).
                    return !hit && written == value.Length ? null : $"too small: too-small destination gave hit={hit}, bytesWritten={written}, want false/{value.Length}";
                }
                Count(live);
                if (live)
                {
                    return hit && written == 0 ? null : $"too small: empty value into empty destination gave hit={hit}, bytesWritten={written}";
                }
                return !hit && written == 0 ? null : $"stale hit: k{op.Key} is not live but TryGet gave hit={hit}, bytesWritten={written}";
            }
            case OpKind.Set:
            case OpKind.SetTtl:
            {
                byte[] value = Keys.Value(op.Key, ++_version, length);
                long expiresAt = 0;
                bool stored;
                if (op.Kind == OpKind.SetTtl)
                {
                    expiresAt = _clock.GetTimestamp() + TimeSpan.FromSeconds(op.Arg).Ticks;
                    stored = cache.Set(key, value, TimeSpan.FromSeconds(op.Arg));
                }
                else
                {
                    stored = cache.Set(key, value);
                }
                if (stored)
                {
                    _model[op.Key] = (value, expiresAt);
                }
                else
                {
                    _model.Remove(op.Key);
                    if (_config.Roomy)
                    {
                        return $"refused: a set of {length} bytes was refused although the budget has room to spare";
                    }
                }
                return null;
            }
            case OpKind.Remove:
            {
                // A planted fault (tests of the harness itself): the model forgets removals of one key.
                // An expired entry counts as absent: the cache removes it as an expiration (OnEvicted takes it out of
                // the model) and says false. The variants (Op.RemoveVariant) that must leave a live entry alone: a
                // span one byte short of a non-empty value, and a comparison with another value.
                bool expected = Live(op.Key, out byte[] current);
                Op.RemoveKind variant = op.RemoveVariant;
                bool kept = expected && ((variant == Op.RemoveKind.IntoTooSmallSpan && current.Length > 0) || variant == Op.RemoveKind.IfOtherValue);
                bool removes = expected && !kept;
                byte[]? returned = null;
                int reported = 0;
                bool removed;
                switch (variant)
                {
                    case Op.RemoveKind.IntoSpan:
                    case Op.RemoveKind.IntoTooSmallSpan:
                    {
                        var destination = new byte[variant == Op.RemoveKind.IntoSpan ? _config.MaxValue : Math.Max(0, current.Length - 1)];
                        removed = cache.Remove(key, destination, out reported);
                        returned = removed ? destination[..reported] : null;
                        break;
                    }
                    case Op.RemoveKind.IntoBufferWriter:
                    {
                        var writer = new ArrayBufferWriter<byte>(1);
                        removed = cache.Remove(key, writer);
                        returned = removed ? writer.WrittenSpan.ToArray() : null;
                        reported = writer.WrittenCount;
                        break;
                    }
                    case Op.RemoveKind.IfItsValue:
                        removed = cache.RemoveIfEquals(key, current);
                        break;
                    case Op.RemoveKind.IfOtherValue:
                        removed = cache.RemoveIfEquals(key, OtherValue(current));
                        break;
                    default:
                        removed = cache.Remove(key);
                        break;
                }
                if (_config.PlantedForgetRemoveOfKey != op.Key && removes)
                {
                    _model.Remove(op.Key);
                }
                if (!expected && _model.ContainsKey(op.Key) && _config.PlantedForgetRemoveOfKey != op.Key)
                {
                    return $"remove: {op} left an expired entry (no Expired report)";
                }
                if (removed != removes)
                {
                    return $"remove: {op} = {removed}, model says {removes}";
                }
                if (returned is not null && !returned.AsSpan().SequenceEqual(current))
                {
                    return $"remove: {op} returned {returned.Length} bytes that are not the value removed ({current.Length} bytes)";
                }
                int expectedReport = removes || kept ? current.Length : 0;
                if (variant is Op.RemoveKind.IntoSpan or Op.RemoveKind.IntoTooSmallSpan or Op.RemoveKind.IntoBufferWriter && reported != expectedReport)
                {
                    return $"remove: {op} reported {reported} bytes, expected {expectedReport}";
                }
                return null;
            }
            case OpKind.TryAdd:
            case OpKind.TryUpdate:
            case OpKind.TryUpdateIfEquals:
            {
                // Not a lookup. An expired entry is absent: it leaves as an expiration (the listener takes it out of
                // the model). TryAdd of a live key, TryUpdate of an absent one and TryUpdateIfEquals of an absent one or
                // with another value change nothing; otherwise it is a set, which may be refused (then no value of the
                // key remains).
                bool live = Live(op.Key, out byte[] current);
                byte[] value = Keys.Value(op.Key, ++_version, length);
                int ttlSeconds = op.Kind == OpKind.TryUpdateIfEquals ? op.Arg / 2 : op.Arg;
                long expiresAt = ttlSeconds == 0 ? 0 : _clock.GetTimestamp() + TimeSpan.FromSeconds(ttlSeconds).Ticks;
                // The comparison: the stored value, or one that differs from it only in its last byte.
                byte[] comparison = op.Arg % 2 == 0 ? current : OtherValue(current);
                long rejectionsBefore = cache.GetStatistics().Rejections;
                bool stored = (op.Kind, ttlSeconds) switch
                {
                    (OpKind.TryAdd, 0) => cache.TryAdd(key, value),
                    (OpKind.TryAdd, _) => cache.TryAdd(key, value, TimeSpan.FromSeconds(ttlSeconds)),
                    (OpKind.TryUpdate, 0) => cache.TryUpdate(key, value),
                    (OpKind.TryUpdate, _) => cache.TryUpdate(key, value, TimeSpan.FromSeconds(ttlSeconds)),
                    (_, 0) => cache.TryUpdate(key, value, comparison),
                    _ => cache.TryUpdate(key, value, comparison, TimeSpan.FromSeconds(ttlSeconds)),
                };
                if (!live && _model.ContainsKey(op.Key))
                {
                    return $"{op.Kind}: left an expired entry of k{op.Key} (no Expired report)";
                }
                bool conditionHolds = op.Kind switch
                {
                    OpKind.TryAdd => !live,
                    OpKind.TryUpdate => live,
                    _ => live && op.Arg % 2 == 0,
                };
                if (!conditionHolds)
                {
                    return stored ? $"{op} = true, but the key was {(live ? "live" : "absent")}" : null;
                }
                return RecordWrite(op.Key, stored, value, expiresAt, $"refused: {op.Kind} of {length} bytes although the budget has room to spare",
                                   updateOfLiveKey: op.Kind != OpKind.TryAdd && cache.GetStatistics().Rejections == rejectionsBefore);
            }
            case OpKind.Touch:
            {
                // Not a lookup (nothing counted). An expired entry leaves as an expiration (the listener takes it out of
                // the model), as for Remove. A live one gets the new expiry; only an entry stored without room for an
                // expiry is written again, and that may fail for want of room (then it is gone, as after a failed set).
                bool live = Live(op.Key, out byte[] value);
                TimeSpan ttl = op.Arg == 0 ? Timeout.InfiniteTimeSpan : TimeSpan.FromSeconds(op.Arg);
                long expiresAt = op.Arg == 0 ? 0 : _clock.GetTimestamp() + ttl.Ticks;
                long rejectionsBefore = cache.GetStatistics().Rejections;
                bool touched = cache.Touch(key, ttl);
                if (!live)
                {
                    if (_model.ContainsKey(op.Key))
                    {
                        return $"touch: Touch(k{op.Key}) left an expired entry (no Expired report)";
                    }
                    return touched ? $"touch: Touch(k{op.Key}) = true, model says absent" : null;
                }
                return RecordWrite(op.Key, touched, value, expiresAt, $"touch: Touch(k{op.Key}) of a live entry = false although the budget has room to spare",
                                   updateOfLiveKey: cache.GetStatistics().Rejections == rejectionsBefore);
            }
            case OpKind.Contains:
            {
                bool live = Live(op.Key, out _);
                Count(live);
                bool contains = cache.ContainsKey(key);
                return contains == live ? null : $"contains: ContainsKey(k{op.Key}) = {contains}, model says {live}";
            }
            case OpKind.Advance:
                _clock.Advance(TimeSpan.FromSeconds(op.Arg));
                return null;
            case OpKind.Clear:
                cache.Clear();
                _model.Clear();
                return null;
            case OpKind.RemoveExpired:
            {
                long now = _clock.GetTimestamp();
                int[] expired = [.. _model.Where(e => e.Value.ExpiresAt != 0 && now >= e.Value.ExpiresAt).Select(e => e.Key)];
                long removed = cache.RemoveExpired();   // the listener takes each out of the model, checking it expired
                int left = expired.Count(_model.ContainsKey);
                return removed != expired.Length || left != 0
                    ? $"removeExpired: RemoveExpired() = {removed}, the model held {expired.Length} expired entries ({left} still held after)"
                    : null;
            }
            case OpKind.GetOrAdd:
            {
                bool live = Live(op.Key, out byte[] current);
                Count(live);   // one lookup: the flight leader's re-check is not counted
                byte[] produced = Keys.Value(op.Key, ++_version, length);
                var writer = new ArrayBufferWriter<byte>();
                bool fromCache = cache.GetOrAdd(key, produced, static (_, v, w) => w.Write(v), writer);
                if (live)
                {
                    return fromCache && writer.WrittenSpan.SequenceEqual(current) ? null
                        : $"getoradd: live k{op.Key} gave fromCache={fromCache} and {writer.WrittenCount} bytes (model {current.Length})";
                }
                if (fromCache || !writer.WrittenSpan.SequenceEqual(produced))
                {
                    return $"getoradd: absent k{op.Key} gave fromCache={fromCache}, {writer.WrittenCount} bytes, want the factory's {produced.Length}";
                }
                bool stored = cache.ContainsKey(key);
                Count(stored);
                if (stored)
                {
                    _model[op.Key] = (produced, 0);
                }
                else
                {
                    _model.Remove(op.Key);
                }
                return null;
            }
            case OpKind.SetMany:
            {
                var items = new KeyValuePair<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>>[op.Arg];
                var last = new Dictionary<int, byte[]>();
                for (int i = 0; i < items.Length; i++)
                {
                    int id = (op.Key + i) % Math.Max(1, _config.KeySpace);
                    byte[] value = Keys.Value(id, ++_version, length);
                    items[i] = new(KeyOf(id), value);
                    last[id] = value;
                }
                _lenientListener = true;
                _batchKeys = [.. last.Keys];
                int storedCount;
                try
                {
                    storedCount = cache.SetMany(items);
                }
                finally
                {
                    _lenientListener = false;
                    _batchKeys = null;
                }
                if (storedCount > items.Length)
                {
                    return $"setmany: stored {storedCount} of {items.Length}";
                }
                foreach ((int id, byte[] value) in last)
                {
                    bool stored = cache.ContainsKey(KeyOf(id));
                    Count(stored);
                    if (stored)
                    {
                        _model[id] = (value, 0);
                    }
                    else
                    {
                        _model.Remove(id);
                    }
                }
                return null;
            }
            case OpKind.GetMany:
            {
                var keys = new ReadOnlyMemory<byte>[op.Arg];
                for (int i = 0; i < keys.Length; i++)
                {
                    keys[i] = KeyOf((op.Key + i) % Math.Max(1, _config.KeySpace));
                }
                var writer = new ArrayBufferWriter<byte>();
                var lengths = new int[keys.Length];
                int hits = cache.TryGetMany(keys, writer, lengths);
                int offset = 0, expectedHits = 0;
                for (int i = 0; i < keys.Length; i++)
                {
                    int id = (op.Key + i) % Math.Max(1, _config.KeySpace);
                    bool live = Live(id, out byte[] value);
                    Count(live);
                    expectedHits += live ? 1 : 0;
                    if (!live)
                    {
                        if (lengths[i] != -1)
                        {
                            return $"stale hit: TryGetMany gave k{id} ({lengths[i]} bytes), model says absent";
                        }
                        continue;
                    }
                    if (lengths[i] != value.Length || !writer.WrittenSpan.Slice(offset, value.Length).SequenceEqual(value))
                    {
                        return $"value mismatch: TryGetMany k{id}: {lengths[i]} bytes, model {value.Length}";
                    }
                    offset += value.Length;
                }
                return hits == expectedHits && offset == writer.WrittenCount ? null : $"getmany: {hits} hits / {writer.WrittenCount} bytes, model {expectedHits} / {offset}";
            }
            default:
                throw new InvalidOperationException("unknown op " + op.Kind);
        }
    }

    private void Count(bool hit)
    {
        if (hit)
        {
            _expectedHits++;
        }
        else
        {
            _expectedMisses++;
        }
    }

    private string? CheckRead(int id, bool hit, int written, byte[] buffer)
    {
        bool live = Live(id, out byte[] value);
        Count(live);
        if (!live)
        {
            return !hit && written == 0 ? null : $"stale hit: k{id} is not live in the model but TryGet returned {written} bytes";
        }
        if (!hit)
        {
            return $"lost: k{id} is live in the model ({value.Length} bytes) but TryGet missed (bytesWritten {written})";
        }
        return written == value.Length && buffer.AsSpan(0, written).SequenceEqual(value) ? null
            : $"value mismatch: k{id} returned {written} bytes that differ from the model's {value.Length}";
    }

    private string? Sweep(OffHeapCache cache, byte[] buffer)
    {
        for (int id = 0; id < _config.KeySpace; id++)
        {
            bool hit = cache.TryGet(KeyOf(id), buffer, out int written);
            string? error = CheckRead(id, hit, written, buffer);
            if (error is not null)
            {
                return error;
            }
        }
        return CheckListings(cache);
    }

    /// <summary>The cache's key and entry enumerations each list exactly the model's live keys, each once, the entries with
    /// the model's values (nothing runs concurrently here).</summary>
    private string? CheckListings(OffHeapCache cache)
    {
        int live = _model.Keys.Count(id => Live(id, out _));
        return CheckListing("keys", cache.Keys.Select(k => (k, (byte[]?)null)), live)
            ?? CheckListing("entries", cache.Entries.Select(e => (e.Key, (byte[]?)e.Value)), live);
    }

    /// <summary>One listing (a value of null: not listed) against the model's <paramref name="live"/> keys.</summary>
    private string? CheckListing(string what, IEnumerable<(byte[] Key, byte[]? Value)> listing, int live)
    {
        var listed = new HashSet<int>();
        foreach ((byte[] key, byte[]? value) in listing)
        {
            int id = Keys.IdOf(key);
            if (!key.AsSpan().SequenceEqual(KeyOf(id)) || !Live(id, out byte[] expected))
            {
                return $"{what}: listed {Convert.ToHexString(key)}, which is not a live key of the model";
            }
            if (value is not null && !value.AsSpan().SequenceEqual(expected))
            {
                return $"{what}: k{id} listed with {value.Length} bytes that differ from the model's {expected.Length}";
            }
            if (!listed.Add(id))
            {
                return $"{what}: k{id} listed twice";
            }
        }
        return listed.Count == live ? null : $"{what}: {listed.Count} listed, the model has {live} live keys";
    }

    private string? CheckState(OffHeapCache cache, int step, int validateEvery)
    {
        CacheStatistics stats = cache.GetStatistics();
        if (stats.NativeBytes > _config.Capacity)
        {
            return $"budget: native bytes {stats.NativeBytes} exceed CapacityBytes {_config.Capacity}";
        }
        if (stats.Count != _model.Count)
        {
            return $"count: cache holds {stats.Count} entries, model {_model.Count}";
        }
        if (_config.MaxEntries is long max && stats.Count > max)
        {
            return $"entry bound: {stats.Count} entries exceed MaxEntries {max}";
        }
        long payload = 0;
        foreach ((int id, var entry) in _model)
        {
            payload += KeyOf(id).Length + entry.Value.Length;
        }
        if (stats.PayloadBytes != payload)
        {
            return $"payload: cache reports {stats.PayloadBytes} payload bytes, model {payload}";
        }
        if (stats.Hits != _expectedHits || stats.Misses != _expectedMisses)
        {
            return $"statistics: hits/misses {stats.Hits}/{stats.Misses}, model {_expectedHits}/{_expectedMisses}";
        }
        if (stats.Evictions != _listenedEvictions || stats.Expirations != _listenedExpirations)
        {
            return $"statistics: evictions/expirations {stats.Evictions}/{stats.Expirations}, listener saw {_listenedEvictions}/{_listenedExpirations}";
        }
        if ((step + 1) % validateEvery == 0)
        {
            cache.ValidateInvariants();
            cache.Pool.ValidateInvariants();
            long chunks = cache.Pool.GetStatistics().Classes.Sum(c => c.LiveChunks);
            if (chunks != stats.Count)
            {
                return $"chunk leak: the slab holds {chunks} live chunks for {stats.Count} entries";
            }
        }
        return null;
    }
}

/// <summary>Installs and removes the slab's native allocation hook (process-wide: fault tests are non-parallel).</summary>
internal static class SlabHook
{
    public static void Install(Func<nuint, bool> hook) => CacheKit.Slab.SlabPool.AllocationHook = hook;

    public static void Remove() => CacheKit.Slab.SlabPool.AllocationHook = null;

    public readonly struct Scope(bool active) : IDisposable
    {
        public void Dispose()
        {
            if (active)
            {
                Remove();
            }
        }
    }
}

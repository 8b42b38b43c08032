using System.Buffers.Binary;
using System.Globalization;
using CacheKit.OffHeap;
using CacheKit.Policies;

namespace CacheKit.Simulator;

/// <summary>
/// Replays a trace through the real engine (<see cref="OffHeapCache"/>): cache-aside, a <c>TryGet</c> and on a miss a
/// <c>Set</c>, so the engine's hit ratio can be held against its policy's own row in the same table. Entry capacity:
/// bounded by <see cref="OffHeapCacheOptions.MaxEntries"/>, values of 8 bytes. Byte capacity
/// (<see cref="ForByteBudget"/>): the capacity is <see cref="OffHeapCacheOptions.CapacityBytes"/> and each object is
/// stored at its size, so the engine's own overheads (index, headers, size classes, pages) count, as for a user.
/// </summary>
/// <remarks>
/// Keys are the dense key id as 8 little-endian bytes. The hash seed is fixed (<see cref="Catalog.Seed"/>) so the
/// replay is deterministic; one shard by default, so an entry bound is exact (with several shards each shard holds its
/// share of the entries or bytes, as in production).
/// </remarks>
public sealed class EngineTarget : IReplayTarget, IReplayNote, IDisposable
{
    private readonly OffHeapCache _cache;
    private readonly byte[] _key = new byte[8];
    private readonly byte[] _value = new byte[8];   // byte budget: the largest value, written sliced to each object's size
    private readonly byte[] _read = new byte[8];
    private readonly bool _weighted;

    /// <summary>An engine with <paramref name="policy"/> bounded to <paramref name="entries"/> entries.</summary>
    public EngineTarget(PolicyKind policy, long entries, int shards)
        : this(NameOf(policy, shards), weighted: false, new OffHeapCacheOptions
        {
            MaxEntries = entries,
            // Room for the entries, and for the index and a page per shard beside them (256 shards of 64 KiB
            // pages alone take 16 MiB).
            CapacityBytes = Math.Max(16L << 20, entries * 512) + (shards * (64L << 10)),
            Policy = Enum.Parse<CachePolicy>(policy.ToString()),
            ShardCount = shards,
            PageSize = 64 * 1024,
        })
    {
    }

    private EngineTarget(string name, bool weighted, OffHeapCacheOptions options)
    {
        Name = name;
        _weighted = weighted;
        options.HashSeed = Catalog.Seed;
        // Readers replay a full read-buffer stripe themselves, and one stripe keeps the reads in order
        // whichever core the replaying thread is on, so a replay gives the same numbers every time.
        options.BackgroundReadReplay = false;
        options.ReadBufferStripes = 1;
        _cache = new OffHeapCache(options);
        if (weighted)
        {
            _value = new byte[_cache.MaxValueBytes];
            _read = new byte[_cache.MaxValueBytes];
        }
    }

    /// <summary>
    /// An engine with <paramref name="policy"/> and <paramref name="shards"/> shards under a byte budget of
    /// <paramref name="budgetBytes"/>, for a trace with object sizes, its other options at their defaults: no <see cref="OffHeapCacheOptions.MaxEntries"/>,
    /// the default entry-size hint, page size and largest value, so the budget pays for the index, the entry headers,
    /// the size-class rounding and partly filled pages, as it does for a user. Each object is stored as a value of its
    /// size; one above <see cref="OffHeapCache.MaxValueBytes"/> is not stored (counted in <see cref="Oversized"/>).
    /// </summary>
    public static EngineTarget ForByteBudget(PolicyKind policy, long budgetBytes, int shards) =>
        new(NameOf(policy, shards), weighted: true, new OffHeapCacheOptions
        {
            CapacityBytes = budgetBytes,
            Policy = Enum.Parse<CachePolicy>(policy.ToString()),
            ShardCount = shards,
        });

    /// <summary><see cref="ForByteBudget"/>, or null (no cell) when the engine refuses a budget that small for that
    /// many shards (it needs the index and a page per shard).</summary>
    public static EngineTarget? TryForByteBudget(PolicyKind policy, long budgetBytes, int shards)
    {
        try
        {
            return ForByteBudget(policy, budgetBytes, shards);
        }
        catch (ArgumentOutOfRangeException e) when (e.ParamName == nameof(OffHeapCacheOptions.CapacityBytes))
        {
            return null;
        }
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <summary>Requests (weighted engine) whose object is larger than the engine's largest value, so never stored.</summary>
    public long Oversized { get; private set; }

    /// <inheritdoc />
    public bool Access(in Request request)
    {
        BinaryPrimitives.WriteInt64LittleEndian(_key, request.KeyId);
        if (_weighted)
        {
            // The object's size is the value's length, so a hit whose size changed in the trace is a hit that the
            // cache-aside caller then overwrites (as the policy rows count it: a hit, then an update).
            if (_cache.TryGet(_key, _read, out int length))
            {
                if (length != request.Weight)
                {
                    StoreOrDrop(request.Weight);
                }
                return true;
            }
            StoreOrDrop(request.Weight);
            return false;
        }
        if (_cache.TryGet(_key, _read, out _))
        {
            return true;
        }
        BinaryPrimitives.WriteInt64LittleEndian(_value, request.KeyId);
        _cache.Set(_key, _value);
        return false;
    }

    /// <summary>Stores the object at its size; one too large for the engine is counted and its older, stale value dropped.</summary>
    private void StoreOrDrop(long size)
    {
        if (size > _cache.MaxValueBytes)
        {
            Oversized++;
            _cache.Remove(_key);
            return;
        }
        _cache.Set(_key, _value.AsSpan(0, (int)size));
    }

    /// <inheritdoc />
    public string? Note
    {
        get
        {
            if (!_weighted)
            {
                return null;
            }
            CacheStatistics st = _cache.GetStatistics();
            return string.Create(CultureInfo.InvariantCulture,
                $"{Oversized:N0} requests above the engine's largest value ({_cache.MaxValueBytes:N0} B) not stored; at the end {st.Count:N0} entries held {st.PayloadBytes / (double)(1 << 20):F2} MiB of keys and values in {st.NativeBytes / (double)(1 << 20):F2} MiB of native memory (budget {st.CapacityBytes / (double)(1 << 20):F2} MiB)");
        }
    }

    /// <inheritdoc />
    public void Dispose() => _cache.Dispose();

    /// <summary>The row name of the engine with <paramref name="policy"/> and <paramref name="shards"/> shards (no cache built).</summary>
    public static string NameOf(PolicyKind policy, int shards) =>
        shards == 1 ? $"Engine({PolicyName(policy)})" : $"Engine({PolicyName(policy)}, {shards} shards)";

    private static string PolicyName(PolicyKind kind) =>
        PolicyFactory.Create(kind, new PolicyOptions { MaxHandles = 16, Capacity = 8 }).Name;
}

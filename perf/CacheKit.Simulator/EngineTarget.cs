using System.Buffers.Binary;
using CacheKit.OffHeap;
using CacheKit.Policies;

namespace CacheKit.Simulator;

/// <summary>
/// Replays a trace through the real engine (<see cref="OffHeapCache"/>) bounded by
/// <see cref="OffHeapCacheOptions.MaxEntries"/>: cache-aside, a <c>TryGet</c> and on a miss a <c>Set</c>,
/// so the engine's hit ratio can be held against its policy's own row in the same table. Entry-count
/// capacity only (the engine bounds bytes by memory, not by object sizes from the trace).
/// </summary>
/// <remarks>
/// Keys are the dense key id as 8 little-endian bytes, values 8 bytes. The hash seed is fixed
/// (<see cref="Catalog.Seed"/>) so the replay is deterministic; one shard by default, so the bound is
/// exact (with several shards each shard holds its share of the entries, as in production).
/// </remarks>
public sealed class EngineTarget : IReplayTarget, IDisposable
{
    private readonly OffHeapCache _cache;
    private readonly byte[] _key = new byte[8];
    private readonly byte[] _value = new byte[8];
    private readonly byte[] _read = new byte[8];

    /// <summary>An engine with <paramref name="policy"/> bounded to <paramref name="entries"/> entries.</summary>
    public EngineTarget(PolicyKind policy, long entries, int shards)
    {
        Name = NameOf(policy, shards);
        _cache = new OffHeapCache(new OffHeapCacheOptions
        {
            MaxEntries = entries,
            // Room for the entries, and for the index and a page per shard beside them (256 shards of 64 KiB
            // pages alone take 16 MiB).
            CapacityBytes = Math.Max(16L << 20, entries * 512) + (shards * (64L << 10)),
            Policy = Enum.Parse<CachePolicy>(policy.ToString()),
            ShardCount = shards,
            PageSize = 64 * 1024,
            HashSeed = Catalog.Seed,
            // Readers replay a full read-buffer stripe themselves, and one stripe keeps the reads in order
            // whichever core the replaying thread is on, so a replay gives the same numbers every time.
            BackgroundReadReplay = false,
            ReadBufferStripes = 1,
        });
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public bool Access(in Request request)
    {
        BinaryPrimitives.WriteInt64LittleEndian(_key, request.KeyId);
        if (_cache.TryGet(_key, _read, out _))
        {
            return true;
        }
        BinaryPrimitives.WriteInt64LittleEndian(_value, request.KeyId);
        _cache.Set(_key, _value);
        return false;
    }

    /// <inheritdoc />
    public void Dispose() => _cache.Dispose();

    /// <summary>The row name of the engine with <paramref name="policy"/> and <paramref name="shards"/> shards (no cache built).</summary>
    public static string NameOf(PolicyKind policy, int shards) =>
        shards == 1 ? $"Engine({PolicyName(policy)})" : $"Engine({PolicyName(policy)}, {shards} shards)";

    private static string PolicyName(PolicyKind kind) =>
        PolicyFactory.Create(kind, new PolicyOptions { MaxHandles = 16, Capacity = 8 }).Name;
}

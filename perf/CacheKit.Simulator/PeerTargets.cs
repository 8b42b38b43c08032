using BitFaster.Caching.Lfu;
using BitFaster.Caching.Lru;
using BitFaster.Caching.Scheduler;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Internal;

namespace CacheKit.Simulator;

/// <summary>BitFaster.Caching <c>ConcurrentLru</c> (pseudo-LRU with hot/warm/cold queues), entry-count only.</summary>
public sealed class BitFasterLruTarget(int capacity) : IReplayTarget
{
    private readonly ConcurrentLru<int, int> _cache = new(1, capacity, EqualityComparer<int>.Default);

    /// <inheritdoc />
    public string Name => "BitFaster.ConcurrentLru";

    /// <inheritdoc />
    public bool Access(in Request request)
    {
        if (_cache.TryGet(request.KeyId, out _))
        {
            return true;
        }
        _cache.AddOrUpdate(request.KeyId, 0);
        return false;
    }
}

/// <summary>
/// BitFaster.Caching <c>ConcurrentLfu</c> (W-TinyLFU), entry-count only. Its maintenance (buffer
/// drains, eviction) runs on a <see cref="ForegroundScheduler"/>: synchronously on the calling thread,
/// so the replay is deterministic. Reads still go through its lossy read buffer, as in production.
/// </summary>
public sealed class BitFasterLfuTarget(int capacity) : IReplayTarget
{
    private readonly ConcurrentLfu<int, int> _cache = new(1, capacity, new ForegroundScheduler(), EqualityComparer<int>.Default);

    /// <inheritdoc />
    public string Name => "BitFaster.ConcurrentLfu";

    /// <inheritdoc />
    public bool Access(in Request request)
    {
        if (_cache.TryGet(request.KeyId, out _))
        {
            return true;
        }
        _cache.AddOrUpdate(request.KeyId, 0);
        return false;
    }
}

/// <summary>
/// <c>Microsoft.Extensions.Caching.Memory.MemoryCache</c> with a <c>SizeLimit</c> (entries, or bytes).
/// </summary>
/// <remarks>
/// Deterministic by construction: (1) a manual clock that ticks once per request, so its LRU order
/// (LastAccessed) is exact and no expiration scan is ever due; (2) MemoryCache rejects a Set that would
/// exceed SizeLimit and compacts on the thread pool; instead, before storing a newcomer, this target
/// calls <c>Compact</c> itself, synchronously, with the cache's compaction percentage (5%, at least one
/// entry) until the newcomer fits, so the Set never overflows and no background compaction starts.
/// </remarks>
public sealed class MemoryCacheTarget : IReplayTarget, IDisposable
{
    private const double CompactionPercentage = 0.05;
    private readonly ManualClock _clock = new();
    private readonly MemoryCache _cache;
    private readonly long _limit;

    /// <summary>A cache with SizeLimit = <paramref name="limit"/>.</summary>
    public MemoryCacheTarget(long limit)
    {
        _limit = limit;
        _cache = new MemoryCache(new MemoryCacheOptions
        {
            SizeLimit = limit,
            CompactionPercentage = CompactionPercentage,
            TrackStatistics = true,
            Clock = _clock,
        });
    }

    /// <inheritdoc />
    public string Name => "MemoryCache";

    /// <summary>Entries held now.</summary>
    public int Count => _cache.Count;

    /// <inheritdoc />
    public bool Access(in Request request)
    {
        _clock.Tick();
        object key = request.KeyId;
        if (_cache.TryGetValue(key, out object? value))
        {
            if (value is long w && w != request.Weight)
            {
                _cache.Remove(key);
                if (request.Weight <= _limit)
                {
                    Store(key, request.Weight);
                }
            }
            return true;
        }
        if (request.Weight <= _limit)
        {
            Store(key, request.Weight);
        }
        return false;
    }

    private void Store(object key, long weight)
    {
        int guard = _cache.Count + 1;
        while (CurrentSize() + weight > _limit && guard-- > 0)
        {
            _cache.Compact(Math.Max(CompactionPercentage, 1.0 / Math.Max(1, _cache.Count)));
        }
        _cache.Set(key, weight, new MemoryCacheEntryOptions { Size = weight });
    }

    private long CurrentSize() => _cache.GetCurrentStatistics()?.CurrentEstimatedSize ?? _cache.Count;

    /// <inheritdoc />
    public void Dispose() => _cache.Dispose();

    private sealed class ManualClock : ISystemClock
    {
        private static readonly DateTimeOffset Start = new(2020, 1, 1, 0, 0, 0, TimeSpan.Zero);
        private long _ticks;

        public DateTimeOffset UtcNow => Start.AddTicks(_ticks);

        public void Tick() => _ticks++;
    }
}

using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace CacheKit.OffHeap.Extensions;

/// <summary>
/// Publishes one <see cref="OffHeapCache"/>'s counters as <see cref="System.Diagnostics.Metrics"/>
/// instruments on the meter <see cref="MeterName"/>, every measurement tagged
/// <c>cache.name</c>. Observable instruments read <see cref="OffHeapCache.GetStatistics"/> only when a
/// listener collects (dotnet-counters, OpenTelemetry, MetricCollector), so the cache's hot path pays
/// nothing beyond the counters it keeps anyway.
/// </summary>
/// <remarks>
/// <para>Instruments: <c>cachekit.offheap.requests</c> (tag <c>result</c> = hit | miss),
/// <c>cachekit.offheap.evictions</c> (tag <c>reason</c> = capacity | page_reclaimed),
/// <c>cachekit.offheap.expirations</c>, <c>cachekit.offheap.admission_rejections</c>,
/// <c>cachekit.offheap.entries</c>, <c>cachekit.offheap.payload_bytes</c>,
/// <c>cachekit.offheap.native_bytes</c>, <c>cachekit.offheap.capacity_bytes</c>, <c>cachekit.offheap.entry_bound</c>, and, when enabled,
/// the histogram <c>cachekit.offheap.operation.duration</c> (seconds, tag <c>operation</c>).</para>
/// <para>Dispose it before (or with) the cache; after either is disposed the instruments report nothing.</para>
/// </remarks>
public sealed class OffHeapCacheMetrics : IDisposable
{
    /// <summary>The meter's name, to subscribe with: <c>dotnet-counters monitor --counters CacheKit.OffHeap</c>
    /// or OpenTelemetry's <c>AddMeter("CacheKit.OffHeap")</c>.</summary>
    public const string MeterName = "CacheKit.OffHeap";

    /// <summary>The tag carrying the cache's name on every measurement.</summary>
    public const string CacheNameTag = "cache.name";

    // One instrument set per Meter, shared by every cache observed through that meter (a container's
    // factory hands all its caches the same meter; a collector or exporter then sees one instrument per
    // name, with one series per cache.name). Weak, so the set goes with its meter.
    private static readonly ConditionalWeakTable<Meter, InstrumentSet> InstrumentSets = new();

    private readonly OffHeapCache _cache;
    private readonly Meter _meter;
    private readonly bool _ownsMeter;          // true when no IMeterFactory was given: we dispose the meter
    private readonly InstrumentSet _instruments;
    private readonly KeyValuePair<string, object?> _nameTag;
    private readonly Histogram<double>? _duration;   // null unless the latency histogram was enabled
    private int _disposed;

    /// <summary>Creates (or joins) the instruments and adds <paramref name="cache"/>'s series to them.</summary>
    /// <param name="cache">The cache to observe; it stays owned by the caller.</param>
    /// <param name="cacheName">The value of the <c>cache.name</c> tag; not empty, and unique among the caches of one meter factory.</param>
    /// <param name="meterFactory">The container's meter factory (recommended with DI); null = a meter of this instance's own, so
    /// the name is not checked against other instances (two with one name then publish two series with the same tags: keep
    /// names unique yourself, or pass a factory).</param>
    /// <param name="enableLatencyHistogram">Record the opt-in <c>cachekit.offheap.operation.duration</c> histogram.</param>
    /// <exception cref="ArgumentNullException"><paramref name="cache"/> or <paramref name="cacheName"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="cacheName"/> is empty or white space, or another live
    /// <see cref="OffHeapCacheMetrics"/> on the same meter (the same <paramref name="meterFactory"/>) already uses it.</exception>
    public OffHeapCacheMetrics(OffHeapCache cache, string cacheName, IMeterFactory? meterFactory = null, bool enableLatencyHistogram = false)
    {
        ArgumentNullException.ThrowIfNull(cache);
        ArgumentException.ThrowIfNullOrWhiteSpace(cacheName);
        _cache = cache;
        CacheName = cacheName;
        _nameTag = new KeyValuePair<string, object?>(CacheNameTag, cacheName);

        // The cache's name goes on every measurement, not on the meter: exporters keep measurement tags
        // (dotnet-counters would show a meter tag twice, some exporters drop meter tags).
        if (meterFactory is null)
        {
            _meter = new Meter(MeterName);
            _ownsMeter = true;
        }
        else
        {
            _meter = meterFactory.Create(new MeterOptions(MeterName));
        }
        _instruments = InstrumentSets.GetValue(_meter, static meter => new InstrumentSet(meter));
        if (!_instruments.TryAdd(this))
        {
            if (_ownsMeter)
            {
                _meter.Dispose();
            }
            throw new ArgumentException(
                $"Another OffHeapCacheMetrics on this meter factory already publishes cache.name '{cacheName}'; each cache needs its own name (dispose the other first to reuse it): two series with the same tags would be merged or overwritten by exporters.",
                nameof(cacheName));
        }
        if (enableLatencyHistogram)
        {
            _duration = _instruments.Duration();
        }
    }

    /// <summary>The value of the <c>cache.name</c> tag.</summary>
    public string CacheName { get; }

    /// <summary>Whether <see cref="RecordDuration"/> records anything.</summary>
    public bool LatencyHistogramEnabled => _duration is not null;

    /// <summary>
    /// Records one operation's duration in the opt-in histogram; does nothing when it is disabled.
    /// </summary>
    /// <param name="operation">A short constant name, e.g. "get", "set", "refresh", "remove".</param>
    /// <param name="startTimestamp">A <see cref="Stopwatch.GetTimestamp"/> taken when the operation began.</param>
    public void RecordDuration(string operation, long startTimestamp)
    {
        if (_duration is null || Volatile.Read(ref _disposed) != 0)
        {
            return;   // disabled, or disposed: "after either is disposed the instruments report nothing"
        }
        _duration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds, _nameTag,
            new KeyValuePair<string, object?>("operation", operation));
    }

    /// <summary>Stops reporting; disposes the meter when it is ours (a factory's meter is the factory's to dispose).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _instruments.Remove(this);
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    /// <summary>A snapshot, or null when this object or the cache was disposed (then instruments report nothing).</summary>
    private CacheStatistics? Snapshot()
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return null;
        }
        try
        {
            return _cache.GetStatistics();
        }
        catch (ObjectDisposedException)
        {
            return null;
        }
    }

    /// <summary>The instruments of one meter; each callback reports one series per live source.</summary>
    private sealed class InstrumentSet
    {
        private static readonly KeyValuePair<string, object?> Hit = new("result", "hit");
        private static readonly KeyValuePair<string, object?> Miss = new("result", "miss");
        private static readonly KeyValuePair<string, object?> Capacity = new("reason", "capacity");
        private static readonly KeyValuePair<string, object?> PageReclaimed = new("reason", "page_reclaimed");

        private readonly Meter _meter;
        private readonly Lock _gate = new();
        private OffHeapCacheMetrics[] _sources = [];   // copy on write under _gate; callbacks read it without a lock
        private Histogram<double>? _duration;           // created on first demand, under _gate

        public InstrumentSet(Meter meter)
        {
            _meter = meter;
            meter.CreateObservableCounter("cachekit.offheap.requests", () => Observe(static (s, tag) =>
                [new Measurement<long>(s.Hits, tag, Hit), new Measurement<long>(s.Misses, tag, Miss)]),
                "{request}", "Lookups, tagged result = hit or miss.");
            meter.CreateObservableCounter("cachekit.offheap.evictions", () => Observe(static (s, tag) =>
                [new Measurement<long>(s.CapacityEvictions, tag, Capacity), new Measurement<long>(s.PageReclaims, tag, PageReclaimed)]),
                "{entry}", "Live entries removed to make room, tagged reason = capacity (policy victim, entry bound) or page_reclaimed (page taken for another size class).");
            meter.CreateObservableCounter("cachekit.offheap.expirations", () => Observe(static (s, tag) => [new Measurement<long>(s.Expirations, tag)]),
                "{entry}", "Expired entries reclaimed.");
            meter.CreateObservableCounter("cachekit.offheap.admission_rejections", () => Observe(static (s, tag) => [new Measurement<long>(s.Rejections, tag)]),
                "{entry}", "Sets that did not store their entry (refused by admission, or no room within the per-insert eviction cap).");
            meter.CreateObservableUpDownCounter("cachekit.offheap.entries", () => Observe(static (s, tag) => [new Measurement<long>(s.Count, tag)]),
                "{entry}", "Entries stored, including expired ones not yet reclaimed.");
            meter.CreateObservableUpDownCounter("cachekit.offheap.payload_bytes", () => Observe(static (s, tag) => [new Measurement<long>(s.PayloadBytes, tag)]),
                "By", "Bytes of keys and values stored.");
            meter.CreateObservableUpDownCounter("cachekit.offheap.native_bytes", () => Observe(static (s, tag) => [new Measurement<long>(s.NativeBytes, tag)]),
                "By", "Native bytes the cache owns (pages and index), never above the capacity.");
            meter.CreateObservableUpDownCounter("cachekit.offheap.capacity_bytes", () => Observe(static (s, tag) => [new Measurement<long>(s.CapacityBytes, tag)]),
                "By", "The configured budget in bytes.");
            meter.CreateObservableUpDownCounter("cachekit.offheap.entry_bound", () => Observe(static (s, tag) => [new Measurement<long>(s.EntryBound, tag)]),
                "{entry}", "The most entries the cache holds (MaxEntries, or the index's bound from the entry size hint).");
        }

        /// <summary>Adds <paramref name="source"/>'s series; false (nothing added) when a live source already uses its cache name.</summary>
        public bool TryAdd(OffHeapCacheMetrics source)
        {
            lock (_gate)
            {
                if (_sources.Any(s => s.CacheName == source.CacheName))
                {
                    return false;
                }
                _sources = [.. _sources, source];
                return true;
            }
        }

        public void Remove(OffHeapCacheMetrics source)
        {
            lock (_gate)
            {
                _sources = [.. _sources.Where(s => !ReferenceEquals(s, source))];
            }
        }

        public Histogram<double> Duration()
        {
            lock (_gate)
            {
                return _duration ??= _meter.CreateHistogram<double>("cachekit.offheap.operation.duration", "s",
                    "Duration of the integration's cache operations, tagged operation.", tags: null,
                    advice: new InstrumentAdvice<double>
                    {
                        // Microseconds to tens of milliseconds: an in-process cache lives at the low end.
                        HistogramBucketBoundaries = [1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2],
                    });
            }
        }

        private List<Measurement<long>> Observe(Func<CacheStatistics, KeyValuePair<string, object?>, Measurement<long>[]> measure)
        {
            var measurements = new List<Measurement<long>>();
            foreach (OffHeapCacheMetrics source in Volatile.Read(ref _sources))
            {
                if (source.Snapshot() is { } stats)
                {
                    measurements.AddRange(measure(stats, source._nameTag));
                }
            }
            return measurements;
        }
    }
}

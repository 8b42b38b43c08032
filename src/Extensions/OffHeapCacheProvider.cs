using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CacheKit.OffHeap.Extensions;

/// <summary>
/// Creates each registered cache once (settings → engine options → cache → metrics), turns an engine
/// argument error into an <see cref="OptionsValidationException"/> naming the configuration key, and
/// disposes metrics and caches with the container.
/// </summary>
internal sealed class OffHeapCacheProvider : IOffHeapCacheProvider, IDisposable
{
    private readonly Dictionary<string, CacheRegistration> _registrations;
    private readonly IOptionsMonitor<OffHeapCacheSettings> _settings;
    private readonly TimeProvider _time;
    private readonly IMeterFactory? _meterFactory;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    // Invariant: every key is a registered name; guarded by _gate; emptied (and everything disposed) once _disposed.
    private readonly Dictionary<string, CreatedCache> _created = new(StringComparer.Ordinal);
    private readonly HashSet<string> _creating = new(StringComparer.Ordinal);   // under _gate: names whose Create is running
    private bool _disposed;

    public OffHeapCacheProvider(IEnumerable<CacheRegistration> registrations, IOptionsMonitor<OffHeapCacheSettings> settings,
        TimeProvider time, IMeterFactory? meterFactory, ILoggerFactory? loggerFactory)
    {
        _registrations = registrations.ToDictionary(r => r.Name, StringComparer.Ordinal);
        _settings = settings;
        _time = time;
        _meterFactory = meterFactory;
        _logger = (ILogger?)loggerFactory?.CreateLogger("CacheKit.OffHeap") ?? NullLogger.Instance;
    }

    public IReadOnlyCollection<string> CacheNames => _registrations.Keys;

    public OffHeapCache GetCache(string name) => GetOrCreate(name).Cache;

    public OffHeapCacheMetrics GetMetrics(string name) => GetOrCreate(name).Metrics;

    /// <summary>Logs one summary line per created cache (the host's stop calls it, before the container disposes anything).</summary>
    public void LogSummaries()
    {
        lock (_gate)
        {
            foreach ((string name, CreatedCache created) in _created)
            {
                try
                {
                    CacheStatistics s = created.Cache.GetStatistics();
                    Log.CacheSummary(_logger, name, s.Hits, s.Misses, s.Evictions, s.Expirations, s.Rejections);
                }
                catch (ObjectDisposedException)
                {
                    // Disposed by its owner already: nothing left to report.
                }
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            foreach (CreatedCache created in _created.Values)
            {
                created.ExpirationScanner?.Dispose();
                created.Metrics.Dispose();
                created.Cache.Dispose();
            }
            _created.Clear();
        }
    }

    private CreatedCache GetOrCreate(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!_registrations.TryGetValue(name, out CacheRegistration? registration))
        {
            throw new ArgumentException(
                $"No off-heap cache named '{name}' is registered; registered: {string.Join(", ", _registrations.Keys.Select(n => $"'{n}'"))}. Register it with services.AddOffHeapCache(\"{name}\", ...).",
                nameof(name));
        }
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_created.TryGetValue(name, out CreatedCache? created))
            {
                // _gate is re-entrant: a ConfigureCacheOptions callback that asks for the cache it configures would start
                // another Create of it, and so on until the stack overflows (a crash, not an exception; found by review).
                if (!_creating.Add(name))
                {
                    throw new InvalidOperationException($"The off-heap cache '{name}' was asked for while it is being created (from its own ConfigureCacheOptions callback); a callback cannot use the cache it configures.");
                }
                try
                {
                    created = Create(registration);
                }
                finally
                {
                    _creating.Remove(name);
                }
                _created.Add(name, created);
            }
            return created;
        }
    }

    private CreatedCache Create(CacheRegistration registration)
    {
        string name = registration.Name;
        OffHeapCacheSettings settings;
        try
        {
            settings = _settings.Get(name);
        }
        catch (InvalidOperationException e) when (registration.ConfigurationPath is { Length: > 0 } section)
        {
            // The binder names an unknown or mistyped key but not the section it was read from (found by review). The
            // options pipeline also runs the user's own Configure callbacks here, hence "or configured".
            throw new InvalidOperationException($"Off-heap cache '{name}': its settings (configuration section '{section}') could not be bound or configured: {e.Message}", e);
        }
        OffHeapCacheOptions options = settings.ToCacheOptions(_time);
        registration.ConfigureCacheOptions?.Invoke(options);

        OffHeapCache cache;
        try
        {
            if (settings.ExpirationScanInterval is { } scan && (scan < TimeSpan.FromMilliseconds(1) || scan > TimeSpan.FromMilliseconds(uint.MaxValue - 1)))
            {
                throw new ArgumentOutOfRangeException(nameof(OffHeapCacheSettings.ExpirationScanInterval), scan,
                    "ExpirationScanInterval must be positive, from 1 ms to 49.7 days (or null: no periodic scan).");
            }
            cache = new OffHeapCache(options);
        }
        catch (ArgumentException e)
        {
            string setting = registration.ConfigurationPath is { Length: > 0 } path && e.ParamName is not null
                ? $"{path}:{e.ParamName}"
                : e.ParamName ?? "(unknown)";
            throw new OptionsValidationException(name, typeof(OffHeapCacheSettings),
                [$"Off-heap cache '{name}': setting '{setting}' is invalid: {e.Message}"]);
        }

        OffHeapCacheMetrics metrics;
        try
        {
            metrics = new OffHeapCacheMetrics(cache, name, _meterFactory, settings.EnableLatencyHistogram);
        }
        catch
        {
            cache.Dispose();
            throw;
        }

        try
        {
            Log.CacheStarted(_logger, name, options.CapacityBytes, options.Policy, cache.ShardCount, cache.MaxKeyBytes, cache.MaxValueBytes);
            long available = AvailableMemoryBytes();
            if (available > 0 && options.CapacityBytes > available)
            {
                Log.BudgetAboveAvailableMemory(_logger, name, options.CapacityBytes, available);
            }
            if (options.Policy is CachePolicy.Lifo or CachePolicy.Mru or CachePolicy.Mfu or CachePolicy.Random)
            {
                Log.StudyPolicy(_logger, name, options.Policy);
            }
        }
        catch
        {
            // A throwing logger: nothing created may outlive the failure (the cache's native memory, the metrics' name).
            metrics.Dispose();
            cache.Dispose();
            throw;
        }
        // Last, so that a failure before it leaves no timer; a timer that cannot be made (an interval out of its range
        // is refused above) takes the cache and metrics down with it.
        ITimer? scanner = null;
        if (settings.ExpirationScanInterval is { } interval)
        {
            // The timer is made lazily, often inside a request: without this its scans (and the eviction listener they
            // run) would see that request's AsyncLocal values (its Activity, logging scopes) for the cache's life.
            bool suppressHere = !ExecutionContext.IsFlowSuppressed();
            if (suppressHere)
            {
                ExecutionContext.SuppressFlow();
            }
            try
            {
                scanner = _time.CreateTimer(static state => ((ExpirationScan)state!).Run(), new ExpirationScan(cache, name, _logger), interval, interval);
            }
            catch
            {
                metrics.Dispose();
                cache.Dispose();
                throw;
            }
            finally
            {
                if (suppressHere)
                {
                    ExecutionContext.RestoreFlow();
                }
            }
        }
        return new CreatedCache(cache, metrics, scanner);
    }

    /// <summary>The periodic <see cref="OffHeapCache.RemoveExpired"/> of one cache (its timer's state).</summary>
    private sealed class ExpirationScan(OffHeapCache cache, string name, ILogger logger)
    {
        public void Run()
        {
            try
            {
                cache.RemoveExpired();
            }
            catch (ObjectDisposedException) when (cache.IsDisposed)
            {
                // Disposed by its owner (or the container) while the timer fired: nothing left to scan.
            }
            catch (Exception e)
            {
                try
                {
                    Log.ExpirationScanFailed(logger, name, e);
                }
                catch
                {
                    // A pool thread must not see an exception (it would end the process); nothing else to tell.
                }
            }
        }
    }

    /// <summary>
    /// Memory the process may use (the GC's <see cref="GCMemoryInfo.TotalAvailableMemoryBytes"/>: physical memory, or in a
    /// container with a memory limit the GC's share of it), or 0 when there is nothing to compare with: when a GC heap hard
    /// limit was set explicitly, the GC reports that limit, which says nothing about native memory.
    /// </summary>
    private static long AvailableMemoryBytes()
        => AvailableMemoryBytes(Environment.GetEnvironmentVariable, AppContext.GetData, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes);

    /// <summary>The GC heap hard limit settings a user can set: runtimeconfig keys (read through AppContext) and the
    /// environment variables' suffixes (after DOTNET_ or COMPlus_).</summary>
    private static readonly string[] HeapLimitSettings =
        ["HeapHardLimit", "HeapHardLimitPercent", "HeapHardLimitSOH", "HeapHardLimitLOH", "HeapHardLimitPOH",
         "HeapHardLimitSOHPercent", "HeapHardLimitLOHPercent", "HeapHardLimitPOHPercent"];

    /// <summary><paramref name="totalAvailable"/>, or 0 (no check) when a GC heap hard limit was set explicitly.</summary>
    /// <remarks>Not from <c>GC.GetConfigurationVariables()</c>: in a container with a memory limit the GC sets its own
    /// heap limit (75 % of the container's) and reports it there as non-zero, and the check must still run then.</remarks>
    /// <param name="environment">Reads an environment variable (DOTNET_GCHeapHardLimit and friends, COMPlus_ alike).</param>
    /// <param name="appContext">Reads runtimeconfig data (System.GC.HeapHardLimit and friends).</param>
    /// <param name="totalAvailable">The GC's TotalAvailableMemoryBytes.</param>
    internal static long AvailableMemoryBytes(Func<string, string?> environment, Func<string, object?> appContext, long totalAvailable)
    {
        foreach (string setting in HeapLimitSettings)
        {
            if (IsSet(appContext("System.GC." + setting)) || IsSet(environment("DOTNET_GC" + setting)) || IsSet(environment("COMPlus_GC" + setting)))
            {
                return 0;
            }
        }
        return totalAvailable;
    }

    /// <summary>Whether a setting's value is present and not zero (hex "0x0", decimal "0" or a numeric 0 count as unset).</summary>
    private static bool IsSet(object? value) => value switch
    {
        null => false,
        string text => !string.IsNullOrWhiteSpace(text) && text.Trim() is not ("0" or "0x0" or "0X0" or "00"),
        IConvertible number => Convert.ToDecimal(number, System.Globalization.CultureInfo.InvariantCulture) != 0,
        _ => true,
    };

    private sealed record CreatedCache(OffHeapCache Cache, OffHeapCacheMetrics Metrics, ITimer? ExpirationScanner);
}

using Microsoft.Extensions.Logging;

namespace CacheKit.OffHeap.Extensions;

/// <summary>The few events worth logging: start (budget, policy), budget and policy warnings, a summary at host stop. Never per operation.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information,
        "Off-heap cache '{CacheName}' started: budget {CapacityBytes} bytes, policy {Policy}, {ShardCount} shards, keys up to {MaxKeyBytes} bytes, values up to {MaxValueBytes} bytes.")]
    public static partial void CacheStarted(ILogger logger, string cacheName, long capacityBytes, CachePolicy policy, int shardCount, int maxKeyBytes, int maxValueBytes);

    [LoggerMessage(2, LogLevel.Warning,
        "Off-heap cache '{CacheName}': its budget of {CapacityBytes} bytes is more than the {AvailableBytes} bytes of memory available to this process; the process may be paged or killed before the cache is full. Lower CapacityBytes.")]
    public static partial void BudgetAboveAvailableMemory(ILogger logger, string cacheName, long capacityBytes, long availableBytes);

    [LoggerMessage(3, LogLevel.Warning,
        "Off-heap cache '{CacheName}' uses policy {Policy}, which is kept for study and comparison; on the measured traces it loses hit ratio to the default WTinyLfu (see docs/choosing-a-policy.md).")]
    public static partial void StudyPolicy(ILogger logger, string cacheName, CachePolicy policy);

    [LoggerMessage(4, LogLevel.Information,
        "Off-heap cache '{CacheName}' at host stop: {Hits} hits, {Misses} misses, {Evictions} evictions, {Expirations} expirations, {Rejections} rejections.")]
    public static partial void CacheSummary(ILogger logger, string cacheName, long hits, long misses, long evictions, long expirations, long rejections);

    [LoggerMessage(5, LogLevel.Error,
        "Off-heap cache '{CacheName}': the periodic expiration scan failed (the entries it removed before the failure stay removed; the next scan runs on time).")]
    public static partial void ExpirationScanFailed(ILogger logger, string cacheName, Exception exception);
}

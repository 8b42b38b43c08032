using System.Diagnostics;
using CacheKit.OffHeap;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

// HybridCache over the off-heap cache: L1 keeps a few hot objects on the GC heap, L2 keeps the
// serialized values in native memory (no GC cost however large), and the factory runs once per key.
// appsettings.json is read from beside the executable, wherever it is started from.
HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Services.AddOffHeapCache(builder.Configuration.GetSection("OffHeapCache"));
builder.Services.AddOffHeapDistributedCache();
builder.Services.AddHybridCache(options =>
{
    options.DefaultEntryOptions = new HybridCacheEntryOptions
    {
        Expiration = TimeSpan.FromMinutes(10),        // L2 (off heap)
        LocalCacheExpiration = TimeSpan.FromSeconds(5), // L1 (GC heap)
    };
});

using IHost host = builder.Build();
await host.StartAsync();

HybridCache cache = host.Services.GetRequiredService<HybridCache>();
int backendCalls = 0;

async ValueTask<string> LoadProfile(int id, CancellationToken token)
{
    Interlocked.Increment(ref backendCalls);
    await Task.Delay(50, token);   // the slow backend
    return $"profile of user {id}: {new string('x', 200)}";
}

var clock = Stopwatch.StartNew();
for (int id = 0; id < 100; id++)
{
    await cache.GetOrCreateAsync($"user:{id}", id, LoadProfile);
}
Console.WriteLine($"first pass : 100 reads, {backendCalls} backend calls, {clock.ElapsedMilliseconds} ms");

// Skip L1 (as a new process with an empty L1 would): reads now come from the off-heap L2.
var skipL1 = new HybridCacheEntryOptions { Flags = HybridCacheEntryFlags.DisableLocalCacheRead };
clock.Restart();
int before = backendCalls;
for (int id = 0; id < 100; id++)
{
    await cache.GetOrCreateAsync($"user:{id}", id, LoadProfile, skipL1);
}
Console.WriteLine($"second pass: 100 reads, {backendCalls - before} backend calls, {clock.ElapsedMilliseconds} ms");

CacheStatistics stats = host.Services.GetRequiredService<OffHeapCache>().GetStatistics();
Console.WriteLine($"off heap   : {stats.Count} entries, {stats.PayloadBytes} payload bytes, {stats.NativeBytes} native bytes of {stats.CapacityBytes}");

await host.StopAsync();
return backendCalls == 100 ? 0 : 1;   // the second pass must not reach the backend

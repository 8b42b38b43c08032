// A first use of CacheKit.OffHeap: a byte cache with an exact native budget, read back through
// spans, and the typed facade for strings, counters and JSON records. Run: dotnet run -c Release --project samples/CacheKit.Sample
using System.Text.Json.Serialization;
using CacheKit.OffHeap;

var options = new OffHeapCacheOptions
{
    CapacityBytes = 64L * 1024 * 1024,   // every native byte the cache owns: pages and index (the policy's metadata is
                                          // managed, ~62 B per CapacityBytes / AverageEntrySizeHint with W-TinyLFU)
    Policy = CachePolicy.WTinyLfu,
};

using (var cache = new OffHeapCache(options))
{
    // Span API: the key and value are copied into native memory; nothing is allocated on the GC heap.
    Span<byte> key = stackalloc byte[16];
    Span<byte> value = stackalloc byte[100];
    Span<byte> readBack = stackalloc byte[100];
    for (int i = 0; i < 100_000; i++)
    {
        BitConverter.TryWriteBytes(key, (long)i);
        value.Fill((byte)i);
        cache.Set(key, value);
    }

    int verified = 0;
    for (int i = 0; i < 100_000; i++)
    {
        BitConverter.TryWriteBytes(key, (long)i);
        if (cache.TryGet(key, readBack, out int written) && written == 100 && readBack[99] == (byte)i)
        {
            verified++;
        }
    }

    CacheStatistics stats = cache.GetStatistics();
    Console.WriteLine($"byte cache : {verified:N0} of 100,000 values read back intact");
    Console.WriteLine($"             count {stats.Count:N0}, payload {stats.PayloadBytes:N0} B, native {stats.NativeBytes:N0} B of {stats.CapacityBytes:N0} B budget");
    Console.WriteLine($"             hits {stats.Hits:N0}, misses {stats.Misses:N0}, evictions {stats.Evictions:N0}");
}

// Typed facade: feels like ConcurrentDictionary, values live off the managed heap.
using (var users = new OffHeapCache<string, string>(new OffHeapCacheOptions { CapacityBytes = 8L * 1024 * 1024 }))
{
    users.Set("user:42", "Ada Lovelace");
    string name = users.GetOrAdd("user:7", static id => $"loaded {id} from the database");
    Console.WriteLine($"typed cache: user:42 -> {(users.TryGetValue("user:42", out var v) ? v : "(miss)")}, user:7 -> {name}");

    // AddOrUpdate is atomic as ConcurrentDictionary's: each update applies to the value its factory saw.
    using var counters = new OffHeapCache<string, long>(new OffHeapCacheOptions { CapacityBytes = 8L * 1024 * 1024 });
    Parallel.For(0, 1000, _ => counters.AddOrUpdate("page:/home", 1, static (_, hits) => hits + 1));
    Console.WriteLine($"             page:/home counted {(counters.TryGetValue("page:/home", out long hits) ? hits : 0):N0} of 1,000 concurrent hits");

    // Compare-and-swap and an atomic removal (ConcurrentDictionary's TryUpdate(key, new, comparison) and TryRemove).
    bool swapped = users.TryUpdateIfEquals("user:42", "Ada King", comparisonValue: "Ada Lovelace");
    bool removed = users.TryRemove("user:42", out string? removedValue);
    Console.WriteLine($"             user:42 swapped: {swapped}; removed: {removed}, holding \"{removedValue}\"");

    // TTL on a monotonic clock: an expired entry is never returned.
    users.Set("session:1", "short-lived", TimeSpan.FromMilliseconds(50));
    Thread.Sleep(120);
    Console.WriteLine($"             session:1 after its TTL -> {(users.TryGetValue("session:1", out _) ? "still there (bug!)" : "gone, as it should be")}");
}

// Classes and records as JSON: System.Text.Json with a source-generated context (no reflection: trimming and AOT safe).
using (var orders = new OffHeapCache<long, Order>(new OffHeapCacheOptions { CapacityBytes = 8L * 1024 * 1024 },
    valueSerializer: new SystemTextJsonSerializer<Order>(SampleJson.Default.Order)))
{
    orders.Set(1001, new Order(1001, "Ada", [3, 5]));
    Console.WriteLine($"json cache : order 1001 -> {(orders.TryGetValue(1001, out Order? order) ? $"{order.Customer}, items {string.Join(",", order.Items)}" : "(miss)")}");
    orders.Set(1002, new Order(1002, "Grace", [8]));
    // Every entry, as a dictionary's foreach gives it (weakly consistent; not a lookup, so nothing is kept longer for it).
    Console.WriteLine($"             entries: {string.Join("; ", orders.Entries.OrderBy(e => e.Key).Select(e => $"{e.Key} -> {e.Value.Customer}"))}");
}

internal sealed record Order(long Id, string Customer, int[] Items);

[JsonSerializable(typeof(Order))]
internal sealed partial class SampleJson : JsonSerializerContext;

using System.Globalization;
using CacheKit.Perf;

// The loop of CacheKit.Headline's `profile` verb: fill every key, then a Zipf(0.99) get loop; with
// "mixed", 90/10 get/set on a cache of a tenth of the keys. Usage: CacheKit.ProfileAot CACHE ENTRIES OPS [mixed]
// (CACHE: offheap, cd, lfu, ...; CACHEKIT_BENCH_POLICY and CACHEKIT_BENCH_SEED as for the other benchmarks).
if (args.Length < 3)
{
    Console.Error.WriteLine("usage: CacheKit.ProfileAot CACHE ENTRIES OPS [mixed]");
    return 2;
}
string cacheName = Caches.FromShortName(args[0]);
int entries = int.Parse(args[1], CultureInfo.InvariantCulture);
long ops = long.Parse(args[2], CultureInfo.InvariantCulture);
bool mixed = args.Length > 3 && args[3] == "mixed";
// 90/10 ("mixed"): the cache is bounded to a tenth of the keys and must be full, so that the counted sets
// insert and evict. It used to start empty and draw its sets from a 2^18-position stream (~84K distinct keys
// of 1M, fewer than the 100K bound): at 1M keys it never filled (14K entries after 300K operations), so
// its "with eviction" counts had no eviction and half the gets missed. Now the stream has 2^20 positions,
// sets walk it at the headline's stride (Throughput.SetStride), and operations run until the cache holds
// its bound before the OPS counted ones (the same, seeded, warm-up in both callgrind runs, so it cancels).
var workload = Workload.Create(entries, ValueMix.Bytes100, mixed ? 1 << 20 : 1 << 18);
int capacity = mixed ? workload.KeyCount / 10 : workload.KeyCount + (workload.KeyCount / 20);
using CacheAdapter cache = Caches.Create(cacheName, workload, capacity);
if (!mixed)
{
    for (int id = 0; id < workload.KeyCount; id++)
    {
        cache.Set(id);
    }
}
var scratch = new byte[workload.MaxValueLength];
int[] stream = workload.Stream;
int mask = stream.Length - 1;
uint setPosition = 0;
long hits = 0;
long end = mixed ? long.MaxValue : ops;
for (long i = 0; i < end; i++)
{
    if (end == long.MaxValue && (i & 4095) == 0 && (cache.Count >= capacity || i >= 50_000_000))
    {
        end = i + ops;
        hits = 0;
    }
    if (mixed && i % 10 == 9)
    {
        cache.Set(stream[(int)(setPosition & (uint)mask)]);
        setPosition += 0x9E3779B1;
    }
    else if (cache.Get(stream[(int)(i & mask)], scratch))
    {
        hits++;
    }
}
Console.WriteLine($"{cacheName}: {cache.Count} entries, {hits} hits of {ops} operations" + (mixed ? $" (after {end - ops} to fill the bound of {capacity})" : ""));
return 0;

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
var workload = Workload.Create(entries, ValueMix.Bytes100, 1 << 18);
using CacheAdapter cache = Caches.Create(cacheName, workload, mixed ? workload.KeyCount / 10 : workload.KeyCount + (workload.KeyCount / 20));
if (!mixed)
{
    for (int id = 0; id < workload.KeyCount; id++)
    {
        cache.Set(id);
    }
}
var scratch = new byte[workload.MaxValueLength];
int mask = workload.Stream.Length - 1;
long hits = 0;
for (long i = 0; i < ops; i++)
{
    int id = workload.Stream[(int)(i & mask)];
    if (mixed && i % 10 == 9)
    {
        cache.Set(id);
    }
    else if (cache.Get(id, scratch))
    {
        hits++;
    }
}
Console.WriteLine($"{cacheName}: {cache.Count} entries, {hits} hits of {ops} operations");
return 0;

using System.Globalization;
using CacheKit.Perf;

// The loop of CacheKit.Headline's `profile` verb: fill every key, then a Zipf(0.99) get loop; with
// "mixed", 90/10 get/set with eviction on a cache of a tenth of the keys. Usage: CacheKit.ProfileAot CACHE ENTRIES OPS [mixed]
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
int[] stream = workload.Stream;
int mask = stream.Length - 1;
long hits = 0;
// The 90/10 mix as the headline's Throughput.Step: every tenth operation sets the key at its own position,
// which moves by an odd stride (Throughput.SetStride), so sets insert and evict instead of updating the
// gets' hot keys; it starts at 0 here, so that two runs count the same instructions. Mixed runs first
// fill the bound with the same mix (as Throughput.Warm's untilCount), identical in both runs of
// profile-instructions.sh, so the difference of the two counts is steady-state work.
const uint SetStride = 0x9E3779B1;
uint setPosition = 0;
long n = 0;
long bound = workload.KeyCount / 10;
while (mixed && cache.Count < bound && n < 20_000_000)
{
    Step();
}
for (long i = 0; i < ops; i++)
{
    Step();
}

void Step()
{
    if (mixed && n % 10 == 9)
    {
        cache.Set(stream[(int)(setPosition & (uint)mask)]);
        setPosition += SetStride;
    }
    else if (cache.Get(stream[(int)(n & mask)], scratch))
    {
        hits++;
    }
    n++;
}

Console.WriteLine($"{cacheName}: {cache.Count} entries, {hits} hits of {ops} operations");
return 0;

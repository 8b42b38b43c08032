using System.Globalization;
using CacheKit.Policies;

namespace CacheKit.Simulator;

/// <summary>What the tables compare: library policies (through the factory), OPT and the peers.</summary>
public static class Catalog
{
    /// <summary>Row name of Belady's OPT.</summary>
    public const string OptName = "OPT";

    /// <summary>Row names of the peers.</summary>
    public const string BitFasterLru = "BitFaster.ConcurrentLru", BitFasterLfu = "BitFaster.ConcurrentLfu", MemoryCacheName = "MemoryCache";

    /// <summary>Kinds whose read-path losses <c>--read-drop</c> measures.</summary>
    public static readonly PolicyKind[] ReadDropKinds = [PolicyKind.Lru, PolicyKind.Slru, PolicyKind.WTinyLfu];

    /// <summary>Seed handed to every policy (Random, sketch hashing) and to the read-drop streams.</summary>
    public static int Seed { get; set; } = 0x5EED;

    /// <summary>Builds a policy through the library's factory; throws NotSupportedException for an unknown kind.</summary>
    public static IEvictionPolicy CreatePolicy(PolicyKind kind, PolicyOptions options) => PolicyFactory.Create(kind, options);

    /// <summary>Whether this build can create <paramref name="kind"/> (with or without admission).</summary>
    public static bool IsAvailable(PolicyKind kind, bool admission = false) => Probe(kind, admission, null) is not null;

    private static IEvictionPolicy? Probe(PolicyKind kind, bool admission, double? window)
    {
        try
        {
            return CreatePolicy(kind, new PolicyOptions { MaxHandles = 16, Capacity = 8, TinyLfuAdmission = admission, WindowFraction = window, Seed = Seed });
        }
        catch (NotSupportedException)
        {
            return null;
        }
    }

    /// <summary>
    /// A library policy under <see cref="PolicyTarget"/>, or null when this build lacks it. The row name is
    /// the policy's own <c>Name</c>, with " (w=N%)" for a fixed window and " (drop N%)" for a lossy read path.
    /// </summary>
    public static TargetSpec? Policy(PolicyKind kind, bool admission = false, double? window = null, double readDrop = 0, bool readBuffer = false)
    {
        IEvictionPolicy? probe = Probe(kind, admission, window);
        if (probe is null)
        {
            return null;
        }
        string name = probe.Name;
        // A policy that already names its fixed window (e.g. "W-TinyLFU(0.01)") keeps its name.
        if (window is double w && name == Probe(kind, admission, null)?.Name)
        {
            name += string.Create(CultureInfo.InvariantCulture, $" (w={w * 100:0.##}%)");
        }
        if (readDrop > 0)
        {
            name += string.Create(CultureInfo.InvariantCulture, $" (drop {readDrop * 100:0.##}%)");
        }
        if (readBuffer)
        {
            name += " (ReadBuffer)";
        }
        return new TargetSpec(name, (trace, cap) =>
        {
            int max = cap.MaxEntries(trace);
            IEvictionPolicy policy = CreatePolicy(kind, new PolicyOptions
            {
                MaxHandles = max,
                Capacity = cap.Value,
                TinyLfuAdmission = admission,
                WindowFraction = window,
                Seed = Seed,
            });
            return new PolicyTarget(name, policy, trace.DistinctKeys, max, readDrop, (ulong)Seed, readBuffer ? new ReadBuffer(1) : null);
        });
    }

    /// <summary>Belady's OPT.</summary>
    public static TargetSpec Opt() => new(OptName, (trace, cap) => new OptTarget(trace, cap));

    /// <summary>The peers: BitFaster ConcurrentLru and ConcurrentLfu (entry-count only) and MemoryCache (both).</summary>
    public static IEnumerable<TargetSpec> Peers()
    {
        yield return new TargetSpec(BitFasterLru, (_, cap) => cap.Weighted || cap.Value < 3 || cap.Value > int.MaxValue ? null : new BitFasterLruTarget((int)cap.Value));
        yield return new TargetSpec(BitFasterLfu, (_, cap) => cap.Weighted || cap.Value < 3 || cap.Value > int.MaxValue ? null : new BitFasterLfuTarget((int)cap.Value));
        yield return new TargetSpec(MemoryCacheName, (_, cap) => new MemoryCacheTarget(cap.Value));
    }

    /// <summary>The real engine with <paramref name="kind"/> and <paramref name="shards"/> shards: bounded by entry count (null at a
    /// size below the shard count, which the engine refuses: each shard holds an entry at least), or under byte capacity by
    /// <see cref="OffHeapCacheOptions.CapacityBytes"/> (<see cref="EngineTarget.ForByteBudget"/>; null when the budget is too
    /// small for the shards).</summary>
    public static TargetSpec Engine(PolicyKind kind, int shards = 1) =>
        new(EngineTarget.NameOf(kind, shards), (_, cap) => cap.Weighted ? EngineTarget.TryForByteBudget(kind, cap.Value, shards) : cap.Value < shards ? null : new EngineTarget(kind, cap.Value, shards));

    /// <summary>Every kind of <see cref="PolicyKind"/> this build can create, in enum order.</summary>
    public static IEnumerable<PolicyKind> AvailableKinds() => Enum.GetValues<PolicyKind>().Where(k => IsAvailable(k));

    /// <summary>Parses a policy name: a PolicyKind name, ignoring case, '-' and '_' ("w-tinylfu", "two_q", "s3fifo").</summary>
    public static bool TryParseKind(string text, out PolicyKind kind)
    {
        string norm = Normalize(text);
        foreach (PolicyKind k in Enum.GetValues<PolicyKind>())
        {
            if (Normalize(k.ToString()) == norm)
            {
                kind = k;
                return true;
            }
        }
        kind = default;
        return norm switch
        {
            "2q" => Set(PolicyKind.TwoQ, out kind),
            "lru2" => Set(PolicyKind.LruK, out kind),
            "tinylfu" => Set(PolicyKind.WTinyLfu, out kind),
            _ => false,
        };
    }

    private static bool Set(PolicyKind value, out PolicyKind kind)
    {
        kind = value;
        return true;
    }

    private static string Normalize(string s) => s.Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal)
        .Replace(".", "", StringComparison.Ordinal).Trim().ToLowerInvariant();

    /// <summary>
    /// The rows for a <c>--policies</c> list and the variant options: OPT first, then each library policy
    /// (enum order) followed by its variants, then the peers.
    /// </summary>
    public static List<TargetSpec> Build(string policies, bool admission, IReadOnlyList<double> windows, IReadOnlyList<double> readDrops, bool readBuffer = false)
    {
        var kinds = new List<PolicyKind>();
        var engines = new List<(PolicyKind Kind, int Shards)>();
        bool opt = true, lru = false, lfu = false, mc = false;
        string[] items = policies.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (items.Length == 0)
        {
            throw new ArgumentException($"--policies names no policy (got '{policies}')", nameof(policies));
        }
        foreach (string item in items)
        {
            string n = Normalize(item);
            int shards = 1;
            if (n.StartsWith("engine", StringComparison.Ordinal) && n.IndexOf('@', StringComparison.Ordinal) is int at and >= 0)
            {
                // engine@8, engine:lru@8: the engine with that many shards (a power of two, as the engine takes).
                if (!int.TryParse(n[(at + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out shards)
                    || shards < 1 || shards > 256 || !int.IsPow2(shards))
                {
                    throw new ArgumentException($"'{item}': the shard count after '@' must be a power of two from 1 to 256", nameof(policies));
                }
                n = n[..at];
            }
            switch (n)
            {
                case "all":
                    kinds.AddRange(AvailableKinds());
                    lru = lfu = mc = true;
                    break;
                case "policies":
                    kinds.AddRange(AvailableKinds());
                    break;
                case "peers":
                    lru = lfu = mc = true;
                    break;
                case "opt":
                    opt = true;
                    break;
                case "noopt":
                    opt = false;
                    break;
                case "bitfasterconcurrentlru" or "concurrentlru":
                    lru = true;
                    break;
                case "bitfasterconcurrentlfu" or "concurrentlfu":
                    lfu = true;
                    break;
                case "memorycache":
                    mc = true;
                    break;
                case "engine":
                    engines.Add((PolicyFactory.Default, shards));
                    break;
                case var e when e.StartsWith("engine:", StringComparison.Ordinal):
                    if (!TryParseKind(e["engine:".Length..], out PolicyKind engineKind))
                    {
                        throw new ArgumentException($"unknown policy in '{item}': use engine or engine:<policy>, optionally @<shards>", nameof(policies));
                    }
                    engines.Add((engineKind, shards));
                    break;
                default:
                    if (!TryParseKind(item, out PolicyKind kind))
                    {
                        throw new ArgumentException(
                            $"unknown policy '{item}' in --policies: use all, policies, peers, opt, noopt, engine, engine:<policy>, engine@<shards>, engine:<policy>@<shards>, concurrentlru, concurrentlfu, memorycache or one of {string.Join(", ", Enum.GetNames<PolicyKind>())}",
                            nameof(policies));
                    }
                    if (!IsAvailable(kind))
                    {
                        throw new ArgumentException($"policy '{item}' ({kind}) is not implemented in this build", nameof(policies));
                    }
                    kinds.Add(kind);
                    break;
            }
        }
        var specs = new List<TargetSpec>();
        if (opt)
        {
            specs.Add(Opt());
        }
        var dropKinds = kinds.Intersect(ReadDropKinds).ToList();
        if ((readDrops.Count > 0 || readBuffer) && dropKinds.Count == 0)
        {
            dropKinds = ReadDropKinds.Where(k => IsAvailable(k)).ToList();
            kinds.AddRange(dropKinds);
        }
        if (windows.Count > 0 && !kinds.Contains(PolicyKind.WTinyLfu) && IsAvailable(PolicyKind.WTinyLfu))
        {
            kinds.Add(PolicyKind.WTinyLfu);
        }
        foreach (PolicyKind kind in kinds.Distinct().Order())
        {
            specs.Add(Policy(kind)!);
            if (kind == PolicyKind.WTinyLfu)
            {
                specs.AddRange(windows.Select(w => Policy(kind, window: w)).OfType<TargetSpec>());
            }
            else if (admission && Policy(kind, admission: true) is { } wrapped)
            {
                specs.Add(wrapped);
            }
            if (dropKinds.Contains(kind))
            {
                specs.AddRange(readDrops.Select(p => Policy(kind, readDrop: p)).OfType<TargetSpec>());
                if (readBuffer && Policy(kind, readBuffer: true) is { } buffered)
                {
                    specs.Add(buffered);
                }
            }
        }
        specs.AddRange(engines.Distinct().Select(e => Engine(e.Kind, e.Shards)));
        if (lru)
        {
            specs.Add(Peers().First(p => p.Name == BitFasterLru));
        }
        if (lfu)
        {
            specs.Add(Peers().First(p => p.Name == BitFasterLfu));
        }
        if (mc)
        {
            specs.Add(Peers().First(p => p.Name == MemoryCacheName));
        }
        var dup = specs.GroupBy(s => s.Name).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null)
        {
            throw new InvalidOperationException($"two rows are named '{dup.Key}'");
        }
        return specs;
    }
}

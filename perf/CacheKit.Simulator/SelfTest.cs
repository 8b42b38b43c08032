using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using CacheKit.Policies;

namespace CacheKit.Simulator;

/// <summary>
/// <c>--self-test</c>: checks the simulator's own machinery and prints PASS/FAIL per check.
/// OPT against an exhaustive search on tiny random traces (count and byte capacity), the trace
/// readers on hand-made inputs, the policy driver against a reference LRU, the peers' capacity,
/// and determinism.
/// </summary>
public static class SelfTest
{
    /// <summary>Runs every check; true when all pass.</summary>
    public static bool Run(TextWriter output)
    {
        var checks = new (string Name, Func<string?> Check)[]
        {
            ("OPT equals brute-force optimum (count capacity, 3000 random tiny traces)", OptMatchesBruteForce),
            ("weighted OPT never beats the brute-force optimum and respects the budget", WeightedOptBounded),
            ("format A reader (CRLF, blank lines, '*', gzip)", ReaderA),
            ("format B reader (big-endian int32, negatives)", ReaderB),
            ("format C reader (time key size, non-numeric keys)", ReaderC),
            ("--concat keeps key spaces apart and repeats keep keys", ConcatKeys),
            ("driver + LRU equals a reference LRU (random traces)", DriverMatchesReferenceLru),
            ("peers respect their capacity", PeersBounded),
            ("synthetic workloads and replays are deterministic", Deterministic),
        };
        int failed = 0;
        foreach (var (name, check) in checks)
        {
            string? error;
            try
            {
                error = check();
            }
            catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or InvalidDataException or NotSupportedException or IOException)
            {
                error = ex.GetType().Name + ": " + ex.Message;
            }
            output.WriteLine(error is null ? $"PASS {name}" : $"FAIL {name}: {error}");
            failed += error is null ? 0 : 1;
        }
        output.WriteLine($"{checks.Length - failed} passed, {failed} failed");
        return failed == 0;
    }

    private static string? OptMatchesBruteForce()
    {
        var rng = new SplitMixRandom(12345);
        for (int t = 0; t < 3000; t++)
        {
            int n = 1 + rng.Next(14), keys = 1 + rng.Next(6), cap = 1 + rng.Next(4);
            var raw = Enumerable.Range(0, n).Select(_ => (long)rng.Next(keys)).ToArray();
            Trace trace = Trace.FromKeys("tiny", raw);
            var opt = new OptTarget(trace, new Capacity(cap, false));
            int hits = 0;
            for (int i = 0; i < n; i++)
            {
                if (opt.Access(new Request(i, trace.KeyIds[i], 0, 1)))
                {
                    hits++;
                }
                opt.ValidateInvariants();
            }
            int best = BruteForce(trace, Enumerable.Repeat(1, trace.DistinctKeys).ToArray(), cap);
            if (hits != best)
            {
                return $"trace [{string.Join(' ', raw)}] capacity {cap}: OPT {hits} hits, brute force {best}";
            }
        }
        return null;
    }

    private static string? WeightedOptBounded()
    {
        var rng = new SplitMixRandom(777);
        for (int t = 0; t < 1500; t++)
        {
            int n = 1 + rng.Next(12), keys = 1 + rng.Next(5), cap = 1 + rng.Next(8);
            var raw = Enumerable.Range(0, n).Select(_ => (long)rng.Next(keys)).ToArray();
            var sizeOfKey = Enumerable.Range(0, keys).Select(_ => 1 + rng.Next(5)).ToArray();
            Trace trace = Trace.FromKeys("tiny", raw, raw.Select(k => sizeOfKey[k]).ToArray());
            var opt = new OptTarget(trace, new Capacity(cap, true));
            int hits = 0;
            for (int i = 0; i < n; i++)
            {
                if (opt.Access(new Request(i, trace.KeyIds[i], 0, trace.Sizes![i])))
                {
                    hits++;
                }
                opt.ValidateInvariants();
            }
            int[] weights = new int[trace.DistinctKeys];
            for (int i = 0; i < n; i++)
            {
                weights[trace.KeyIds[i]] = trace.Sizes![i];
            }
            int best = BruteForce(trace, weights, cap);
            if (hits > best)
            {
                return $"trace [{string.Join(' ', raw)}] capacity {cap}: OPT {hits} hits exceeds the optimum {best}";
            }
        }
        return null;
    }

    /// <summary>The most hits any replacement (with bypass) can get: exhaustive search over resident sets, memoised.</summary>
    private static int BruteForce(Trace trace, int[] weights, int capacity)
    {
        var memo = new Dictionary<(int, int), int>();
        int Best(int i, int set)
        {
            if (i == trace.Length)
            {
                return 0;
            }
            if (memo.TryGetValue((i, set), out int cached))
            {
                return cached;
            }
            int k = trace.KeyIds[i];
            int result;
            if ((set & (1 << k)) != 0)
            {
                result = 1 + Best(i + 1, set);
            }
            else
            {
                result = Best(i + 1, set); // bypass
                // Insert k after evicting any subset that makes it fit.
                for (int evict = set; ; evict = (evict - 1) & set)
                {
                    int kept = (set & ~evict) | (1 << k);
                    if (WeightOf(kept, weights) <= capacity)
                    {
                        result = Math.Max(result, Best(i + 1, kept));
                    }
                    if (evict == 0)
                    {
                        break;
                    }
                }
            }
            memo[(i, set)] = result;
            return result;
        }
        return Best(0, 0);
    }

    private static int WeightOf(int set, int[] weights)
    {
        int w = 0;
        for (int k = 0; k < weights.Length; k++)
        {
            if ((set & (1 << k)) != 0)
            {
                w += weights[k];
            }
        }
        return w;
    }

    private static string? ReaderA()
    {
        byte[] text = Encoding.ASCII.GetBytes("5\r\n7\r\n\r\n*\r\n5\n  9  \n*\n7\n");
        Trace plain = TraceReaders.Read(new MemoryStream(text), TraceFormat.A, "a");
        Trace gz = TraceReaders.Read(Gunzip(Gzip(text)), TraceFormat.A, "a");
        long[] expected = [5, 7, 5, 9, 7];
        foreach (Trace t in new[] { plain, gz })
        {
            long[] got = t.KeyIds.Select(id => t.Keys[id]).ToArray();
            if (!got.SequenceEqual(expected) || t.DistinctKeys != 3)
            {
                return $"read [{string.Join(' ', got)}], expected [{string.Join(' ', expected)}]";
            }
        }
        try
        {
            TraceReaders.Read(new MemoryStream(Encoding.ASCII.GetBytes("1\nx\n")), TraceFormat.A, "bad");
            return "a non-integer line was accepted";
        }
        catch (InvalidDataException)
        {
            return null;
        }
    }

    private static string? ReaderB()
    {
        int[] keys = [1, -2, 1, int.MaxValue, int.MinValue];
        byte[] bytes = new byte[keys.Length * 4];
        for (int i = 0; i < keys.Length; i++)
        {
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(i * 4), keys[i]);
        }
        Trace t = TraceReaders.Read(Gunzip(Gzip(bytes)), TraceFormat.B, "b");
        long[] got = t.KeyIds.Select(id => t.Keys[id]).ToArray();
        if (!got.SequenceEqual(keys.Select(k => (long)k)) || t.DistinctKeys != 4)
        {
            return $"read [{string.Join(' ', got)}]";
        }
        try
        {
            TraceReaders.Read(new MemoryStream([0, 0, 0, 1, 0, 0]), TraceFormat.B, "bad");
            return "a truncated key was accepted";
        }
        catch (InvalidDataException)
        {
            return null;
        }
    }

    private static string? ReaderC()
    {
        byte[] text = Encoding.ASCII.GetBytes("1 10 100\n2 abc 5\r\n3 10 120\n\n4 abc 5\n");
        Trace t = TraceReaders.Read(new MemoryStream(text), TraceFormat.C, "c");
        if (t.Length != 4 || t.DistinctKeys != 2 || !t.Sizes!.SequenceEqual([100, 5, 120, 5]) || t.KeyIds[1] != t.KeyIds[3] || t.TotalBytes != 230 || t.MinSize != 5)
        {
            return $"length {t.Length}, distinct {t.DistinctKeys}, sizes [{string.Join(' ', t.Sizes ?? [])}]";
        }
        try
        {
            TraceReaders.Read(new MemoryStream(Encoding.ASCII.GetBytes("1 2 0\n")), TraceFormat.C, "bad");
            return "a zero size was accepted";
        }
        catch (InvalidDataException)
        {
            return null;
        }
    }

    private static string? ConcatKeys()
    {
        string dir = Path.Combine(Path.GetTempPath(), "cachekit-sim-selftest-" + Environment.ProcessId);
        Directory.CreateDirectory(dir);
        try
        {
            string a = Path.Combine(dir, "a.trace.gz"), b = Path.Combine(dir, "b.trace.gz");
            File.WriteAllBytes(a, Gzip(Encoding.ASCII.GetBytes("1\n2\n")));
            File.WriteAllBytes(b, Gzip(Encoding.ASCII.GetBytes("1\n")));
            Trace t = TraceReaders.Concat($"{a},{b}*2,{a}", TraceFormat.A);
            // a: 1 2 | b: 1 1 | a: 1 2 -> ids 0 1 2 2 0 1: b's key 1 is not a's key 1.
            int[] expected = [0, 1, 2, 2, 0, 1];
            return t.KeyIds.SequenceEqual(expected) && t.Name == "a+bx2+a" ? null : $"ids [{string.Join(' ', t.KeyIds)}], name {t.Name}";
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string? DriverMatchesReferenceLru()
    {
        if (!Catalog.IsAvailable(PolicyKind.Lru))
        {
            return "LRU is not in this build";
        }
        var rng = new SplitMixRandom(99);
        for (int t = 0; t < 200; t++)
        {
            int n = 50 + rng.Next(2000), keys = 2 + rng.Next(200), cap = 1 + rng.Next(60);
            var raw = Enumerable.Range(0, n).Select(_ => (long)rng.Next(keys)).ToArray();
            Trace trace = Trace.FromKeys("lru", raw);
            var capacity = new Capacity(cap, false);
            CellResult got = Runner.Replay(trace, capacity, Catalog.Policy(PolicyKind.Lru)!.Create(trace, capacity)!);
            int expected = ReferenceLruHits(raw, cap);
            if (got.Hits != expected)
            {
                return $"{n} requests over {keys} keys at {cap}: driver+LRU {got.Hits} hits, reference {expected}";
            }
        }
        return null;
    }

    private static int ReferenceLruHits(long[] keys, int capacity)
    {
        var order = new LinkedList<long>();
        var nodes = new Dictionary<long, LinkedListNode<long>>();
        int hits = 0;
        foreach (long k in keys)
        {
            if (nodes.TryGetValue(k, out var node))
            {
                hits++;
                order.Remove(node);
                order.AddFirst(node);
                continue;
            }
            nodes[k] = order.AddFirst(k);
            if (order.Count > capacity)
            {
                nodes.Remove(order.Last!.Value);
                order.RemoveLast();
            }
        }
        return hits;
    }

    private static string? PeersBounded()
    {
        Trace trace = Synthetic.Create("zipf:0.8:5000:30000", 1, null);
        foreach (TargetSpec spec in Catalog.Peers())
        {
            var target = spec.Create(trace, new Capacity(200, false))!;
            CellResult r = Runner.Replay(trace, new Capacity(200, false), target);
            var lru = Runner.Replay(trace, new Capacity(200, false), Catalog.Opt().Create(trace, new Capacity(200, false))!);
            if (r.Hits > lru.Hits || r.Hits == 0)
            {
                return $"{spec.Name}: {r.Hits} hits against OPT's {lru.Hits} (must be in (0, OPT])";
            }
        }
        var mc = new MemoryCacheTarget(100);
        Trace small = Synthetic.Create("zipf:0.5:1000:5000", 2, null);
        for (int i = 0; i < small.Length; i++)
        {
            mc.Access(new Request(i, small.KeyIds[i], 0, 1));
            if (mc.Count > 100)
            {
                return $"MemoryCache holds {mc.Count} entries over its SizeLimit 100 after request {i}";
            }
        }
        mc.Dispose();
        return null;
    }

    private static string? Deterministic()
    {
        Trace a = Synthetic.Create("phases:2000:30000", 7, null), b = Synthetic.Create("phases:2000:30000", 7, null);
        if (!a.KeyIds.SequenceEqual(b.KeyIds) || !a.Keys.SequenceEqual(b.Keys))
        {
            return "the same synthetic spec and seed gave different traces";
        }
        var specs = Catalog.Build("all", admission: false, [], [0.25]);
        var cap = new Capacity(300, false);
        foreach (TargetSpec spec in specs)
        {
            CellResult x = Runner.Replay(a, cap, spec.Create(a, cap)!), y = Runner.Replay(b, cap, spec.Create(b, cap)!);
            if (x.Hits != y.Hits)
            {
                return $"{spec.Name}: {x.Hits} then {y.Hits} hits on identical runs";
            }
        }
        return null;
    }

    private static byte[] Gzip(byte[] data)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
        {
            gz.Write(data);
        }
        return ms.ToArray();
    }

    private static MemoryStream Gunzip(byte[] data)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(new MemoryStream(data), CompressionMode.Decompress))
        {
            gz.CopyTo(ms);
        }
        ms.Position = 0;
        return ms;
    }
}

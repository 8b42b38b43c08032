using System.Diagnostics;

namespace CacheKit.Simulator;

/// <summary>The outcome of replaying one trace through one target at one capacity.</summary>
public sealed record CellResult(string Policy, Capacity Capacity, long Requests, long Hits, long Bytes, long ByteHits, double Seconds)
{
    /// <summary>The target's note on this cell (<see cref="IReplayNote"/>), or null.</summary>
    public string? Note { get; init; }

    /// <summary>Hit ratio in percent.</summary>
    public double HitRatio => Requests == 0 ? 0 : 100.0 * Hits / Requests;

    /// <summary>Byte hit ratio in percent (equal to the hit ratio for unsized traces).</summary>
    public double ByteHitRatio => Bytes == 0 ? 0 : 100.0 * ByteHits / Bytes;
}

/// <summary>Every cell of one trace's table: policies (rows, in order) by capacities (columns).</summary>
public sealed class TraceResults(string traceName, int requests, int distinctKeys, bool weighted, IReadOnlyList<Capacity> capacities, IReadOnlyList<string> policies)
{
    private readonly Dictionary<(string Policy, long Capacity), CellResult> _cells = [];

    /// <summary>The trace's name.</summary>
    public string TraceName { get; } = traceName;

    /// <summary>Requests in the trace.</summary>
    public int Requests { get; } = requests;

    /// <summary>Distinct keys in the trace.</summary>
    public int DistinctKeys { get; } = distinctKeys;

    /// <summary>True when capacities are byte budgets.</summary>
    public bool Weighted { get; } = weighted;

    /// <summary>Columns.</summary>
    public IReadOnlyList<Capacity> Capacities { get; } = capacities;

    /// <summary>Rows.</summary>
    public IReadOnlyList<string> Policies { get; } = policies;

    /// <summary>Records a finished cell (thread-safe).</summary>
    public void Add(CellResult cell)
    {
        lock (_cells)
        {
            _cells[(cell.Policy, cell.Capacity.Value)] = cell;
        }
    }

    /// <summary>The cell, or null when the target could not run that case.</summary>
    public CellResult? Get(string policy, Capacity capacity)
    {
        lock (_cells)
        {
            return _cells.GetValueOrDefault((policy, capacity.Value));
        }
    }
}

/// <summary>Replays traces through targets, optionally several jobs at once; results do not depend on the job count.</summary>
public static class Runner
{
    /// <summary>Replays the whole trace through one target.</summary>
    public static CellResult Replay(Trace trace, Capacity capacity, IReplayTarget target, Action<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(trace);
        ArgumentNullException.ThrowIfNull(target);
        var sw = Stopwatch.StartNew();
        long hits = 0, bytes = 0, byteHits = 0;
        int[] keyIds = trace.KeyIds;
        int[]? sizes = trace.Sizes;
        ulong[] hashes = trace.Hashes;
        const int ProgressStep = 1 << 16;
        for (int i = 0; i < keyIds.Length; i++)
        {
            int id = keyIds[i];
            long size = sizes?[i] ?? 1;
            var request = new Request(i, id, hashes[id], capacity.Weighted ? size : 1);
            bytes += size;
            if (target.Access(request))
            {
                hits++;
                byteHits += size;
            }
            if ((i & (ProgressStep - 1)) == ProgressStep - 1)
            {
                progress?.Invoke(ProgressStep);
            }
        }
        progress?.Invoke(keyIds.Length & (ProgressStep - 1));
        string? note = (target as IReplayNote)?.Note;
        (target as IDisposable)?.Dispose();
        return new CellResult(target.Name, capacity, keyIds.Length, hits, bytes, byteHits, sw.Elapsed.TotalSeconds) { Note = note };
    }

    /// <summary>
    /// Replays <paramref name="trace"/> through every spec at every capacity. Row names come from the
    /// specs; a spec whose factory returns null for a case leaves that cell empty.
    /// </summary>
    public static TraceResults Run(Trace trace, IReadOnlyList<Capacity> capacities, IReadOnlyList<TargetSpec> specs, int jobs, IProgressSink progress)
    {
        bool weighted = capacities.Count > 0 && capacities[0].Weighted;
        var results = new TraceResults(trace.Name, trace.Length, trace.DistinctKeys, weighted, capacities, specs.Select(s => s.Name).ToList());
        _ = trace.NextUse; // compute once before the parallel section
        var work = (from spec in specs from cap in capacities select (spec, cap)).ToList();
        progress.Start(trace.Name, (long)work.Count * trace.Length);
        void RunOne((TargetSpec Spec, Capacity Cap) w)
        {
            IReplayTarget? target = w.Spec.Create(trace, w.Cap);
            if (target is null)
            {
                progress.Advance(trace.Name, trace.Length);
                return;
            }
            CellResult cell = Replay(trace, w.Cap, target, n => progress.Advance(trace.Name, n));
            results.Add(cell with { Policy = w.Spec.Name });
            progress.Done(trace.Name, w.Spec.Name, cell);
        }
        if (jobs <= 1)
        {
            work.ForEach(RunOne);
        }
        else
        {
            Parallel.ForEach(work, new ParallelOptions { MaxDegreeOfParallelism = jobs }, RunOne);
        }
        progress.Finish(trace.Name);
        return results;
    }
}

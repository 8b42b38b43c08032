namespace CacheKit.Simulator;

/// <summary>One request as a replay target sees it.</summary>
/// <param name="Index">Position in the trace (OPT looks up the future by it).</param>
/// <param name="KeyId">Dense key id in [0, trace.DistinctKeys).</param>
/// <param name="KeyHash">The 64-bit key hash (what policies see).</param>
/// <param name="Weight">1 for count capacity, the object size in bytes for byte capacity.</param>
public readonly record struct Request(int Index, int KeyId, ulong KeyHash, long Weight);

/// <summary>
/// Anything a trace can be replayed through: a policy under the simulator's own driver, Belady's OPT,
/// a peer cache, and later the real engine (an adapter that turns <see cref="Request.KeyId"/> into key
/// bytes and does get-then-put). Created once per (trace, capacity); not thread-safe.
/// </summary>
public interface IReplayTarget
{
    /// <summary>Name shown in tables and charts.</summary>
    string Name { get; }

    /// <summary>Serves one request: a lookup, and on a miss an insert (cache-aside). Returns true on a hit.</summary>
    bool Access(in Request request);
}

/// <summary>How to build a replay target for a trace at a capacity.</summary>
/// <param name="Name">Row name in the tables.</param>
/// <param name="Create">Builds the target, or returns null when it cannot run this case (e.g. a count-only peer under byte capacity).</param>
public sealed record TargetSpec(string Name, Func<Trace, Capacity, IReplayTarget?> Create);

/// <summary>A cache budget: entries, or bytes when <see cref="Weighted"/>.</summary>
/// <param name="Value">Entries or bytes (positive).</param>
/// <param name="Weighted">True when weights are object sizes in bytes.</param>
public readonly record struct Capacity(long Value, bool Weighted)
{
    /// <summary>The label used in tables: "500" or "16 MiB".</summary>
    public string Label => Weighted ? SizeText.Format(Value) : Value.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The request's weight under this capacity.</summary>
    public long WeightOf(Trace trace, int index) => Weighted ? trace.Sizes![index] : 1;

    /// <summary>
    /// The most entries that can be resident at once (plus the newcomer), bounded by the distinct keys:
    /// sizes the handle arrays. Count capacity: capacity + 1. Byte capacity: capacity / smallest size + 1.
    /// </summary>
    public int MaxEntries(Trace trace)
    {
        long fit = Weighted ? Value / Math.Max(1, trace.MinSize) : Value;
        return (int)Math.Min(Math.Min(fit, trace.DistinctKeys) + 1, int.MaxValue - 64);
    }
}

/// <summary>
/// A target with something to say about its cell beyond hits (the engine under a byte budget: the requests it could not
/// store and the memory its entries took); read after the replay, before the target is disposed, and printed under the
/// trace's tables.
/// </summary>
public interface IReplayNote
{
    /// <summary>The note, or null when there is nothing to say.</summary>
    string? Note { get; }
}

using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace CacheKit.Policies;

/// <summary>
/// The bookkeeping every extended policy shares: which handles are tracked, their weights and key
/// hashes, the totals, the newest entry (shielded from eviction) and the last victim handed out.
/// </summary>
/// <remarks>
/// <para>Invariants: <c>_weight[h] &gt; 0</c> exactly when <c>h</c> is tracked; <see cref="Count"/>
/// is the number of tracked handles and <see cref="Total"/> the sum of their weights;
/// <see cref="Newest"/> and <see cref="LastVictim"/> are tracked handles or -1.</para>
/// <para><b>Newcomer shield.</b> The classical policies (LIFO, MRU, LFU, LRU-K, GDSF, ARC, ...)
/// evict <i>before</i> inserting, so the newcomer is never their victim. The owner's protocol
/// inserts first, so each policy skips <see cref="Newest"/> while another entry is tracked. The shield holds
/// whenever a victim is asked for, also from an owner that makes room before it adds (the engine's slab path when
/// its byte budget binds): there the entry added last is spared once more, one resident out of the sweep (a
/// contract these policies' tests pin, ARC's and CAR's target arithmetic among them). SIEVE, CLOCK and S3-FIFO,
/// whose sweeps pass the newcomer by (SIEVE's and CLOCK's hands, S3-FIFO's queues), do not: their newcomer is pending
/// only until the eviction its add called for is done (<c>PolicyBase.PendingNewcomer</c>).</para>
/// <para><b>Evictions versus removals.</b> Ghost histories record only evictions: a handle removed
/// right after <see cref="LastVictim"/> named it was evicted; any other removal was a deletion.</para>
/// </remarks>
internal sealed class EntryWeights
{
    private readonly long[] _weight;   // 0 = not tracked
    private readonly ulong[] _hash;

    public EntryWeights(int maxHandles)
    {
        _weight = new long[maxHandles];
        _hash = new ulong[maxHandles];
    }

    public int MaxHandles => _weight.Length;

    public int Count { get; private set; }

    public long Total { get; private set; }

    /// <summary>The handle added last while it stays tracked, else -1.</summary>
    public int Newest { get; private set; } = -1;

    /// <summary>The handle <c>SelectVictim</c> returned last while it stays tracked, else -1.</summary>
    public int LastVictim { get; set; } = -1;

    public long FootprintBytes => _weight.Length * (sizeof(long) + sizeof(ulong));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsTracked(int handle) => _weight[handle] > 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long WeightOf(int handle) => _weight[handle];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong HashOf(int handle) => _hash[handle];

    /// <summary>Whether a hit on <paramref name="handle"/> should be applied: in range and tracked.
    /// Lock-free hits may race with a removal, so an untracked handle is ignored, not an error.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool AcceptHit(int handle)
    {
        if ((uint)handle >= (uint)_weight.Length)
        {
            ThrowHandle(handle, nameof(handle));
        }
        return Volatile.Read(ref _weight[handle]) > 0;
    }

    /// <summary>Validates and records a newcomer. Throws before changing anything.</summary>
    public void Add(int handle, ulong keyHash, long weight)
    {
        if ((uint)handle >= (uint)_weight.Length)
        {
            ThrowHandle(handle, nameof(handle));
        }
        ThrowIfBadWeight(weight, nameof(weight));
        if (_weight[handle] > 0)
        {
            throw new ArgumentException($"Handle {handle} is already tracked; remove it before adding it again.", nameof(handle));
        }
        _weight[handle] = weight;
        _hash[handle] = keyHash;
        Count++;
        Total += weight;
        Newest = handle;
    }

    /// <summary>Validates an update and returns the old weight. Throws before changing anything.</summary>
    public long Update(int handle, ulong keyHash, long newWeight)
    {
        RequireTracked(handle, nameof(handle));
        ThrowIfBadWeight(newWeight, nameof(newWeight));
        long old = _weight[handle];
        _weight[handle] = newWeight;
        _hash[handle] = keyHash;
        Total += newWeight - old;
        return old;
    }

    /// <summary>Validates a removal and returns whether it is an eviction (the last victim).
    /// The caller reads <see cref="WeightOf"/>/<see cref="HashOf"/> before calling <see cref="Forget"/>.</summary>
    public bool CheckRemove(int handle)
    {
        RequireTracked(handle, nameof(handle));
        return handle == LastVictim;
    }

    /// <summary>Drops a tracked handle (after <see cref="CheckRemove"/>).</summary>
    public void Forget(int handle)
    {
        Debug.Assert(_weight[handle] > 0, "forgetting an untracked handle");
        Count--;
        Total -= _weight[handle];
        _weight[handle] = 0;
        if (Newest == handle) Newest = -1;
        if (LastVictim == handle) LastVictim = -1;
    }

    /// <summary>Throws unless <paramref name="handle"/> is in range and tracked.</summary>
    public void RequireTracked(int handle, string paramName)
    {
        if ((uint)handle >= (uint)_weight.Length)
        {
            ThrowHandle(handle, paramName);
        }
        if (_weight[handle] <= 0)
        {
            throw new ArgumentException($"Handle {handle} is not tracked.", paramName);
        }
    }

    public void Clear()
    {
        Array.Clear(_weight);
        Count = 0;
        Total = 0;
        Newest = -1;
        LastVictim = -1;
    }

    /// <summary>Checks the totals against the arrays.</summary>
    public void ValidateInvariants()
    {
        int count = 0;
        long total = 0;
        foreach (long w in _weight)
        {
            if (w < 0) throw new InvalidOperationException("negative weight");
            if (w > 0) { count++; total += w; }
        }
        if (count != Count || total != Total)
        {
            throw new InvalidOperationException($"tracked {count}/{total} but counted {Count}/{Total}");
        }
        if (Newest >= 0 && _weight[Newest] == 0) throw new InvalidOperationException("newest is not tracked");
        if (LastVictim >= 0 && _weight[LastVictim] == 0) throw new InvalidOperationException("last victim is not tracked");
    }

    private void ThrowHandle(int handle, string paramName) =>
        throw new ArgumentOutOfRangeException(paramName, handle, $"Handle must be in [0, {_weight.Length}).");

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> for a weight below 1 (check it before changing any state).</summary>
    public static void ThrowIfBadWeight(long weight, string paramName)
    {
        if (weight <= 0 || weight > PolicyOptions.MaxWeight)
        {
            throw new ArgumentOutOfRangeException(paramName, weight, $"Weight must be in [1, {PolicyOptions.MaxWeight}] (PolicyOptions.MaxWeight).");
        }
    }

    /// <summary>Validates constructor options shared by every extended policy.</summary>
    public static void ValidateOptions(PolicyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxHandles <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxHandles, "MaxHandles must be at least 1.");
        }
        if (options.MaxHandles > int.MaxValue / 4)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxHandles, $"MaxHandles must be at most {int.MaxValue / 4}.");
        }
        if (options.Capacity <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Capacity, "Capacity must be at least 1.");
        }
    }

    /// <summary>Ghost slots for a policy: one per unit of capacity, at most one per handle (so byte
    /// budgets do not allocate per byte), plus one: an evicted key is remembered before the
    /// directory is trimmed back to its bound.</summary>
    public static int GhostSlots(PolicyOptions options) => (int)Math.Min(options.Capacity, options.MaxHandles) + 1;
}

using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace CacheKit.Policies;

/// <summary>
/// Shared bookkeeping for the list-ordered policies of this library: argument checks, the
/// weight per handle, the totals, and <see cref="HandleLists"/> whose per-list weights are kept
/// here so segment sizes can be enforced by weight.
/// </summary>
/// <remarks>
/// Invariants: between calls the tracked handles (added and not removed) are exactly the handles
/// linked in a list, each in exactly one, so "tracked" is read from the lists (no flag per handle: one
/// byte per index slot saved); <see cref="Count"/> is their number and <see cref="Weight"/> the sum of
/// their weights (<see cref="WeightOf"/>), and <c>_listWeight[l]</c> is the sum of the weights linked in
/// list l. Inside <see cref="AddCore"/> the new handle is not linked yet, and inside
/// <see cref="RemoveCore"/> the removed one may still be.
/// The public members check their arguments and throw before any state changes.
/// </remarks>
internal abstract class PolicyBase : IEvictionPolicy
{
    // Weight per handle, or null while every handle added so far weighed exactly 1 (then every tracked
    // handle weighs 1). The engine always adds weight 1 (it bounds entries; the slab bounds bytes), so
    // its policies never allocate this array: 8 bytes per index slot saved (~13 B per cached entry at the
    // index's load of 0.6). The first weight other than 1 allocates it, once, and fills in 1 for the tracked.
    private long[]? _weights;
    private readonly long[] _listWeight;
    private int _count;
    private long _weight;
    private int _newest = -1;   // the handle added last while it stays tracked (see PendingNewcomer)
    private ShareCapacityTracker _shareCapacity;

    /// <summary>The lists threaded through the handles; subclasses use them only through the weight-keeping helpers below.</summary>
    protected readonly HandleLists Lists;

    protected PolicyBase(PolicyOptions options, int listCount)
    {
        ValidateOptions(options);
        MaxHandles = options.MaxHandles;
        Capacity = options.Capacity;
        _shareCapacity = new ShareCapacityTracker(Capacity);
        _listWeight = new long[listCount];
        Lists = new HandleLists(MaxHandles, listCount);
    }

    /// <summary>Throws when the options cannot build a policy.</summary>
    internal static void ValidateOptions(PolicyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxHandles <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxHandles, "PolicyOptions.MaxHandles must be at least 1.");
        }
        if (options.MaxHandles > 1 << 30)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxHandles, "PolicyOptions.MaxHandles must be at most 2^30.");
        }
        if (options.Capacity <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Capacity, "PolicyOptions.Capacity must be at least 1.");
        }
        if (options.WindowFraction is double f && !(f > 0 && f < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(options), f, "PolicyOptions.WindowFraction must be in (0, 1) or null.");
        }
    }

    public abstract string Name { get; }

    /// <remarks>Fixed for the policy's life, except a W-TinyLFU window shadow's, which its owner lowers when it
    /// halves the shadows' sample (<see cref="WindowShadows"/>).</remarks>
    public long Capacity { get; protected set; }

    public int MaxHandles { get; }

    public int Count => _count;

    public long Weight => _weight;

    public abstract bool ConcurrentHits { get; }

    /// <summary>Whether <paramref name="handle"/> is tracked (racy read when called without the lock).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    protected bool IsTracked(int handle) => Lists.IsLinked(handle);

    /// <summary>The weight of a tracked handle.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    protected long WeightOf(int handle) => _weights is null ? 1 : _weights[handle];

    /// <summary>Records <paramref name="weight"/> for <paramref name="handle"/>, switching to per-handle weights at the first weight other than 1.</summary>
    private void SetWeight(int handle, long weight)
    {
        if (_weights is null)
        {
            if (weight == 1)
            {
                return;
            }
            // One-time switch, O(MaxHandles): from now on weights are stored per handle.
            var weights = new long[MaxHandles];
            for (int h = 0; h < weights.Length; h++)
            {
                weights[h] = Lists.IsLinked(h) ? 1 : 0;
            }
            _weights = weights;
        }
        _weights[handle] = weight;
    }

    /// <summary>The sum of the weights linked in <paramref name="list"/>.</summary>
    protected long ListWeight(int list) => _listWeight[list];

    protected void LinkFirst(int list, int handle)
    {
        Lists.AddFirst(list, handle);
        _listWeight[list] += WeightOf(handle);
    }

    protected void LinkLast(int list, int handle)
    {
        Lists.AddLast(list, handle);
        _listWeight[list] += WeightOf(handle);
    }

    protected void Unlink(int handle)
    {
        _listWeight[Lists.ListOf(handle)] -= WeightOf(handle);
        Lists.Remove(handle);
    }

    protected void MoveFirst(int list, int handle)
    {
        int from = Lists.ListOf(handle);
        if (from != list)
        {
            long weight = WeightOf(handle);
            _listWeight[from] -= weight;
            _listWeight[list] += weight;
        }
        Lists.MoveToFirst(list, handle);
    }

    /// <summary>Moves a linked handle to the head of the list that holds it (no weight moves).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    protected void MoveFirstWithin(int list, int handle) => Lists.MoveToFirstWithin(list, handle);

    protected void MoveLast(int list, int handle)
    {
        Unlink(handle);
        LinkLast(list, handle);
    }

    public void OnHit(int handle, ulong keyHash)
    {
        CheckRange(handle);
        // A hit may race with the removal of the entry (lock-free readers, or a buffered hit
        // drained later): an untracked handle is ignored, never an error. Between calls the tracked
        // handles are exactly the linked ones (ValidateInvariants), and the list id is the byte the
        // hit reads next anyway, so the check costs no extra cache line (the tracked flag did).
        if (Lists.IsLinked(handle))
        {
            HitCore(handle, keyHash);
        }
    }

    public virtual void OnMiss(ulong keyHash)
    {
    }

    public void OnAdd(int handle, ulong keyHash, long weight)
    {
        CheckRange(handle);
        CheckWeight(weight, nameof(weight));
        if (Lists.IsLinked(handle))
        {
            throw new ArgumentException($"Handle {handle} is already tracked; remove it before adding it again.", nameof(handle));
        }
        SetWeight(handle, weight);   // before AddCore links it: a one-time switch fills in 1 for the tracked only
        _count++;
        _weight += weight;
        if (_shareCapacity.NoteAdded(_weight, Capacity))
        {
            ShareCapacityChanged();
        }
        AddCore(handle, keyHash);
        // Pending only while this add has the weight over capacity, i.e. until the eviction it calls for is done
        // (found by a review, 2026-11-29: kept until the next add, it shielded an entry added long before from a
        // later update's eviction and sent SIEVE's hand back to the tail when a removal passed it).
        _newest = _weight > Capacity ? handle : -1;
    }

    public void OnUpdate(int handle, ulong keyHash, long newWeight)
    {
        CheckRange(handle);
        CheckWeight(newWeight, nameof(newWeight));
        CheckTracked(handle);
        long delta = newWeight - WeightOf(handle);
        SetWeight(handle, newWeight);
        _weight += delta;
        int list = Lists.ListOf(handle);
        if (list >= 0)
        {
            _listWeight[list] += delta;
        }
        UpdateCore(handle, keyHash, delta);
    }

    public void OnRemove(int handle)
    {
        CheckRange(handle);
        CheckTracked(handle);
        RemoveCore(handle);
        if (handle == _newest)
        {
            _newest = -1;
        }
        if (Lists.IsLinked(handle))
        {
            Unlink(handle);
        }
        Debug.Assert(!Lists.IsLinked(handle), "a removed handle is unlinked");
        _count--;
        _weight -= WeightOf(handle);
        if (_weight <= Capacity)
        {
            _newest = -1;   // room is made: the newcomer is an ordinary resident (RemoveCore above still saw it pending)
        }
        if (_weights is not null)
        {
            _weights[handle] = 0;
        }
    }

    /// <inheritdoc/>
    public virtual void Prefetch(int handle, ulong keyHash)
    {
    }

    /// <inheritdoc/>
    public virtual void PrefetchDependent(int handle)
    {
    }

    /// <inheritdoc/>
    public virtual bool TryCancelLateMiss(int handle) => false;

    /// <inheritdoc/>
    public virtual bool CancelsLateMisses => false;

    public abstract int SelectVictim();

    public virtual bool ShouldAdmit(ulong candidateKeyHash, long weight) => true;

    public void Clear()
    {
        if (_weights is not null)
        {
            Array.Clear(_weights);
        }
        Array.Clear(_listWeight);
        Lists.Clear();
        _count = 0;
        _weight = 0;
        _newest = -1;
        ClearCore();
        if (_shareCapacity.Reset(Capacity))
        {
            ShareCapacityChanged();
        }
    }

    /// <summary>The capacity a segmented policy's shares are shares of (a window, a protected segment): see
    /// <see cref="ShareCapacityTracker"/>.</summary>
    protected long ShareCapacity => _shareCapacity.Value;

    /// <summary>
    /// The owner's own bound binds first (<see cref="IEvictionPolicy.OnRoomNeededBelowCapacity"/>): the weight held now
    /// (at most the capacity) becomes <see cref="ShareCapacity"/>; <see cref="ShareCapacityChanged"/> runs when it moved.
    /// </summary>
    public void OnRoomNeededBelowCapacity()
    {
        if (_shareCapacity.NoteRoomRequest(_weight, Capacity))
        {
            ShareCapacityChanged();
        }
    }

    /// <summary>
    /// Resets <see cref="ShareCapacity"/> to the capacity (a W-TinyLFU window shadow whose capacity its owner changed).
    /// </summary>
    protected void ResetShareCapacity() => _shareCapacity = new ShareCapacityTracker(Capacity);

    /// <summary>
    /// <see cref="ShareCapacity"/> moved: a segmented policy recomputes its limits from it (without evicting: the
    /// overflow moves between segments as on any call). Default: nothing.
    /// </summary>
    protected virtual void ShareCapacityChanged()
    {
    }

    /// <summary>The handle added last while its add keeps the weight over capacity (the eviction it calls for is not
    /// done), else -1.</summary>
    protected int NewestHandle => _newest;

    /// <summary>
    /// The newcomer a victim is being chosen for, for a policy whose classical form evicts before it inserts (SIEVE,
    /// CLOCK, S3-FIFO): the owner's protocol adds first, so the handle whose add put the weight over capacity is pending
    /// until the removals bring it back within, and must be passed over (-1 when it is the only entry). Over capacity
    /// through an update nothing is pending. Asked within capacity, the owner is making room before it adds (the
    /// engine's slab path, TinyLFU admission's comparison): nothing is pending either.
    /// </summary>
    protected int PendingNewcomer()
    {
        if (_weight <= Capacity)
        {
            _newest = -1;
        }
        return _count > 1 ? _newest : -1;
    }

    /// <summary>Links a newly tracked handle (weight and totals are already recorded).</summary>
    protected abstract void AddCore(int handle, ulong keyHash);

    /// <summary>Records an access to a tracked handle.</summary>
    protected abstract void HitCore(int handle, ulong keyHash);

    /// <summary>The hits this policy ignores now (<see cref="HitSkipFilter"/>), for an owner that buffers reads to
    /// leave out; null when it ignores none.</summary>
    internal virtual HitSkipFilter? SkippableHits => null;

    /// <summary>A tracked handle's weight changed by <paramref name="delta"/> (list weights already adjusted); counts as an access.</summary>
    protected virtual void UpdateCore(int handle, ulong keyHash, long delta) => HitCore(handle, keyHash);

    /// <summary>Called before the base unlinks a tracked handle that is leaving.</summary>
    protected virtual void RemoveCore(int handle)
    {
    }

    /// <summary>Resets the subclass's own state after the base forgot every entry.</summary>
    protected virtual void ClearCore()
    {
    }

    /// <summary>Debug check of every invariant; throws <see cref="InvalidOperationException"/> on the first violation.</summary>
    internal virtual void ValidateInvariants()
    {
        Lists.ValidateInvariants();
        int count = 0;
        long weight = 0;
        var listWeight = new long[_listWeight.Length];
        for (int h = 0; h < MaxHandles; h++)
        {
            int list = Lists.ListOf(h);
            if (list >= 0)
            {
                count++;
                weight += WeightOf(h);
                listWeight[list] += WeightOf(h);
            }
        }
        if (count != _count || weight != _weight)
        {
            throw new InvalidOperationException($"totals drifted: count {_count} vs {count}, weight {_weight} vs {weight}");
        }
        for (int l = 0; l < listWeight.Length; l++)
        {
            if (listWeight[l] != _listWeight[l])
            {
                throw new InvalidOperationException($"list {l} weight {_listWeight[l]} but holds {listWeight[l]}");
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private protected void CheckRange(int handle)
    {
        if ((uint)handle >= (uint)MaxHandles)
        {
            ThrowHandleOutOfRange(handle, MaxHandles);
        }
    }

    private void CheckTracked(int handle)
    {
        if (!Lists.IsLinked(handle))
        {
            throw new ArgumentException($"Handle {handle} is not tracked.", nameof(handle));
        }
    }

    private static void CheckWeight(long weight, string name)
    {
        if (weight < 0 || weight > PolicyOptions.MaxWeight)
        {
            throw new ArgumentOutOfRangeException(name, weight, $"A weight must be in [0, {PolicyOptions.MaxWeight}] (PolicyOptions.MaxWeight).");
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowHandleOutOfRange(int handle, int max) =>
        throw new ArgumentOutOfRangeException(nameof(handle), handle, $"A handle must be in [0, {max}).");

    [Conditional("DEBUG")]
    protected void AssertTracked(int handle) => Debug.Assert(Lists.IsLinked(handle), $"handle {handle} should be tracked");
}

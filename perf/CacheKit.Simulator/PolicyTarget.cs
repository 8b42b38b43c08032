using System.Diagnostics;
using CacheKit.Policies;

namespace CacheKit.Simulator;

/// <summary>
/// Drives an <see cref="IEvictionPolicy"/> the way the engine will: dense handles, the eviction
/// protocol of the contract, and optionally a lossy read path that drops a fraction of hits.
/// </summary>
/// <remarks>
/// Protocol per request. Hit: <c>OnHit</c> (or <c>OnUpdate</c> when the object's size changed, then
/// evict while over). Miss: <c>OnMiss</c>; objects larger than the whole budget are not stored; when
/// the newcomer needs room, <c>ShouldAdmit</c> may refuse it; else <c>OnAdd</c>, then while
/// <c>Weight &gt; Capacity</c>: <c>SelectVictim</c>, <c>OnRemove</c> (the victim may be the newcomer).
/// Handles: key id -&gt; handle in an array (key ids are dense, so no dictionary is needed), handle -&gt;
/// key id, and a stack of free handles; all allocated once, in the constructor.
/// </remarks>
public sealed class PolicyTarget : IReplayTarget
{
    private readonly IEvictionPolicy _policy;
    private readonly long _capacity;
    private readonly int[] _handleOfKey;   // -1 when the key is not resident
    private readonly int[] _keyOfHandle;   // -1 when the handle is free
    private readonly long[] _weightOfHandle;
    private readonly int[] _free;          // _free[0.._freeCount) are the free handles
    private int _freeCount;
    private readonly double _readDrop;
    private readonly SplitMixRandom _dropRng;
    private readonly ReadBuffer? _readBuffer;   // when set, hits go through it and every write drains it first

    /// <summary>Wraps <paramref name="policy"/>, whose MaxHandles must cover <paramref name="maxEntries"/>.</summary>
    /// <param name="name">Row name.</param>
    /// <param name="policy">The policy driven (empty).</param>
    /// <param name="distinctKeys">Key ids are in [0, distinctKeys).</param>
    /// <param name="maxEntries">Handles handed out are in [0, maxEntries).</param>
    /// <param name="readDrop">Fraction of hits not passed to the policy, in [0, 1).</param>
    /// <param name="seed">Seed of the drop stream.</param>
    /// <param name="readBuffer">When given, hits are recorded into this (real, lossy) buffer and the
    /// buffer is drained into the policy before every write and whenever it is found full (that hit is dropped).</param>
    public PolicyTarget(string name, IEvictionPolicy policy, int distinctKeys, int maxEntries, double readDrop = 0, ulong seed = 0x5EED, ReadBuffer? readBuffer = null)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxEntries, policy.MaxHandles);
        if (!(readDrop >= 0 && readDrop < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(readDrop), readDrop, "read drop fraction must be in [0, 1)");
        }
        Name = name;
        _policy = policy;
        _capacity = policy.Capacity;
        _handleOfKey = new int[distinctKeys];
        Array.Fill(_handleOfKey, -1);
        _keyOfHandle = new int[maxEntries];
        Array.Fill(_keyOfHandle, -1);
        _weightOfHandle = new long[maxEntries];
        _free = new int[maxEntries];
        for (int h = 0; h < maxEntries; h++)
        {
            _free[h] = maxEntries - 1 - h; // pop order 0, 1, 2, ...
        }
        _freeCount = maxEntries;
        _readDrop = readDrop;
        _dropRng = new SplitMixRandom(seed ^ (ulong)Hashing.OfString(name));
        _readBuffer = readBuffer;
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <summary>The policy driven.</summary>
    public IEvictionPolicy Policy => _policy;

    /// <summary>Hits that were not passed to the policy (lossy read path or a full read buffer).</summary>
    public long DroppedHits { get; private set; }

    /// <inheritdoc />
    public bool Access(in Request request)
    {
        int handle = _handleOfKey[request.KeyId];
        if (handle >= 0)
        {
            if (request.Weight != _weightOfHandle[handle])
            {
                _readBuffer?.DrainUnsynchronized(_policy);
                if (request.Weight > _capacity)
                {
                    // Grown past the whole budget: it can no longer be stored (as an add of that size is not),
                    // and updating it would evict every other entry first. The request found it: a hit.
                    Remove(handle);
                    return true;
                }
                _weightOfHandle[handle] = request.Weight;
                _policy.OnUpdate(handle, request.KeyHash, request.Weight);
                EvictWhileOver();
            }
            else if (_readDrop > 0 && _dropRng.NextDouble() < _readDrop)
            {
                DroppedHits++;
            }
            else if (_readBuffer is not null)
            {
                if (!_readBuffer.TryRecordHit(handle, request.KeyHash))
                {
                    // Full: this record is lost, and the reader that saw it full triggers a drain
                    // (as Caffeine and BitFaster schedule maintenance when a read buffer fills).
                    DroppedHits++;
                    _readBuffer.DrainUnsynchronized(_policy);
                }
            }
            else
            {
                _policy.OnHit(handle, request.KeyHash);
            }
            return true;
        }

        // A miss is a write: drain pending hits first (no eviction happens between a hit's record and
        // its drain, so buffered handles are never stale).
        _readBuffer?.DrainUnsynchronized(_policy);
        _policy.OnMiss(request.KeyHash);
        if (request.Weight > _capacity)
        {
            return false; // can never fit: not stored, as in any cache with a budget
        }
        if (_policy.Weight + request.Weight > _capacity && !_policy.ShouldAdmit(request.KeyHash, request.Weight))
        {
            return false;
        }
        if (_freeCount == 0)
        {
            throw new InvalidOperationException($"{Name}: no free handle; {_policy.Count} tracked, weight {_policy.Weight} of {_capacity}");
        }
        handle = _free[--_freeCount];
        _handleOfKey[request.KeyId] = handle;
        _keyOfHandle[handle] = request.KeyId;
        _weightOfHandle[handle] = request.Weight;
        _policy.OnAdd(handle, request.KeyHash, request.Weight);
        EvictWhileOver();
        return false;
    }

    private void EvictWhileOver()
    {
        int guard = _policy.Count + 1;
        while (_policy.Weight > _capacity)
        {
            int victim = _policy.SelectVictim();
            if ((uint)victim >= (uint)_keyOfHandle.Length || _keyOfHandle[victim] < 0)
            {
                throw new InvalidOperationException($"{Name}: SelectVictim returned {victim}, not a tracked handle ({_policy.Count} tracked)");
            }
            if (--guard < 0)
            {
                throw new InvalidOperationException($"{Name}: eviction loop did not bring weight {_policy.Weight} under {_capacity}");
            }
            Remove(victim);
        }
        Debug.Assert(_policy.Weight <= _capacity, "over capacity after the eviction loop");
    }

    private void Remove(int handle)
    {
        _policy.OnRemove(handle);
        _handleOfKey[_keyOfHandle[handle]] = -1;
        _keyOfHandle[handle] = -1;
        _free[_freeCount++] = handle;
    }
}

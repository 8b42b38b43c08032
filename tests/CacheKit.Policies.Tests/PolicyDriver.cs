using System.Reflection;
using CacheKit.Policies;

namespace CacheKit.Policies.Tests;

/// <summary>
/// A minimal owner for tests: maps integer keys to dense handles with arrays allocated once
/// (so a warmed-up run allocates nothing) and follows the eviction protocol of IEvictionPolicy.
/// </summary>
internal sealed class PolicyDriver
{
    private readonly int[] _handleOfKey;     // -1 when not resident
    private readonly int[] _keyOfHandle;     // -1 when free
    private readonly long[] _weightOfHandle;
    private readonly int[] _freeHandles;
    private int _freeCount;
    private readonly MethodInfo? _validate;

    public PolicyDriver(IEvictionPolicy policy, int keySpace)
    {
        Policy = policy;
        _handleOfKey = new int[keySpace];
        Array.Fill(_handleOfKey, -1);
        _keyOfHandle = new int[policy.MaxHandles];
        Array.Fill(_keyOfHandle, -1);
        _weightOfHandle = new long[policy.MaxHandles];
        _freeHandles = new int[policy.MaxHandles];
        for (int h = policy.MaxHandles - 1; h >= 0; h--)
        {
            _freeHandles[_freeCount++] = h;
        }
        _validate = policy.GetType().GetMethod("ValidateInvariants", BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public);
    }

    public IEvictionPolicy Policy { get; }

    public long Hits { get; private set; }

    public long Misses { get; private set; }

    /// <summary>Keys evicted, in order (only when recording is on: it allocates).</summary>
    public List<int>? Evicted { get; set; }

    public int Resident => Policy.MaxHandles - _freeCount;

    public long ResidentWeight { get; private set; }

    public bool IsResident(int key) => _handleOfKey[key] >= 0;

    public static ulong HashOf(int key) => (ulong)key * 0x9E3779B97F4A7C15UL + 12345;

    /// <summary>One access: a hit reports OnHit; a miss reports OnMiss, asks admission (optionally), adds and evicts.</summary>
    public bool Access(int key, long weight, bool askAdmission = true)
    {
        ulong hash = HashOf(key);
        int handle = _handleOfKey[key];
        if (handle >= 0)
        {
            Hits++;
            Policy.OnHit(handle, hash);
            return true;
        }
        Misses++;
        Policy.OnMiss(hash);
        if (weight > Policy.Capacity)
        {
            return false;
        }
        if (askAdmission && Policy.Weight + weight > Policy.Capacity && !Policy.ShouldAdmit(hash, weight))
        {
            return false;
        }
        if (_freeCount == 0)
        {
            // Out of handles (only when weights are tiny): make room by count first.
            EvictOne();
        }
        handle = _freeHandles[--_freeCount];
        _handleOfKey[key] = handle;
        _keyOfHandle[handle] = key;
        _weightOfHandle[handle] = weight;
        ResidentWeight += weight;
        Policy.OnAdd(handle, hash, weight);
        EvictWhileOver();
        return false;
    }

    public void Update(int key, long weight)
    {
        int handle = _handleOfKey[key];
        if (handle < 0)
        {
            return;
        }
        ResidentWeight += weight - _weightOfHandle[handle];
        _weightOfHandle[handle] = weight;
        Policy.OnUpdate(handle, HashOf(key), weight);
        EvictWhileOver();
    }

    public void Remove(int key)
    {
        int handle = _handleOfKey[key];
        if (handle >= 0)
        {
            Policy.OnRemove(handle);
            Release(handle);
        }
    }

    public void EvictWhileOver()
    {
        int guard = Policy.Count + 1;
        while (Policy.Weight > Policy.Capacity)
        {
            if (guard-- == 0)
            {
                throw new InvalidOperationException("eviction loop did not converge");
            }
            EvictOne();
        }
    }

    public int EvictOne()
    {
        int victim = Policy.SelectVictim();
        if (victim < 0 || victim >= Policy.MaxHandles || _keyOfHandle[victim] < 0)
        {
            throw new InvalidOperationException($"{Policy.Name}: SelectVictim returned {victim}, not a tracked handle (Count {Policy.Count})");
        }
        int key = _keyOfHandle[victim];
        Policy.OnRemove(victim);
        Evicted?.Add(key);
        Release(victim);
        return key;
    }

    public void Clear()
    {
        Policy.Clear();
        for (int h = 0; h < _keyOfHandle.Length; h++)
        {
            if (_keyOfHandle[h] >= 0)
            {
                Release(h);
            }
        }
    }

    public void Validate()
    {
        try
        {
            _validate?.Invoke(Policy, null);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw e.InnerException;
        }
        if (Policy.Count != Resident || Policy.Weight != ResidentWeight)
        {
            throw new InvalidOperationException($"{Policy.Name}: policy has {Policy.Count}/{Policy.Weight}, owner {Resident}/{ResidentWeight}");
        }
    }

    private void Release(int handle)
    {
        int key = _keyOfHandle[handle];
        _handleOfKey[key] = -1;
        _keyOfHandle[handle] = -1;
        ResidentWeight -= _weightOfHandle[handle];
        _weightOfHandle[handle] = 0;
        _freeHandles[_freeCount++] = handle;
    }
}

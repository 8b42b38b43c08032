using System.Diagnostics;

namespace CacheKit.Simulator;

/// <summary>
/// Belady's OPT: on eviction, drop the resident key whose next use lies furthest in the future.
/// </summary>
/// <remarks>
/// Next uses are precomputed per request (<see cref="Trace.NextUse"/>); the resident keys sit in an
/// indexed binary max-heap keyed by their next use, so each request is O(log n). A newcomer that is
/// never used again (or used later than every resident) is itself the victim, which is the same as
/// not storing it (OPT with bypass, the true optimum for count capacity). For byte capacity the
/// same rule (evict by furthest next use until the newcomer fits) is the usual approximation: the
/// exact weighted optimum is NP-hard, so OPT's byte figures are a strong policy, not a bound.
/// </remarks>
public sealed class OptTarget : IReplayTarget
{
    private readonly Trace _trace;
    private readonly int[] _nextUse;
    private readonly long _capacity;
    private readonly int[] _heap;        // key ids; heap order: _next[_heap[parent]] >= _next[_heap[child]]
    private readonly int[] _pos;         // position of a key id in _heap, -1 when not resident
    private readonly int[] _next;        // per key id: index of its next request (int.MaxValue: never)
    private readonly long[] _weight;     // per key id: resident weight
    private int _count;
    private long _used;

    /// <summary>OPT for <paramref name="trace"/> at <paramref name="capacity"/>.</summary>
    public OptTarget(Trace trace, Capacity capacity)
    {
        ArgumentNullException.ThrowIfNull(trace);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity.Value);
        _trace = trace;
        _nextUse = trace.NextUse;
        _capacity = capacity.Value;
        _heap = new int[capacity.MaxEntries(trace)];
        _pos = new int[trace.DistinctKeys];
        Array.Fill(_pos, -1);
        _next = new int[trace.DistinctKeys];
        _weight = new long[trace.DistinctKeys];
    }

    /// <inheritdoc />
    public string Name => "OPT";

    /// <summary>Resident keys.</summary>
    public int Count => _count;

    /// <summary>Resident weight.</summary>
    public long Used => _used;

    /// <inheritdoc />
    public bool Access(in Request request)
    {
        Debug.Assert(_trace.KeyIds[request.Index] == request.KeyId, "request index and key disagree");
        int id = request.KeyId;
        int next = _nextUse[request.Index];
        if (_pos[id] >= 0)
        {
            _used += request.Weight - _weight[id];
            _weight[id] = request.Weight;
            // Grown past the whole budget: it can no longer be stored, so it goes first (as in every target).
            _next[id] = request.Weight > _capacity ? int.MaxValue : next; // later than before: sift up
            SiftUp(_pos[id]);
            EvictWhileOver();
            return true;
        }
        if (request.Weight > _capacity)
        {
            return false;
        }
        _next[id] = next;
        _weight[id] = request.Weight;
        _used += request.Weight;
        _heap[_count] = id;
        _pos[id] = _count;
        _count++;
        SiftUp(_count - 1);
        EvictWhileOver();
        return false;
    }

    private void EvictWhileOver()
    {
        while (_used > _capacity)
        {
            int victim = _heap[0];
            _used -= _weight[victim];
            _pos[victim] = -1;
            _count--;
            if (_count > 0)
            {
                _heap[0] = _heap[_count];
                _pos[_heap[0]] = 0;
                SiftDown(0);
            }
        }
    }

    private void SiftUp(int i)
    {
        int id = _heap[i];
        int key = _next[id];
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (_next[_heap[parent]] >= key)
            {
                break;
            }
            _heap[i] = _heap[parent];
            _pos[_heap[i]] = i;
            i = parent;
        }
        _heap[i] = id;
        _pos[id] = i;
    }

    private void SiftDown(int i)
    {
        int id = _heap[i];
        int key = _next[id];
        while (true)
        {
            int child = 2 * i + 1;
            if (child >= _count)
            {
                break;
            }
            if (child + 1 < _count && _next[_heap[child + 1]] > _next[_heap[child]])
            {
                child++;
            }
            if (_next[_heap[child]] <= key)
            {
                break;
            }
            _heap[i] = _heap[child];
            _pos[_heap[i]] = i;
            i = child;
        }
        _heap[i] = id;
        _pos[id] = i;
    }

    /// <summary>Debug check: heap order, positions and the weight sum agree.</summary>
    internal void ValidateInvariants()
    {
        long sum = 0;
        for (int i = 0; i < _count; i++)
        {
            int id = _heap[i];
            if (_pos[id] != i)
            {
                throw new InvalidOperationException($"OPT heap position of key {id} is {_pos[id]}, expected {i}");
            }
            if (i > 0 && _next[_heap[(i - 1) >> 1]] < _next[id])
            {
                throw new InvalidOperationException($"OPT heap order broken at {i}");
            }
            sum += _weight[id];
        }
        if (sum != _used || _used > _capacity)
        {
            throw new InvalidOperationException($"OPT weight {_used} (sum {sum}) against capacity {_capacity}");
        }
    }
}

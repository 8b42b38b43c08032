namespace CacheKit.OffHeap;

/// <summary>Why an entry left the cache without being removed by the user.</summary>
public enum EvictionReason
{
    /// <summary>Evicted to make room (policy victim, entry-count bound, full index window).</summary>
    Capacity,
    /// <summary>Its time to live had passed.</summary>
    Expired,
    /// <summary>Its page was taken for another size class when the size mix shifted.</summary>
    PageReclaimed,
}

/// <summary>
/// Called for each entry the cache evicts or expires, with the entry's key bytes (valid only during
/// the call). It runs under the shard's write lock: keep it short, allocate nothing if you can, and
/// never write to the cache from it: a Set, TryAdd, TryUpdate, Touch, Remove, Clear, SetMany, a GetOrAdd that misses, or
/// Dispose of this cache, for any key, throws <see cref="InvalidOperationException"/> (out of the operation that evicted,
/// unless the listener catches it). Reads are allowed (for policies that buffer hits, a read of that shard is not replayed
/// into the policy, which is in the middle of the eviction; lock-free-hit policies such as CLOCK or SIEVE count it as any
/// concurrent hit). Other caches may be used; since the listener holds its shard's lock, a wait inside it for another cache's
/// lock or for another caller's GetOrAdd of a key is bounded (5 s: two caches whose listeners write to each other from two
/// threads would otherwise wait for each other forever; a lock or factory held that long by another thread also ends it), after
/// which that call throws <see cref="InvalidOperationException"/> having made no change after the wait (Clear, RemoveExpired and
/// SetMany, which take several locks in turn, keep what they did before it). Let at most one of two caches' listeners write to the other. If it throws, the eviction still completes (the cache stays
/// consistent) and the exception propagates to the caller of the operation that evicted.
/// Not reported: a value the caller's own call replaces or removes (a Set or update of the key that stores its value,
/// a Remove of a live entry, Clear), and a live older value that a Set drops when it cannot store its new one (if that
/// one had expired, it is reported as <see cref="EvictionReason.Expired"/>).
/// </summary>
/// <param name="key">The evicted entry's key.</param>
/// <param name="reason">Why it left.</param>
public delegate void EvictionListener(ReadOnlySpan<byte> key, EvictionReason reason);

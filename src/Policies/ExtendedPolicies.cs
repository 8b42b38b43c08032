namespace CacheKit.Policies;

/// <summary>
/// Builds the policies of the extended family (everything beyond the core set of FIFO, LRU, SLRU,
/// CLOCK, SIEVE, S3-FIFO and W-TinyLFU). <c>PolicyFactory</c> calls this for the kinds it does
/// not build itself, and applies <see cref="PolicyOptions.TinyLfuAdmission"/> around the result.
/// </summary>
internal static class ExtendedPolicies
{
    /// <summary>The kinds <see cref="TryCreate"/> builds.</summary>
    internal static ReadOnlySpan<PolicyKind> Kinds =>
    [
        PolicyKind.Lifo, PolicyKind.Random, PolicyKind.Mru, PolicyKind.LruK, PolicyKind.TwoQ,
        PolicyKind.Arc, PolicyKind.Car, PolicyKind.ClockPro, PolicyKind.Nru, PolicyKind.Lfu,
        PolicyKind.HeapLfu, PolicyKind.Mfu, PolicyKind.Lirs, PolicyKind.Gdsf,
    ];

    /// <summary>Builds the policy for <paramref name="kind"/> when it belongs to the extended family.</summary>
    /// <returns>False (and a null policy) for kinds built elsewhere.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">MaxHandles or Capacity below 1, or K outside [1, 16] for LRU-K.</exception>
    internal static bool TryCreate(PolicyKind kind, PolicyOptions options, out IEvictionPolicy? policy)
    {
        ArgumentNullException.ThrowIfNull(options);
        policy = kind switch
        {
            PolicyKind.Lifo => new LifoPolicy(options),
            PolicyKind.Random => new RandomPolicy(options),
            PolicyKind.Mru => new MruPolicy(options),
            PolicyKind.LruK => new LruKPolicy(options),
            PolicyKind.TwoQ => new TwoQPolicy(options),
            PolicyKind.Arc => new ArcPolicy(options),
            PolicyKind.Car => new CarPolicy(options),
            PolicyKind.ClockPro => new ClockProPolicy(options),
            PolicyKind.Nru => new NruPolicy(options),
            PolicyKind.Lfu => new LfuPolicy(options),
            PolicyKind.HeapLfu => new HeapLfuPolicy(options),
            PolicyKind.Mfu => new LfuPolicy(options, evictMostFrequent: true),
            PolicyKind.Lirs => new LirsPolicy(options),
            PolicyKind.Gdsf => new GdsfPolicy(options),
            _ => null,
        };
        return policy is not null;
    }

    /// <summary>Runs the Debug invariant check of an extended policy (tests call it after every step).</summary>
    internal static void ValidateInvariants(IEvictionPolicy policy)
    {
        switch (policy)
        {
            case LifoPolicy p: p.ValidateInvariants(); break;
            case RandomPolicy p: p.ValidateInvariants(); break;
            case MruPolicy p: p.ValidateInvariants(); break;
            case LruKPolicy p: p.ValidateInvariants(); break;
            case TwoQPolicy p: p.ValidateInvariants(); break;
            case ArcPolicy p: p.ValidateInvariants(); break;
            case CarPolicy p: p.ValidateInvariants(); break;
            case ClockProPolicy p: p.ValidateInvariants(); break;
            case NruPolicy p: p.ValidateInvariants(); break;
            case LfuPolicy p: p.ValidateInvariants(); break;
            case HeapLfuPolicy p: p.ValidateInvariants(); break;
            case LirsPolicy p: p.ValidateInvariants(); break;
            case GdsfPolicy p: p.ValidateInvariants(); break;
            default: throw new ArgumentException($"{policy.GetType().Name} is not an extended policy.", nameof(policy));
        }
    }
}

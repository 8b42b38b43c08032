namespace CacheKit.Policies;

/// <summary>Builds the policy for a <see cref="PolicyKind"/>.</summary>
public static class PolicyFactory
{
    /// <summary>The policy used when none is chosen: W-TinyLFU with an adaptive window.</summary>
    public const PolicyKind Default = PolicyKind.WTinyLfu;

    /// <summary>
    /// Creates a policy. With <see cref="PolicyOptions.TinyLfuAdmission"/> the policy is wrapped in a
    /// TinyLFU admission filter (W-TinyLFU has its own and is never wrapped).
    /// </summary>
    /// <param name="kind">Which policy.</param>
    /// <param name="options">Handle range, capacity and knobs.</param>
    /// <returns>A new, empty policy.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of its range (the message names it).</exception>
    /// <exception cref="NotSupportedException">This build does not implement <paramref name="kind"/>.</exception>
    public static IEvictionPolicy Create(PolicyKind kind, PolicyOptions options)
    {
        PolicyBase.ValidateOptions(options);
        IEvictionPolicy policy = CreateCore(kind, options);
        return options.TinyLfuAdmission && kind != PolicyKind.WTinyLfu ? new TinyLfuAdmissionPolicy(policy, options) : policy;
    }

    private static IEvictionPolicy CreateCore(PolicyKind kind, PolicyOptions options) => kind switch
    {
        PolicyKind.WTinyLfu => new WTinyLfuPolicy(options),
        PolicyKind.Fifo => new FifoPolicy(options),
        PolicyKind.Lru => new LruPolicy(options),
        PolicyKind.Clock => new ClockPolicy(options),
        PolicyKind.Sieve => new SievePolicy(options),
        PolicyKind.Slru => new SlruPolicy(options),
        PolicyKind.S3Fifo => new S3FifoPolicy(options),
        _ => ExtendedPolicies.TryCreate(kind, options, out IEvictionPolicy? extended) && extended is not null
            ? extended
            : throw new NotSupportedException($"Policy kind {kind} is not implemented in this build."),
    };
}

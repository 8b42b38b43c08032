using CacheKit.OffHeap;

namespace CacheKit.Hardening.Harness;

/// <summary>
/// The fuzz target: bytes -> a tiny cache configuration and an operation list, run under the differential
/// harness with poison on and invariants checked after every operation. Any disagreement, invariant break or
/// unexpected exception is thrown (a crash to the fuzzer). Shared by fuzz/CacheKit.Fuzz and the corpus replay test.
/// </summary>
/// <remarks>
/// Input layout: byte 0 picks the policy, byte 1 the shape (bits 0-1: MaxEntries none/8/40/200; bit 2: 2 shards;
/// bit 3: fail 20 % of native page allocations), then 4 bytes per operation (see <see cref="OpGenerator.Decode"/>).
/// </remarks>
internal static class FuzzTarget
{
    public static readonly CachePolicy[] Policies = Enum.GetValues<CachePolicy>();

    public static DiffConfig ConfigFor(ReadOnlySpan<byte> data)
    {
        CachePolicy policy = data.Length > 0 ? Policies[data[0] % Policies.Length] : CachePolicy.WTinyLfu;
        byte shape = data.Length > 1 ? data[1] : (byte)0;
        long? maxEntries = (shape & 3) switch { 0 => null, 1 => 8, 2 => 40, _ => 200 };
        int shards = (shape & 4) != 0 ? 2 : 1;
        int faults = (shape & 8) != 0 ? 20 : 0;
        // Tiny: 1 MiB of 64 KiB pages, 64 keys, values up to 40 KB: every few operations evict or reclaim a page.
        return new DiffConfig("fuzz", policy, 1 << 20, 64 * 1024, shards, maxEntries, KeySpace: 64, MaxKeyPad: 12,
            MaxValue: 40_000, Roomy: false, Poison: true, FaultPercent: faults);
    }

    /// <summary>Runs one input; returns the failure (null when the cache and the model agree throughout).</summary>
    public static Failure? Run(ReadOnlySpan<byte> data)
    {
        DiffConfig config = ConfigFor(data);
        List<Op> ops = OpGenerator.Decode(data.Length > 2 ? data[2..] : [], config);
        if (ops.Count > 2000)
        {
            ops.RemoveRange(2000, ops.Count - 2000);   // bound the time per input
        }
        return DifferentialRunner.Run(config, ops, validateEvery: 1);
    }
}

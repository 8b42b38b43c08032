namespace CacheKit.Policies;

/// <summary>
/// The directory arithmetic ARC (Megiddo and Modha, FAST 2003) and CAR (Bansal and Modha, FAST 2004) share: their
/// ghost lists B1 and B2 (lists 0 and 1 of one <see cref="GhostHistory"/>), the bounds |T1| + |B1| ≤ c and
/// |T1| + |T2| + |B1| + |B2| ≤ 2c, and the adaptation step of the target p.
/// </summary>
internal static class ArcDirectory
{
    /// <summary>The ghost lists' ids in the shared <see cref="GhostHistory"/>.</summary>
    public const int B1 = 0, B2 = 1;

    /// <summary>
    /// |T1| + |T2| + |B1| + |B2| + <paramref name="extra"/> &gt; 2c, written so it cannot overflow: 2c wrapped
    /// to -2 for c = long.MaxValue (an owner that evicts only for reasons of its own), and every eviction
    /// then dropped the whole ghost history. The directory weight stays below 2^63 (at most 2^29 handles
    /// and as many ghosts, each at most 2^32), so subtracting c is exact.
    /// </summary>
    public static bool OverBound(GhostHistory ghosts, long residentWeight, long extra, long c)
        => residentWeight + ghosts.Weight(B1) + ghosts.Weight(B2) + extra - c > c;

    /// <summary>After an eviction, or when c moved: B1's oldest go while |T1| + |B1| &gt; c, then B2's (else B1's)
    /// while the directory is over 2c.</summary>
    public static void Trim(GhostHistory ghosts, long t1Weight, long t2Weight, long c)
    {
        while (t1Weight + ghosts.Weight(B1) > c && ghosts.RemoveOldest(B1)) { }
        while (OverBound(ghosts, t1Weight + t2Weight, 0, c) && (ghosts.RemoveOldest(B2) || ghosts.RemoveOldest(B1))) { }
    }

    /// <summary>
    /// The paper's δ = weight × max(1, ratio), capped at c: p moves within [0, c], so a larger step changes
    /// nothing. The cap also keeps the product in range: the newcomer's weight (up to 2^32) need not be its
    /// ghost's, so a heavy key returning from a light ghost (ratio up to ~2^33 at a 2^34 budget) wrapped p
    /// negative, or above c on the B2 side.
    /// </summary>
    public static long AdaptationStep(long weight, long ratio, long c)
    {
        ratio = Math.Max(1, ratio);
        return ratio > c / weight ? c : weight * ratio;
    }
}

using System.Runtime.CompilerServices;

namespace CacheKit.Policies;

/// <summary>Seeded 64-bit mixing for key hashes handed in by the owner (which may be weak, e.g. raw integer keys).</summary>
internal static class HashMix
{
    /// <summary>Folds a seed into a 64-bit constant suitable for <see cref="Mix"/>.</summary>
    public static ulong SeedOf(int seed) => Mix((ulong)(uint)seed * 0x9E3779B97F4A7C15UL + 0xD1B54A32D192ED03UL);

    /// <summary>The MurmurHash3 64-bit finaliser: every input bit affects every output bit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Mix(ulong h)
    {
        h ^= h >> 33;
        h *= 0xFF51AFD7ED558CCDUL;
        h ^= h >> 33;
        h *= 0xC4CEB9FE1A85EC53UL;
        h ^= h >> 33;
        return h;
    }
}

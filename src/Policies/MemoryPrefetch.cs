using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace CacheKit.Policies;

/// <summary>
/// Software prefetch of policy metadata (x86 <c>prefetcht0</c>; a no-op where the instruction is
/// unavailable). A read-buffer drain announces a batch of records before replaying them, so the
/// cache misses of the whole batch (sketch block, doorkeeper block, per-handle arrays) overlap
/// instead of being paid one after the other.
/// </summary>
/// <remarks>The only unsafe code of the policies: a prefetch is a hint that reads nothing into a
/// register, writes nothing and never faults, so it cannot break memory safety even through an
/// address that the GC has just made stale; <see cref="WordsToCacheLine"/> only looks at an address.</remarks>
internal static unsafe class MemoryPrefetch
{
    /// <summary>Whether <see cref="Element{T}"/> issues a real prefetch on this machine.</summary>
    public static bool IsSupported => Sse.IsSupported;

    /// <summary>Asks the CPU to bring the cache line holding <c>array[index]</c> into L1; ignores an index out of range.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Element<T>(T[] array, int index)
        where T : unmanaged
    {
        if (Sse.IsSupported && (uint)index < (uint)array.Length)
        {
            ref T element = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(array), index);
            // SAFETY: index < array.Length (checked above), so the address is inside the array when
            // taken; the array is not pinned, but prefetcht0 never faults, reads nothing into a
            // register and writes nothing, so a stale address after a GC move is harmless.
            Sse.Prefetch0(Unsafe.AsPointer(ref element));
        }
    }

    /// <summary>Asks the CPU to bring the cache line holding <paramref name="location"/> into L1.</summary>
    /// <param name="location">A reference to an element in bounds of a live array (the caller proves it).</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void At<T>(ref T location)
        where T : unmanaged
    {
        if (Sse.IsSupported)
        {
            // SAFETY: the caller passes a reference inside a live array; prefetcht0 never faults, reads nothing
            // into a register and writes nothing, so even a stale address after a GC move is harmless.
            Sse.Prefetch0(Unsafe.AsPointer(ref location));
        }
    }

    /// <summary>How many words from the start of <paramref name="pinned"/> the first 64-byte boundary lies (0..7).</summary>
    /// <param name="pinned">A non-empty array allocated with <c>GC.AllocateArray(pinned: true)</c>: it never moves, so the answer holds for its life.</param>
    public static int WordsToCacheLine(ulong[] pinned)
    {
        // SAFETY: only the address is taken (nothing is read through it); the array is pinned, so the
        // address, and hence the alignment, never changes.
        nuint address = (nuint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinned));
        Debug.Assert(address % sizeof(ulong) == 0, "array data is 8-byte aligned");
        return (int)(((64 - (address & 63)) & 63) / sizeof(ulong));
    }
}

namespace CacheKit.Slab;

/// <summary>
/// A raw native block taken from a <see cref="SlabPool"/>'s budget with <see cref="SlabPool.TryAllocateBlock"/>
/// (for other native structures, such as the engine's index). 64-byte aligned, zeroed when handed out,
/// alive until <see cref="SlabPool.FreeBlock"/> or the pool's <see cref="SlabPool.Dispose"/>.
/// </summary>
public readonly unsafe struct NativeBlock
{
    internal NativeBlock(void* pointer, nuint length)
    {
        Pointer = pointer;
        Length = length;
    }

    /// <summary>Start of the block (64-byte aligned); null for a default instance.</summary>
    public void* Pointer { get; }

    /// <summary>Length in bytes, exactly as requested and as counted in the budget.</summary>
    public nuint Length { get; }
}

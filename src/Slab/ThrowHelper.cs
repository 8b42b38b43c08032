using System.Diagnostics.CodeAnalysis;

namespace CacheKit.Slab;

/// <summary>Throw helpers, kept out of line so the hot paths that call them stay small.</summary>
internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void ThrowObjectDisposed() => throw new ObjectDisposedException(nameof(SlabPool));

    [DoesNotReturn]
    public static void ThrowSizeOutOfRange(int size, int maxChunkSize) =>
        throw new ArgumentOutOfRangeException(nameof(size), size,
            $"size must be in [1, {maxChunkSize}] (MaxChunkSize, the largest size class); larger values have no slab path.");

    [DoesNotReturn]
    public static void ThrowInvalidHandle(SlabHandle handle, string why) =>
        throw new InvalidOperationException($"Handle 0x{handle.Value:X12} {why}");

    [DoesNotReturn]
    public static void ThrowBadHandleArgument(SlabHandle handle, string why) =>
        throw new ArgumentException($"Handle 0x{handle.Value:X12} {why}", nameof(handle));
}

using System.Buffers;
using System.Text;

namespace CacheKit.OffHeap;

/// <summary>
/// UTF-8 that refuses strings which are not valid UTF-16. The default <see cref="Encoding.UTF8"/> replaces
/// a lone surrogate with U+FFFD, so "a\uD800" and "a\uDBFF" would encode to the same bytes: two keys,
/// one entry. Keys and values encoded here round-trip exactly, or the call throws.
/// </summary>
internal static class StrictUtf8
{
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Upper bound of the bytes <paramref name="charCount"/> characters take.</summary>
    public static int GetMaxByteCount(int charCount) => Strict.GetMaxByteCount(charCount);

    /// <summary>Encodes <paramref name="text"/> into <paramref name="destination"/>; returns the bytes written.</summary>
    /// <exception cref="ArgumentException">The string holds a lone surrogate (ParamName <paramref name="paramName"/>).</exception>
    public static int GetBytes(string text, Span<byte> destination, string paramName)
    {
        try
        {
            return Strict.GetBytes(text, destination);
        }
        catch (EncoderFallbackException e)
        {
            throw InvalidText(e, paramName);
        }
    }

    /// <summary>Encodes <paramref name="text"/> into <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException">The string holds a lone surrogate (ParamName <paramref name="paramName"/>).</exception>
    public static void GetBytes(string text, IBufferWriter<byte> destination, string paramName)
    {
        try
        {
            Strict.GetBytes(text, destination);
        }
        catch (EncoderFallbackException e)
        {
            throw InvalidText(e, paramName);
        }
    }

    private static ArgumentException InvalidText(EncoderFallbackException e, string paramName)
        => new($"The string is not valid UTF-16: a lone surrogate at index {e.Index}. Strings are stored as UTF-8, which cannot represent it (replacing it would make distinct strings one key).", paramName, e);
}

using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text;
using System.Text.Unicode;

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
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than the encoded text (ParamName "destination").</exception>
    public static int GetBytes(string text, Span<byte> destination, string paramName)
    {
        // A short text (a typical key) is first tried in 128-bit blocks (TryNarrowShortAscii), which costs less than
        // Ascii.FromUtf16's setup; the rest takes the general path, kept out of this method so that its frame (the
        // message's interpolation) is not set up for every key.
        return TryGetShortAsciiBytes(text, destination) ? text.Length : GetBytesGeneral(text, destination, paramName);
    }

    /// <summary>Writes a text of at most <see cref="ShortTextChars"/> ASCII characters to <paramref name="destination"/>
    /// (one byte a character, what <see cref="GetBytes(string, Span{byte}, string)"/> writes for it) and returns true;
    /// false for any other text, or a destination shorter than the text, which <see cref="GetBytes(string, Span{byte}, string)"/>
    /// then encodes (or refuses).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryGetShortAsciiBytes(string text, Span<byte> destination)
        => text.Length <= ShortTextChars && text.Length <= destination.Length && TryNarrowShortAscii(text, destination);

    private static int GetBytesGeneral(string text, Span<byte> destination, string paramName)
    {
        // The ASCII prefix (all of a typical key) by Ascii.FromUtf16, which stops at the first other character (or the
        // destination's end) and reports what it copied; the rest in one pass of Utf8.FromUtf16, which validates as it
        // encodes. The encoder with a throwing fallback took three passes (validate, count, encode), and Utf8.FromUtf16
        // alone about 150 instructions for a 16-character ASCII key (valgrind).
        _ = Ascii.FromUtf16(text, destination, out int ascii);
        if (ascii == text.Length)
        {
            return ascii;
        }
        OperationStatus status = Utf8.FromUtf16(text.AsSpan(ascii), destination[ascii..], out int read, out int written, replaceInvalidSequences: false);
        return status switch
        {
            OperationStatus.Done => ascii + written,
            OperationStatus.InvalidData => throw InvalidText(ascii + read, paramName),
            _ => throw new ArgumentException($"The destination ({destination.Length} bytes) is too short for the UTF-8 of a string of {text.Length} characters (up to {3L * text.Length} bytes).", nameof(destination)),
        };
    }

    /// <summary>Longest text <see cref="TryNarrowShortAscii"/> is tried on (longer ones go to <see cref="Ascii.FromUtf16"/>, whose wider
    /// vectors win there).</summary>
    private const int ShortTextChars = 64;

    /// <summary>
    /// Writes <paramref name="text"/> as ASCII bytes to <c>destination[..text.Length]</c> and returns true when every
    /// character is ASCII; else returns false, having written an unspecified part of that range (the caller encodes again
    /// from the start). 8 to 15 characters take two overlapping blocks of 8, 16 or more blocks of 16 (the last one moved
    /// back to end at the text's end, overlapping the one before: the bytes written twice are the same); below 8, a loop.
    /// </summary>
    private static bool TryNarrowShortAscii(ReadOnlySpan<char> text, Span<byte> destination)
    {
        Debug.Assert(text.Length <= destination.Length, "the caller checked the room");
        int n = text.Length;
        if (n < 8 || !Vector128.IsHardwareAccelerated)
        {
            for (int i = 0; i < n; i++)
            {
                char c = text[i];
                if (c > '\u007F')
                {
                    return false;
                }
                destination[i] = (byte)c;
            }
            return true;
        }
        ReadOnlySpan<ushort> units = MemoryMarshal.Cast<char, ushort>(text);
        Vector128<ushort> nonAscii = Vector128.Create((ushort)0xFF80);
        if (n < 16)
        {
            Vector128<ushort> first = Vector128.Create(units[..8]);
            Vector128<ushort> last = Vector128.Create(units[(n - 8)..]);
            if (((first | last) & nonAscii) != Vector128<ushort>.Zero)
            {
                return false;
            }
            Vector128<ulong> bytes = Vector128.Narrow(first, last).AsUInt64();   // bytes 0-7 from first, 8-15 from last
            MemoryMarshal.Write(destination, bytes.GetElement(0));
            MemoryMarshal.Write(destination[(n - 8)..], bytes.GetElement(1));
            return true;
        }
        for (int start = 0; ; start = Math.Min(start + 16, n - 16))
        {
            Vector128<ushort> low = Vector128.Create(units.Slice(start, 8));
            Vector128<ushort> high = Vector128.Create(units.Slice(start + 8, 8));
            if (((low | high) & nonAscii) != Vector128<ushort>.Zero)
            {
                return false;
            }
            Vector128.Narrow(low, high).CopyTo(destination.Slice(start, 16));
            if (start == n - 16)
            {
                return true;
            }
        }
    }

    /// <summary>Encodes <paramref name="text"/> into <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException">The string holds a lone surrogate (ParamName <paramref name="paramName"/>).</exception>
    /// <exception cref="ArgumentException">The writer's <c>GetSpan</c> returned less than it was asked for (ParamName "destination").</exception>
    public static void GetBytes(string text, IBufferWriter<byte> destination, string paramName)
    {
        // Up to SinglePassChars characters the writer is asked for the worst case (3 bytes a UTF-16 unit) and the
        // text is encoded in one pass; a longer text is counted first, so that it asks for its exact size only.
        int needed = text.Length <= SinglePassChars ? text.Length * 3 : StrictByteCount(text, paramName);
        Span<byte> span = destination.GetSpan(needed);
        if (span.Length < needed)
        {
            throw new ArgumentException($"The buffer writer's GetSpan({needed}) returned {span.Length} bytes.", nameof(destination));
        }
        destination.Advance(GetBytes(text, span, paramName));
    }

    /// <summary>Longest text encoded without counting it first (its worst case, 3 KiB, is asked of the writer).</summary>
    private const int SinglePassChars = 1024;

    /// <summary>Throws as <see cref="GetBytes(string, Span{byte}, string)"/> would when <paramref name="text"/> is not valid UTF-16 (a lone surrogate).</summary>
    /// <exception cref="ArgumentException">The string holds a lone surrogate (ParamName <paramref name="paramName"/>).</exception>
    public static void ThrowIfInvalid(string text, string paramName)
    {
        if (text.AsSpan().ContainsAnyInRange('\uD800', '\uDFFF'))
        {
            _ = StrictByteCount(text, paramName);   // only a string with surrogates can be invalid
        }
    }

    /// <summary>The UTF-8 length of <paramref name="text"/>, refusing a lone surrogate as <see cref="GetBytes(string, Span{byte}, string)"/> does.</summary>
    private static int StrictByteCount(string text, string paramName)
    {
        try
        {
            return Strict.GetByteCount(text);
        }
        catch (EncoderFallbackException e)
        {
            throw InvalidText(e.Index, paramName);
        }
    }

    private static ArgumentException InvalidText(int index, string paramName)
        => new($"The string is not valid UTF-16: a lone surrogate at index {index}. Strings are stored as UTF-8, which cannot represent it (replacing it would make distinct strings one key).", paramName);
}

using System.Buffers;
using System.Text;

namespace CacheKit.OffHeap.Tests;

/// <summary>The strict UTF-8 encoder of string keys and values: its ASCII fast path and the general encoder must
/// agree with <see cref="Encoding.UTF8"/> wherever the text is valid, and name the first lone surrogate otherwise.</summary>
public class StrictUtf8Tests
{
    // Characters of 1, 2, 3 and 4 UTF-8 bytes, placed at every position around the 8- and 16-character vector steps.
    private static readonly string[] Pieces = ["a", "Z", "~", "\u007F", "\u0080", "é", "\u07FF", "\u0800", "€", "\uFFFF", "\uD83D\uDE00"];

    [Test]
    public void ValidTextEncodesAsEncodingUtf8DoesAtEveryLengthAndPosition()
    {
        var random = new Random(1234);
        for (int length = 0; length <= 70; length++)
        {
            for (int trial = 0; trial < 40; trial++)
            {
                var text = new StringBuilder();
                while (text.Length < length)
                {
                    // Mostly ASCII (the fast path), with a non-ASCII piece at a random place now and then.
                    text.Append(random.Next(4) == 0 ? Pieces[random.Next(Pieces.Length)] : ((char)random.Next(0x20, 0x7F)).ToString());
                }
                string s = text.ToString();
                byte[] expected = Encoding.UTF8.GetBytes(s);

                var span = new byte[(s.Length + 1) * 3];
                int written = StrictUtf8.GetBytes(s, span, "value");
                Assert.That(span.AsSpan(0, written).ToArray(), Is.EqualTo(expected), $"span, \"{s}\"");

                var writer = new ArrayBufferWriter<byte>(1);
                StrictUtf8.GetBytes(s, writer, "value");
                Assert.That(writer.WrittenSpan.ToArray(), Is.EqualTo(expected), $"writer, \"{s}\"");
            }
        }
    }

    [Test]
    public void ShortTextFillsADestinationOfExactlyItsLengthAndNothingPastIt()
    {
        // The short-text path writes 8- and 16-byte blocks, overlapping at the end: every length from 0 to 70 (past its
        // 64-character limit), all ASCII (0x00 and 0x7F included) or with one character at each position whose low byte
        // would pass for ASCII if only low bytes were looked at (U+0100, U+7F41) or which is just past it (U+0080).
        var random = new Random(4321);
        foreach (char odd in new[] { '\0', '\u0100', '\u7F41', '\u0080', 'é' })
        {
            for (int length = 0; length <= 70; length++)
            {
                for (int at = odd == '\0' ? -1 : 0; at < length; at++)
                {
                    var chars = new char[length];
                    for (int i = 0; i < length; i++)
                    {
                        chars[i] = (char)random.Next(0, 0x80);
                    }
                    if (at >= 0)
                    {
                        chars[at] = odd;
                    }
                    string s = new(chars);
                    byte[] expected = Encoding.UTF8.GetBytes(s);
                    byte[] buffer = new byte[expected.Length + 16];
                    Array.Fill(buffer, (byte)0xEE);

                    int written = StrictUtf8.GetBytes(s, buffer.AsSpan(0, expected.Length), "key");

                    Assert.That(written, Is.EqualTo(expected.Length), $"length {length}, U+{(int)odd:X4} at {at}");
                    Assert.That(buffer.AsSpan(0, written).ToArray(), Is.EqualTo(expected), $"length {length}, U+{(int)odd:X4} at {at}");
                    Assert.That(buffer.AsSpan(written).ToArray(), Is.All.EqualTo(0xEE), "nothing written past the span");
                }
            }
        }
    }

    [Test]
    public void ALoneSurrogateIsRefusedAtItsIndexWhereverItIs()
    {
        foreach (char lone in new[] { '\uD800', '\uDBFF', '\uDC00', '\uDFFF' })
        {
            for (int index = 0; index < 40; index++)
            {
                string s = new string('k', index) + lone + "tail";
                var e = Assert.Throws<ArgumentException>(() => StrictUtf8.GetBytes(s, new byte[(s.Length + 1) * 3], "key"));
                Assert.That(e!.ParamName, Is.EqualTo("key"));
                Assert.That(e.Message, Does.Contain($"lone surrogate at index {index}."));
                Assert.That(() => StrictUtf8.GetBytes(s, new ArrayBufferWriter<byte>(), "key"),
                    Throws.ArgumentException.With.Message.Contains($"lone surrogate at index {index}."));
            }
        }
        // A high surrogate at the very end, and one followed by another high surrogate.
        Assert.That(() => StrictUtf8.GetBytes("abc\uD83D", new byte[16], "key"), Throws.ArgumentException.With.Message.Contains("index 3."));
        Assert.That(() => StrictUtf8.GetBytes("ab\uD83D\uD83D\uDE00", new byte[32], "key"), Throws.ArgumentException.With.Message.Contains("index 2."));
    }

    [Test]
    public void LongTextIsCountedFirstAndStillRefusesALoneSurrogate()
    {
        // Past 1,024 characters the writer is asked for the exact size, not three bytes a character.
        string valid = new string('x', 3000) + "€" + new string('y', 10);
        var writer = new ArrayBufferWriter<byte>(1);
        StrictUtf8.GetBytes(valid, writer, "value");
        Assert.That(writer.WrittenSpan.ToArray(), Is.EqualTo(Encoding.UTF8.GetBytes(valid)));
        Assert.That(writer.Capacity, Is.LessThan(valid.Length * 2), "asked for the exact size");
        Assert.That(() => StrictUtf8.GetBytes(new string('x', 2000) + "\uDC00", new ArrayBufferWriter<byte>(), "value"),
            Throws.ArgumentException.With.Message.Contains("lone surrogate at index 2000.").And.Property("ParamName").EqualTo("value"));
    }

    [Test]
    public void ADestinationTooShortIsRefusedNotOverrun()
    {
        var destination = new byte[20];
        Assert.That(() => StrictUtf8.GetBytes(new string('a', 10) + "€€€€", destination.AsSpan(0, 12), "key"),
            Throws.ArgumentException.With.Property("ParamName").EqualTo("destination"));
        Assert.That(destination.AsSpan(12).ToArray(), Is.All.Zero, "nothing written past the span it was given");
        Assert.That(() => StrictUtf8.GetBytes(new string('a', 30), destination, "key"),
            Throws.ArgumentException.With.Property("ParamName").EqualTo("destination"));
    }
}

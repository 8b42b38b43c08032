using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;

namespace CacheKit.Simulator;

/// <summary>The trace file formats of ../shared/traces/README.md.</summary>
public enum TraceFormat
{
    /// <summary>Text, one non-negative integer key per line; empty lines and <c>*</c> are skipped.</summary>
    A,
    /// <summary>Binary, 32-bit big-endian signed integer keys.</summary>
    B,
    /// <summary>Text, <c>time key size</c> per line; size in bytes.</summary>
    C,
}

/// <summary>Reads trace files (gzip or plain) into <see cref="Trace"/>s.</summary>
public static class TraceReaders
{
    /// <summary>Parses "A", "B" or "C" (case-insensitive).</summary>
    public static TraceFormat ParseFormat(string text) => text.Trim().ToUpperInvariant() switch
    {
        "A" => TraceFormat.A,
        "B" => TraceFormat.B,
        "C" => TraceFormat.C,
        _ => throw new ArgumentException($"--format must be A, B or C (got '{text}')", nameof(text)),
    };

    /// <summary>A trace's display name: the file name without ".trace", ".gz" and the like.</summary>
    public static string NameOf(string path)
    {
        string name = Path.GetFileName(path);
        foreach (string suffix in new[] { ".gz", ".trace", ".txt", ".bin" })
        {
            if (name.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                name = name[..^suffix.Length];
            }
        }
        return name;
    }

    /// <summary>Reads a whole trace file.</summary>
    public static Trace Read(string path, TraceFormat format, string? name = null)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"trace file not found: {path}", path);
        }
        using Stream stream = OpenMaybeGzip(path);
        return Read(stream, format, name ?? NameOf(path));
    }

    /// <summary>Reads a trace from an already decompressed stream.</summary>
    public static Trace Read(Stream stream, TraceFormat format, string name) => format switch
    {
        TraceFormat.A => ReadA(stream, name),
        TraceFormat.B => ReadB(stream, name),
        TraceFormat.C => ReadC(stream, name),
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "unknown trace format"),
    };

    /// <summary>Opens a file, decompressing it when it starts with the gzip magic bytes.</summary>
    public static Stream OpenMaybeGzip(string path)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        int b0 = file.ReadByte(), b1 = file.ReadByte();
        file.Position = 0;
        return b0 == 0x1F && b1 == 0x8B ? new BufferedStream(new GZipStream(file, CompressionMode.Decompress), 1 << 16) : file;
    }

    private static Trace ReadA(Stream stream, string name)
    {
        var builder = new Trace.Builder(name, sized: false, 1 << 16);
        using var reader = new StreamReader(stream);
        int lineNo = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            ReadOnlySpan<char> t = line.AsSpan().Trim();
            if (t.IsEmpty || t is "*")
            {
                continue;
            }
            if (!long.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out long key) || key < 0)
            {
                throw new InvalidDataException($"{name}: line {lineNo} is not a non-negative integer key: '{line}'");
            }
            builder.Add(key);
        }
        return builder.Build();
    }

    private static Trace ReadB(Stream stream, string name)
    {
        var builder = new Trace.Builder(name, sized: false, 1 << 16);
        Span<byte> buf = stackalloc byte[4];
        long offset = 0;
        while (true)
        {
            int got = stream.ReadAtLeast(buf, 4, throwOnEndOfStream: false);
            if (got == 0)
            {
                break;
            }
            if (got < 4)
            {
                throw new InvalidDataException($"{name}: {got} trailing bytes at offset {offset}: format B needs 4 bytes per key");
            }
            builder.Add(BinaryPrimitives.ReadInt32BigEndian(buf));
            offset += 4;
        }
        return builder.Build();
    }

    private static Trace ReadC(Stream stream, string name)
    {
        var builder = new Trace.Builder(name, sized: true, 1 << 16);
        using var reader = new StreamReader(stream);
        int lineNo = 0;
        Span<Range> parts = stackalloc Range[4];
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            ReadOnlySpan<char> t = line.AsSpan().Trim();
            if (t.IsEmpty)
            {
                continue;
            }
            int n = t.SplitAny(parts, " \t", StringSplitOptions.RemoveEmptyEntries);
            if (n != 3)
            {
                throw new InvalidDataException($"{name}: line {lineNo} must be 'time key size': '{line}'");
            }
            ReadOnlySpan<char> keyText = t[parts[1]];
            long key = IsCanonicalInteger(keyText, out long k) ? k : Hashing.OfString(keyText.ToString());
            if (!long.TryParse(t[parts[2]], NumberStyles.Integer, CultureInfo.InvariantCulture, out long size) || size < 1 || size > int.MaxValue)
            {
                throw new InvalidDataException($"{name}: line {lineNo} has a size outside [1, {int.MaxValue}]: '{line}'");
            }
            builder.Add(key, (int)size);
        }
        return builder.Build();
    }

    /// <summary>
    /// Whether a format C key is an integer written the one way <see cref="long.ToString()"/> writes it. Keys
    /// are opaque tokens: "007", "+7" and "7" are three keys, so only the canonical form takes the numeric
    /// path (a plain TryParse made them one key; found by review, no shared trace has such keys).
    /// </summary>
    private static bool IsCanonicalInteger(ReadOnlySpan<char> text, out long value)
    {
        Span<char> canonical = stackalloc char[20];
        return long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value)
            && value.TryFormat(canonical, out int written, default, CultureInfo.InvariantCulture)
            && canonical[..written].SequenceEqual(text);
    }

    /// <summary>
    /// Concatenates traces. Keys of different source files never collide (each file gets its own key
    /// space); repeating the same file (same path) reuses its keys, so "sprite, loop x5, sprite" sees
    /// the second sprite as a return of the first.
    /// </summary>
    /// <param name="spec">Comma-separated paths, each optionally followed by <c>*COUNT</c>.</param>
    /// <param name="format">Format of every file.</param>
    public static Trace Concat(string spec, TraceFormat format)
    {
        var parts = new List<(string Path, int Times)>();
        foreach (string item in spec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int star = item.LastIndexOf('*');
            if (star > 0 && int.TryParse(item.AsSpan(star + 1), NumberStyles.Integer, CultureInfo.InvariantCulture, out int times))
            {
                if (times < 1)
                {
                    throw new ArgumentOutOfRangeException(nameof(spec), times, $"repeat count in '{item}' must be at least 1");
                }
                parts.Add((item[..star], times));
            }
            else
            {
                parts.Add((item, 1));
            }
        }
        if (parts.Count == 0)
        {
            throw new ArgumentException("--concat needs at least one path", nameof(spec));
        }
        var loaded = new Dictionary<string, (Trace Trace, int FileIndex)>(StringComparer.Ordinal);
        var nameParts = new List<string>();
        bool sized = format == TraceFormat.C;
        var builder = new Trace.Builder("concat", sized, 1 << 16);
        foreach ((string path, int times) in parts)
        {
            string full = Path.GetFullPath(path);
            if (!loaded.TryGetValue(full, out var entry))
            {
                entry = (Read(full, format), loaded.Count);
                loaded.Add(full, entry);
            }
            nameParts.Add(times == 1 ? entry.Trace.Name : $"{entry.Trace.Name}x{times}");
            for (int r = 0; r < times; r++)
            {
                for (int i = 0; i < entry.Trace.Length; i++)
                {
                    // Own key space per file: (file index, dense id) is unique, so the pair is the key.
                    long key = ((long)entry.FileIndex << 32) | (uint)entry.Trace.KeyIds[i];
                    builder.Add(key, entry.Trace.Sizes?[i] ?? 1);
                }
            }
        }
        Trace t = builder.Build();
        return new Trace(string.Join("+", nameParts), t.KeyIds, t.Keys, t.Sizes);
    }
}

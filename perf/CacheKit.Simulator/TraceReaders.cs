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
        Trace trace;
        try
        {
            using Stream stream = OpenMaybeGzip(path);
            trace = Read(stream, format, name ?? NameOf(path));
        }
        catch (InvalidDataException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal) && !e.Message.StartsWith(name ?? NameOf(path), StringComparison.Ordinal))
        {
            // The decompressor's own refusals ("unsupported compression method", ...) do not name the file.
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
        if (trace.Length == 0)
        {
            throw new InvalidDataException($"{path}: the trace holds no requests (empty, or only '*' lines)");
        }
        return trace;
    }

    /// <summary>Reads a trace from an already decompressed stream.</summary>
    public static Trace Read(Stream stream, TraceFormat format, string name) => format switch
    {
        TraceFormat.A => ReadA(stream, name),
        TraceFormat.B => ReadB(stream, name),
        TraceFormat.C => ReadC(stream, name),
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "unknown trace format"),
    };

    /// <summary>Opens a file, decompressing it when it starts with the gzip magic bytes (and then checking, at its end,
    /// that the data was whole: <see cref="CheckedGzipStream"/>).</summary>
    public static Stream OpenMaybeGzip(string path)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        int b0 = file.ReadByte(), b1 = file.ReadByte();
        file.Position = 0;
        return b0 == 0x1F && b1 == 0x8B ? new BufferedStream(new CheckedGzipStream(file, path), 1 << 16) : file;
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

/// <summary>
/// A gzip file's decompressed bytes, checked against the file's trailer when they end. <see cref="GZipStream"/> ends a
/// truncated file quietly, as if it were whole: a cut-off trace replayed as a shorter one (its last key cut short too)
/// and printed a table (found by review, 2026-11-30). At the end of the data the CRC-32 and length of what was read
/// must equal the trailer's (the file's last 8 bytes); a file of several gzip members (concatenated files) is refused
/// too, since only its last member's trailer is there to check against.
/// </summary>
internal sealed class CheckedGzipStream(FileStream file, string path) : Stream
{
    private readonly GZipStream _inner = new(file, CompressionMode.Decompress);
    private readonly System.IO.Hashing.Crc32 _crc = new();
    private long _length;
    private bool _checked;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int got = _inner.Read(buffer);
        if (got > 0)
        {
            _crc.Append(buffer[..got]);
            _length += got;
        }
        else if (!buffer.IsEmpty && !_checked)
        {
            _checked = true;
            CheckTrailer();
        }
        return got;
    }

    private void CheckTrailer()
    {
        Span<byte> trailer = stackalloc byte[8];
        long size = file.Length;
        bool whole = size >= 18;   // the smallest member: 10 header bytes, an empty deflate block's 2, 8 trailer bytes
        uint crc = 0, isize = 0;
        if (whole)
        {
            using var again = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
            again.Position = size - 8;
            again.ReadExactly(trailer);
            crc = BinaryPrimitives.ReadUInt32LittleEndian(trailer);
            isize = BinaryPrimitives.ReadUInt32LittleEndian(trailer[4..]);
            whole = crc == _crc.GetCurrentHashAsUInt32() && isize == (uint)_length;
        }
        if (!whole)
        {
            throw new InvalidDataException(
                $"{path}: the gzip data is cut short or corrupt: {_length:N0} bytes were decompressed with CRC-32 {_crc.GetCurrentHashAsUInt32():x8}, " +
                $"the file's trailer records {isize:N0} bytes with CRC-32 {crc:x8} (a file of several gzip members is not read either: decompress it, or recompress it as one)");
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }
        base.Dispose(disposing);
    }
}

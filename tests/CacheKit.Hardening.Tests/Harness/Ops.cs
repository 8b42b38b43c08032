using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace CacheKit.Hardening.Harness;

/// <summary>One operation of a differential or fuzz sequence.</summary>
internal enum OpKind : byte
{
    Get,
    GetTooSmall,
    Set,
    SetTtl,
    Remove,
    Contains,
    Advance,
    Clear,
    GetOrAdd,
    SetMany,
    GetMany,
    Touch,
    TryAdd,
    TryUpdate,
    /// <summary>TryUpdate with a comparison value: the key's stored value when <see cref="Op.Arg"/> is even, another
    /// value when odd; time to live <c>Arg / 2</c> seconds (0: the default).</summary>
    TryUpdateIfEquals,
    /// <summary>RemoveExpired(): every entry past its time to live leaves, as an expiration (not decoded from fuzzer bytes).</summary>
    RemoveExpired,
}

/// <summary>
/// An operation on key <see cref="Key"/> (an id; its bytes come from <see cref="Keys.Of"/>). <see cref="Length"/> is
/// the value length for writes, <see cref="Arg"/> the TTL or clock step in seconds, or the batch size.
/// </summary>
internal readonly record struct Op(OpKind Kind, int Key, int Length, int Arg)
{
    /// <summary>The removes a <see cref="OpKind.Remove"/> makes, by <see cref="Arg"/> modulo their count.</summary>
    public enum RemoveKind
    {
        Plain,
        IntoSpan,
        IntoBufferWriter,
        /// <summary>Into a span one byte shorter than the value: nothing removed (unless the value is empty).</summary>
        IntoTooSmallSpan,
        IfItsValue,
        /// <summary>RemoveIfEquals with a value differing in its last byte (or one byte for an empty value): nothing removed.</summary>
        IfOtherValue,
    }

    /// <summary>How many <see cref="RemoveKind"/>s there are.</summary>
    public const int RemoveKinds = 6;

    /// <summary>Which remove an <see cref="OpKind.Remove"/> makes.</summary>
    public RemoveKind RemoveVariant => (RemoveKind)(Arg % RemoveKinds);

    public override string ToString() => Kind switch
    {
        OpKind.Remove => RemoveVariant == RemoveKind.Plain ? $"Remove(k{Key})" : $"Remove(k{Key}, {RemoveVariant})",
        OpKind.Set or OpKind.GetOrAdd => $"{Kind}(k{Key}, {Length}B)",
        OpKind.TryAdd or OpKind.TryUpdate => Arg == 0 ? $"{Kind}(k{Key}, {Length}B)" : $"{Kind}(k{Key}, {Length}B, {Arg}s)",
        OpKind.TryUpdateIfEquals => $"{Kind}(k{Key}, {Length}B, {(Arg % 2 == 0 ? "its value" : "another value")}{(Arg / 2 == 0 ? "" : $", {Arg / 2}s")})",
        OpKind.SetTtl => $"{Kind}(k{Key}, {Length}B, {Arg}s)",
        OpKind.Touch => $"{Kind}(k{Key}, {(Arg == 0 ? "infinite" : Arg + "s")})",
        OpKind.Advance => $"{Kind}({Arg}s)",
        OpKind.Clear => "Clear()",
        OpKind.RemoveExpired => "RemoveExpired()",
        OpKind.SetMany or OpKind.GetMany => $"{Kind}(k{Key}.., n={Arg}, {Length}B)",
        _ => $"{Kind}(k{Key})",
    };

    /// <summary>C#-ish list, pasteable into a regression test.</summary>
    public static string Format(IReadOnlyList<Op> ops)
    {
        var sb = new StringBuilder();
        foreach (Op op in ops)
        {
            sb.Append(CultureInfo.InvariantCulture, $"new Op(OpKind.{op.Kind}, {op.Key}, {op.Length}, {op.Arg}), ");
        }
        return sb.ToString();
    }
}

/// <summary>Key and value bytes of the harnesses: deterministic, self-describing.</summary>
internal static class Keys
{
    /// <summary>
    /// Key id 0 is the empty key; any other id is its 4 little-endian bytes followed by 0..maxPad bytes of padding
    /// chosen by the id (so key lengths are mixed and the listener can recover the id).
    /// </summary>
    public static byte[] Of(int id, int maxPad)
    {
        if (id == 0)
        {
            return [];
        }
        int pad = maxPad == 0 ? 0 : (int)((uint)(id * 2654435761u) >> 7) % (maxPad + 1);
        var key = new byte[4 + pad];
        BinaryPrimitives.WriteInt32LittleEndian(key, id);
        key.AsSpan(4).Fill((byte)('a' + (id % 26)));
        return key;
    }

    public static int IdOf(ReadOnlySpan<byte> key) => key.Length == 0 ? 0 : BinaryPrimitives.ReadInt32LittleEndian(key);

    /// <summary>A value whose bytes depend on (key, version): any mix-up of two values shows.</summary>
    public static byte[] Value(int key, int version, int length)
    {
        var v = new byte[length];
        ulong x = ((ulong)(uint)key << 32) ^ (uint)version ^ 0x9E3779B97F4A7C15UL;
        for (int i = 0; i < length; i++)
        {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v[i] = (byte)x;
        }
        return v;
    }
}

/// <summary>A TimeProvider whose timestamp only moves when told (ticks of 100 ns); allocation-free.</summary>
internal sealed class TestClock : TimeProvider
{
    private long _now = 1;

    public override long GetTimestamp() => Volatile.Read(ref _now);

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public void Advance(TimeSpan by) => Interlocked.Add(ref _now, by.Ticks);
}

/// <summary>Random operation lists for a configuration (seeded), and lists decoded from fuzzer bytes.</summary>
internal static class OpGenerator
{
    public static List<Op> Generate(DiffConfig config, int seed, int count)
    {
        var rng = new Random(seed);
        var ops = new List<Op>(count);
        for (int i = 0; i < count; i++)
        {
            int phase = i * 3 / Math.Max(1, count);   // the size mix shifts: small, then large, then mixed
            ops.Add(Next(rng, config, phase));
        }
        return ops;
    }

    private static Op Next(Random rng, DiffConfig c, int phase)
    {
        // Hot keys: a quarter of the operations go to 1/16 of the key space.
        int key = rng.Next(4) == 0 ? rng.Next(Math.Max(1, c.KeySpace / 16)) : rng.Next(c.KeySpace);
        int roll = rng.Next(1000);
        return roll switch
        {
            < 310 => new Op(OpKind.Get, key, 0, 0),
            < 330 => new Op(OpKind.Touch, key, 0, rng.Next(5) == 0 ? 0 : 1 + rng.Next(120)),   // 0: infinite
            < 370 => new Op(OpKind.GetTooSmall, key, 0, 0),
            < 570 => new Op(OpKind.Set, key, Length(rng, c, phase), 0),
            < 590 => new Op(OpKind.TryUpdateIfEquals, key, Length(rng, c, phase), rng.Next(2) + 2 * (rng.Next(2) == 0 ? 0 : 1 + rng.Next(120))),
            < 610 => new Op(OpKind.TryAdd, key, Length(rng, c, phase), rng.Next(2) == 0 ? 0 : 1 + rng.Next(120)),   // 0: no TTL
            < 630 => new Op(OpKind.TryUpdate, key, Length(rng, c, phase), rng.Next(2) == 0 ? 0 : 1 + rng.Next(120)),
            < 730 => new Op(OpKind.SetTtl, key, Length(rng, c, phase), 1 + rng.Next(120)),
            < 790 => new Op(OpKind.Remove, key, 0, (roll - 730) % Op.RemoveKinds),   // the variant from the roll: no extra draw, so each seed's operations stay as they were
            < 830 => new Op(OpKind.Contains, key, 0, 0),
            < 870 => new Op(OpKind.Advance, 0, 0, rng.Next(4) == 0 ? 0 : rng.Next(30)),
            < 880 => new Op(OpKind.RemoveExpired, 0, 0, 0),
            < 882 => new Op(OpKind.Clear, 0, 0, 0),
            < 930 => new Op(OpKind.GetOrAdd, key, Length(rng, c, phase), 0),
            < 965 => new Op(OpKind.SetMany, key, Length(rng, c, 0), 1 + rng.Next(8)),
            _ => new Op(OpKind.GetMany, key, 0, 1 + rng.Next(8)),
        };
    }

    private static int Length(Random rng, DiffConfig c, int phase)
    {
        int kind = phase switch { 0 => rng.Next(3), 1 => 2 + rng.Next(3), _ => rng.Next(5) };
        int length = kind switch
        {
            0 => rng.Next(9),                       // 0..8 bytes (0 = empty value)
            1 => 9 + rng.Next(120),                 // small
            2 => 129 + rng.Next(2000),              // medium
            3 => 2129 + rng.Next(14000),            // large
            _ => rng.Next(c.MaxValue + 1),          // anything up to the largest
        };
        return Math.Min(length, c.MaxValue);
    }

    /// <summary>Decodes fuzzer bytes into operations: 4 bytes per operation (kind, key, length, argument).</summary>
    public static List<Op> Decode(ReadOnlySpan<byte> data, DiffConfig c)
    {
        var ops = new List<Op>(data.Length / 4);
        for (int i = 0; i + 4 <= data.Length; i += 4)
        {
            // Touch, TryAdd, TryUpdate and TryUpdateIfEquals came after the corpus: only the top kind bytes decode to them, so older
            // inputs keep most of their meaning.
            var kind = data[i] switch { >= 253 => OpKind.Touch, 252 => OpKind.TryAdd, 251 => OpKind.TryUpdate, 250 => OpKind.TryUpdateIfEquals, _ => (OpKind)(data[i] % 11) };
            int key = data[i + 1] % Math.Max(1, c.KeySpace);
            // Length byte on a log-ish scale so tiny inputs reach large values: 0..127 linear, then powers.
            int b = data[i + 2];
            int length = b < 128 ? b : Math.Min(c.MaxValue, (int)Math.Pow(2, 7 + ((b - 128) / 8.0)));
            int arg = data[i + 3];
            ops.Add(kind switch
            {
                OpKind.SetTtl => new Op(kind, key, Math.Min(length, c.MaxValue), 1 + (arg % 60)),
                OpKind.Touch => new Op(kind, key, 0, arg % 61),
                OpKind.TryAdd or OpKind.TryUpdate => new Op(kind, key, Math.Min(length, c.MaxValue), arg % 61),
                OpKind.TryUpdateIfEquals => new Op(kind, key, Math.Min(length, c.MaxValue), arg % 122),
                OpKind.Advance => new Op(kind, 0, 0, arg % 40),
                OpKind.SetMany or OpKind.GetMany => new Op(kind, key, Math.Min(length, c.MaxValue), 1 + (arg % 8)),
                OpKind.Clear => new Op(kind, 0, 0, 0),
                OpKind.Remove => new Op(kind, key, 0, arg % Op.RemoveKinds),
                _ => new Op(kind, key, Math.Min(length, c.MaxValue), 0),
            });
        }
        return ops;
    }
}

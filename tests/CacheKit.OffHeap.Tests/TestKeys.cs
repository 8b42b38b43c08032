using System.Buffers.Binary;
using System.Text;

namespace CacheKit.OffHeap.Tests;

/// <summary>Deterministic keys and values for model tests.</summary>
internal static class TestKeys
{
    /// <summary>Key bytes for id: "key:" + id, padded with '#' to a length chosen by the id (4..40).</summary>
    public static byte[] Key(int id)
    {
        string s = "key:" + id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        int pad = (int)((uint)(id * 2654435761u) % 24);
        return Encoding.ASCII.GetBytes(s + new string('#', pad));
    }

    public static int IdOf(ReadOnlySpan<byte> key)
    {
        string s = Encoding.ASCII.GetString(key).TrimEnd('#');
        return int.Parse(s.AsSpan(4), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>A value of the given length whose bytes depend on (id, version).</summary>
    public static byte[] Value(int id, int version, int length)
    {
        var v = new byte[length];
        var rng = new Random(HashCode.Combine(id, version));
        rng.NextBytes(v);
        if (length >= 8)
        {
            BinaryPrimitives.WriteInt32LittleEndian(v, id);
            BinaryPrimitives.WriteInt32LittleEndian(v.AsSpan(4), version);
        }
        return v;
    }
}

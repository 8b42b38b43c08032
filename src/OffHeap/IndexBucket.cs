using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using CacheKit.Slab;

namespace CacheKit.OffHeap;

/// <summary>
/// One bucket of a shard's index: exactly one 64-byte cache line in native memory (from
/// <see cref="SlabPool.TryAllocateBlock"/>, so it counts in the budget).
/// </summary>
/// <remarks>
/// <code>
///  byte 0        4            8                                                   64
///  [ Version u32 ][ Overflow u32 ][ slot 0 ][ slot 1 ] ... [ slot 6 ]  (7 x u64)
/// </code>
/// <para><b>Version</b>: a sequence lock. Odd while a writer (holding the shard lock) changes a slot
/// of this bucket; each change adds 2. Readers validate against it. The overflow count is not under the
/// version: it is raised before a later bucket's publication and lowered after a removal, so a stale count
/// only sends a reader further or stops it before an entry not yet published (docs/engine.md).</para>
/// <para><b>Overflow</b>: number of entries stored in a later bucket of their probe window whose
/// window passes through this bucket (they found it full). A lookup stops at the first bucket whose
/// overflow is 0, so misses usually read one cache line; at most <see cref="Shard.ProbeBuckets"/>.</para>
/// <para><b>Slot word</b> (see <see cref="SlotWord"/>): 0 = empty, else
/// <c>[ tag: 16 bits ][ SlabHandle.Value: 48 bits ]</c>.</para>
/// </remarks>
[StructLayout(LayoutKind.Sequential, Size = 64)]
internal unsafe struct IndexBucket
{
    /// <summary>Slots per bucket: (64 - 8) / 8.</summary>
    public const int SlotCount = 7;

    /// <summary>Sequence lock (odd = being written). Written only under the shard lock.</summary>
    public uint Version;

    /// <summary>Entries whose probe window passes over this bucket and are stored further on.</summary>
    public uint Overflow;

    /// <summary>The slots (<see cref="SlotWord"/>); 0 = empty.</summary>
    public fixed ulong Slots[SlotCount];

    /// <summary>
    /// Bit s (0..6) set when slot s's tag equals <paramref name="tag"/> (<see cref="SlotWord.TagOf"/> of a
    /// hash). An empty slot matches tag 0, and a slot changing during the scan may be reported either
    /// way: the caller re-reads each candidate word atomically and validates the bucket's version.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint MatchTags(IndexBucket* bucket, ulong tag)
    {
        Debug.Assert(tag <= 0xFFFF, "a tag has 16 bits");
        Debug.Assert(((nuint)bucket & 63) == 0, "buckets are 64-byte aligned (index blocks come from the pool, 64-byte aligned)");
        if (Vector256.IsHardwareAccelerated)
        {
            // Two 32-byte loads cover the line: [Version|Overflow, slot 0, slot 1, slot 2] and [slot 3 .. slot 6].
            // SAFETY: the caller passes a bucket inside the live index block; a bucket is 64 bytes.
            Vector256<ulong> low = Vector256.Load((ulong*)bucket);
            // SAFETY: as above; elements 4..7 of the 8-ulong line.
            Vector256<ulong> high = Vector256.Load((ulong*)bucket + 4);
            Vector256<ulong> wanted = Vector256.Create(tag);
            uint lowBits = Vector256.Equals(Vector256.ShiftRightLogical(low, SlotWord.TagShift), wanted).ExtractMostSignificantBits();
            uint highBits = Vector256.Equals(Vector256.ShiftRightLogical(high, SlotWord.TagShift), wanted).ExtractMostSignificantBits();
            return (lowBits >> 1) | (highBits << 3);   // drop the header lane; slots 3..6 are bits 3..6
        }

        return MatchTagsScalar(bucket, tag);
    }

    /// <summary>The portable form of <see cref="MatchTags"/> (used where 256-bit vectors are not accelerated; tests compare the two).</summary>
    internal static uint MatchTagsScalar(IndexBucket* bucket, ulong tag)
    {
        uint bits = 0;
        for (int s = 0; s < SlotCount; s++)
        {
            // SAFETY: the caller passes a bucket inside the live index block; s < SlotCount.
            bits |= (bucket->Slots[s] >> SlotWord.TagShift) == tag ? 1u << s : 0;
        }
        return bits;
    }
}

/// <summary>Bit layout of an index slot: <c>[ tag (16) | SlabHandle.Value (48) ]</c>; 0 = empty.</summary>
internal static class SlotWord
{
    /// <summary>Bits of the tag.</summary>
    public const int TagBits = 16;

    /// <summary>Position of the tag.</summary>
    public const int TagShift = SlabHandle.Bits;

    /// <summary>Mask of the handle field.</summary>
    public const ulong HandleMask = (1UL << SlabHandle.Bits) - 1;

    /// <summary>Position in the key hash of the 16 tag bits (bits 40..55: disjoint from the shard bits 56..63 and the bucket bits 0..31).</summary>
    public const int HashTagShift = 40;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong TagOf(ulong hash) => (hash >> HashTagShift) & 0xFFFF;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Make(ulong hash, SlabHandle handle) => (TagOf(hash) << TagShift) | handle.Value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TagMatches(ulong word, ulong hash) => (word >> TagShift) == TagOf(hash);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SlabHandle Handle(ulong word) => SlabHandle.FromValueUnchecked(word & HandleMask);   // masked: always fits
}

/// <summary>
/// The header at the start of every entry's slab chunk, followed by the key bytes and then the value
/// bytes: <c>[ header 8 or 16 ][ key ][ value ]</c>, so an entry needs <c>header + key + value</c> bytes
/// rounded up to its size class. The header is 8 bytes in a shard that has never stored an expiry, and 16
/// (with the expiry field, 0 for "never") in every entry a shard stores once it has: a 16-byte key and
/// 100-byte value then fit the 128-byte class rather than 144, and in a shard that uses expiries, entries with
/// and without one still share their size class (an expired entry's chunk then serves a new entry without one).
/// </summary>
/// <remarks>
/// <code>
///  byte 0               4                6                   7           8                         16
///  [ ValueLength u32 ][ KeyLength u16 ][ ProbeDistance u8 ][ Flags u8 ][ ExpiresAt i64, if HasExpiry ]
/// </code>
/// <para><b>Flags</b>: bit 0 (<see cref="HasExpiryFlag"/>) says the expiry field follows; the other bits are 0.</para>
/// <para><b>ExpiresAt</b>: <see cref="TimeProvider.GetTimestamp"/> value at which the entry expires; 0 = never
/// (an entry with an expiry always has the field; this struct, the decoded view, holds 0 without one).</para>
/// <para><b>ProbeDistance</b>: how many buckets after its home bucket the entry's slot is (0..7), so
/// removal can fix the overflow counts without rehashing the key.</para>
/// <para>No hash is stored: the slot's 16-bit tag filters, the full key compare decides. Page reclaim,
/// which starts from a chunk, rehashes the key.</para>
/// </remarks>
internal struct EntryHeader
{
    /// <summary>Bytes of the header every entry has.</summary>
    public const int BaseSize = 8;

    /// <summary>Bytes of the largest header (with an expiry): the bound the engine's size limits assume.</summary>
    public const int MaxSize = BaseSize + sizeof(long);

    /// <summary>Flag bit: the 8-byte expiry field follows the base header.</summary>
    public const byte HasExpiryFlag = 1;

    /// <summary>Length of the value in bytes.</summary>
    public uint ValueLength;

    /// <summary>Length of the key in bytes.</summary>
    public ushort KeyLength;

    /// <summary>Buckets between the entry's home bucket and the bucket holding its slot.</summary>
    public byte ProbeDistance;

    /// <summary><see cref="HasExpiryFlag"/> or 0.</summary>
    public byte Flags;

    /// <summary>Expiry timestamp (TimeProvider ticks), 0 = never.</summary>
    public long ExpiresAt;

    /// <summary>Bytes of this entry's header: where its key starts.</summary>
    public readonly int Size => (Flags & HasExpiryFlag) != 0 ? MaxSize : BaseSize;

    /// <summary>Bytes of the whole entry: header, key and value.</summary>
    public readonly long TotalBytes => (long)Size + KeyLength + ValueLength;

    /// <summary>Header bytes of an entry with or without the expiry field.</summary>
    public static int SizeFor(bool withExpiryField) => withExpiryField ? MaxSize : BaseSize;

    /// <summary>
    /// Writes a new entry's header; the caller guarantees <see cref="SizeFor"/>(<paramref name="withExpiryField"/>)
    /// writable bytes at <paramref name="entry"/>, and <paramref name="withExpiryField"/> whenever <paramref name="expiresAt"/> is not 0.
    /// </summary>
    public static unsafe void Write(byte* entry, uint valueLength, ushort keyLength, byte probeDistance, long expiresAt, bool withExpiryField)
    {
        Debug.Assert(withExpiryField || expiresAt == 0, "an expiry needs the field");
        // SAFETY: the caller guarantees SizeFor(withExpiryField) writable bytes: 8, plus 8 with the field.
        Unsafe.WriteUnaligned(entry, new Base
        {
            ValueLength = valueLength,
            KeyLength = keyLength,
            ProbeDistance = probeDistance,
            Flags = withExpiryField ? HasExpiryFlag : (byte)0,
        });
        if (withExpiryField)
        {
            // SAFETY: as above, bytes 8..15 are the entry's.
            Unsafe.WriteUnaligned(entry + BaseSize, expiresAt);
        }
    }

    /// <summary>
    /// Overwrites the expiry field of an entry written with it (<see cref="HasExpiryFlag"/>); the caller holds the
    /// lock and has made the bucket's version odd (Shard.WriteExpiryInPlaceUnsynchronized; the other in-place write is a same-class update).
    /// </summary>
    public static unsafe void WriteExpiry(byte* entry, long expiresAt)
    {
        Debug.Assert((Unsafe.ReadUnaligned<Base>(entry).Flags & HasExpiryFlag) != 0, "only an entry with the field has room for an expiry");
        // SAFETY: the entry has the field (asserted above), so bytes 8..15 of its chunk are its expiry.
        Unsafe.WriteUnaligned(entry + BaseSize, expiresAt);
    }

    /// <summary>Reads the header of a published entry under the lock (consistent: its header, key and value fit its chunk).</summary>
    public static unsafe EntryHeader Read(byte* entry)
    {
        // SAFETY: a published entry's chunk holds at least its header (Decode reads the expiry only when its flag says it is there).
        return Decode(entry, Unsafe.ReadUnaligned<Base>(entry));
    }

    /// <summary>
    /// The lock-free reader's form: decodes the header at <paramref name="entry"/>, which may be stale or torn
    /// (the caller validates the bucket's version afterwards), reading only inside the <paramref name="available"/>
    /// bytes to the page's end. False when the header, key and value would not fit them (only a torn read).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe bool TryReadBounded(byte* entry, int available, out EntryHeader header)
    {
        header = default;
        if (available < BaseSize)
        {
            return false;
        }
        // SAFETY: available >= 8 bytes at entry (checked above).
        Base b = Unsafe.ReadUnaligned<Base>(entry);
        int size = (b.Flags & HasExpiryFlag) != 0 ? MaxSize : BaseSize;
        if ((long)size + b.KeyLength + b.ValueLength > available)
        {
            return false;
        }
        // SAFETY: size (16 when the flag is set) <= available, checked above.
        header = Decode(entry, b);
        return true;
    }

    /// <summary>The decoded view of base <paramref name="b"/> read at <paramref name="entry"/>; the caller guarantees the expiry field is readable when the flag is set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe EntryHeader Decode(byte* entry, Base b) => new()
    {
        ValueLength = b.ValueLength,
        KeyLength = b.KeyLength,
        ProbeDistance = b.ProbeDistance,
        Flags = b.Flags,
        // SAFETY: read only with the flag set, when the caller guarantees bytes 8..15 are the entry's.
        ExpiresAt = (b.Flags & HasExpiryFlag) != 0 ? Unsafe.ReadUnaligned<long>(entry + BaseSize) : 0,
    };

    /// <summary>The 8 bytes every entry starts with (the native layout).</summary>
    [StructLayout(LayoutKind.Sequential, Size = BaseSize)]
    internal struct Base
    {
        public uint ValueLength;
        public ushort KeyLength;
        public byte ProbeDistance;
        public byte Flags;
    }
}

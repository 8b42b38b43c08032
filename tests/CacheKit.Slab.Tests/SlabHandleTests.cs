using System.Runtime.CompilerServices;
using CacheKit.Slab;

namespace CacheKit.Slab.Tests;

public class SlabHandleTests
{
    [Test]
    public void Layout_constants_describe_48_bits_page_above_offset()
    {
        Assert.That(Unsafe.SizeOf<SlabHandle>(), Is.EqualTo(sizeof(ulong)));
        Assert.That(SlabHandle.OffsetShift, Is.EqualTo(0));
        Assert.That(SlabHandle.PageShift, Is.EqualTo(SlabHandle.OffsetBits));
        Assert.That(SlabHandle.OffsetBits + SlabHandle.PageBits, Is.EqualTo(SlabHandle.Bits));
        Assert.That(SlabHandle.Bits, Is.EqualTo(48));
        // The offset field (in 8-byte units) covers the largest page size exactly.
        Assert.That((SlabHandle.OffsetMask + 1) << SlabHandle.OffsetGranularityShift, Is.EqualTo((ulong)SlabOptions.MaxPageSize));
        Assert.That(SlabHandle.MaxPageId, Is.EqualTo((int)SlabHandle.PageMask - 1));
    }

    [TestCase(0, 0)]
    [TestCase(0, 8)]
    [TestCase(12345, 1 << 20)]
    [TestCase(SlabHandle.MaxPageId, SlabOptions.MaxPageSize - 8)]
    public void Create_round_trips_and_is_never_zero(int page, int offset)
    {
        SlabHandle h = SlabHandle.Create(page, offset);
        Assert.That(h.IsNone, Is.False);
        Assert.That(h.Value, Is.Not.Zero);
        Assert.That(h.Value >> SlabHandle.Bits, Is.Zero);
        Assert.That(h.PageId, Is.EqualTo(page));
        Assert.That(h.ByteOffset, Is.EqualTo(offset));
        Assert.That((h.Value >> SlabHandle.PageShift) & SlabHandle.PageMask, Is.EqualTo((ulong)page + 1));
        Assert.That((h.Value >> SlabHandle.OffsetShift) & SlabHandle.OffsetMask, Is.EqualTo((ulong)offset >> 3));
        Assert.That(SlabHandle.FromValue(h.Value), Is.EqualTo(h));
    }

    [Test]
    public void Default_is_none_and_FromValue_rejects_bits_above_48()
    {
        Assert.That(default(SlabHandle).IsNone, Is.True);
        Assert.That(SlabHandle.FromValue(0).IsNone, Is.True);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => SlabHandle.FromValue(1UL << 48));
        Assert.That(ex!.ParamName, Is.EqualTo("value"));
        Assert.That(ex.Message, Does.Contain("48"));
    }
}

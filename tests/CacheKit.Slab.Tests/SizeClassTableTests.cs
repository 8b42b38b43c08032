using CacheKit.Slab;

namespace CacheKit.Slab.Tests;

public class SizeClassTableTests
{
    [TestCase(1 << 16)]
    [TestCase(1 << 20)]
    [TestCase(1 << 26)]
    public void Default_classes_are_ascending_multiples_of_8_up_to_the_page(int pageSize)
    {
        SizeClassTable t = SizeClassTable.CreateDefault(pageSize);
        Assert.That(t.MaxChunkSize, Is.EqualTo(pageSize));
        Assert.That(t.MinChunkSize, Is.EqualTo(16));
        for (int c = 0; c < t.Count; c++)
        {
            Assert.That(t[c] % 8, Is.Zero, $"class {c}");
            if (c > 0)
            {
                Assert.That(t[c], Is.GreaterThan(t[c - 1]), $"class {c}");
            }

            // Fine steps: below PageSize / 8 no chunk exceeds the previous class by more than 12.5% (or 8 bytes).
            if (c > 0 && t[c] <= pageSize / 8)
            {
                Assert.That(t[c] - t[c - 1], Is.LessThanOrEqualTo(Math.Max(8, t[c - 1] / 8)), $"class {c}");
            }
        }
    }

    [Test]
    public void ClassOf_is_the_smallest_class_that_fits_for_every_size()
    {
        SizeClassTable t = SizeClassTable.CreateDefault(1 << 16);
        int expected = 0;
        for (int size = 0; size <= t.MaxChunkSize; size++)
        {
            while (t[expected] < size)
            {
                expected++;
            }

            Assert.That(t.ClassOf(size), Is.EqualTo(expected), $"size {size}");
        }

        Assert.That(t.ClassOf(t.MaxChunkSize + 1), Is.EqualTo(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.ClassOf(-1));
    }

    [Test]
    public void ClassOf_matches_a_linear_search_on_a_1_MiB_table()
    {
        SizeClassTable t = SizeClassTable.CreateDefault(1 << 20);
        var rng = new Random(7);
        for (int i = 0; i < 20_000; i++)
        {
            int size = i < 5000 ? i : rng.Next(1, t.MaxChunkSize + 1);
            int linear = 0;
            while (t[linear] < size)
            {
                linear++;
            }

            Assert.That(t.ClassOf(size), Is.EqualTo(linear), $"size {size}");
        }
    }

    [Test]
    public void Create_validates_with_clear_messages()
    {
        const int page = 1 << 16;
        Assert.That(Assert.Throws<ArgumentException>(() => SizeClassTable.Create([], page))!.Message, Does.Contain("1 to"));
        Assert.That(Assert.Throws<ArgumentException>(() => SizeClassTable.Create([16, 20], page))!.Message, Does.Contain("multiple of 8"));
        Assert.That(Assert.Throws<ArgumentException>(() => SizeClassTable.Create([16, 16], page))!.Message, Does.Contain("ascending"));
        Assert.That(Assert.Throws<ArgumentException>(() => SizeClassTable.Create([16, page * 2], page))!.Message, Does.Contain("page size"));
        Assert.That(Assert.Throws<ArgumentException>(() => SizeClassTable.Create([0], page))!.Message, Does.Contain("positive"));
        Assert.Throws<ArgumentOutOfRangeException>(() => SizeClassTable.CreateDefault(3 << 16));
        SizeClassTable ok = SizeClassTable.Create([8, 64, page], page);
        Assert.That(ok.ClassOf(9), Is.EqualTo(1));
        Assert.That(ok.ClassOf(65), Is.EqualTo(2));
    }

    [Test]
    public void Geometric_table_grows_by_the_factor()
    {
        SizeClassTable t = SizeClassTable.CreateGeometric(1 << 20, 16, 1.25);
        Assert.That(t.MaxChunkSize, Is.EqualTo(1 << 20));
        for (int c = 2; c < t.Count - 1; c++)
        {
            Assert.That((double)t[c] / t[c - 1], Is.GreaterThan(1.0).And.LessThanOrEqualTo(1.5), $"class {c}");
        }
    }

    [Test]
    public void Geometric_table_with_a_factor_giving_too_many_classes_is_refused_naming_factor()
    {
        // 1.0000001 grows by 8 bytes a class: 8191 classes for 64 KiB pages. The refusal named "sizes", a parameter
        // CreateGeometric does not have.
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => SizeClassTable.CreateGeometric(1 << 16, 16, 1.0000001));
        Assert.That(ex!.ParamName, Is.EqualTo("factor"));
        Assert.That(ex.Message, Does.Contain(SizeClassTable.MaxClassCount.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Throws<ArgumentOutOfRangeException>(() => SizeClassTable.CreateGeometric(1 << 16, 16, double.NaN));
        Assert.That(SizeClassTable.CreateGeometric(1 << 16, 40_000, 1.0000001).Count, Is.LessThanOrEqualTo(SizeClassTable.MaxClassCount));
    }
}

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

    [TestCase(1 << 16, 2, 15 + 12 + 7)]
    [TestCase(1 << 16, 4, 15 + 24 + 7)]
    [TestCase(1 << 16, 8, 15 + 48 + 7)]
    [TestCase(1 << 20, 4, 15 + 40 + 7)]
    public void Coarser_default_tables_keep_the_small_steps_and_the_page_classes_and_bound_the_waste_by_their_step(int pageSize, int steps, int classes)
    {
        SizeClassTable t = SizeClassTable.CreateDefault(pageSize, steps);
        SizeClassTable finest = SizeClassTable.CreateDefault(pageSize);
        Assert.That(t.Count, Is.EqualTo(classes), "15 classes to 128 B, steps per doubling to PageSize / 8, PageSize / 7..1");
        Assert.That((t.MinChunkSize, t.MaxChunkSize), Is.EqualTo((finest.MinChunkSize, finest.MaxChunkSize)), "the same smallest and largest chunk");
        for (int c = 1; c < t.Count; c++)
        {
            Assert.That(t[c] % 8, Is.Zero, $"class {c}");
            Assert.That(t[c], Is.GreaterThan(t[c - 1]), $"class {c}");
            if (t[c] <= 128)
            {
                Assert.That(t[c], Is.EqualTo(finest[c]), "up to 128 B every table has 8-byte steps");
            }
            else if (t[c] <= pageSize / 8)
            {
                Assert.That(t[c] - t[c - 1], Is.LessThanOrEqualTo(t[c - 1] / steps), $"class {c}: a chunk at most 1/{steps} over the class below");
            }
        }
        Assert.That(SizeClassTable.CreateDefault(pageSize, 8).Count, Is.EqualTo(finest.Count), "8 steps is the default table");
        foreach (int bad in new[] { 0, 1, 3, 16 })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => SizeClassTable.CreateDefault(pageSize, bad));
            Assert.That(e!.ParamName, Is.EqualTo("stepsPerDoubling"));
            Assert.That(e.Message, Does.Contain("2, 4 or 8"));
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
        const int Page = 1 << 20;
        SizeClassTable t = SizeClassTable.CreateGeometric(Page, 16, 1.25);
        Assert.That(t.MaxChunkSize, Is.EqualTo(Page));

        // Known answers (memcached's rule: next = align8(floor(previous * factor)), from align8(minSize)).
        int[] start = [16, 24, 32, 40, 56, 72, 96, 120, 152, 192, 240, 304, 384, 480, 600, 752, 944, 1184, 1480, 1856];
        Assert.That(Enumerable.Range(0, start.Length).Select(c => t[c]), Is.EqualTo(start));
        Assert.That(t.Count, Is.EqualTo(49));
        Assert.That((t[t.Count - 3], t[t.Count - 2], t[t.Count - 1]), Is.EqualTo((771_184, 963_984, Page)));

        // Every class exactly: the previous one times the factor, truncated, rounded up to a multiple of 8
        // (at least 8 more), the last one the page.
        for (int c = 1; c < t.Count - 1; c++)
        {
            int grown = (int)(t[c - 1] * 1.25);
            int expected = Math.Max((grown + 7) / 8 * 8, t[c - 1] + 8);
            Assert.That(t[c], Is.EqualTo(expected), $"class {c}");
        }
        Assert.That(t[t.Count - 2] * 1.25, Is.GreaterThanOrEqualTo(Page), "the page follows the first class that grows past it");
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

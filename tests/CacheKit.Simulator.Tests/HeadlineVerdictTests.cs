using CacheKit.Headline;
using CacheKit.Perf;

namespace CacheKit.Simulator.Tests;

/// <summary>
/// The headline's verdicts on throughput ratios: a verdict the run's own rounds disagree on is marked undecided, so a
/// newcomer reading one run on a noisy machine does not take a coin toss for a result.
/// </summary>
public sealed class HeadlineVerdictTests
{
    private static ThroughputPoint Point(string cache, Mix mix, int threads, params double[] mops)
        => new(cache, mix, threads, mops.Order().ElementAt(mops.Length / 2) * 1e6, 0, 1, [.. mops.Select(m => m * 1e6)]);

    [Test]
    public void A_target_inside_the_range_of_the_rounds_is_undecided_and_one_outside_is_not()
    {
        // The fifteenth session's first headline run, 90/10 with 1 thread: ours 2.86-3.00 Mops/s, ConcurrentLfu 1.86-1.98.
        // The medians give 1.54x (met against 1.5x), but the rounds give anything from 1.44x to 1.61x.
        ThroughputPoint ours = Point(Caches.OffHeapSpan, Mix.GetSet90_10, 1, 2.86, 2.99, 3.00);
        ThroughputPoint lfu = Point(Caches.ConcurrentLfu, Mix.GetSet90_10, 1, 1.86, 1.94, 1.98);
        Assert.That(HeadlineReport.LimitWithinRounds(ours, lfu, 1.5), Is.True);
        Assert.That(HeadlineReport.LimitWithinRounds(ours, lfu, 1.4), Is.False, "below every round's ratio");
        Assert.That(HeadlineReport.LimitWithinRounds(ours, lfu, 1.7), Is.False, "above every round's ratio");
        Assert.That(HeadlineReport.LimitWithinRounds(Point(Caches.OffHeapSpan, Mix.GetSet90_10, 1, 2.9), lfu, 1.5), Is.False,
            "one round has no range");
        Assert.That(HeadlineReport.LimitWithinRounds(null, lfu, 1.5), Is.False);
    }

    [Test]
    public void The_ratio_table_marks_undecided_verdicts_and_says_why()
    {
        var settings = new Settings { MaxThreads = 1 };
        var results = new Results();
        results.Points.Add(Point(Caches.OffHeapSpan, Mix.GetOnly, 1, 1.91, 1.92, 2.12));
        results.Points.Add(Point(Caches.ConcurrentDictionary, Mix.GetOnly, 1, 3.83, 3.94, 4.22));
        results.Points.Add(Point(Caches.ConcurrentLfu, Mix.GetOnly, 1, 1.57, 1.60, 1.70));
        results.Points.Add(Point(Caches.OffHeapSpan, Mix.GetSet90_10, 1, 2.86, 2.99, 3.00));
        results.Points.Add(Point(Caches.ConcurrentLfu, Mix.GetSet90_10, 1, 1.86, 1.94, 1.98));
        List<TargetRow> rows = HeadlineReport.Targets(results, settings);

        TargetRow getVsCd = rows.First(r => r.Metric.StartsWith("get hit, 1 thread", StringComparison.Ordinal) && r.Peer == Caches.ConcurrentDictionary);
        Assert.That(getVsCd.Met, Is.False);
        Assert.That(getVsCd.Loose, Is.False, "every round misses 0.9x (1.81x to 2.21x)");
        TargetRow mixVsLfu = rows.First(r => r.Metric.StartsWith("90/10", StringComparison.Ordinal) && r.Peer == Caches.ConcurrentLfu);
        Assert.That(mixVsLfu.Met, Is.True);
        Assert.That(mixVsLfu.Loose, Is.True);

        string table = HeadlineReport.RatioTable(rows);
        string mixLine = table.Split('\n').First(l => l.StartsWith("| 90/10", StringComparison.Ordinal) && l.Contains(Caches.ConcurrentLfu, StringComparison.Ordinal));
        Assert.That(mixLine, Does.EndWith("| met (undecided) |"));
        string getLine = table.Split('\n').First(l => l.StartsWith("| get hit, 1 thread", StringComparison.Ordinal) && l.Contains(Caches.ConcurrentDictionary, StringComparison.Ordinal));
        Assert.That(getLine, Does.EndWith("| **missed** |"));
        Assert.That(table, Does.Contain("(undecided): the rounds of this run disagree on the verdict"));
    }
}

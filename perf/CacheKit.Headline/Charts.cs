namespace CacheKit.Headline;

/// <summary>PNG charts (ScottPlot).</summary>
public static class Charts
{
    /// <summary>The left edge of a log-scale bar chart (values below it are drawn at it).</summary>
    private const double LogFloor = 1e-3;

    /// <summary>Horizontal bars, one per label, ours highlighted.</summary>
    public static void Bars(string path, string title, string valueLabel, IReadOnlyList<(string Label, double Value)> rows, bool logScale = false)
    {
        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var ticks = new List<ScottPlot.Tick>();
        for (int i = 0; i < rows.Count; i++)
        {
            double v = double.IsFinite(rows[i].Value) ? rows[i].Value : 0;
            // Log scale: the bar's length is log10(v / 0.001), so every bar (values under 1 too) is positive and has its label.
            double shown = logScale ? Math.Log10(Math.Max(v, LogFloor)) - Math.Log10(LogFloor) : v;
            var bar = new ScottPlot.Bar
            {
                Position = rows.Count - 1 - i,
                Value = shown,
                ValueBase = 0,
                FillColor = rows[i].Label.StartsWith("OffHeap", StringComparison.Ordinal) ? ScottPlot.Colors.OrangeRed : palette.GetColor(0),
                Orientation = ScottPlot.Orientation.Horizontal,
                Label = FormatValue(v),
            };
            plot.Add.Bar(bar);
            ticks.Add(new ScottPlot.Tick(rows.Count - 1 - i, rows[i].Label));
        }
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual([.. ticks]);
        if (logScale)
        {
            // Ticks at the powers of ten, labelled in the unit (0.001 … 1000), not in exponents.
            double top = Math.Max(1, Math.Ceiling(rows.Select(r => double.IsFinite(r.Value) ? Math.Log10(Math.Max(r.Value, LogFloor)) : 0).DefaultIfEmpty(0).Max()));
            double[] exponents = [.. Enumerable.Range((int)Math.Log10(LogFloor), (int)top - (int)Math.Log10(LogFloor) + 1).Select(e => (double)e)];
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
                [.. exponents.Select(e => e - Math.Log10(LogFloor))], [.. exponents.Select(e => Math.Pow(10, e).ToString("0.###", System.Globalization.CultureInfo.InvariantCulture))]);
        }
        plot.Axes.Margins(left: 0, right: 0.15);
        plot.Title(title);
        plot.XLabel(logScale ? valueLabel + " (log scale)" : valueLabel);
        plot.SavePng(path, 1000, 80 + 45 * rows.Count + 80);
    }

    /// <summary>Lines: y against thread count, one line per series.</summary>
    public static void Lines(string path, string title, string yLabel, IReadOnlyList<(string Series, double[] Xs, double[] Ys)> series)
    {
        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int i = 0;
        foreach ((string name, double[] xs, double[] ys) in series)
        {
            var line = plot.Add.Scatter(xs, ys);
            line.LegendText = name;
            line.Color = name.StartsWith("OffHeap", StringComparison.Ordinal) ? (name.Contains("span", StringComparison.Ordinal) ? ScottPlot.Colors.OrangeRed : ScottPlot.Colors.DarkRed) : palette.GetColor(i++);
            line.LineWidth = name.StartsWith("OffHeap", StringComparison.Ordinal) ? 3.5f : 1.5f;
            line.MarkerSize = 7;
        }
        double[] threadTicks = [.. series.SelectMany(x => x.Xs).Distinct().Order()];
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(threadTicks, [.. threadTicks.Select(t => t.ToString(System.Globalization.CultureInfo.InvariantCulture))]);
        plot.Title(title);
        plot.XLabel("threads");
        plot.YLabel(yLabel);
        plot.ShowLegend(ScottPlot.Edge.Right);
        plot.SavePng(path, 1100, 600);
    }

    private static string FormatValue(double v) => v switch
    {
        >= 1e6 => $"{v / 1e6:F2} M",
        >= 1000 => $"{v:F0}",
        >= 10 => $"{v:F1}",
        _ => $"{v:G3}",
    };
}

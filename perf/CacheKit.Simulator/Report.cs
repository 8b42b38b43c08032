using System.Globalization;
using System.Text;

namespace CacheKit.Simulator;

/// <summary>Writes results as markdown tables, CSV and PNG charts.</summary>
public static class Report
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>
    /// The markdown table: one row per policy, one column per capacity, hit ratio in percent; the best
    /// non-OPT value of each column in bold. Byte-weighted traces get a second table of byte hit ratios.
    /// </summary>
    public static string Markdown(TraceResults r, string? title = null)
    {
        var sb = new StringBuilder();
        sb.Append(Inv, $"### {title ?? r.TraceName}\n\n");
        sb.Append(Inv, $"{r.Requests:N0} requests, {r.DistinctKeys:N0} distinct keys; ");
        sb.Append(r.Weighted ? "byte capacity (weights are object sizes).\n\n" : "capacity in entries.\n\n");
        AppendTable(sb, r, byteRatio: false);
        if (r.Weighted)
        {
            sb.Append("\nByte hit ratio (%):\n\n");
            AppendTable(sb, r, byteRatio: true);
        }
        AppendNotes(sb, r);
        return sb.ToString();
    }

    /// <summary>The targets' notes on their cells (<see cref="IReplayNote"/>), row by row, in column order.</summary>
    private static void AppendNotes(StringBuilder sb, TraceResults r)
    {
        bool first = true;
        foreach (string policy in r.Policies)
        {
            foreach (Capacity c in r.Capacities)
            {
                if (r.Get(policy, c)?.Note is string note)
                {
                    sb.Append(first ? "\nNotes:\n\n" : "").Append(Inv, $"- {policy} at {c.Label}: {note}.\n");
                    first = false;
                }
            }
        }
    }

    private static void AppendTable(StringBuilder sb, TraceResults r, bool byteRatio)
    {
        sb.Append(byteRatio ? "| policy (byte hit %) |" : "| policy (hit %) |");
        foreach (Capacity c in r.Capacities)
        {
            sb.Append(' ').Append(c.Label).Append(" |");
        }
        sb.Append("\n| --- |");
        foreach (Capacity _ in r.Capacities)
        {
            sb.Append(" ---: |");
        }
        sb.Append('\n');
        var best = r.Capacities.Select(c => r.Policies.Where(p => p != "OPT")
            .Select(p => r.Get(p, c)).Where(x => x is not null)
            .Select(x => byteRatio ? x!.ByteHitRatio : x!.HitRatio).DefaultIfEmpty(double.NaN).Max()).ToArray();
        foreach (string policy in r.Policies)
        {
            sb.Append("| ").Append(policy).Append(" |");
            for (int i = 0; i < r.Capacities.Count; i++)
            {
                CellResult? cell = r.Get(policy, r.Capacities[i]);
                if (cell is null)
                {
                    sb.Append(" n/a |");
                    continue;
                }
                double v = byteRatio ? cell.ByteHitRatio : cell.HitRatio;
                string text = v.ToString("F2", Inv);
                bool isBest = policy != "OPT" && Math.Abs(v - best[i]) < 1e-9;
                sb.Append(' ').Append(isBest ? $"**{text}**" : text).Append(" |");
            }
            sb.Append('\n');
        }
    }

    /// <summary>CSV header matching <see cref="CsvRows"/>.</summary>
    public const string CsvHeader = "trace,policy,capacity,weighted,requests,hits,hit_ratio,bytes,byte_hits,byte_hit_ratio,seconds";

    /// <summary>One CSV row per cell, in table order.</summary>
    public static IEnumerable<string> CsvRows(TraceResults r, string? traceLabel = null)
    {
        foreach (string policy in r.Policies)
        {
            foreach (Capacity c in r.Capacities)
            {
                CellResult? x = r.Get(policy, c);
                if (x is null)
                {
                    continue;
                }
                yield return string.Join(',', Csv(traceLabel ?? r.TraceName), Csv(policy), c.Value.ToString(Inv), c.Weighted ? "true" : "false",
                    x.Requests.ToString(Inv), x.Hits.ToString(Inv), x.HitRatio.ToString("F4", Inv), x.Bytes.ToString(Inv),
                    x.ByteHits.ToString(Inv), x.ByteHitRatio.ToString("F4", Inv), x.Seconds.ToString("F3", Inv));
            }
        }
    }

    private static string Csv(string s) => s.Contains(',', StringComparison.Ordinal) || s.Contains('"', StringComparison.Ordinal)
        ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""
        : s;

    /// <summary>Writes <c>NAME.md</c>, <c>NAME.csv</c> and <c>NAME.png</c> into <paramref name="dir"/>.</summary>
    public static void WriteAll(TraceResults r, string dir, string fileStem)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, fileStem + ".md"), Markdown(r) + $"\n![{r.TraceName}]({fileStem}.png)\n");
        File.WriteAllLines(Path.Combine(dir, fileStem + ".csv"), CsvRows(r).Prepend(CsvHeader));
        Chart(r, Path.Combine(dir, fileStem + ".png"));
    }

    /// <summary>A file-name-safe stem for a trace name.</summary>
    public static string Stem(string name)
    {
        var sb = new StringBuilder(name.Length);
        foreach (char ch in name)
        {
            sb.Append(char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_' or '.' or '+' ? ch : '_');
        }
        return sb.ToString();
    }

    /// <summary>A PNG line chart: hit ratio against cache size, one line per policy, with a legend.</summary>
    public static void Chart(TraceResults r, string path)
    {
        var plot = new ScottPlot.Plot();
        double scale = r.Weighted ? 1.0 / (1024 * 1024) : 1.0;
        // Up to 30 lines: 10 colours x 3 line patterns x marker shapes keep them apart; OPT is a thick
        // black dashed line, the default policy a thick line, the peers dotted.
        var palette = new ScottPlot.Palettes.Category10();
        ScottPlot.LinePattern[] patterns = [ScottPlot.LinePattern.Solid, ScottPlot.LinePattern.Dashed, ScottPlot.LinePattern.DenselyDashed];
        ScottPlot.MarkerShape[] markers = [ScottPlot.MarkerShape.FilledCircle, ScottPlot.MarkerShape.FilledSquare, ScottPlot.MarkerShape.FilledTriangleUp,
            ScottPlot.MarkerShape.FilledDiamond, ScottPlot.MarkerShape.OpenCircle, ScottPlot.MarkerShape.OpenSquare];
        string? defaultName = Catalog.Policy(CacheKit.Policies.PolicyFactory.Default)?.Name;
        int index = 0;
        foreach (string policy in r.Policies)
        {
            var xs = new List<double>();
            var ys = new List<double>();
            foreach (Capacity c in r.Capacities)
            {
                if (r.Get(policy, c) is { } cell)
                {
                    xs.Add(c.Value * scale);
                    ys.Add(cell.HitRatio);
                }
            }
            if (xs.Count == 0)
            {
                continue;
            }
            var line = plot.Add.Scatter(xs.ToArray(), ys.ToArray());
            line.LegendText = policy;
            line.MarkerSize = 6;
            if (policy == Catalog.OptName)
            {
                line.Color = ScottPlot.Colors.Black;
                line.LineWidth = 3;
                line.LinePattern = ScottPlot.LinePattern.Dashed;
                continue;
            }
            line.Color = palette.GetColor(index);
            line.LinePattern = patterns[(index / 10) % patterns.Length];
            line.MarkerShape = markers[index % markers.Length];
            line.LineWidth = policy == defaultName ? 3.5f : 1.5f;
            if (policy is Catalog.BitFasterLru or Catalog.BitFasterLfu or Catalog.MemoryCacheName)
            {
                line.LinePattern = ScottPlot.LinePattern.Dotted;
                line.LineWidth = 2.5f;
            }
            index++;
        }
        plot.Title($"{r.TraceName}: hit ratio by cache size");
        plot.XLabel(r.Weighted ? "cache size (MiB)" : "cache size (entries)");
        plot.YLabel("hit ratio (%)");
        plot.ShowLegend(ScottPlot.Edge.Right);
        plot.SavePng(path, 1200, 700);
    }
}

/// <summary>Byte sizes as text, and parsing of budgets like "4MiB", "16 MB", "512k".</summary>
public static class SizeText
{
    /// <summary>"16 MiB", "512 KiB", "100 B".</summary>
    public static string Format(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.Length - 1 && v % 1024 == 0)
        {
            v /= 1024;
            u++;
        }
        return v.ToString("0.##", CultureInfo.InvariantCulture) + " " + units[u];
    }

    /// <summary>Parses a plain integer, or a number with a binary unit (k/KiB/KB, m/MiB/MB, g/GiB/GB; all powers of 1024).</summary>
    public static long Parse(string text)
    {
        string t = text.Trim().Replace("_", "", StringComparison.Ordinal);
        int i = 0;
        while (i < t.Length && (char.IsAsciiDigit(t[i]) || t[i] == '.'))
        {
            i++;
        }
        if (i == 0 || !double.TryParse(t[..i], NumberStyles.Float, CultureInfo.InvariantCulture, out double number))
        {
            throw new ArgumentException($"size '{text}' must start with a number", nameof(text));
        }
        string unit = t[i..].Trim().ToUpperInvariant();
        long mult = unit switch
        {
            "" or "B" => 1,
            "K" or "KB" or "KIB" => 1L << 10,
            "M" or "MB" or "MIB" => 1L << 20,
            "G" or "GB" or "GIB" => 1L << 30,
            _ => throw new ArgumentException($"size '{text}' has an unknown unit '{unit}' (use KiB, MiB or GiB)", nameof(text)),
        };
        double value = number * mult;
        if (value < 1 || value > long.MaxValue / 2)
        {
            throw new ArgumentOutOfRangeException(nameof(text), text, "size must be at least 1 and below 2^62");
        }
        return (long)value;
    }
}

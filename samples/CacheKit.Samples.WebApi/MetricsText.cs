using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using CacheKit.OffHeap.Extensions;

namespace CacheKit.Samples.WebApi;

/// <summary>
/// Renders the <see cref="OffHeapCacheMetrics.MeterName"/> meter in the Prometheus text format with a
/// plain <see cref="MeterListener"/>: what dotnet-counters or an OpenTelemetry exporter would see,
/// without either (the library needs no code for them).
/// </summary>
public sealed class MetricsText : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Lock _gate = new();
    // Guarded by _gate. Observable values are replaced at each scrape; histogram sums accumulate.
    private readonly SortedDictionary<string, double> _values = new(StringComparer.Ordinal);

    /// <summary>Subscribes to every instrument of the CacheKit.OffHeap meter.</summary>
    public MetricsText()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == OffHeapCacheMetrics.MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Store(instrument, value, tags, accumulate: false));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Store(instrument, value, tags, accumulate: true));
        _listener.Start();
    }

    /// <summary>Collects the observable instruments now and renders every series, one line each.</summary>
    public string Render()
    {
        lock (_gate)
        {
            _listener.RecordObservableInstruments();
            var text = new StringBuilder();
            foreach ((string series, double value) in _values)
            {
                text.Append(series).Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
            }
            return text.ToString();
        }
    }

    /// <inheritdoc />
    public void Dispose() => _listener.Dispose();

    private void Store(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags, bool accumulate)
    {
        var series = new StringBuilder(instrument.Name.Replace('.', '_'));
        if (accumulate)
        {
            series.Append("_sum");
        }
        else if (instrument is ObservableCounter<long>)
        {
            series.Append("_total");
        }
        series.Append('{');
        for (int i = 0; i < tags.Length; i++)
        {
            series.Append(i == 0 ? "" : ",").Append(tags[i].Key.Replace('.', '_')).Append("=\"").Append(tags[i].Value).Append('"');
        }
        series.Append('}');
        lock (_gate)
        {
            string key = series.ToString();
            if (accumulate)
            {
                _values[key] = _values.GetValueOrDefault(key) + value;
                string count = key.Replace("_sum{", "_count{", StringComparison.Ordinal);
                _values[count] = _values.GetValueOrDefault(count) + 1;
            }
            else
            {
                _values[key] = value;
            }
        }
    }
}

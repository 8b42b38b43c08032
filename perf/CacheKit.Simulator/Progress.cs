using System.Collections.Concurrent;
using Spectre.Console;

namespace CacheKit.Simulator;

/// <summary>Receives progress while traces replay (called from worker threads).</summary>
public interface IProgressSink
{
    /// <summary>A trace starts; <paramref name="totalRequests"/> is requests times cells.</summary>
    void Start(string trace, long totalRequests);

    /// <summary>Some requests of <paramref name="trace"/> were replayed.</summary>
    void Advance(string trace, long requests);

    /// <summary>One cell finished.</summary>
    void Done(string trace, string policy, CellResult cell);

    /// <summary>A trace finished.</summary>
    void Finish(string trace);
}

/// <summary>Plain lines, for redirected output and CI logs: one line per trace start and end.</summary>
public sealed class PlainProgress(TextWriter writer, bool perCell) : IProgressSink
{
    /// <inheritdoc />
    public void Start(string trace, long totalRequests)
    {
        lock (writer)
        {
            writer.WriteLine($"[sim] {trace}: {totalRequests:N0} request replays");
        }
    }

    /// <inheritdoc />
    public void Advance(string trace, long requests)
    {
    }

    /// <inheritdoc />
    public void Done(string trace, string policy, CellResult cell)
    {
        if (perCell)
        {
            lock (writer)
            {
                writer.WriteLine($"[sim] {trace} {policy} @ {cell.Capacity.Label}: {cell.HitRatio:F2} % ({cell.Seconds:F2} s)");
            }
        }
    }

    /// <inheritdoc />
    public void Finish(string trace)
    {
        lock (writer)
        {
            writer.WriteLine($"[sim] {trace}: done");
        }
    }
}

/// <summary>Spectre.Console progress bars, one per trace; only inside <see cref="Run"/>.</summary>
public sealed class SpectreProgress : IProgressSink
{
    private readonly ProgressContext _context;
    private readonly ConcurrentDictionary<string, ProgressTask> _tasks = new();

    private SpectreProgress(ProgressContext context) => _context = context;

    /// <summary>Runs <paramref name="body"/> with a live progress display.</summary>
    public static T Run<T>(Func<IProgressSink, T> body) => AnsiConsole.Progress()
        .AutoClear(false)
        .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
        .Start(ctx => body(new SpectreProgress(ctx)));

    /// <inheritdoc />
    public void Start(string trace, long totalRequests)
    {
        lock (_context)
        {
            _tasks[trace] = _context.AddTask(Markup.Escape(trace), maxValue: Math.Max(1, totalRequests));
        }
    }

    /// <inheritdoc />
    public void Advance(string trace, long requests)
    {
        if (_tasks.TryGetValue(trace, out ProgressTask? task))
        {
            lock (task)
            {
                task.Increment(requests);
            }
        }
    }

    /// <inheritdoc />
    public void Done(string trace, string policy, CellResult cell)
    {
    }

    /// <inheritdoc />
    public void Finish(string trace)
    {
        if (_tasks.TryGetValue(trace, out ProgressTask? task))
        {
            lock (task)
            {
                task.Value = task.MaxValue;
                task.StopTask();
            }
        }
    }
}

using Spectre.Console;

namespace CacheKit.Headline;

/// <summary>A progress display: Spectre bars on a terminal, timestamped lines when redirected.</summary>
/// <remarks>
/// The bars are redrawn by a timer of our own, not by Spectre's refresh thread, so that <see cref="Quiet"/> can
/// stop the redrawing while a throughput point is measured: the points count the whole process's allocations
/// (the caches' own helper threads included), and Spectre's redraws allocated 1-2 B per operation of the
/// cache under test in a terminal, against 0 when the output is redirected.
/// </remarks>
public sealed class Steps
{
    private const int RefreshMs = 100;
    private readonly ProgressContext? _context;
    private readonly Dictionary<string, ProgressTask> _tasks = [];
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private readonly Lock _gate = new();
    private readonly Timer? _timer;
    private int _quiet;

    private Steps(ProgressContext? context)
    {
        _context = context;
        if (context is not null)
        {
            _timer = new Timer(_ => Refresh(), null, RefreshMs, RefreshMs);
        }
    }

    /// <summary>Runs <paramref name="body"/> with a live display when the console is interactive.</summary>
    public static void Run(IReadOnlyList<(string Phase, int Steps)> phases, Action<Steps> body)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive || Console.IsOutputRedirected)
        {
            body(new Steps(null));
            return;
        }
        AnsiConsole.Progress()
            .AutoRefresh(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var steps = new Steps(ctx);
                foreach ((string phase, int n) in phases)
                {
                    steps._tasks[phase] = ctx.AddTask(phase, autoStart: false, maxValue: Math.Max(1, n));
                }
                try
                {
                    body(steps);
                }
                finally
                {
                    steps._timer!.Dispose();
                }
            });
    }

    /// <summary>
    /// Stops redrawing the display until the returned scope is disposed (nothing else of ours allocates meanwhile).
    /// When it returns, no redraw is running.
    /// </summary>
    public QuietScope Quiet()
    {
        lock (_gate)
        {
            _quiet++;
        }
        return new QuietScope(this);
    }

    private void Refresh()
    {
        lock (_gate)
        {
            if (_quiet == 0)
            {
                _context!.Refresh();
            }
        }
    }

    /// <summary>Ends a <see cref="Quiet"/> period.</summary>
    public readonly struct QuietScope(Steps steps) : IDisposable
    {
        /// <summary>Lets the display redraw again.</summary>
        public void Dispose()
        {
            lock (steps._gate)
            {
                steps._quiet--;
            }
        }
    }

    /// <summary>Reports that <paramref name="what"/> of <paramref name="phase"/> starts.</summary>
    public void Begin(string phase, string what)
    {
        if (_context is null)
        {
            Console.WriteLine($"[{_clock.Elapsed.TotalSeconds,6:F1}s] {phase}: {what}");
            return;
        }
        ProgressTask task = _tasks[phase];
        task.StartTask();
        task.Description = $"{phase}: {Markup.Escape(what)}";
    }

    /// <summary>One step of <paramref name="phase"/> is done.</summary>
    public void Advance(string phase)
    {
        if (_context is not null && _tasks.TryGetValue(phase, out ProgressTask? task))
        {
            task.Increment(1);
        }
    }

    /// <summary>The phase is over.</summary>
    public void End(string phase)
    {
        if (_context is not null && _tasks.TryGetValue(phase, out ProgressTask? task))
        {
            task.Description = phase;
            task.Value = task.MaxValue;
            task.StopTask();
        }
    }

    /// <summary>A note that stays visible (plain line).</summary>
    public void Note(string text)
    {
        if (_context is null)
        {
            Console.WriteLine($"[{_clock.Elapsed.TotalSeconds,6:F1}s] {text}");
        }
        else
        {
            AnsiConsole.MarkupLine($"[grey]{Markup.Escape(text)}[/]");
        }
    }
}

using Spectre.Console;

namespace CacheKit.Headline;

/// <summary>A progress display: Spectre bars on a terminal, timestamped lines when redirected.</summary>
public sealed class Steps
{
    private readonly ProgressContext? _context;
    private readonly Dictionary<string, ProgressTask> _tasks = [];
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();

    private Steps(ProgressContext? context) => _context = context;

    /// <summary>Runs <paramref name="body"/> with a live display when the console is interactive.</summary>
    public static void Run(IReadOnlyList<(string Phase, int Steps)> phases, Action<Steps> body)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive || Console.IsOutputRedirected)
        {
            body(new Steps(null));
            return;
        }
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var steps = new Steps(ctx);
                foreach ((string phase, int n) in phases)
                {
                    steps._tasks[phase] = ctx.AddTask(phase, autoStart: false, maxValue: Math.Max(1, n));
                }
                body(steps);
            });
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

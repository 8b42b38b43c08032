using System.Diagnostics;
using CacheKit.Headline;

namespace CacheKit.Simulator.Tests;

/// <summary>
/// The headline's option checks, run as the program (its entry point is top-level statements): each bad value below passed
/// the checks and crashed later with an unhandled exception, or ran to the end and wrote a report of failed rows (found by
/// review, 2026-11-30). Now each is refused before anything is measured, with exit code 2 and a message naming the option.
/// </summary>
public sealed class HeadlineOptionTests
{
    [TestCase("--seconds NaN", "--seconds takes a number")]
    [TestCase("--seconds 1e400", "--seconds takes a number")]
    [TestCase("--latency-seconds NaN", "--latency-seconds takes a number")]
    [TestCase("--entries 1e12", "--entries takes an integer")]
    [TestCase("--bound -5", "--bound takes an integer")]
    [TestCase("--memory-entries 99999999999999999999", "--memory-entries takes an integer")]
    [TestCase("--big-entries 0", "--big-entries takes an integer")]
    [TestCase("--seconds", "--seconds needs a value")]
    [TestCase("child", "--cache is required for 'child'")]
    [TestCase("points --cache cd", "--mix is required for 'points'")]
    public void A_bad_option_is_refused_before_any_measurement(string arguments, string message)
    {
        (int code, string error) = RunHeadline(arguments);
        Assert.That(code, Is.EqualTo(2), error);
        Assert.That(error, Does.StartWith(message));
    }

    [Test]
    public void An_output_folder_that_is_a_file_is_refused_before_any_measurement()
    {
        string file = Path.GetTempFileName();
        try
        {
            (int code, string error) = RunHeadline($"--out {file}");
            Assert.That((code, error), Is.EqualTo((2, $"--out {file} is a file, not a folder")));
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static (int Code, string Error) RunHeadline(string arguments)
    {
        var start = new ProcessStartInfo("dotnet", $"\"{typeof(HeadlineReport).Assembly.Location}\" {arguments}")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using Process process = Process.Start(start)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        string error = process.StandardError.ReadToEnd();
        if (!process.WaitForExit(60_000))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"the headline ran on with '{arguments}': {output.Result}");
        }
        return (process.ExitCode, error.Trim());
    }
}

using System.Text.Json;
using Amber.Coordinator.Control;

namespace Amber.Cli;

/// <summary>
/// What a verb reports, as one JSON document on stdout (--json): the figures its human lines show,
/// for a program to read (<see cref="ReportJson"/>). Human lines (warnings included) stay on stderr.
/// </summary>
public static class JsonReport
{
    public static void Write(Action<Utf8JsonWriter> body) => Console.Out.WriteLine(ReportJson.Write(body));

    /// <summary>The --json option every reporting verb has.</summary>
    public static System.CommandLine.Option<bool> Option() =>
        new("--json") { Description = "Print what is reported as one JSON document on stdout" };
}

namespace Amber.Coordinator.Control;

/// <summary>The coordinator's answer: success or one line saying why not, and what to print.</summary>
public sealed class ControlResponse
{
    /// <summary>The operation succeeded.</summary>
    public bool Ok { get; set; }

    /// <summary>Why it failed, one line; empty on success.</summary>
    public string Error { get; set; } = "";

    /// <summary>A checkpoint with stop: its processes were ended (a hand-over may keep them running). Left off the wire when false.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public bool Ended { get; set; }

    /// <summary>Lines for standard output (machine-readable: a PID, a table).</summary>
    public List<string> Stdout { get; set; } = [];

    /// <summary>Lines for standard error (reports, warnings).</summary>
    public List<string> Stderr { get; set; } = [];

    /// <summary>What was reported as one JSON document (<see cref="ReportJson"/>), printed by amber VERB --json; empty when the verb has none.</summary>
    public string Report { get; set; } = "";

    /// <summary>
    /// Not the answer yet: how far the operation has come. Sent before the answer, a few times a second,
    /// only to a requester that asked (<see cref="ControlRequest.Progress"/>); the answer is the first
    /// line without it.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public ProgressSample? Progress { get; set; }

    /// <summary>A number of <see cref="Report"/> (frozenMs...); 0 if it has none.</summary>
    public double Figure(string name)
    {
        if (Report.Length == 0)
            return 0;
        using var report = System.Text.Json.JsonDocument.Parse(Report);
        return report.RootElement.TryGetProperty(name, out var value) ? value.GetDouble() : 0;
    }

    /// <summary>A failed operation, with why.</summary>
    public static ControlResponse Failure(string error) => new() { Ok = false, Error = error };
}

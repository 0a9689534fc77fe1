using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace Amber.Coordinator.Daemon;

/// <summary>
/// One line per event, as the daemon log always read, with the level before the name:
/// "2025-01-31 12:00:00.000 info amberd: group web: launched ... as process 4242". An exception
/// goes on the same line (its own line breaks folded), so a line is always a whole event.
/// </summary>
internal sealed class DaemonLogFormatter() : ConsoleFormatter(Name)
{
    public new const string Name = "amberd";

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        string message = logEntry.Formatter(logEntry.State, logEntry.Exception);
        if (logEntry.Exception is not null)
            message += $": {logEntry.Exception}";
        textWriter.Write($"{DateTime.Now:yyyy-MM-dd HH:mm:ss.fff} {Level(logEntry.LogLevel)} amberd: {message.ReplaceLineEndings(" | ")}\n");
    }

    private static string Level(LogLevel level) => level switch
    {
        LogLevel.Trace => "trce",
        LogLevel.Debug => "dbug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        _ => "crit",
    };
}

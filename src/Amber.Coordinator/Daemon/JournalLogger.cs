using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Amber.Kernel.Files;
using Microsoft.Extensions.Logging;

namespace Amber.Coordinator.Daemon;

/// <summary>
/// The daemon's log straight into journald when systemd runs it (its standard error is the journal
/// stream $JOURNAL_STREAM names): one entry per event through the journal's native protocol, with
/// its PRIORITY, and every value the event names as a field of its own — AMBER_GROUP,
/// AMBER_CHECKPOINT, AMBER_PID... — so that <c>journalctl -u amber AMBER_GROUP=web</c> finds a group's
/// events. $AMBER_JOURNAL_SOCKET names another socket than journald's (tests).
/// </summary>
internal sealed class JournalLoggerProvider(string socketPath) : ILoggerProvider
{
    private const string DefaultSocket = "/run/systemd/journal/socket";
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    private readonly UnixDomainSocketEndPoint _journal = new(socketPath);

    /// <summary>A provider when standard error is the journal stream and the journal's socket is there; null otherwise (the log goes to standard error).</summary>
    public static JournalLoggerProvider? IfJournal()
    {
        // Inherited by every child of a service: it says something only when it names our own stderr.
        if (Environment.GetEnvironmentVariable("JOURNAL_STREAM") is not { } stream || stream.Split(':') is not [var dev, var ino]
            || !ulong.TryParse(dev, CultureInfo.InvariantCulture, out ulong device) || !ulong.TryParse(ino, CultureInfo.InvariantCulture, out ulong inode)
            || !FileStat.TryGet("/proc/self/fd/2", out var stderr) || stderr.Device != device || stderr.Inode != inode)
            return null;
        string path = Environment.GetEnvironmentVariable("AMBER_JOURNAL_SOCKET") is { Length: > 0 } named ? named : DefaultSocket;
        return FileStat.TryGet(path, out var socket) && socket.IsSocket ? new JournalLoggerProvider(path) : null;
    }

    public ILogger CreateLogger(string categoryName) => new JournalLogger(this);

    public void Dispose() => _socket.Dispose();

    private void Send(LogLevel level, string message, IEnumerable<KeyValuePair<string, object?>> values)
    {
        var entry = new StringBuilder();
        void Field(string name, string value) => entry.Append(name).Append('=').Append(value.ReplaceLineEndings(" | ")).Append('\n');
        Field("MESSAGE", message);
        Field("PRIORITY", Priority(level).ToString(CultureInfo.InvariantCulture));
        Field("SYSLOG_IDENTIFIER", "amberd");
        foreach (var (key, value) in values)
        {
            // The template itself ("{OriginalFormat}") is no value of the event.
            if (key != "{OriginalFormat}" && value is not null)
                Field("AMBER_" + FieldName(key), Convert.ToString(value, CultureInfo.InvariantCulture) ?? "");
        }
        try
        {
            _socket.SendTo(Encoding.UTF8.GetBytes(entry.ToString()), _journal);
        }
        catch (SocketException)
        {
            // journald gone (stopped, restarting): the event is lost, never the coordinator with it.
        }
    }

    // syslog priorities, as journald takes them.
    private static int Priority(LogLevel level) => level switch
    {
        LogLevel.Trace or LogLevel.Debug => 7,
        LogLevel.Information => 6,
        LogLevel.Warning => 4,
        LogLevel.Error => 3,
        _ => 2,
    };

    // A journal field name: upper-case letters, digits and underscores ("Checkpoint" -> CHECKPOINT).
    private static string FieldName(string key) =>
        string.Concat(key.Select(c => char.IsAsciiLetterOrDigit(c) ? char.ToUpperInvariant(c) : '_'));

    private sealed class JournalLogger(JournalLoggerProvider provider) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            string message = formatter(state, exception) + (exception is null ? "" : $": {exception}");
            provider.Send(logLevel, message, state as IEnumerable<KeyValuePair<string, object?>> ?? []);
        }
    }
}

using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Amber.Coordinator.Daemon;

/// <summary>
/// The daemon's log: the console logger of Microsoft.Extensions.Logging, every level to standard
/// error (amber run sends it to the daemon log file, where the workers write too), one line per
/// event (<see cref="DaemonLogFormatter"/>); under systemd, journald's native protocol instead
/// (<see cref="JournalLoggerProvider"/>). Disposing the factory writes out what is still queued.
/// </summary>
internal static class DaemonLogging
{
    public static ILoggerFactory Create() => LoggerFactory.Create(builder =>
    {
        // Run by systemd: straight into the journal, with fields; its stream would take lines only.
        if (JournalLoggerProvider.IfJournal() is { } journal)
        {
            builder.AddProvider(journal);
            return;
        }
        builder.AddConsole(options =>
        {
            options.FormatterName = DaemonLogFormatter.Name;
            options.LogToStandardErrorThreshold = LogLevel.Trace;
        });
        // The formatter as an instance: AddConsoleFormatter would bind its options from configuration
        // by reflection, which Native AOT cannot promise to keep working.
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<ConsoleFormatter>(new DaemonLogFormatter()));
    });
}

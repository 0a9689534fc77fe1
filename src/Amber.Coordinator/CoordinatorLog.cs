namespace Amber.Coordinator;

/// <summary>The daemon's log: its standard error (amber run sends it to the daemon log file).</summary>
internal static class CoordinatorLog
{
    public static void Write(string message) =>
        Console.Error.WriteLine($"{DateTime.Now:yyyy-MM-dd HH:mm:ss.fff} amberd: {message}");
}

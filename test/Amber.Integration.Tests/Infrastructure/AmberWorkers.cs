using Amber.Kernel.Proc;

namespace Amber.Integration.Tests.Infrastructure;

/// <summary>amber processes at work on a checkpoint, found by its directory in their command lines.</summary>
public static class AmberWorkers
{
    /// <summary>
    /// Waits until no amber process is working on <paramref name="images"/> any more (a checkpoint's
    /// worker goes on after the amber that started it is killed).
    /// </summary>
    public static void WaitUntilDone(string images, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (ProcFs.ListProcesses().Any(p => CommandLine(p).Contains(images, StringComparison.Ordinal)))
        {
            Assert.True(DateTime.UtcNow < deadline, $"{what}: the worker did not finish");
            Thread.Sleep(10);
        }
    }

    private static string CommandLine(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' '); }
        catch (IOException) { return ""; }
        catch (UnauthorizedAccessException) { return ""; }
    }
}

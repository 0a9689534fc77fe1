using Amber.Checkpoint;
using Amber.Image;
using Amber.Kernel;
using Amber.Kernel.Inject;

namespace Amber.Cli;

/// <summary>
/// Runs a command body and turns every failure into one line on stderr and exit code 1: users get the
/// reason, never a stack trace (AMBER_DEBUG=1 adds it for developers).
/// </summary>
public static class CliErrors
{
    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"amber: {e.Message}");
            return ExitCodes.Usage;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"amber: {Describe(e)}");
            if (Environment.GetEnvironmentVariable("AMBER_DEBUG") == "1")
                Console.Error.WriteLine(e);
            return ExitCodes.Failed;
        }
    }

    public static string Describe(Exception e) => e switch
    {
        OperationCanceledException => "interrupted; the target was resumed and no checkpoint was committed",
        CheckpointException or ImageFormatException or ImageStoreException or ImageKeyException or TargetGoneException or KernelCallException or InjectionException
            => OneLine(e.Message),
        UnauthorizedAccessException => $"permission denied: {OneLine(e.Message)} (Amber needs root, or CAP_SYS_PTRACE and CAP_CHECKPOINT_RESTORE)",
        IOException => OneLine(e.Message),
        _ => $"internal error ({e.GetType().Name}): {OneLine(e.Message)}",
    };

    private static string OneLine(string message) => message.ReplaceLineEndings(" ").Trim();
}

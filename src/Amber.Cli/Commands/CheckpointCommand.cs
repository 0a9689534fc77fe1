using System.CommandLine;
using Amber.Checkpoint;

namespace Amber.Cli.Commands;

public static class CheckpointCommand
{
    public static Command Create()
    {
        var pid = new Argument<int>("pid") { Description = "The process to checkpoint" };
        var images = new Option<string>("--images", "-D") { Description = "Directory to write the checkpoint into (must not exist, or be empty)", Required = true };
        var leaveRunning = new Option<bool>("--leave-running") { Description = "Let the process run on after the checkpoint (default: end it)" };
        var command = new Command("checkpoint", "Save a running process to an image directory") { pid, images, leaveRunning };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            using var cancel = new Cancellation();
            var result = Checkpointer.Checkpoint(parse.GetValue(pid), new CheckpointOptions(parse.GetRequiredValue(images), parse.GetValue(leaveRunning)), cancel.Token);
            foreach (var w in result.Warnings)
                Console.Error.WriteLine($"amber: warning: {w}");
            Console.Error.WriteLine(
                $"checkpointed process {result.Pid}: {result.PagesWritten} pages, {result.ImageBytes / 1048576.0:0.0} MiB, frozen {result.FrozenFor.TotalMilliseconds:0} ms, total {result.Total.TotalMilliseconds:0} ms");
            return ExitCodes.Ok;
        }));
        return command;
    }
}

using System.CommandLine;
using Amber.Checkpoint;
using Amber.Coordinator.Control;

namespace Amber.Cli.Commands;

/// <summary>amber merge: fold an incremental checkpoint and the earlier ones it refers to into one full checkpoint.</summary>
public static class MergeCommand
{
    public static Command Create()
    {
        var group = GroupCommands.GroupOption(required: false);
        var from = new Option<string>("--from") { Description = "With --group: the checkpoint to fold (default: the latest)" };
        var dir = new Argument<string?>("dir") { Description = "A checkpoint directory (instead of --group)", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("merge", "Fold an incremental checkpoint and its chain into one full checkpoint (the old chain goes once nothing needs it)") { group, from, dir };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            if (parse.GetValue(group) is { } name)
            {
                if (parse.GetValue(dir) is not null)
                    throw new UsageException("give a checkpoint directory or --group NAME, not both");
                return GroupCommands.Print(ControlClient.Send(new ControlRequest { Op = "merge", Group = name, From = parse.GetValue(from) ?? "" }));
            }
            string path = parse.GetValue(dir) ?? throw new UsageException("amber merge needs a checkpoint directory or --group NAME");
            using var cancel = new Cancellation();
            var result = CheckpointMerger.Merge(path, cancel.Token);
            Console.Error.WriteLine($"merged {result.Checkpoint} into a full checkpoint: {result.Pages} pages, {result.Bytes / 1048576.0:0.0} MiB, in {result.Total.TotalMilliseconds:0} ms"
                + (result.Removed.Count > 0 ? $"; removed {string.Join(" ", result.Removed)}" : ""));
            return ExitCodes.Ok;
        }));
        return command;
    }
}

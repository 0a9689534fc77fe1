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
        var copy = new Option<bool>("--copy")
        {
            Description = "With a checkpoint directory: copy every page, instead of taking in by hard links the page files of the chain still mostly in use (slower; the result shares no file and holds no page it does not use)",
        };
        var key = KeyOptions.Key();
        var command = new Command("merge", "Fold an incremental checkpoint and its chain into one full checkpoint (the old chain goes once nothing needs it)") { group, from, dir, copy, key };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            if (GroupCommands.GroupName(parse, group) is { } name)
            {
                if (parse.GetValue(dir) is not null)
                    throw new UsageException("give a checkpoint directory or --group NAME, not both");
                if (parse.GetValue(copy))
                    throw new UsageException("--copy goes with a checkpoint directory; a group's merges link what they can");
                if (parse.GetValue(key) is not null)
                    throw new UsageException("--key goes with a checkpoint directory; a group's merges use the group's key");
                return GroupCommands.Print(ProgressDisplay.Remote("merge", ProgressDisplay.Measure.Written,
                    progress => ControlClient.Send(new MergeRequest(name, parse.GetValue(from) ?? ""), progress: progress)));
            }
            string path = parse.GetValue(dir) ?? throw new UsageException("amber merge needs a checkpoint directory or --group NAME");
            using var cancel = new Cancellation();
            var result = ProgressDisplay.Run("merge", ProgressDisplay.Measure.Written, () => CheckpointMerger.Merge(path, parse.GetValue(copy), KeyOptions.Load(parse.GetValue(key)), cancel: cancel.Token));
            Console.Error.WriteLine($"merged {result.Checkpoint} into a full checkpoint: {result.Pages} pages copied"
                + (result.PagesLinked > 0 ? $", {result.PagesLinked} kept in page files taken in by hard links" : "")
                + $", {result.Bytes / 1048576.0:0.0} MiB, in {result.Total.TotalMilliseconds:0} ms"
                + (result.Removed.Count > 0 ? $"; removed {string.Join(" ", result.Removed)}" : ""));
            return ExitCodes.Ok;
        }));
        return command;
    }
}

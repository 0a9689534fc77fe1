using System.CommandLine;
using Amber.Checkpoint;
using Amber.Coordinator.Control;
using Amber.Coordinator.Store;
using Amber.Image;

namespace Amber.Cli.Commands;

/// <summary>amber verify: checks every checksum of a checkpoint, a store, or a group's store; exit 1 if anything is damaged or nothing was verified.</summary>
public static class VerifyCommand
{
    public static Command Create()
    {
        var group = GroupCommands.GroupOption(required: false);
        var dir = new Argument<string?>("dir") { Description = "A checkpoint, or a store of checkpoints (instead of --group)", Arity = ArgumentArity.ZeroOrOne };
        var json = JsonReport.Option();
        var key = KeyOptions.Key();
        var command = new Command("verify", "Check the checksums of a checkpoint, a store, or a group's checkpoints") { group, dir, json, key };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            // A group's store is verified by its coordinator, between its checkpoints and merges.
            if (GroupCommands.GroupName(parse, group) is { } name)
            {
                if (parse.GetValue(key) is not null)
                    throw new UsageException("--key goes with a directory; a group's checkpoints are verified with the group's key");
                return GroupCommands.Print(ProgressDisplay.Remote("verify", ProgressDisplay.Measure.Read,
                    progress => ControlClient.Send(new VerifyRequest(name), progress: progress)), parse.GetValue(json));
            }
            var imageKey = KeyOptions.Load(parse.GetValue(key));
            string path = parse.GetValue(dir) ?? throw new UsageException("amber verify needs a directory or --group NAME");
            if (!Directory.Exists(path))
                throw new IOException($"{path} does not exist");
            // Every image file is read: their size is what there is to do.
            PageProgress.Expected = new DirectoryInfo(path).EnumerateFiles("*.img", SearchOption.AllDirectories).Sum(f => f.Length);
            if (File.Exists(Path.Combine(path, ImageFormat.ManifestFileName)))
            {
                var (lines, damaged) = ProgressDisplay.Run("verify", ProgressDisplay.Measure.Read, () => CheckpointVerifier.VerifyAll([path], imageKey));
                if (parse.GetValue(json))
                    Console.Out.WriteLine(ReportJson.Verification(1, damaged, lines, []));
                else
                    Console.Out.WriteLine(lines[0]);
                if (damaged > 0)
                    throw new IOException($"1 of 1 checkpoint(s) in {path} are damaged");
                Console.Error.WriteLine("1 checkpoint(s) verified");
                return ExitCodes.Ok;
            }
            var found = ProgressDisplay.Run("verify", ProgressDisplay.Measure.Read, () => StoreVerifier.Verify(new GroupStore(path), imageKey));
            if (parse.GetValue(json))
                Console.Out.WriteLine(ReportJson.Verification(found.Checkpoints, found.Damaged, found.Lines, found.Unfinished));
            else
            {
                foreach (var line in found.Lines)
                    Console.Out.WriteLine(line);
            }
            if (found.Checkpoints == 0)
                throw new IOException(NotACheckpoint(path, found.Unfinished));
            if (found.Damaged > 0)
                throw new IOException($"{found.Damaged} of {found.Checkpoints} checkpoint(s) in {path} are damaged");
            Console.Error.WriteLine(found.Summary);
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>Neither a checkpoint nor a store of any: an interrupted checkpoint's leftover, a store of leftovers, or anything else.</summary>
    private static string NotACheckpoint(string path, IReadOnlyList<string> unfinished)
    {
        bool torn = Directory.EnumerateFiles(path, "*.img").Any();
        return $"{path} is not a checkpoint (no {ImageFormat.ManifestFileName}{(torn ? ": left by an interrupted checkpoint?" : "")}) nor a store of checkpoints "
            + (unfinished.Count > 0 ? $"(it holds none, only {string.Join(", ", unfinished)}, which are not checkpoints)" : "(there is none in it)");
    }
}

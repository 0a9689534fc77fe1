using System.CommandLine;
using Amber.Checkpoint;
using Amber.Coordinator.Control;

namespace Amber.Cli.Commands;

/// <summary>amber verify: checks every checksum of a checkpoint, a store, or a group's store; exit 1 if anything is damaged.</summary>
public static class VerifyCommand
{
    public static Command Create()
    {
        var group = GroupCommands.GroupOption(required: false);
        var dir = new Argument<string?>("dir") { Description = "A checkpoint, or a store of checkpoints (instead of --group)", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("verify", "Check the checksums of a checkpoint, a store, or a group's checkpoints") { group, dir };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            // A group's store is verified by its coordinator, between its checkpoints and merges.
            if (GroupCommands.GroupName(parse, group) is { } name)
                return GroupCommands.Print(ControlClient.Send(new ControlRequest { Op = "verify", Group = name }));
            string path = parse.GetValue(dir) ?? throw new UsageException("amber verify needs a directory or --group NAME");
            if (!Directory.Exists(path))
                throw new IOException($"{path} does not exist");
            // A checkpoint has a manifest; a store holds checkpoints (and perhaps leftovers of interrupted ones).
            var checkpoints = File.Exists(Path.Combine(path, "manifest.img"))
                ? [path]
                : Directory.GetDirectories(path).Where(d => !Path.GetFileName(d).Contains(".tmp", StringComparison.Ordinal)).Order().ToList();
            var (lines, damaged) = CheckpointVerifier.VerifyAll(checkpoints);
            foreach (var line in lines)
                Console.Out.WriteLine(line);
            if (damaged > 0)
                throw new IOException($"{damaged} of {checkpoints.Count} checkpoint(s) in {path} are damaged");
            Console.Error.WriteLine($"{checkpoints.Count} checkpoint(s) verified");
            return ExitCodes.Ok;
        }));
        return command;
    }
}

using System.CommandLine;
using System.Text.Json;
using Amber.Checkpoint;
using Amber.Coordinator;
using Amber.Coordinator.Control;
using Amber.Coordinator.Store;

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
            string path = parse.GetValue(group) is { } name ? StoreOf(name) : parse.GetValue(dir) ?? throw new UsageException("amber verify needs a directory or --group NAME");
            if (!Directory.Exists(path))
                throw new IOException($"{path} does not exist");
            // A checkpoint has a manifest; a store holds checkpoints (and perhaps leftovers of interrupted ones).
            var checkpoints = File.Exists(Path.Combine(path, "manifest.img"))
                ? [path]
                : Directory.GetDirectories(path).Where(d => !Path.GetFileName(d).Contains(".tmp", StringComparison.Ordinal)).Order().ToList();
            int damaged = 0;
            foreach (var checkpoint in checkpoints)
            {
                string? problem = CheckpointVerifier.Verify(checkpoint);
                Console.Out.WriteLine(problem is null ? $"{Path.GetFileName(checkpoint)}: ok" : $"{Path.GetFileName(checkpoint)}: DAMAGED: {problem}");
                if (problem is not null)
                    damaged++;
            }
            if (damaged > 0)
                throw new IOException($"{damaged} of {checkpoints.Count} checkpoint(s) in {path} are damaged");
            Console.Error.WriteLine($"{checkpoints.Count} checkpoint(s) verified");
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>A group's store, from its settings (no need to ask the coordinator).</summary>
    private static string StoreOf(string group)
    {
        string config = AmberHome.Current.GroupConfig(group);
        if (!File.Exists(config))
            throw new IOException($"there is no group '{group}'");
        return JsonSerializer.Deserialize(File.ReadAllText(config), CoordinatorJson.Default.GroupConfig)?.Store ?? throw new IOException($"{config} is empty");
    }
}

using System.CommandLine;
using Amber.Coordinator.Control;
using Amber.Coordinator.Store;

namespace Amber.Cli.Commands;

/// <summary>amber images: the checkpoints of a group (asking its coordinator) or of a store directory.</summary>
public static class ImagesCommand
{
    public static Command Create()
    {
        var group = GroupCommands.GroupOption(required: false);
        var dir = new Argument<string?>("dir") { Description = "A store directory (instead of --group)", Arity = ArgumentArity.ZeroOrOne };
        var json = JsonReport.Option();
        var command = new Command("images", "List checkpoints: of a group, or in a store directory") { group, dir, json };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            if (GroupCommands.GroupName(parse, group) is { } name)
                return GroupCommands.Images(name, parse.GetValue(json));
            string path = parse.GetValue(dir) ?? throw new UsageException("amber images needs --group NAME or a store directory");
            if (!Directory.Exists(path))
                throw new IOException($"{path} does not exist");
            var contents = new GroupStore(path).Scan();
            if (parse.GetValue(json))
            {
                Console.Out.WriteLine(ReportJson.Store(contents));
                return ExitCodes.Ok;
            }
            var lines = contents.Describe();
            foreach (var line in lines)
                Console.Out.WriteLine(line);
            if (lines.Count == 0)
                Console.Error.WriteLine($"no checkpoint in {path}");
            return ExitCodes.Ok;
        }));
        return command;
    }
}

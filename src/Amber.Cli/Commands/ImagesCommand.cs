using System.CommandLine;
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
            {
                if (parse.GetValue(json))
                    throw new UsageException("--json goes with a store directory (a group's images are listed by its coordinator, in lines)");
                return GroupCommands.Images(name);
            }
            string path = parse.GetValue(dir) ?? throw new UsageException("amber images needs --group NAME or a store directory");
            if (!Directory.Exists(path))
                throw new IOException($"{path} does not exist");
            var contents = new GroupStore(path).Scan();
            if (parse.GetValue(json))
            {
                Report(contents);
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

    /// <summary>Every checkpoint of the store in order, the damaged ones with their problem, and what is not one.</summary>
    private static void Report(StoreContents contents) => JsonReport.Write(w =>
    {
        var latest = contents.Checkpoints.LastOrDefault();
        w.WriteStartObject();
        w.WriteStartArray("checkpoints");
        foreach (var e in contents.Entries)
        {
            w.WriteStartObject();
            w.WriteString("name", e.Name);
            w.WriteString("path", e.Path);
            if (e.Checkpoint is { } c)
            {
                w.WriteString("created", c.Created);
                w.WriteString("kind", c.Parent.Length == 0 ? (c.Merged ? "full (merged)" : "full") : "incremental");
                w.WriteString("parent", c.Parent.Length == 0 ? null : c.Parent);
                w.WriteStrings("uses", c.Sources);
                w.WriteNumber("trees", c.Trees);
                w.WriteNumber("processes", c.Processes);
                w.WriteNumber("bytes", c.Bytes);
                w.WriteBoolean("latest", c == latest);
            }
            else
            {
                w.WriteString("damaged", e.Problem);
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStrings("unfinished", contents.Unfinished);
        w.WriteEndObject();
    });
}

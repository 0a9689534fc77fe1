using System.CommandLine;
using Amber.Coordinator.Control;
using Amber.Checkpoint;

namespace Amber.Cli.Commands;

/// <summary>amber checkpoint PID --images DIR (one process tree), or amber checkpoint --group NAME (through the coordinator).</summary>
public static class CheckpointCommand
{
    public static Command Create()
    {
        var pid = new Argument<int?>("pid") { Description = "The process (tree root) to checkpoint", Arity = ArgumentArity.ZeroOrOne };
        var images = new Option<string>("--images", "-D") { Description = "Directory to write the checkpoint into (must not exist, or be empty)" };
        var leaveRunning = new Option<bool>("--leave-running") { Description = "Let the process run on after the checkpoint (default: end it)" };
        var group = GroupCommands.GroupOption(required: false);
        var stop = new Option<bool>("--stop") { Description = "With --group: end the group's processes once saved (default: they run on)" };
        var full = new Option<bool>("--full") { Description = "With --group: a full checkpoint (default: incremental after the group's latest)" };
        var parent = new Option<string>("--parent") { Description = "An incremental checkpoint after this one: a checkpoint beside --images, by name (or a path to it)" };
        var storage = new Option<string[]>("--storage") { Description = "A directory captured at the same moment (rolled back by the restore); repeatable", AllowMultipleArgumentsPerToken = false };
        var compress = CompressOption();
        var encrypt = KeyOptions.Encrypt();
        var json = JsonReport.Option();
        var command = new Command("checkpoint", "Save a running process tree to an image directory, or a whole group") { pid, images, leaveRunning, group, stop, full, parent, storage, compress, encrypt, json };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            if (GroupCommands.GroupName(parse, group) is { } name)
            {
                if (parse.GetValue(pid) is not null || parse.GetValue(images) is not null || parse.GetValue(leaveRunning) || parse.GetValue(parent) is not null
                    || parse.GetValue(storage) is { Length: > 0 } || parse.GetValue(compress) is not null || parse.GetValue(encrypt) is not null)
                    throw new UsageException("with --group, give no PID, --images, --leave-running, --parent, --storage, --compress or --encrypt (the group's settings, --full and --stop apply)");
                return GroupCommands.Checkpoint(name, parse.GetValue(stop), parse.GetValue(full), parse.GetValue(json));
            }
            if (parse.GetValue(pid) is not int given)
                throw new UsageException("give the PID to checkpoint, or --group NAME");
            int target = OptionValues.Pid(given);
            string dir = parse.GetValue(images) ?? throw new UsageException("--images DIR is required with a PID");
            if (parse.GetValue(stop) || parse.GetValue(full))
                throw new UsageException("--stop and --full go with --group");
            var options = new CheckpointOptions(dir, parse.GetValue(leaveRunning))
            {
                Parent = parse.GetValue(parent) is { } earlier ? ParentBeside(earlier, dir) : null,
                Storage = [.. (parse.GetValue(storage) ?? []).Select(Path.GetFullPath)],
                Compression = ParseCompress(parse.GetValue(compress)),
                Key = KeyOptions.Load(parse.GetValue(encrypt)),
            };
            // The arguments are checked here; the work is done by a worker nothing the user sends reaches.
            if (CommandWorker.Current is not { } worker)
                return CommandWorker.Run(ownSession: true, inherits: []);
            var result = ProgressDisplay.Run("checkpoint", ProgressDisplay.Measure.Written, () => Checkpointer.Checkpoint(target, options with { BeforeEnd = _ => worker.MayEnd() ? null : "amber was interrupted" }, worker.Token));
            foreach (var w in result.Warnings)
                Console.Error.WriteLine($"amber: warning: {w}");
            if (parse.GetValue(json))
                Report(result, dir);
            string kept = result.Parent is null ? "" : $" (incremental after {result.Parent}: {result.PagesKept} pages kept there)";
            if (result.Storage is { } files)
                Console.Error.WriteLine($"storage: {files.Files} files, {files.FilesRead} read, {files.PagesWritten} blocks stored{(files.PagesShared > 0 ? $" ({files.PagesShared} shared by reflink)" : "")}{(result.Parent is null ? "" : $", {files.PagesKept} kept")}");
            Console.Error.WriteLine(
                $"checkpointed process {result.Pid}: {result.PagesWritten} pages{kept}, {result.ImageBytes / 1048576.0:0.0} MiB, frozen {result.FrozenFor.TotalMilliseconds:0} ms, total {result.Total.TotalMilliseconds:0} ms");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static void Report(CheckpointResult result, string dir) => JsonReport.Write(w =>
    {
        w.WriteStartObject();
        w.WriteString("images", Path.GetFullPath(dir));
        w.WriteNumber("pid", result.Pid);
        w.WriteNumbers("processes", result.Processes);
        w.WriteNumber("pages", result.PagesWritten);
        w.WriteNumber("pagesKept", result.PagesKept);
        w.WriteNumber("bytes", result.ImageBytes);
        w.WriteNumber("frozenMs", Math.Round(result.FrozenFor.TotalMilliseconds, 1));
        w.WriteNumber("totalMs", Math.Round(result.Total.TotalMilliseconds, 1));
        if (result.Parent is { } parent)
            w.WriteString("parent", parent);
        else
            w.WriteNull("parent");
        if (result.Storage is { } files)
        {
            w.WriteStartObject("storage");
            w.WriteNumber("files", files.Files);
            w.WriteNumber("filesRead", files.FilesRead);
            w.WriteNumber("blocksWritten", files.PagesWritten);
            w.WriteNumber("blocksKept", files.PagesKept);
            w.WriteNumber("blocksShared", files.PagesShared);
            w.WriteEndObject();
        }
        w.WriteStrings("warnings", result.Warnings);
        w.WriteEndObject();
    });

    /// <summary>
    /// Where --parent is: a bare name, beside --images (in the same store); a path as given, which
    /// must lead there too, since an incremental checkpoint names its parent and the checkpoints it
    /// keeps pages in by their names in its own store.
    /// </summary>
    private static string ParentBeside(string parent, string images)
    {
        string store = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(images)))!;
        string path = Path.TrimEndingDirectorySeparator(Path.GetFullPath(parent.Contains('/') ? parent : Path.Combine(store, parent)));
        if (Path.GetDirectoryName(path) != store)
            throw new UsageException($"--parent {parent} is {path}, not a checkpoint beside --images in {store} (an incremental checkpoint refers to its parent in the same store)");
        if (!Directory.Exists(path))
            throw new IOException($"the parent checkpoint {path} does not exist");
        return path;
    }

    public static Option<string> CompressOption() =>
        new("--compress") { Description = "Compress the memory pages stored: zstd or lz4 (default: none)" };

    public static Amber.Image.Schema.Codec ParseCompress(string? name)
    {
        try
        {
            return Amber.Image.PageCodec.Parse(name);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
    }
}

using System.CommandLine;
using Amber.Coordinator.Control;
using System.Globalization;
using Amber.Checkpoint;
using Amber.Checkpoint.Restore;

namespace Amber.Cli.Commands;

public static class RestoreCommand
{
    public static Command Create()
    {
        var images = new Option<string>("--images", "-D") { Description = "The checkpoint directory" };
        var group = GroupCommands.GroupOption(required: false);
        var from = new Option<string>("--from") { Description = "With --group: the checkpoint to restore (default: the latest; for a group with storage, the latest that holds it)" };
        var detach = new Option<bool>("--detach", "-d") { Description = "Return once the process runs; print its PID as the last line" };
        var inherit = new Option<string[]>("--inherit-fd")
        {
            Description = "Connect fd N of the restored process (a pipe, terminal or socket from outside) to amber's fd M: N or N=M",
            AllowMultipleArgumentsPerToken = false,
        };
        var pidWait = new Option<double>("--pid-wait") { Description = "Seconds to wait for the saved PID to become free (0: not at all)", DefaultValueFactory = _ => 10 };
        var trust = new Option<bool>("--trust") { Description = "Restore a checkpoint this host did not write (another machine's): its signature is not checked" };
        var check = new Option<bool>("--check") { Description = "Only check that the checkpoint can be restored here now (every file, every page checksum, what it needs of this machine); make nothing" };
        var tcpClose = new Option<bool>("--tcp-close") { Description = "Restore established TCP connections aborted (the program's next use fails) instead of live: for when their peers are gone" };
        var lazy = new Option<bool>("--lazy")
        {
            Description = "Run the processes before their memory is in: each page is placed when first touched, the rest pushed meanwhile (userfaultfd); amber stays until every page is in",
        };
        var json = JsonReport.Option();
        var key = KeyOptions.Key();
        var command = new Command("restore", "Bring a checkpointed process tree back with the same PIDs, or a whole group") { images, detach, inherit, pidWait, group, from, check, trust, tcpClose, lazy, key, json };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            if (GroupCommands.GroupName(parse, group) is { } name)
            {
                if (parse.GetValue(check))
                    throw new UsageException("--check goes with --images DIR (a group's checkpoints: amber verify --group NAME)");
                if (parse.GetValue(images) is not null || (parse.GetValue(inherit) ?? []).Length > 0 || parse.GetValue(key) is not null)
                    throw new UsageException("with --group, give no --images, --inherit-fd or --key (the group's store and key are used)");
                if (parse.GetValue(lazy))
                    throw new UsageException("--lazy goes with --images DIR (a group is restored by its coordinator, whose pages are placed at once)");
                return GroupCommands.Restore(name, parse.GetValue(from), parse.GetValue(json));
            }
            if (parse.GetValue(images) is null)
                throw new UsageException("--images DIR is required (or --group NAME)");
            var inherits = (parse.GetValue(inherit) ?? []).Select(ParseInherit).ToList();
            var imageKey = KeyOptions.Load(parse.GetValue(key));
            if (parse.GetValue(check))
                return Check(new RestoreOptions(parse.GetValue(images)!, Detach: true, inherits, TimeSpan.Zero) { Trust = parse.GetValue(trust), Key = imageKey }, parse.GetValue(json));
            var options = new RestoreOptions(parse.GetValue(images)!, parse.GetValue(detach), inherits,
                TimeSpan.FromSeconds(OptionValues.WaitSeconds(parse.GetValue(pidWait), "--pid-wait"))) { Trust = parse.GetValue(trust), TcpClose = parse.GetValue(tcpClose), Key = imageKey, Lazy = parse.GetValue(lazy) };
            // The arguments are checked here; the work is done by a worker a kill of this amber does not
            // reach, which makes the processes its children, in this session and group.
            if (CommandWorker.Current is not { } worker)
                return CommandWorker.Run(ownSession: false, [.. inherits.Select(i => i.Source)]);
            using var interrupted = new Cancellation();
            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(interrupted.Token, worker.Token);
            // The bar goes once the processes are made, before they run: from there on the terminal may be theirs.
            RestoreResult result;
            try
            {
                result = ProgressDisplay.Run("restore", ProgressDisplay.Measure.Read, handOver => Restorer.Restore(options with { BeforeRelease = handOver }, cancel.Token));
            }
            catch (OperationCanceledException)
            {
                throw new CheckpointException("interrupted; every process the restore had made was ended (files it had rolled back stay rolled back)");
            }
            if (result.Lazy is { } pager)
                WaitForPages(pager);
            foreach (var w in result.Warnings)
                Console.Error.WriteLine($"amber: warning: {w}");
            if (result.Storage is { } rollback)
                Console.Error.WriteLine($"storage rolled back: {rollback.FilesWritten} files written, {rollback.FilesKept} unchanged, {rollback.Removed} removed");
            if (parse.GetValue(json))
                Report(result);
            if (result.ExitCode is int code)
            {
                Console.Error.WriteLine($"restored process {result.Pid} exited with {code}");
                return code;
            }
            Console.Error.WriteLine($"restored process {result.Pid} in {result.Total.TotalMilliseconds:0} ms");
            if (!parse.GetValue(json))
                Console.Out.WriteLine(result.Pid.ToString(CultureInfo.InvariantCulture));
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>
    /// A lazy restore: the processes need this amber until every page is in (killed, amber would leave
    /// them with memory that reads as zero: the pager kills them first if it cannot go on).
    /// </summary>
    private static void WaitForPages(Checkpoint.Resources.Memory.LazyPager pager)
    {
        pager.WaitUntilAllIn();
        Console.Error.WriteLine($"lazy memory: {pager.PagesHandedOver * 4 / 1024} MiB, all in after {pager.Elapsed.TotalMilliseconds:0} ms: {pager.FaultedPages} pages placed on {pager.Faults} touches, {pager.PushedPages} pushed ahead");
    }

    /// <summary>amber restore --check: what a restore would say before making anything, and whether its PIDs are free now.</summary>
    private static void Report(RestoreResult result) => JsonReport.Write(w =>
    {
        w.WriteStartObject();
        w.WriteNumber("pid", result.Pid);
        w.WriteNumbers("roots", result.Roots);
        w.WriteNumbers("processes", result.Processes);
        w.WriteNumber("totalMs", Math.Round(result.Total.TotalMilliseconds, 1));
        if (result.ExitCode is int code)
            w.WriteNumber("exitCode", code);
        else
            w.WriteNull("exitCode");
        if (result.Storage is { } rollback)
        {
            w.WriteStartObject("storage");
            w.WriteNumber("filesWritten", rollback.FilesWritten);
            w.WriteNumber("filesKept", rollback.FilesKept);
            w.WriteNumber("removed", rollback.Removed);
            w.WriteEndObject();
        }
        w.WriteStrings("warnings", result.Warnings);
        w.WriteEndObject();
    });

    private static int Check(RestoreOptions options, bool json)
    {
        var (warnings, processes, taken) = Restorer.Check(options);
        foreach (var w in warnings)
            Console.Error.WriteLine($"amber: warning: {w}");
        if (json)
        {
            JsonReport.Write(w =>
            {
                w.WriteStartObject();
                w.WriteBoolean("restorable", true);
                w.WriteNumbers("processes", processes);
                w.WriteNumbers("pidsTaken", taken);
                w.WriteStrings("warnings", warnings);
                w.WriteEndObject();
            });
        }
        string pids = taken.Count == 0 ? "all its PIDs are free now"
            : $"PID{(taken.Count > 1 ? "s" : "")} {string.Join(", ", taken)} {(taken.Count > 1 ? "are" : "is")} taken now (by the checkpointed processes, still running?): they must be free when it is restored";
        Console.Error.WriteLine($"{options.ImagesDirectory} can be restored here: {processes.Count} process(es), every page checked; {pids}");
        return ExitCodes.Ok;
    }

    private static (int Fd, int Source) ParseInherit(string text)
    {
        var parts = text.Split('=');
        if (parts.Length is < 1 or > 2 || !int.TryParse(parts[0], out int fd) || fd < 0
            || (parts.Length == 2 && (!int.TryParse(parts[1], out _) || int.Parse(parts[1], CultureInfo.InvariantCulture) < 0)))
            throw new UsageException($"--inherit-fd expects N or N=M, got '{text}'");
        return (fd, parts.Length == 2 ? int.Parse(parts[1], CultureInfo.InvariantCulture) : fd);
    }
}

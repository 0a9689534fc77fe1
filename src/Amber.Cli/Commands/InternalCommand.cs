using System.CommandLine;
using System.Text.Json;
using Amber.Checkpoint;
using Amber.Checkpoint.Freeze;
using Amber.Checkpoint.Restore;
using Amber.Image;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Security;
using Amber.Coordinator.Workers;
using Amber.Kernel.Files;
using Amber.Kernel.Processes;

namespace Amber.Cli.Commands;

/// <summary>
/// What the coordinator runs amber for (not for people): the exec helper that starts a program in a
/// group's cgroup, and the workers that checkpoint and restore a group, reporting as one JSON line.
/// </summary>
public static class InternalCommand
{
    public static Command Create()
    {
        var command = new Command("internal", "Used by the coordinator") { Hidden = true };
        command.Subcommands.Add(ExecHelper());
        command.Subcommands.Add(CheckpointGroup());
        command.Subcommands.Add(RestoreGroup());
        command.Subcommands.Add(Merge());
        command.Subcommands.Add(Retain());
        command.Subcommands.Add(Access());
        return command;
    }

    /// <summary>Asks, as a user, whether that user may make and write in directories (see UserAccess).</summary>
    private static Command Access()
    {
        var uid = new Option<uint>("--uid") { Required = true };
        var gid = new Option<uint>("--gid") { Required = true };
        var create = new Option<string>("--create");
        var write = new Option<string[]>("--write") { AllowMultipleArgumentsPerToken = false };
        var command = new Command("access") { uid, gid, create, write };
        command.SetAction(parse => Report(() =>
        {
            Exec.BecomeUser(parse.GetValue(uid), parse.GetValue(gid));
            string? problem = UserAccess.CheckAsUser(parse.GetValue(uid), parse.GetValue(create), parse.GetValue(write) ?? []);
            return new WorkerReport { Ok = problem is null, Error = problem ?? "" };
        }));
        return command;
    }

    /// <summary>
    /// The group's worker lock (--lock), held for the worker's whole life: the coordinator removes what
    /// interrupted workers left in the store only while nobody holds it. A worker still at work from an
    /// earlier coordinator is waited for, a while.
    /// </summary>
    private static ExclusiveLock? HoldLock(string? path)
    {
        if (path is null)
            return null;
        var until = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if (ExclusiveLock.TryTake(path) is { } held)
                return held;
            if (DateTime.UtcNow > until)
                throw new IOException($"another worker of this group is still at work (it holds {path})");
            Thread.Sleep(20);
        }
    }

    private static Option<string> LockOption() => new("--lock") { Description = "The group's worker lock, held throughout" };

    private static Command Merge()
    {
        var images = new Option<string>("--images") { Required = true };
        var workerLock = LockOption();
        var keepChain = new Option<bool>("--keep-chain") { Description = "Leave the chain's earlier checkpoints: a retention policy decides what goes" };
        var key = KeyOptions.Key();
        var command = new Command("merge") { images, workerLock, keepChain, key };
        command.SetAction(parse => Report(() =>
        {
            using var held = HoldLock(parse.GetValue(workerLock));
            var result = CheckpointMerger.Merge(parse.GetRequiredValue(images), key: KeyOptions.Load(parse.GetValue(key)), removeChain: !parse.GetValue(keepChain));
            // The pages the merged checkpoint holds, copied in or kept in page files it linked.
            return new WorkerReport { Ok = true, Pages = result.Pages + result.PagesLinked, Bytes = result.Bytes, TotalMs = result.Total.TotalMilliseconds, Removed = [.. result.Removed] };
        }));
        return command;
    }

    /// <summary>A group's retention policy applied to its store.</summary>
    private static Command Retain()
    {
        var store = new Option<string>("--store") { Required = true };
        var keepLast = new Option<int>("--keep-last");
        var keepFor = new Option<double>("--keep-for-seconds");
        var workerLock = LockOption();
        var key = KeyOptions.Key();
        var command = new Command("retain") { store, keepLast, keepFor, workerLock, key };
        command.SetAction(parse => Report(() =>
        {
            using var held = HoldLock(parse.GetValue(workerLock));
            var policy = new RetentionPolicy(parse.GetValue(keepLast), TimeSpan.FromSeconds(parse.GetValue(keepFor)));
            var result = StoreRetention.Apply(parse.GetRequiredValue(store), policy, DateTimeOffset.UtcNow, KeyOptions.Load(parse.GetValue(key)));
            return new WorkerReport { Ok = true, TotalMs = result.Total.TotalMilliseconds, Merged = [.. result.Merged], Removed = [.. result.Removed] };
        }));
        return command;
    }

    private static Command ExecHelper()
    {
        var cgroup = new Option<string>("--cgroup") { Required = true };
        var uid = new Option<uint?>("--uid");
        var gid = new Option<uint?>("--gid");
        var unshare = new Option<string>("--unshare") { Description = "New namespaces of these kinds (uts,ipc,net,mnt) for the program, the loopback up in a new network one" };
        var hostname = new Option<string>("--hostname") { Description = "With --unshare uts: the new namespace's host name" };
        var privateTmp = new Option<bool>("--private-tmp") { Description = "With --unshare mnt: a tmpfs of the namespace's own on /tmp" };
        var binds = new Option<string[]>("--bind") { Description = "With --unshare mnt: SRC:DST, a bind mount made in the new namespace (repeatable)", AllowMultipleArgumentsPerToken = false };
        var proc = new Option<bool>("--proc") { Description = "With --unshare mnt, in a PID namespace of the group's own (this process its PID 1): a procfs of it on /proc" };
        var join = new Option<int?>("--join") { Description = "Join this process's namespaces (of the kinds --namespaces names)" };
        var joined = new Option<string>("--namespaces");
        var program = new Argument<string[]>("command") { Arity = ArgumentArity.OneOrMore };
        var command = new Command("exec") { cgroup, uid, gid, unshare, hostname, privateTmp, binds, proc, join, joined, program };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            // Into the group first: from here on everything this process becomes or forks is in it.
            Cgroup.At(parse.GetRequiredValue(cgroup)).Add(Environment.ProcessId);
            // Then its namespaces, while still root. This thread's: the one that becomes the program.
            if (parse.GetValue(unshare) is { } made)
            {
                var kinds = NamespaceKinds(made);
                string directory = Environment.CurrentDirectory;
                Namespaces.Make(kinds, parse.GetValue(hostname));
                if (kinds.Contains(NamespaceKind.Mount))
                {
                    GroupMounts.Make(parse.GetValue(privateTmp), parse.GetValue(binds) ?? [], parse.GetValue(proc));
                    // The working directory as the new tree has it (under /tmp: the group's own, or a bind).
                    StartIn(directory);
                }
            }
            if (parse.GetValue(join) is int member)
            {
                // Joining a mount namespace moves the thread to its root: back to where the program starts.
                string directory = Environment.CurrentDirectory;
                var kinds = NamespaceKinds(parse.GetValue(joined) ?? "");
                foreach (var kind in kinds)
                    Namespaces.Enter(member, kind);
                if (kinds.Contains(NamespaceKind.Mount))
                    StartIn(directory);
            }
            if (parse.GetValue(uid) is uint u)
                Exec.BecomeUser(u, parse.GetValue(gid) ?? u);
            var environment = Spawner.CurrentEnvironment();
            Exec.Replace(parse.GetRequiredValue(program), environment);
            return ExitCodes.Failed; // not reached
        }));
        return command;
    }

    /// <summary>Changes to <paramref name="directory"/> in the group's mount namespace, or says that it has none such.</summary>
    private static void StartIn(string directory)
    {
        if (!Directory.Exists(directory))
            throw new UsageException($"the working directory {directory} is not in the group's mount namespace (its /tmp is its own): start elsewhere, or --bind it");
        Directory.SetCurrentDirectory(directory);
    }

    private static List<NamespaceKind> NamespaceKinds(string list) =>
        [.. list.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(k => Namespaces.Parse(k) ?? throw new UsageException($"unknown namespace '{k}'"))];

    private static Command CheckpointGroup()
    {
        var group = new Option<string>("--group") { Required = true };
        var cgroup = new Option<string>("--cgroup") { Required = true };
        var images = new Option<string>("--images") { Required = true };
        var stop = new Option<bool>("--stop");
        var reconnect = new Option<string[]>("--reconnect") { AllowMultipleArgumentsPerToken = false };
        var parent = new Option<string>("--parent");
        var channel = new Option<int?>("--channel") { Description = "An inherited fd over which write trackers come in and go back" };
        var storage = new Option<string[]>("--storage") { AllowMultipleArgumentsPerToken = false };
        var storageExclude = new Option<string[]>("--storage-exclude") { AllowMultipleArgumentsPerToken = false };
        var compress = new Option<string>("--compress");
        var encrypt = KeyOptions.Encrypt();
        var workerLock = LockOption();
        var handOver = new Option<bool>("--hand-over") { Description = "With --stop and --channel: once committed, ask over the channel whether to end the processes (HandOver)" };
        var barrier = new Option<bool>("--barrier") { Description = "Without --stop, with --channel: ask over the channel whether to freeze, and once everything is read out of the frozen processes whether to go on (a group across nodes; HandOver)" };
        var command = new Command("checkpoint-group") { group, cgroup, images, stop, reconnect, parent, channel, storage, storageExclude, compress, encrypt, workerLock, handOver, barrier };
        command.SetAction(parse => Report(() =>
        {
            using var held = HoldLock(parse.GetValue(workerLock));
            using var link = parse.GetValue(channel) is int fd ? FdChannel.Inherited(fd) : null;
            var result = Checkpointer.CheckpointGroup(parse.GetRequiredValue(group), Cgroup.At(parse.GetRequiredValue(cgroup)),
                new CheckpointOptions(parse.GetRequiredValue(images), LeaveRunning: !parse.GetValue(stop))
                {
                    ReconnectTo = (parse.GetValue(reconnect) ?? []).ToHashSet(),
                    Parent = parse.GetValue(parent),
                    Trackers = link is null ? new Dictionary<int, (HeldFile, IReadOnlyList<(ulong, ulong)>)>() : TrackerMessages.ReceiveAll(link),
                    Track = link is not null,
                    Storage = parse.GetValue(storage) ?? [],
                    StorageExcluded = parse.GetValue(storageExclude) ?? [],
                    Compression = Amber.Image.PageCodec.Parse(parse.GetValue(compress)),
                    Key = KeyOptions.Load(parse.GetValue(encrypt)),
                    BeforeEnd = parse.GetValue(handOver) && link is not null ? sealedAt => HandOver.Ask(link, sealedAt) : null,
                    PagesThroughCache = parse.GetValue(handOver),
                    Ending = parse.GetValue(handOver) && link is not null ? () => HandOver.Ended(link) : null,
                    AtBarrier = parse.GetValue(barrier) && link is not null ? () => HandOver.Ask(link, HandOver.AtBarrier) : null,
                    BeforeFreeze = parse.GetValue(barrier) && link is not null ? () => HandOver.Ask(link, HandOver.BeforeFreeze) : null,
                });
            if (link is not null)
                TrackerMessages.SendAll(link, result.Trackers.Select(t => (t.Pid, t.Tracker, t.Ranges)));
            return new WorkerReport
            {
                Ok = true, Ended = result.Ended, Processes = [.. result.Processes], BarrierMs = result.Barrier.TotalMilliseconds, FrozenMs = result.FrozenFor.TotalMilliseconds, FrozenAtUnixMs = result.FrozenAtUnixMs, FrozenBeforeEndMs = result.FrozenBeforeEnd.TotalMilliseconds,
                TotalMs = result.Total.TotalMilliseconds, Pages = result.PagesWritten, Bytes = result.ImageBytes, Warnings = [.. result.Warnings],
                PagesKept = result.PagesKept, PagesSkipped = result.PagesSkipped,
                PagesCopiedBeforeTheFreeze = result.PagesCopiedBeforeTheFreeze, Parent = result.Parent ?? "",
                Storage = result.Storage is { } files ? $"{files.Files} files, {files.FilesRead} read, {files.PagesWritten} blocks stored{(files.PagesShared > 0 ? $" ({files.PagesShared} shared by reflink)" : "")}, {files.PagesKept} kept" : "",
            };
        }));
        return command;
    }

    /// <summary>The memory a restore worker started ahead faults in while it waits: room for a fragmented image of a few GiB of memory.</summary>
    private const long AheadBytes = 32L << 20;

    /// <summary>The buffer it reads metadata files into, faulted in too: a process image of 2–3 GiB of memory fits.</summary>
    private const int AheadMessageBytes = 8 << 20;

    private static Command RestoreGroup()
    {
        var images = new Option<string>("--images") { Required = true, Description = "The checkpoint; - for one said later over --hand-over (a worker started ahead of its restore)" };
        var cgroup = new Option<string>("--cgroup") { Required = true };
        var workerLock = LockOption();
        var requester = new Option<string>("--for") { Description = "UID:GID,GROUP...:CAPABILITIES: bring back only processes with credentials these hold" };
        var key = KeyOptions.Key();
        var channel = new Option<int?>("--hand-over") { Description = "An inherited fd over which to ask, once every process is made, whether to release them (HandOver)" };
        var lazy = new Option<bool>("--lazy") { Description = "Release them before their memory is in, place it, and report once it is" };
        var pagesFrom = new Option<int?>("--pages-from") { Description = "An inherited fd over which to ask for page data still arriving before reading it (PageNeeds)" };
        var command = new Command("restore-group") { images, cgroup, workerLock, requester, key, channel, lazy, pagesFrom };
        command.SetAction(parse => Report(() =>
        {
            using var held = HoldLock(parse.GetValue(workerLock));
            using var link = parse.GetValue(channel) is int fd ? FdChannel.Inherited(fd) : null;
            using var needs = parse.GetValue(pagesFrom) is int needsFd ? FdChannel.Inherited(needsFd) : null;
            if (needs is not null)
                PageArrivals.Install(PageNeeds.Asking(needs));
            string checkpoint = parse.GetRequiredValue(images);
            if (checkpoint == HandOver.Later)
            {
                if (link is null)
                    throw new UsageException($"--images {HandOver.Later} needs --hand-over");
                // Ready before it is asked: what a restore first touches, touched now (docs/kernel.md §13).
                NoCollections.Touch(AheadBytes);
                MessageBuffer.Prepare(AheadMessageBytes);
                HostKey.Warm();
                Faults.Check(FaultPoint.RestoreAhead);
                checkpoint = HandOver.AwaitImages(link, out string why) ?? throw new CheckpointException($"nothing was restored: {why}");
            }
            var result = Restorer.Restore(new RestoreOptions(checkpoint, Detach: true, [], TimeSpan.FromSeconds(10))
            {
                // The group's own processes were killed before (none may run at a restore): a PID held by a
                // process not on its way out is another's, and a restore across nodes must say so within its peers' timeout.
                PidWaitForOthers = TimeSpan.FromSeconds(1),
                Cgroup = Cgroup.At(parse.GetRequiredValue(cgroup)),
                Admit = parse.GetValue(requester) is { } who ? Requester.Parse(who).Refuses : null,
                Key = KeyOptions.Load(parse.GetValue(key)),
                Lazy = parse.GetValue(lazy),
                BeforeRelease = link is null ? null : () =>
                {
                    if (HandOver.Ask(link) is { } reason)
                        throw new CheckpointException($"the restored processes were not released: {reason}");
                },
            });
            if (link is not null)
                HandOver.Running(link);
            // They run, and need this worker until every page is in; on a failure the pager has killed them.
            result.Lazy?.WaitUntilAllIn();
            return new WorkerReport
            {
                Ok = true, Roots = [.. result.Roots], Processes = [.. result.Processes], TotalMs = result.Total.TotalMilliseconds, Warnings = [.. result.Warnings],
                Storage = result.Storage is { } r ? $"{r.FilesWritten} files written, {r.FilesKept} unchanged, {r.Removed} removed" : "",
            };
        }));
        return command;
    }

    /// <summary>The report on stdout, as one JSON line, success or failure (with the one-line reason).</summary>
    private static int Report(Func<WorkerReport> work)
    {
        WorkerReport report;
        try
        {
            using var progress = WorkerProgress.Start();
            report = work();
        }
        catch (Exception e)
        {
            report = new WorkerReport { Ok = false, Error = CliErrors.Describe(e) };
            if (Environment.GetEnvironmentVariable("AMBER_DEBUG") == "1")
                Console.Error.WriteLine(e);
        }
        Console.Out.WriteLine(JsonSerializer.Serialize(report, WorkerJson.Default.WorkerReport));
        return report.Ok ? ExitCodes.Ok : ExitCodes.Failed;
    }
}

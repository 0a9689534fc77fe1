using System.Globalization;
using Amber.Kernel.Proc;
using Amber.Kernel.Processes;

namespace Amber.Integration.Tests;

/// <summary>
/// Processes with UTS and IPC namespaces of their own (amber run --isolate uts,ipc, or a tree started
/// in them): checkpointed with them, restored into new ones made like them (the host name, the System V
/// objects inside), never into the host's; refused by name when a process outside the checkpoint shares them.
/// </summary>
public sealed class NamespaceTests
{
    /// <summary>The key isolated.c makes its System V objects under (0x414d4252).</summary>
    private const long Key = 0x414d4252;

    [Fact]
    public void TwoGroupsWithTheSameSystemVKeyAndHostNamesOfTheirOwnComeBackInNamespacesOfTheirOwn()
    {
        using var home = new GroupHome("isolate");
        string hostName = Namespaces.HostName();
        using var workA = new TestDir("isolate-a");
        using var workB = new TestDir("isolate-b");
        int a = home.Run("iso-a", ["--isolate", "uts,ipc", "--hostname", "alpha"], TargetBinaries.Get("isolated"), workA.Path);
        int b = home.Run("iso-b", ["--isolate", "uts,ipc"], TargetBinaries.Get("isolated"), workB.Path);
        var logA = new GroupMember(a, home.Home.GroupLog("iso-a"));
        var logB = new GroupMember(b, home.Home.GroupLog("iso-b"));
        // Both made their objects under one key with IPC_EXCL: each in an IPC namespace of its own.
        logA.WaitForLine("READY");
        logB.WaitForLine("READY");
        Assert.Contains("HOST alpha", logA.Lines());
        Assert.Contains("HOST iso-b", logB.Lines()); // the default: the group's name
        AssertOwnNamespaces(a, b);

        // A second program of a group starts in the group's namespaces.
        home.Run("iso-a", [], "/bin/sh", "-c", "echo second on $(cat /proc/sys/kernel/hostname); exec sleep 1000");
        logA.WaitForLine("second on alpha");

        // A tree from the host's namespaces would not come back in the group's: not taken.
        using (var stranger = TargetProcess.Start("/bin/sleep", ["1000"], workA.Path, logName: "stranger.log"))
        {
            home.Amber("attach", "--group", "iso-a", stranger.Pid.ToString(CultureInfo.InvariantCulture))
                .ShouldFail($"process {stranger.Pid} is not in the uts namespace of group iso-a (--isolate uts,ipc)");
        }

        // Both saved and ended, both back: in new namespaces of their own, each with its objects and name.
        home.Amber("checkpoint", "--group", "iso-a", "--stop").ShouldSucceed();
        home.Amber("checkpoint", "--group", "iso-b", "--stop").ShouldSucceed();
        GroupHome.WaitUntil(() => !logA.IsRunning && !logB.IsRunning, "both groups to end");
        // At once: each restore makes its own namespaces on its own thread.
        RestoreAtOnce(home, "iso-a", "iso-b");
        logA.WaitForTicks(5); // each tick checks the host name and the objects under the key
        logB.WaitForTicks(5);
        AssertOwnNamespaces(a, b);
        int second = home.Members("iso-a").Single(p => Amber.Kernel.Proc.ProcFs.ReadStatus(p).Name == "sleep");
        Assert.Equal(Namespaces.Of(a, NamespaceKind.Uts), Namespaces.Of(second, NamespaceKind.Uts));
        Assert.Equal(Namespaces.Of(a, NamespaceKind.Ipc), Namespaces.Of(second, NamespaceKind.Ipc));

        // Again from an incremental checkpoint, taken while running.
        home.Amber("checkpoint", "--group", "iso-a").ShouldSucceed();
        home.Amber("checkpoint", "--group", "iso-a", "--stop").ShouldSucceed();
        GroupHome.WaitUntil(() => !logA.IsRunning, "group iso-a to end");
        home.Amber("restore", "--group", "iso-a").ShouldSucceed();
        logA.WaitForTicks(5);
        AssertOwnNamespaces(a, b);

        Assert.Equal(hostName, Namespaces.HostName()); // the host's never changed
        File.WriteAllText(workA["stop"], "");
        File.WriteAllText(workB["stop"], "");
        logA.WaitForPass();
        logB.WaitForPass();
    }

    /// <summary>
    /// Two groups, each with a PID namespace of its own (amber run --isolate pid): the programs are
    /// PID 1 of theirs, with the same ids there. Both saved and ended, their old host PIDs taken by
    /// unrelated processes, both restored at once: each with its ids (getpid inside), parent links,
    /// thread and zombie as they were, under other host PIDs, which amber ps shows beside the ids inside.
    /// </summary>
    [Fact]
    public void TwoGroupsWithPidNamespacesOfTheirOwnComeBackWithTheirIdsWhateverPidsTheHostHasInUse()
    {
        using var home = new GroupHome("isolate-pid");
        using var workA = new TestDir("pidns-a");
        using var workB = new TestDir("pidns-b");
        int a = home.Run("pid-a", ["--isolate", "pid"], TargetBinaries.Get("pidns"), workA.Path);
        int b = home.Run("pid-b", ["--isolate", "pid,uts"], TargetBinaries.Get("pidns"), workB.Path);
        var logA = new GroupMember(a, home.Home.GroupLog("pid-a"));
        var logB = new GroupMember(b, home.Home.GroupLog("pid-b"));
        logA.WaitForLine("READY");
        logB.WaitForLine("READY");
        var idsA = Ids(logA);
        var idsB = Ids(logB);
        Assert.Equal(1, idsA[0]); // the first program is its namespace's PID 1
        Assert.Equal(idsA, idsB); // and every id is the same in both
        Assert.Equal(1, Namespaces.InnerPid(a));
        Assert.NotEqual(Namespaces.Of(a, NamespaceKind.Pid), Namespaces.Of(b, NamespaceKind.Pid));
        Assert.NotEqual(Namespaces.OfThisProcess(NamespaceKind.Pid), Namespaces.Of(a, NamespaceKind.Pid));
        // A second program of the group is born in its namespace.
        home.Run("pid-a", [], "/bin/sh", "-c", "echo second is $$; exec sleep 1000");
        GroupHome.WaitUntil(() => logA.Lines().Any(l => l.StartsWith("second is ", StringComparison.Ordinal)), "the second program");
        int secondInside = int.Parse(logA.Lines().First(l => l.StartsWith("second is ", StringComparison.Ordinal))["second is ".Length..], CultureInfo.InvariantCulture);
        Assert.DoesNotContain(secondInside, idsA);
        Assert.True(secondInside < 1000, $"the second program is {secondInside} inside: not an id of its namespace");
        AssertPsShowsBoth(home, "pid-a", a, 1);

        var hostA = HostIds(home.Members("pid-a"));
        var hostB = HostIds(home.Members("pid-b"));
        home.Amber("checkpoint", "--group", "pid-a", "--stop").ShouldSucceed();
        home.Amber("checkpoint", "--group", "pid-b", "--stop").ShouldSucceed();
        GroupHome.WaitUntil(() => !logA.IsRunning && !logB.IsRunning && home.Members("pid-a").Count == 0 && home.Members("pid-b").Count == 0, "both groups to end");
        Assert.Contains("pid (the PIDs shown are theirs in it)", AmberCli.Run("inspect", Path.Combine(home.Home.DefaultStore("pid-a"), "ckpt-000001")).ShouldSucceed().Stdout);

        // Every host PID they had (processes and threads) is someone else's now.
        using var holder = TargetProcess.Start(TargetBinaries.Get("holdpid"), [.. hostA.Concat(hostB).Select(p => p.ToString(CultureInfo.InvariantCulture))], workA.Path, logName: "holder.log");
        holder.WaitForLine(l => l == "READY", "READY");

        RestoreAtOnce(home, "pid-a", "pid-b");
        int rootA = RootOf(home, "pid-a"), rootB = RootOf(home, "pid-b");
        Assert.DoesNotContain(rootA, hostA);
        Assert.DoesNotContain(rootB, hostB);
        Assert.DoesNotContain(HostIds(home.Members("pid-a")), hostA.Contains);
        logA = new GroupMember(rootA, logA.Log);
        logB = new GroupMember(rootB, logB.Log);
        logA.WaitForTicks(5); // every tick each process checks its id and its parent's
        logB.WaitForTicks(5);
        Assert.Equal(1, Namespaces.InnerPid(rootA));
        Assert.Equal(1, Namespaces.InnerPid(rootB));
        Assert.NotEqual(Namespaces.Of(rootA, NamespaceKind.Pid), Namespaces.Of(rootB, NamespaceKind.Pid));
        int second = home.Members("pid-a").Single(p => Amber.Kernel.Proc.ProcFs.ReadStatus(p).Name == "sleep");
        Assert.Equal(secondInside, Namespaces.InnerPid(second));
        Assert.Equal(Namespaces.Of(rootA, NamespaceKind.Pid), Namespaces.Of(second, NamespaceKind.Pid));
        AssertPsShowsBoth(home, "pid-a", rootA, 1);

        // And again from an incremental checkpoint taken while running, under yet other host PIDs.
        home.Amber("checkpoint", "--group", "pid-a").ShouldSucceed();
        home.Amber("checkpoint", "--group", "pid-a", "--stop").ShouldSucceed();
        GroupHome.WaitUntil(() => !logA.IsRunning && home.Members("pid-a").Count == 0, "group pid-a to end");
        home.Amber("restore", "--group", "pid-a").ShouldSucceed();
        logA = new GroupMember(RootOf(home, "pid-a"), logA.Log);
        logA.WaitForTicks(5);

        File.WriteAllText(workA["stop"], "");
        File.WriteAllText(workB["stop"], "");
        logA.WaitForPass();
        logB.WaitForPass();
    }

    /// <summary>
    /// A tree whose root is PID 1 of a PID namespace made for it (unshare --pid --fork), checkpointed
    /// by its host PID: restored into a new PID namespace, as its PID 1 again, with every id inside as
    /// it was; a tree in a PID namespace it shares with a process outside it is refused by name.
    /// </summary>
    [Fact]
    public void ATreeThatIsPid1OfItsOwnPidNamespaceIsRestoredIntoANewOne()
    {
        using var dir = new TestDir("pidns-tree");
        using var unshare = TargetProcess.Start("/usr/bin/unshare", ["--pid", "--fork", "--kill-child", "--", TargetBinaries.Get("pidns"), dir.Path], dir.Path);
        unshare.WaitForLine(l => l == "READY", "READY");
        int root = ProcFs.ListChildren(unshare.Pid).Single();
        Assert.Equal(1, Namespaces.InnerPid(root));
        var before = new GroupMember(root, unshare.LogPath);
        Assert.Equal(1, Ids(before)[0]);
        before.WaitForTicks(2);

        // nsenter puts a stranger in the tree's PID namespace: it would be lost, so the tree is refused.
        using (var stranger = TargetProcess.Start("/usr/bin/nsenter", ["-t", root.ToString(CultureInfo.InvariantCulture), "--pid", "--", "/bin/sleep", "1000"], dir.Path, logName: "stranger.log"))
        {
            GroupHome.WaitUntil(() => ProcFs.ListChildren(stranger.Pid).Count == 1, "the stranger's child in the namespace");
            int inside = ProcFs.ListChildren(stranger.Pid).Single();
            AmberCli.Run("checkpoint", root.ToString(CultureInfo.InvariantCulture), "--images", dir["refused"])
                .ShouldFail($"a pid namespace shared with process {inside} ('sleep'), which is not checkpointed with it");
            Spawner.Kill(inside, 9);
            GroupHome.WaitUntil(() => !ProcFs.Exists(inside), "the stranger to be gone"); // collected by nsenter
        }
        before.WaitForTicks(2); // untouched

        CheckpointUnshared(unshare, root, dir["img"]);
        Assert.Contains("pid (the PIDs shown are theirs in it)", AmberCli.Run("inspect", dir["img"]).ShouldSucceed().Stdout);

        // A restore that fails once every process is made in the new namespace leaves none of them.
        AssertAFailedRestoreLeavesNoneRunning(dir["img"], "pidns");

        using var again = new DetachedRestore(dir["img"]);
        var after = new GroupMember(again.Pid, unshare.LogPath);
        Assert.Equal(1, Namespaces.InnerPid(again.Pid));
        Assert.NotEqual(Namespaces.OfThisProcess(NamespaceKind.Pid), Namespaces.Of(again.Pid, NamespaceKind.Pid));
        after.WaitForTicks(5); // each process checks every tick that its id and its parent's are as they were
        File.WriteAllText(dir["stop"], "");
        after.WaitForPass();
    }

    /// <summary>
    /// An fd on a file of /proc named by a PID (/proc/self/..., which the kernel names by the PID): in a
    /// PID namespace of its own that sees the host's /proc, the PID is the host's and a restore would
    /// change it, so the tree is refused by name and runs on; with a procfs of its own on /proc
    /// (--mount-proc) the PID is its own, and the tree comes back with the fd on its own maps (procself.c).
    /// </summary>
    [Fact]
    public void AFileOfProcNamedByAPidIsKeptOnlyWhereTheTreeHasAProcfsOfItsOwn()
    {
        using var dir = new TestDir("pidns-procself");
        // (procself.c itself sees that its /proc is not its namespace's: a shell keeps the fd here.)
        using (var hostProc = TargetProcess.Start("/usr/bin/unshare", ["--pid", "--fork", "--kill-child", "--", "/bin/sh", "-c", "exec 3</proc/self/status; echo READY; exec sleep 1000"], dir.Path, logName: "host-proc.log"))
        {
            hostProc.WaitForLine(l => l == "READY", "READY");
            int root = ProcFs.ListChildren(hostProc.Pid).Single();
            GroupHome.WaitUntil(() => ProcFs.ReadStatus(root).Name == "sleep", "the shell to become sleep");
            AmberCli.Run("checkpoint", root.ToString(CultureInfo.InvariantCulture), "--images", dir["refused"])
                .ShouldFail($"fd 3 (/proc/{root}/status) is a file of the host's /proc named by a PID, which a restore into a new PID namespace changes");
            Assert.False(Directory.Exists(dir["refused"]));
            Assert.Equal('S', ProcFs.ReadStatus(root).State); // untouched, running on
        }

        using var ownProc = TargetProcess.Start("/usr/bin/unshare", ["--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--", TargetBinaries.Get("procself"), dir.Path], dir.Path);
        ownProc.WaitForLine(l => l == "READY", "READY");
        int own = ProcFs.ListChildren(ownProc.Pid).Single();
        new GroupMember(own, ownProc.LogPath).WaitForTicks(2);
        CheckpointUnshared(ownProc, own, dir["img"]);
        using var again = new DetachedRestore(dir["img"]);
        var after = new GroupMember(again.Pid, ownProc.LogPath);
        after.WaitForTicks(5); // each tick: the fd still names this process's maps, at its offset
        File.WriteAllText(dir["stop"], "");
        after.WaitForPass();
    }

    /// <summary>
    /// A tree in a mount namespace of its own (unshare --mount --pid --fork --mount-proc) with a tmpfs
    /// holding files, a bind mount and a procfs of its PID namespace, checkpointed by PID: restored into
    /// a new mount namespace (and PID namespace) with the three made again, the tmpfs with what it held
    /// and a file open on it, none of it ever seen on the host.
    /// </summary>
    [Fact]
    public void ATreeInAMountNamespaceOfItsOwnComesBackWithItsTmpfsBindMountAndProcfs()
    {
        using var dir = new TestDir("mountns");
        foreach (var d in new[] { "t", "b", "src" })
            Directory.CreateDirectory(dir[d]);
        File.WriteAllText(Path.Combine(dir["src"], "host-file"), "from the host\n");
        string script = $"mount -t tmpfs -o size=4m,mode=0751 amber-test {dir["t"]} && printf 'hello from tmpfs\\n' > {dir["t"]}/greeting"
            + $" && mkdir -m 0700 {dir["t"]}/d && ln -s greeting {dir["t"]}/link && mount --bind {dir["src"]} {dir["b"]} && exec {TargetBinaries.Get("mounts")} {dir.Path}";
        using var unshare = TargetProcess.Start("/usr/bin/unshare", ["--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--", "/bin/sh", "-c", script], dir.Path);
        unshare.WaitForLine(l => l == "READY", "READY");
        int root = ProcFs.ListChildren(unshare.Pid).Single();
        var before = new GroupMember(root, unshare.LogPath);
        before.WaitForTicks(2);
        Assert.False(File.Exists(Path.Combine(dir["t"], "greeting")), "the tree's tmpfs is seen on the host");

        // unshare, the root's parent, is in its mount namespace too: never restored with it, it is let be.
        var checkpoint = CheckpointUnshared(unshare, root, dir["img"]);
        Assert.Contains($"process {unshare.Pid} ('unshare'), the parent of process {root}, shares its mnt namespace", checkpoint.Stderr);
        var inspected = AmberCli.Run("inspect", dir["img"]).ShouldSucceed().Stdout;
        Assert.Contains("mnt (3 mounts of its own: proc on /proc, tmpfs on", inspected);

        // A restore that fails once every process is made leaves nothing: no process, no mount.
        AssertAFailedRestoreLeavesNoneRunning(dir["img"], "mounts");
        Assert.DoesNotContain(MountInfo.OfThisProcess(), m => m.MountPoint.StartsWith(dir.Path, StringComparison.Ordinal));

        using var again = new DetachedRestore(dir["img"]);
        var after = new GroupMember(again.Pid, unshare.LogPath);
        Assert.NotEqual(Namespaces.OfThisProcess(NamespaceKind.Mount), Namespaces.Of(again.Pid, NamespaceKind.Mount));
        Assert.Equal(1, Namespaces.InnerPid(again.Pid));
        after.WaitForTicks(5); // every tick: the tmpfs and its files, the bind mount, /proc, the open file
        Assert.False(File.Exists(Path.Combine(dir["t"], "greeting")), "the restored tmpfs is seen on the host");
        Assert.DoesNotContain(MountInfo.OfThisProcess(), m => m.MountPoint.StartsWith(dir.Path, StringComparison.Ordinal));
        File.WriteAllText(dir["stop"], "");
        after.WaitForPass();
    }

    /// <summary>
    /// A tree in a mount namespace of its own lacks a mount of the host's: one the host made after the
    /// namespace was (it never had it) is no refusal, and the restore's copy of the host's has it; one
    /// the tree removed itself is refused by name, and the tree runs on.
    /// </summary>
    [Fact]
    public void AMountTheHostMadeLaterIsNoRefusalButOneTheTreeRemovedIs()
    {
        using var dir = new TestDir("mountns-later");
        foreach (var d in new[] { "early", "late" })
            Directory.CreateDirectory(dir[d]);
        ExternalProgram.Run("/usr/bin/mount", "-t", "tmpfs", "amber-early", dir["early"]).ShouldSucceed();
        try
        {
            using (var removes = TargetProcess.Start("/usr/bin/unshare", ["--mount", "--fork", "--kill-child", "--", "/bin/sh", "-c", $"umount {dir["early"]} && echo READY && exec sleep 1000"], dir.Path, logName: "removes.log"))
            {
                removes.WaitForLine(l => l == "READY", "READY");
                int child = ProcFs.ListChildren(removes.Pid).Single();
                AmberCli.Run("checkpoint", child.ToString(CultureInfo.InvariantCulture), "--images", dir["refused"])
                    .ShouldFail($"where {dir["early"]} (tmpfs) is not mounted is a mount namespace without a mount amber's had when it was made");
                Assert.Equal('S', ProcFs.ReadStatus(child).State);
            }

            using var unshare = TargetProcess.Start("/usr/bin/unshare", ["--mount", "--fork", "--kill-child", "--", "/bin/sh", "-c", "echo READY; exec sleep 1000"], dir.Path);
            unshare.WaitForLine(l => l == "READY", "READY");
            int root = ProcFs.ListChildren(unshare.Pid).Single();
            ExternalProgram.Run("/usr/bin/mount", "-t", "tmpfs", "amber-late", dir["late"]).ShouldSucceed();
            try
            {
                CheckpointUnshared(unshare, root, dir["img"]);
                using var again = new DetachedRestore(dir["img"]);
                Assert.Contains(MountInfo.Of(again.Pid), m => m.MountPoint == dir["late"]);
            }
            finally
            {
                ExternalProgram.Run("/usr/bin/umount", dir["late"]);
            }
        }
        finally
        {
            ExternalProgram.Run("/usr/bin/umount", dir["early"]);
        }
    }

    /// <summary>
    /// A group with a mount namespace of its own (--isolate pid,uts,ipc,mount, two --bind): the host's
    /// tree, a /tmp of its own (files in it never seen on the host), bind mounts (its work directory in
    /// the host's /tmp, which its own /tmp covers, and a directory shared with the host), a procfs of its
    /// PID namespace on /proc; with its host name and System V objects (isolated.c). Checkpointed,
    /// ended, restored: all as they were, the files of its /tmp too; a program started later joins it.
    /// </summary>
    [Fact]
    public void AGroupWithAMountNamespaceOfItsOwnKeepsItsTmpItsBindMountsAndItsProcfs()
    {
        using var home = new GroupHome("isolate-mount");
        using var work = new TestDir("group-mnt");
        using var shared = new TestDir("group-mnt-shared");
        string inside = "/srv/amber-test-" + Guid.NewGuid().ToString("N")[..8];
        string own = "/tmp/amber-own-" + Guid.NewGuid().ToString("N")[..8];
        Directory.CreateDirectory(inside);
        try
        {
            // Where the group mounts: none of it may show on the host (other tests mount elsewhere meanwhile).
            string[] groupTargets = [inside, work.Path, home.Home.Home!, "/tmp", "/proc"];
            int HostMountsAtGroupTargets() => MountInfo.OfThisProcess().Count(m => groupTargets.Contains(m.MountPoint));
            var hostMounts = HostMountsAtGroupTargets();
            File.WriteAllText(shared["from-host"], "host\n");
            // The group's log is under the test's AMBER_HOME, in the host's /tmp: refused unless bound.
            home.Amber(["run", "--group", "mnt", "--isolate", "mount", "--", "/bin/true"]).ShouldFail("is under /tmp, which a group with --isolate mount has of its own");
            string[] options = ["--isolate", "pid,uts,ipc,mount", "--hostname", "mnt", "--bind", $"{work.Path}:{work.Path}", "--bind", $"{shared.Path}:{inside}",
                "--bind", $"{home.Home.Home}:{home.Home.Home}"];
            // Started in its work directory, which the group's /tmp covers and its bind shows again (the program too).
            File.Copy(TargetBinaries.Get("isolated"), work["isolated"]);
            int root = home.RunIn(work.Path, "mnt", options, work["isolated"], work.Path);
            var member = new GroupMember(root, home.Home.GroupLog("mnt"));
            member.WaitForLine("READY");
            // Every half second: its /tmp file, the shared directory both ways, its procfs's PID 1.
            string checker = $"mkdir {own} && echo private > {own}/file && echo group > {inside}/from-group && echo MOUNTS READY; n=0; "
                + $"while [ ! -e {work["stop-mounts"]} ]; do n=$((n+1)); "
                + $"[ \"$(cat {own}/file)\" = private ] || {{ echo \"FAIL {own}/file: $(cat {own}/file 2>&1)\"; exit 1; }}; "
                + $"[ \"$(cat {inside}/from-host)\" = host ] || {{ echo \"FAIL {inside}/from-host\"; exit 1; }}; "
                + "[ \"$(cat /proc/1/comm)\" = isolated ] || { echo \"FAIL /proc/1 is $(cat /proc/1/comm)\"; exit 1; }; "
                + "echo \"mounts $n\"; sleep 0.2; done; echo MOUNTS PASS";
            home.RunIn(work.Path, "mnt", [], "/bin/sh", "-c", checker);
            member.WaitForLine("MOUNTS READY");
            WaitForMountChecks(member, 2);
            Assert.Equal("group\n", File.ReadAllText(shared["from-group"]));
            Assert.NotEqual(Namespaces.OfThisProcess(NamespaceKind.Mount), Namespaces.Of(root, NamespaceKind.Mount));
            Assert.False(Directory.Exists(own), $"the group's {own} is seen on the host");
            Assert.Equal(hostMounts, HostMountsAtGroupTargets());

            home.Amber("checkpoint", "--group", "mnt", "--stop").ShouldSucceed();
            GroupHome.WaitUntil(() => home.Members("mnt").Count == 0, "the group to end");
            string inspected = AmberCli.Run("inspect", Path.Combine(home.Home.DefaultStore("mnt"), "ckpt-000001")).ShouldSucceed().Stdout;
            Assert.Contains("proc on /proc", inspected);
            Assert.Contains("tmpfs on /tmp", inspected);
            Assert.Contains($"bind of {shared.Path} on {inside}", inspected);

            home.Amber("restore", "--group", "mnt").ShouldSucceed();
            member = new GroupMember(RootOf(home, "mnt"), member.Log);
            member.WaitForTicks(3); // the host name, the System V objects
            WaitForMountChecks(member, 3); // the file of its /tmp came back, the binds, the procfs
            Assert.Equal(hostMounts, HostMountsAtGroupTargets());
            // A program started now joins its mount namespace, and starts in its work directory.
            home.RunIn(work.Path, "mnt", [], "/bin/sh", "-c", $"echo \"joined $(cat {own}/file) $(cat /proc/1/comm) $(pwd)\"; exec sleep 1000");
            member.WaitForLine($"joined private isolated {work.Path}");

            File.WriteAllText(work["stop-mounts"], "");
            member.WaitForLine("MOUNTS PASS");
            File.WriteAllText(work["stop"], "");
            member.WaitForPass();
        }
        finally
        {
            Directory.Delete(inside, recursive: true);
        }
    }

    /// <summary>Waits for <paramref name="more"/> more "mounts N" lines of the checker; a FAIL fails the test.</summary>
    private static void WaitForMountChecks(GroupMember member, int more)
    {
        int logged = member.Lines().Count(l => l.StartsWith("mounts ", StringComparison.Ordinal));
        GroupHome.WaitUntil(() =>
        {
            var lines = member.Lines();
            Assert.DoesNotContain(lines, l => l.StartsWith("FAIL", StringComparison.Ordinal));
            return lines.Count(l => l.StartsWith("mounts ", StringComparison.Ordinal)) >= logged + more;
        }, $"{more} more mount checks (log ends with: {string.Join(" | ", member.Lines().TakeLast(3))})");
    }

    /// <summary>amber restore --group of each group, all at once (each on a thread of the test's).</summary>
    private static void RestoreAtOnce(GroupHome home, params string[] groups)
    {
        var runs = new AmberRun?[groups.Length];
        var threads = Enumerable.Range(0, groups.Length).Select(i => new Thread(() => runs[i] = home.Amber("restore", "--group", groups[i]))).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        for (int i = 0; i < groups.Length; i++)
        {
            Assert.True(runs[i] is not null, $"the restore of {groups[i]} did not run");
            runs[i]!.ShouldSucceed();
        }
    }

    /// <summary>amber checkpoint of <paramref name="root"/>, the child unshare --fork made: the tree ends, and unshare with it.</summary>
    private static AmberRun CheckpointUnshared(TargetProcess unshare, int root, string images)
    {
        var run = AmberCli.Run("checkpoint", root.ToString(CultureInfo.InvariantCulture), "--images", images).ShouldSucceed();
        Exited.Wait(unshare.Pid, TimeSpan.FromSeconds(10), "unshare, once its child was killed");
        unshare.MarkEnded();
        return run;
    }

    /// <summary>A restore that fails once every process is made (AMBER_FAULT=RestoreBeforeRelease) leaves none of them running.</summary>
    private static void AssertAFailedRestoreLeavesNoneRunning(string images, string program)
    {
        int running = Running(program);
        AmberCli.Run(["restore", "--images", images, "--detach"], env: new Dictionary<string, string> { ["AMBER_FAULT"] = "RestoreBeforeRelease" })
            .ShouldFail("injected fault at RestoreBeforeRelease");
        Assert.Equal(running, Running(program));
    }

    /// <summary>A tree restored with --detach: its root, a child of the test's (a subreaper), ended and collected when disposed.</summary>
    private sealed class DetachedRestore(string images) : IDisposable
    {
        public int Pid { get; } = int.Parse(AmberCli.Run("restore", "--images", images, "--detach").ShouldSucceed().LastStdoutLine, CultureInfo.InvariantCulture);

        public void Dispose()
        {
            Spawner.Kill(Pid, 9);
            Spawner.TryReap(Pid, out _);
        }
    }

    /// <summary>How many processes of that name run (a zombie does not).</summary>
    private static int Running(string name) => ProcFs.ListProcesses().Count(p => ProcFs.TryReadStatus(p, out var s) && s is not null && s.Name == name && s.State != 'Z');

    /// <summary>The ids pidns.c printed: itself, its child, grandchild, thread and zombie.</summary>
    private static List<int> Ids(GroupMember member) =>
        [.. member.Lines().Single(l => l.StartsWith("PIDS ", StringComparison.Ordinal)).Split(' ').Skip(1).Select(t => int.Parse(t, CultureInfo.InvariantCulture))];

    /// <summary>Every process's and thread's host id.</summary>
    private static List<int> HostIds(IEnumerable<int> processes) =>
        [.. processes.SelectMany(p => Directory.EnumerateDirectories($"/proc/{p}/task").Select(t => int.Parse(Path.GetFileName(t), CultureInfo.InvariantCulture)))];

    /// <summary>The group's process that is PID 1 of its namespace, by its host PID.</summary>
    private static int RootOf(GroupHome home, string group) => home.Members(group).Single(IsNamespaceRoot);

    private static bool IsNamespaceRoot(int pid)
    {
        try
        {
            return Namespaces.InnerPid(pid) == 1;
        }
        catch (Amber.Kernel.TargetGoneException)
        {
            return false; // a member that ended since it was listed (a command its shell ran)
        }
    }

    /// <summary>amber ps (GROUP PID NSPID ...) shows the host PID and the PID inside.</summary>
    private static void AssertPsShowsBoth(GroupHome home, string group, int hostPid, int inside)
    {
        GroupHome.WaitUntil(() => home.Amber("ps", "--group", group).ShouldSucceed().Stdout.Split('\n').Skip(1)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Any(f => f.Length > 2 && f[1] == $"{hostPid}" && f[2] == $"{inside}"),
            $"amber ps to show process {hostPid} as {inside} inside");
    }

    [Fact]
    public void ATreeStartedInNamespacesOfItsOwnIsCheckpointedAndRestoredIntoNewOnes()
    {
        using var dir = new TestDir("isolate-tree");
        using var target = TargetProcess.Start("/usr/bin/unshare", ["--uts", "--ipc", "--", "/bin/sh", "-c", $"hostname tree-host && exec {TargetBinaries.Get("isolated")} {dir.Path}"], dir.Path);
        target.WaitForLine(l => l == "READY", "READY");
        Assert.Contains("HOST tree-host", target.Lines());
        target.WaitForTicks(2);

        var tree = target.Tree().Skip(1).ToList();
        AmberCli.Run("checkpoint", target.Pid.ToString(CultureInfo.InvariantCulture), "--images", dir["img"]).ShouldSucceed();
        target.ReapKilled(tree);

        // A restore that fails after the namespaces and the processes in them were made leaves nothing:
        // no process, and so no namespace (nothing holds one) and no System V object on the host.
        AmberCli.Run(["restore", "--images", dir["img"], "--detach"], env: new Dictionary<string, string> { ["AMBER_FAULT"] = "RestoreBeforeRelease" })
            .ShouldFail("injected fault at RestoreBeforeRelease");
        Assert.False(target.IsRunning);
        Assert.DoesNotContain(tree, p => Amber.Kernel.Proc.ProcFs.TryReadStatus(p, out var s) && s is not null && s.State != 'Z');
        Assert.DoesNotContain(SystemVKeysOnTheHost(), k => k == Key);

        var restored = AmberCli.Run("restore", "--images", dir["img"], "--detach").ShouldSucceed();
        Assert.Equal(target.Pid.ToString(CultureInfo.InvariantCulture), restored.LastStdoutLine);
        target.Restored(); // ended by the test, even if it fails from here on
        var inspected = AmberCli.Run("inspect", dir["img"]).ShouldSucceed().Stdout;
        Assert.Contains("requires namespaces", inspected);
        Assert.Contains("namespaces of its own: uts (host name tree-host, domain name (none)) ipc", inspected);
        target.WaitForTicks(5);
        Assert.NotEqual(Namespaces.OfThisProcess(NamespaceKind.Uts), Namespaces.Of(target.Pid, NamespaceKind.Uts));
        Assert.NotEqual(Namespaces.OfThisProcess(NamespaceKind.Ipc), Namespaces.Of(target.Pid, NamespaceKind.Ipc));
        Assert.DoesNotContain(SystemVKeysOnTheHost(), k => k == Key);
        target.StopAndVerify();
    }

    [Fact]
    public void NamespacesSharedWithAProcessOutsideTheCheckpointAreRefusedByName()
    {
        using var dir = new TestDir("isolate-shared");
        using var target = TargetProcess.Start("/usr/bin/unshare", ["--uts", "--ipc", "--", TargetBinaries.Get("isolated"), dir.Path], dir.Path);
        target.WaitForLine(l => l == "READY", "READY");
        using var outsider = TargetProcess.Start("/usr/bin/nsenter", ["-t", target.Pid.ToString(CultureInfo.InvariantCulture), "--uts", "--ipc", "--", "/bin/sleep", "1000"], dir.Path, logName: "outsider.log");
        GroupHome.WaitUntil(() => Namespaces.Of(outsider.Pid, NamespaceKind.Uts) == Namespaces.Of(target.Pid, NamespaceKind.Uts), "the outsider in the target's namespaces");

        AmberCli.Run("checkpoint", target.Pid.ToString(CultureInfo.InvariantCulture), "--images", dir["img"])
            .ShouldFail($"namespace shared with process {outsider.Pid} ('sleep'), which is not checkpointed with it");
        Assert.False(Directory.Exists(dir["img"]));
        target.WaitForTicks(3); // untouched, running on
        target.StopAndVerify();
    }

    /// <summary>
    /// Two groups with network namespaces of their own, each with a listener on the same port of
    /// 127.0.0.1 (possible only apart) and a TCP connection streaming both ways inside: both saved,
    /// ended and restored into new network namespaces, where the port is theirs again and the stream
    /// goes on without a byte lost; nothing of theirs listens on the host.
    /// </summary>
    [Fact]
    public void TwoGroupsWithNetworkNamespacesOfTheirOwnKeepTheSamePortAndTheirConnections()
    {
        using var home = new GroupHome("isolate-net");
        int port = Http.FreePort();
        string listener = $"""
            import socket, sys, time
            try:
                s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(8)
                print('READY', flush=True)
                for n in range(1, 1000000):
                    c = socket.create_connection(('127.0.0.1', {port}), timeout=5)
                    a, _ = s.accept()
                    c.sendall(b'%d' % n)
                    if a.recv(16) != b'%d' % n:
                        print('FAIL echo %d' % n, flush=True); sys.exit(1)
                    c.close(); a.close()
                    print('tick %d' % n, flush=True)
                    time.sleep(0.05)
            except Exception as e:
                print('FAIL %r' % e, flush=True); sys.exit(1)
            """;
        var groups = new[] { "net-a", "net-b" };
        var work = groups.Select(g => new TestDir($"isolate-{g}")).ToList();
        try
        {
            var listeners = new List<GroupMember>();
            foreach (var (group, dir) in groups.Zip(work))
            {
                int pid = home.Run(group, ["--isolate", "net"], "/usr/bin/python3", "-c", listener);
                listeners.Add(new GroupMember(pid, home.Home.GroupLog(group)));
                home.Run(group, [], TargetBinaries.Get("tcpstream"), "both", dir.Path);
            }
            foreach (var member in listeners)
                member.WaitForTicks(3);
            foreach (var dir in work)
                TcpStreamLogs.WaitForReceived(dir, 1 << 20);
            Assert.NotEqual(Namespaces.Of(listeners[0].Pid, NamespaceKind.Net), Namespaces.Of(listeners[1].Pid, NamespaceKind.Net));
            Assert.False(Http.TryConnect(port), $"something listens on the host's 127.0.0.1:{port}");

            foreach (var group in groups)
                home.Amber("checkpoint", "--group", group, "--stop").ShouldSucceed();
            GroupHome.WaitUntil(() => listeners.All(m => !m.IsRunning), "both groups to end");
            foreach (var group in groups)
                home.Amber("restore", "--group", group).ShouldSucceed();
            foreach (var member in listeners)
                member.WaitForTicks(5); // each tick connects to its own port
            foreach (var dir in work)
                TcpStreamLogs.WaitForReceived(dir, TcpStreamLogs.Received(dir) + (1 << 20)); // the stream goes on, every byte checked
            foreach (var member in listeners)
            {
                Assert.NotEqual(Namespaces.OfThisProcess(NamespaceKind.Net), Namespaces.Of(member.Pid, NamespaceKind.Net));
                Assert.Equal(Namespaces.OfThisProcess(NamespaceKind.Uts), Namespaces.Of(member.Pid, NamespaceKind.Uts)); // only what was asked for
            }
            Assert.NotEqual(Namespaces.Of(listeners[0].Pid, NamespaceKind.Net), Namespaces.Of(listeners[1].Pid, NamespaceKind.Net));
            Assert.False(Http.TryConnect(port), $"something listens on the host's 127.0.0.1:{port}");

            foreach (var dir in work)
                File.WriteAllText(dir["stop"], "");
            foreach (var dir in work)
            {
                GroupHome.WaitUntil(() => TcpStreamLogs.LastLine(dir["server.log"]).StartsWith("PASS", StringComparison.Ordinal) && TcpStreamLogs.LastLine(dir["client.log"]).StartsWith("PASS", StringComparison.Ordinal),
                    $"PASS from both ends in {dir.Path} (server: {TcpStreamLogs.LastLine(dir["server.log"])}; client: {TcpStreamLogs.LastLine(dir["client.log"])})");
            }
        }
        finally
        {
            foreach (var dir in work)
                dir.Dispose();
        }
    }

    [Fact]
    public void ATreeWithANetworkNamespaceOfItsOwnComesBackInANewOneWithItsConnection()
    {
        using var dir = new TestDir("isolate-net-tree");
        using var target = TargetProcess.Start("/usr/bin/unshare", ["--net", "--", "/bin/sh", "-c", $"ip link set lo up && exec {TargetBinaries.Get("tcpstream")} both {dir.Path}"], dir.Path, logName: "server.log");
        target.WaitForLine(l => l.StartsWith("CONN", StringComparison.Ordinal), "CONN");
        TcpStreamLogs.WaitForReceived(dir, 1 << 20);
        var tree = target.Tree().Skip(1).ToList();
        AmberCli.Run("checkpoint", target.Pid.ToString(CultureInfo.InvariantCulture), "--images", dir["img"]).ShouldSucceed();
        target.ReapKilled(tree);
        AmberCli.Run("restore", "--images", dir["img"], "--detach").ShouldSucceed();
        target.Restored();
        Assert.Contains("namespaces of its own: net (loopback up)", AmberCli.Run("inspect", dir["img"]).ShouldSucceed().Stdout);
        Assert.NotEqual(Namespaces.OfThisProcess(NamespaceKind.Net), Namespaces.Of(target.Pid, NamespaceKind.Net));
        TcpStreamLogs.WaitForReceived(dir, TcpStreamLogs.Received(dir) + (1 << 20));
        target.StopAndVerify();
        Assert.StartsWith("PASS", TcpStreamLogs.LastLine(dir["client.log"]), StringComparison.Ordinal);
    }

    [Fact]
    public void IsolationOptionsAreCheckedBeforeAnythingIsMade()
    {
        using var home = new GroupHome("isolate-options");
        home.Amber("run", "--group", "x", "--isolate", "pid,uts,pid", "--", "/bin/true").ShouldBeUsageError("--isolate names a namespace twice");
        home.Amber("run", "--group", "x", "--bind", "/srv", "--", "/bin/true").ShouldBeUsageError("--bind /srv: not SRC:DST");
        home.Amber("run", "--group", "x", "--bind", "srv:/srv", "--", "/bin/true").ShouldBeUsageError("the source 'srv' is not absolute");
        home.Amber("run", "--group", "x", "--bind", "/srv:/a/../b", "--", "/bin/true").ShouldBeUsageError("the mount point '/a/../b' is not canonical");
        home.Amber("run", "--group", "x", "--bind", "/srv:/proc/sys", "--", "/bin/true").ShouldBeUsageError("/proc/sys cannot be a mount point of a group's");
        home.Amber("run", "--group", "x", "--isolate", "user", "--", "/bin/true").ShouldBeUsageError("user namespaces are not supported");
        home.Amber("run", "--group", "x", "--hostname", "h", "--", "/bin/true").ShouldBeUsageError("--hostname needs --isolate uts");
        home.Amber("run", "--group", "x", "--isolate", "disk", "--", "/bin/true").ShouldBeUsageError("unknown namespace 'disk'");
        Assert.False(File.Exists(home.Home.ControlSocket), "the coordinator was started for a request refused on the spot");
    }

    private static void AssertOwnNamespaces(int a, int b)
    {
        foreach (var kind in new[] { NamespaceKind.Uts, NamespaceKind.Ipc })
        {
            string? ofA = Namespaces.Of(a, kind), ofB = Namespaces.Of(b, kind), host = Namespaces.OfThisProcess(kind);
            Assert.NotNull(ofA);
            Assert.NotEqual(host, ofA);
            Assert.NotEqual(host, ofB);
            Assert.NotEqual(ofA, ofB);
        }
        Assert.DoesNotContain(SystemVKeysOnTheHost(), k => k == Key);
    }

    /// <summary>The keys of the System V segments in the host's IPC namespace (this test's).</summary>
    private static List<long> SystemVKeysOnTheHost() =>
        [.. File.ReadLines("/proc/sysvipc/shm").Skip(1).Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], CultureInfo.InvariantCulture))];
}

using System.Globalization;
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
        home.Amber("restore", "--group", "iso-a").ShouldSucceed();
        home.Amber("restore", "--group", "iso-b").ShouldSucceed();
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

    [Fact]
    public void ATreeStartedInNamespacesOfItsOwnIsCheckpointedAndRestoredIntoNewOnes()
    {
        using var dir = new TestDir("isolate-tree");
        using var target = TargetProcess.Start("/usr/bin/unshare", ["--uts", "--ipc", "--", "/bin/sh", "-c", $"hostname tree-host && exec {TargetBinaries.Get("isolated")} {dir.Path}"], dir.Path);
        target.WaitForLine(l => l == "READY", "READY");
        Assert.Contains("HOST tree-host", target.Lines());
        target.WaitForTicks(2);

        Cycle.CheckpointKillRestore(target, dir["img"]);
        target.Restored(); // ended by the test, even if it fails from here on
        var inspected = AmberCli.Run("inspect", dir["img"]).ShouldSucceed().Stdout;
        Assert.Contains("requires namespaces", inspected);
        Assert.Contains("namespaces of its own: uts (host name tree-host, domain name (none)) ipc", inspected);
        target.WaitForTicks(5);
        Assert.NotEqual(Namespaces.OfHost(NamespaceKind.Uts), Namespaces.Of(target.Pid, NamespaceKind.Uts));
        Assert.NotEqual(Namespaces.OfHost(NamespaceKind.Ipc), Namespaces.Of(target.Pid, NamespaceKind.Ipc));
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

    [Fact]
    public void IsolationOptionsAreCheckedBeforeAnythingIsMade()
    {
        using var home = new GroupHome("isolate-options");
        home.Amber("run", "--group", "x", "--isolate", "uts,pid", "--", "/bin/true").ShouldBeUsageError("--isolate pid is not supported yet");
        home.Amber("run", "--group", "x", "--isolate", "user", "--", "/bin/true").ShouldBeUsageError("user namespaces are not supported");
        home.Amber("run", "--group", "x", "--hostname", "h", "--", "/bin/true").ShouldBeUsageError("--hostname needs --isolate uts");
        home.Amber("run", "--group", "x", "--isolate", "disk", "--", "/bin/true").ShouldBeUsageError("unknown namespace 'disk'");
        Assert.False(File.Exists(home.Home.ControlSocket), "the coordinator was started for a request refused on the spot");
    }

    private static void AssertOwnNamespaces(int a, int b)
    {
        foreach (var kind in new[] { NamespaceKind.Uts, NamespaceKind.Ipc })
        {
            string? ofA = Namespaces.Of(a, kind), ofB = Namespaces.Of(b, kind), host = Namespaces.OfHost(kind);
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

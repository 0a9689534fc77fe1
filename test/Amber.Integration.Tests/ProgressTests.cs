using System.Globalization;

namespace Amber.Integration.Tests;

/// <summary>
/// The progress bar: drawn on standard error when it is a terminal (a pseudo-terminal made by
/// script(1) here) and the operation lasts a moment, never when standard error is a pipe or file.
/// </summary>
public sealed class ProgressTests
{
    [Fact]
    public void AGigabyteCheckpointShowsItsProgressOnATerminalAndNothingThroughAPipe()
    {
        using var dir = new TestDir("progress");
        using var target = TargetProcess.StartC("counter", dir, "1024");
        target.WaitForTicks(2);
        string pid = target.Pid.ToString(CultureInfo.InvariantCulture);

        // On a terminal: the bar, with the operation, bytes and rate, then cleared before the usual line.
        var tty = OnTerminal($"checkpoint {pid} --images {dir["tty"]} --leave-running");
        Assert.Contains("checkpoint", tty);
        Assert.Matches(@"\d+\.\d MiB, \d+ MiB/s", tty);
        Assert.Contains("\x1b[", tty); // drawn with escape sequences
        Assert.Matches(@"checkpointed process \d+: \d+ pages", tty);

        // Through a pipe: only the usual line, no bar, no escape sequence.
        var piped = AmberCli.Run("checkpoint", pid, "--images", dir["pipe"]).ShouldSucceed();
        Assert.DoesNotContain("MiB/s", piped.Stderr);
        Assert.DoesNotContain("\x1b", piped.Stderr);
        target.ReapKilled();

        // Verify knows what it has to read: the bar shows how much of it.
        var verify = OnTerminal($"verify {dir["pipe"]}");
        Assert.Matches(@"verify .*\d+\.\d/\d+\.\d MiB \(\d+%\), \d+ MiB/s", verify);
        Assert.Contains("1 checkpoint(s) verified", verify);

        // Restored (through a pipe: a process restored from a terminal that then closes gets its hang-up),
        // the program carries on exactly: the checkpoints the bars were drawn for are whole.
        var restored = AmberCli.Run("restore", "--images", dir["pipe"], "--detach").ShouldSucceed();
        Assert.DoesNotContain("\x1b", restored.Stderr);
        target.Restored();
        target.WaitForTicks(3);
        target.StopAndVerify();
    }

    /// <summary>
    /// The --group forms: the coordinator's worker does the work, the CLI draws the progress it
    /// reports; a CLI through a pipe does not ask for it and prints what it always did.
    /// </summary>
    [Fact]
    public void AGroupsCheckpointRestoreVerifyAndMergeShowTheCoordinatorsProgress()
    {
        using var home = new GroupHome("progress-group");
        using var work = new TestDir("progress-group-work");
        int pid = home.Run("big", [], TargetBinaries.Get("counter"), work.Path, "1024");
        var member = new GroupMember(pid, home.Home.GroupLog("big"));
        member.WaitForTicks(2);

        var taken = OnTerminal("checkpoint --group big", home.Home.Home!);
        Assert.Matches(@"checkpoint(?: \([^)]*\))? .*\d+\.\d MiB, \d+ MiB/s", taken);
        Assert.Contains("\x1b[", taken);
        Assert.Contains("checkpointed group big as ckpt-000001", taken);
        member.WaitForTicks(2);
        var second = OnTerminal("checkpoint --group big --stop", home.Home.Home!);
        Assert.Contains("checkpointed group big as ckpt-000002", second);
        GroupHome.WaitUntil(() => !member.IsRunning, "the group to end after checkpoint --stop");

        // Verify knows what it reads: the bar shows how much of it.
        var verified = OnTerminal("verify --group big", home.Home.Home!);
        Assert.Matches(@"verify .*\d+\.\d/\d+\.\d MiB \(\d+%\), \d+ MiB/s", verified);
        Assert.Contains("2 checkpoint(s) verified", verified);
        var merged = OnTerminal("merge --group big", home.Home.Home!);
        Assert.Contains("merged group big's ckpt-000002 into a full checkpoint", merged);

        // Through a pipe: no bar, no escape sequence, the same lines as ever.
        var restored = home.Amber("restore", "--group", "big").ShouldSucceed();
        Assert.DoesNotContain("\x1b", restored.Stderr);
        Assert.DoesNotContain("MiB/s", restored.Stderr);
        Assert.Contains("restored group big from ckpt-000002", restored.Stderr);
        member.WaitForTicks(3);
        File.WriteAllText(work["stop"], "");
        member.WaitForPass();
    }

    /// <summary>amber ARGS run under script(1): a pseudo-terminal for its standard streams; what it drew there.</summary>
    private static string OnTerminal(string args, string? amberHome = null)
    {
        // A wide terminal: the bar's line is not wrapped.
        string home = amberHome is null ? "" : $"AMBER_HOME={amberHome} ";
        string command = $"stty cols 200; env {home}TERM=xterm-256color {Repo.Amber} {args}";
        var run = ExternalProgram.Run("/usr/bin/script", "--quiet", "--return", "--command", command, "/dev/null");
        Assert.True(run.ExitCode == 0, $"{command} under script failed ({run.ExitCode}): {run.Stdout} {run.Stderr}");
        return run.Stdout;
    }
}

using Amber.Kernel.Files;
using Amber.Kernel.Processes;
using Amber.Kernel.Proc;

namespace Amber.Integration.Tests;

/// <summary>
/// A program blocked in read() on a pipe from outside. The pipe is handed back at restore with
/// --inherit-fd 0, and what the test wrote while the program was dead is waiting in it.
/// </summary>
public sealed class PipeTests
{
    [Fact]
    public void ReaderBlockedInReadCarriesOnWithTheSamePipe()
    {
        using var dir = new TestDir("pipe");
        using var pipe = new Pipe();
        using var target = TargetProcess.Start(TargetBinaries.Get("piperead"), [dir.Path], dir.Path, stdinFd: pipe.ReadFd);
        target.WaitForLine(l => l == "READY", "READY");
        int seq = 0;
        void Send(int count)
        {
            var text = new System.Text.StringBuilder();
            for (int i = 0; i < count; i++)
                text.Append("seq ").Append(++seq).Append('\n');
            pipe.Write(text.ToString());
        }
        Send(100);
        target.WaitForLine(l => l == "got 100", "'got 100'");
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir[$"img{cycle}"]).ShouldSucceed();
            target.ReapKilled();
            Send(50); // in flight while nobody reads
            var restored = AmberCli.Run(["restore", "--images", dir[$"img{cycle}"], "--detach", "--inherit-fd", "0"], stdinFd: pipe.ReadFd).ShouldSucceed();
            Assert.Equal(target.Pid.ToString(), restored.LastStdoutLine);
            Assert.DoesNotContain("/dev/null", restored.Stderr);
            target.WaitForLine(l => l == $"got {seq}", $"'got {seq}'");
            Send(25);
            target.WaitForLine(l => l == $"got {seq}", $"'got {seq}'");
        }
        pipe.Write("stop\n");
        target.FinishAndVerify();
        Assert.Equal($"PASS {seq}", target.Lines()[^1]);
    }

    /// <summary>
    /// A pipe end beyond stdio whose other end a process outside holds cannot come back as it was:
    /// refused, naming that process. One whose other end nobody holds any more is saved (pipeflags.c).
    /// </summary>
    [Fact]
    public void APipeHeldOutsideIsRefusedNamingItsHolder()
    {
        using var dir = new TestDir("pipeout");
        using var pipe = new Pipe();
        int pid = Spawner.Spawn(new SpawnOptions("/bin/sleep", ["60"])
        {
            Opens = [(0, "/dev/null", SpawnOptions.Read), (1, "/dev/null", OpenFlags.WriteOnly), (2, "/dev/null", OpenFlags.WriteOnly)],
            Inherits = [(5, pipe.ReadFd)],
        });
        try
        {
            AmberCli.Run("checkpoint", pid.ToString(), "--images", dir["img"])
                .ShouldFail($"fd 5 (pipe:[");
            var refused = AmberCli.Run("checkpoint", pid.ToString(), "--images", dir["img"]);
            Assert.Contains($"a pipe whose other end process {Environment.ProcessId} ", refused.Stderr);
            Assert.True(ProcFs.ReadStatus(pid).TracerPid == 0 && ProcFs.ReadStat(pid).State != 'Z', "the refused process must run on, untraced");
        }
        finally
        {
            Spawner.Kill(pid, 9);
            Spawner.Reap(pid);
        }
    }

    [Fact]
    public void ExternalPipeIsReopenedOnDevNullWithoutInherit()
    {
        using var dir = new TestDir("pipenull");
        using var pipe = new Pipe();
        using var target = TargetProcess.Start(TargetBinaries.Get("piperead"), [dir.Path], dir.Path, stdinFd: pipe.ReadFd);
        target.WaitForLine(l => l == "READY", "READY");
        pipe.Write("seq 1\n");
        target.WaitForLine(l => l == "got 1", "'got 1'");
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"]).ShouldSucceed();
        target.ReapKilled();
        var restored = AmberCli.Run("restore", "--images", dir["img"], "--detach").ShouldSucceed();
        Assert.Contains("fd 0 was pipe:", restored.Stderr);
        Assert.Contains("/dev/null", restored.Stderr);
        // Reading /dev/null gives end-of-file: the program says so and exits 1, as documented.
        var status = Exited.Wait(target.Pid, TimeSpan.FromSeconds(10), "piperead on /dev/null");
        Assert.True(status.Exited && status.ExitCode == 1);
        Assert.StartsWith("FAIL eof after 1", target.Lines()[^1]);
        target.MarkEnded();
    }
}

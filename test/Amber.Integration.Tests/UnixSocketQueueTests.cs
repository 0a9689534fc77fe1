namespace Amber.Integration.Tests;

/// <summary>
/// What waits to be read on unix sockets: datagrams (an empty one too) and seqpacket records with
/// their boundaries, stream bytes, senders' addresses, and descriptors in flight, whether a process
/// holds them or not; datagram sockets connected by name.
/// </summary>
public sealed class UnixSocketQueueTests
{
    [Fact]
    public void QueuedMessagesAndDescriptorsInFlightSurviveTwoCycles()
    {
        using var dir = new TestDir("unixq");
        using var target = TargetProcess.StartC("unixq", dir);
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(3);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(5);
        }
        target.StopAndVerify();
    }

    [Fact]
    public void APipeInFlightThatNoProcessHoldsIsRefusedNotLost()
    {
        using var dir = new TestDir("scmpipe");
        using var target = TargetProcess.Start("/usr/bin/python3",
            ["-c", "import os,socket,time\na,b=socket.socketpair()\nr,w=os.pipe()\nsocket.send_fds(a,[b'x'],[r])\nos.close(r)\nos.close(w)\nprint('READY',flush=True)\ntime.sleep(60)"], dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(30));
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"]).ShouldFail("carrying in flight pipe:[");
        Assert.True(target.IsRunning);
        Assert.False(target.IsTraced);
        Assert.False(Directory.Exists(dir["img"]));
    }
}

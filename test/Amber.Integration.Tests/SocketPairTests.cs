namespace Amber.Integration.Tests;

/// <summary>
/// Connected unix sockets: a pair inside one process with bytes waiting at both ends, and a pair
/// joining a parent and its child (what multiprocessing uses) carrying a request/answer protocol.
/// </summary>
public sealed class SocketPairTests
{
    private const string Script = """
        import os, socket, sys, time
        work = sys.argv[1]
        a, b = socket.socketpair()                 # inside this process: bytes left waiting both ways
        a.sendall(b"to-b")
        b.sendall(b"to-a")
        parent, child = socket.socketpair()        # joins this process and its child
        pid = os.fork()
        if pid == 0:
            parent.close()
            f = child.makefile("rwb", buffering=0)
            while True:
                line = f.readline()
                if not line or line == b"bye\n":
                    os._exit(0)
                f.write(b"echo " + line)
        child.close()
        f = parent.makefile("rwb", buffering=0)
        print("READY", flush=True)
        n = 0
        while True:
            n += 1
            if os.path.exists(os.path.join(work, "stop")):
                ok = a.recv(16) == b"to-a" and b.recv(16) == b"to-b"
                f.write(b"bye\n")
                _, status = os.waitpid(pid, 0)
                print("PASS" if ok and status == 0 else "FAIL queued bytes or child status", n, flush=True)
                sys.exit(0 if ok and status == 0 else 1)
            f.write(b"seq %d\n" % n)
            answer = f.readline()
            if answer != b"echo seq %d\n" % n:
                print(f"FAIL answer {answer!r} to seq {n}", flush=True)
                sys.exit(1)
            print(f"tick {n}", flush=True)
            time.sleep(0.02)
        """;

    [Fact]
    public void SocketPairsInAProcessAndBetweenParentAndChildSurviveTwoCycles()
    {
        using var dir = new TestDir("socketpair");
        File.WriteAllText(dir["pair.py"], Script);
        using var target = TargetProcess.Start("/usr/bin/python3", [dir["pair.py"], dir.Path], dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(30));
        target.WaitForTicks(3);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(5);
        }
        target.StopAndVerify();
    }

    /// <summary>
    /// What a client sent on a connection still waiting to be accepted can only be read by accepting
    /// it: such a listener is refused by name, and the program runs on with its connection waiting.
    /// A unix connection to a process outside is saved, with a warning: it comes back closed by its peer.
    /// </summary>
    [Fact]
    public void AWaitingConnectionWithBytesSentIsRefusedAndAConnectionOutsideComesBackClosed()
    {
        using var dir = new TestDir("sockwait");
        File.WriteAllText(dir["wait.py"], """
            import os, socket, sys, time
            work = sys.argv[1]
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(os.path.join(work, "l.sock"))
            listener.listen(4)
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect(os.path.join(work, "l.sock"))
            client.sendall(b"hello")
            print("READY", flush=True)
            n = 0
            while not os.path.exists(os.path.join(work, "stop")):
                n += 1
                print(f"tick {n}", flush=True)
                time.sleep(0.02)
            conn, _ = listener.accept()
            got = conn.recv(16)
            print("PASS" if got == b"hello" else f"FAIL got {got!r}", n, flush=True)
            """);
        using var target = TargetProcess.Start("/usr/bin/python3", [dir["wait.py"], dir.Path], dir.Path);
        target.WaitForLine(l => l == "READY", "READY");
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"], "--leave-running")
            .ShouldFail("a connection waiting to be accepted that its client sent bytes on");
        Assert.True(target.IsRunning && !target.IsTraced);
        target.WaitForTicks(3);
        target.StopAndVerify();

        // A connection to a server outside (the test): saved; restored, its peer has closed it.
        using var server = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        server.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(dir["outside.sock"]));
        server.Listen(1);
        File.WriteAllText(dir["client.py"], """
            import os, socket, sys, time
            work = sys.argv[1]
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(os.path.join(work, "outside.sock"))
            print("READY", flush=True)
            n = 0
            while not os.path.exists(os.path.join(work, "stop")):
                n += 1
                print(f"tick {n}", flush=True)
                time.sleep(0.02)
            got = s.recv(16)
            print("PASS" if got == b"before" else f"FAIL got {got!r}", n, flush=True)
            """);
        File.Delete(dir["stop"]);
        using var client = TargetProcess.Start("/usr/bin/python3", [dir["client.py"], dir.Path], dir.Path, logName: "client.log");
        client.WaitForLine(l => l == "READY", "READY");
        using var accepted = server.Accept();
        accepted.Send("before"u8.ToArray());
        client.WaitForTicks(2);
        var saved = AmberCli.Run("checkpoint", client.Pid.ToString(), "--images", dir["img2"]).ShouldSucceed();
        Assert.Contains($"is connected to process {Environment.ProcessId} outside the checkpoint", saved.Stderr);
        client.ReapKilled();
        AmberCli.Run("restore", "--images", dir["img2"], "--detach").ShouldSucceed();
        client.WaitForTicks(2);
        client.StopAndVerify(); // what waited comes back, then the peer is gone
    }
}

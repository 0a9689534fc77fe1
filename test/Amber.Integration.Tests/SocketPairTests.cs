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
}

namespace Amber.Integration.Tests;

/// <summary>A named FIFO between a parent (reader) and its child (writer), bytes in flight: reopened by path, refilled once.</summary>
public sealed class FifoTests
{
    private const string Script = """
        import os, sys, time
        work = sys.argv[1]
        path = os.path.join(work, "fifo")
        os.mkfifo(path)
        pid = os.fork()
        if pid == 0:
            w = os.open(path, os.O_WRONLY)
            k = 0
            while not os.path.exists(os.path.join(work, "stop")):
                for _ in range(3):
                    k += 1
                    os.write(w, b"seq %d\n" % k)
                time.sleep(0.02)
            with open(os.path.join(work, "written"), "w") as f:
                f.write(str(k))
            os._exit(0)
        r = os.open(path, os.O_RDONLY)
        f = os.fdopen(r, "rb", buffering=0)
        print("READY", flush=True)
        expect, n = 1, 0
        buf = b""
        while True:
            chunk = os.read(r, 7)                   # slower than the writer: bytes pile up in the FIFO
            if not chunk:
                total = int(open(os.path.join(work, "written")).read())
                ok = total == expect - 1 and os.waitpid(pid, 0)[1] == 0
                print(f"PASS {n}" if ok else f"FAIL read {expect - 1}, written {total}", flush=True)
                sys.exit(0 if ok else 1)
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line != b"seq %d" % expect:
                    print(f"FAIL got {line!r}, expected seq {expect}", flush=True)
                    sys.exit(1)
                expect += 1
                if expect % 3 == 0:
                    n += 1
                    print(f"tick {n}", flush=True)
                    time.sleep(0.03)
        """;

    [Fact]
    public void FifoBetweenParentAndChildSurvivesTwoCycles()
    {
        using var dir = new TestDir("fifo");
        File.WriteAllText(dir["fifo.py"], Script);
        using var target = TargetProcess.Start("/usr/bin/python3", [dir["fifo.py"], dir.Path], dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(30));
        target.WaitForTicks(5);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(5);
        }
        target.StopAndVerify();
    }
}

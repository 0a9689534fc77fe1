namespace Amber.Integration.Tests;

/// <summary>Every thread stopped at one moment and restored with its TID and its own state.</summary>
public sealed class ThreadTests
{
    [Fact]
    public void ThreadsKeepTheirIdsAndStateOverTwoCycles()
    {
        using var dir = new TestDir("threads");
        using var target = TargetProcess.StartC("threads", dir);
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(3);
        var tids = Tids(target.Pid);
        Assert.Equal(5, tids.Count);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            Assert.Equal(tids, Tids(target.Pid));
            target.WaitForTicks(6); // progress of every thread is checked every 5 ticks
        }
        target.StopAndVerify();
    }

    [Fact]
    public void PythonThreadsCarryOn()
    {
        using var dir = new TestDir("pythreads");
        const string script = """
            import os, sys, threading, time
            work = sys.argv[1]
            counts = [0, 0, 0]
            lock = threading.Lock()
            cond = threading.Condition(lock)
            stop = False
            def worker(i):
                while not stop:
                    with cond:
                        counts[i] += 1
                        cond.notify_all()
                        cond.wait(0.01)
            threads = [threading.Thread(target=worker, args=(i,), name=f"w{i}") for i in range(3)]
            for t in threads: t.start()
            print("READY", flush=True)
            n = 0
            last = None
            while True:
                n += 1
                time.sleep(0.05)
                with lock:
                    snap = list(counts)
                if n % 4 == 0:
                    if last is not None and any(a <= b for a, b in zip(snap, last)):
                        print(f"FAIL no progress {snap} after {last}", flush=True); sys.exit(1)
                    last = snap
                if os.path.exists(os.path.join(work, "stop")):
                    stop = True
                    for t in threads: t.join()
                    print(f"PASS {n}", flush=True); sys.exit(0)
                print(f"tick {n} {snap}", flush=True)
            """;
        File.WriteAllText(dir["threads.py"], script);
        using var target = TargetProcess.Start("/usr/bin/python3", [dir["threads.py"], dir.Path], dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(30));
        target.WaitForTicks(5);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(9);
        }
        target.StopAndVerify();
    }

    private static List<int> Tids(int pid) =>
        [.. Directory.GetDirectories($"/proc/{pid}/task").Select(d => int.Parse(Path.GetFileName(d))).Order()];
}

namespace Amber.Integration.Tests;

/// <summary>CPython looping over a large dict, verifying it as it goes.</summary>
public sealed class PythonTests
{
    private const string Script = """
        import os, sys, time
        work = sys.argv[1]
        d = {i: i * i for i in range(400000)}
        total = sum(d.values())
        n = 0
        print("READY", flush=True)
        while True:
            if os.path.exists(os.path.join(work, "stop")):
                if sum(d.values()) != total or len(d) != 400000 + n:
                    print("FAIL final", flush=True); sys.exit(1)
                print(f"PASS {n}", flush=True); sys.exit(0)
            n += 1
            k = 1000000 + n
            d[k] = n
            total += n
            if n % 5 == 0 and sum(d.values()) != total:
                print(f"FAIL sum at {n}", flush=True); sys.exit(1)
            print(f"tick {n} total={total}", flush=True)
            time.sleep(0.02)
        """;

    [Fact]
    public void PythonDictLoopSurvivesTwoCycles()
    {
        using var dir = new TestDir("python");
        File.WriteAllText(dir["loop.py"], Script);
        using var target = TargetProcess.Start("/usr/bin/python3", [dir["loop.py"], dir.Path], dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(60));
        target.WaitForTicks(3);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(6);
        }
        target.StopAndVerify();
    }
}

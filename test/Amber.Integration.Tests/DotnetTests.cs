namespace Amber.Integration.Tests;

/// <summary>
/// A .NET 10 console program with threads writing to a file, run with no special flags: the runtime's
/// W^X double mapping (a memfd mapped twice), its file locks, its diagnostics socket, its pipes and
/// its ~300 mappings all come back. It forces a full blocking garbage collection every tick: the
/// runtime suspends its threads with membarrier(2), whose registration must come back with the
/// process (without it: "FATAL ERROR: Failed to flush using membarrier" at the first collection).
/// </summary>
public sealed class DotnetTests
{
    private const string Project = """
        <Project Sdk="Microsoft.NET.Sdk">
          <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><ImplicitUsings>enable</ImplicitUsings></PropertyGroup>
        </Project>
        """;

    private const string Program = """
        var dir = args[0];
        var counts = new long[3];
        for (int t = 0; t < 3; t++)
        {
            int i = t;
            new Thread(() => { while (true) { Interlocked.Increment(ref counts[i]); Thread.Sleep(5); } }) { IsBackground = true }.Start();
        }
        using var log = new StreamWriter(Path.Combine(dir, "dotnet.txt")) { AutoFlush = true };
        long[] last = new long[3];
        var garbage = new List<byte[]>();
        Console.WriteLine("READY");
        for (int n = 1; ; n++)
        {
            var now = counts.Select(c => Interlocked.Read(ref c)).ToArray();
            if (n % 10 == 0)
            {
                if (now.Zip(last).Any(p => p.First <= p.Second)) { Console.WriteLine($"FAIL a thread stopped: {string.Join(",", now)}"); return 1; }
                last = now;
            }
            if (File.Exists(Path.Combine(dir, "stop"))) { Console.WriteLine($"PASS {n}"); return 0; }
            log.WriteLine($"{n} {string.Join(",", now)}");
            garbage.Add(new byte[64 << 10]);
            if (garbage.Count > 64) garbage.Clear();
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            Console.WriteLine($"tick {n}");
            Thread.Sleep(20);
        }
        """;

    [Fact]
    public void DotnetConsoleProgramWithThreadsSurvivesTwoCycles()
    {
        using var dir = new TestDir("dotnet");
        Directory.CreateDirectory(dir["app"]);
        File.WriteAllText(dir["app/app.csproj"], Project);
        File.WriteAllText(dir["app/Program.cs"], Program);
        ExternalProgram.Start(Repo.Dotnet, ["build", dir["app"], "-c", "Release", "-o", dir["out"], "--nologo"]).Wait(TimeSpan.FromMinutes(3)).ShouldSucceed();

        using var target = TargetProcess.Start(Repo.Dotnet, [dir["out/app.dll"], dir.Path], dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(60));
        target.WaitForTicks(12);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(12); // the threads' progress is checked every 10 ticks
        }
        target.StopAndVerify();
        // One line per tick, none lost or doubled: the StreamWriter's fd offset carried on.
        var ticks = File.ReadAllLines(dir["dotnet.txt"]).Select(l => int.Parse(l.Split(' ')[0])).ToList();
        Assert.Equal(Enumerable.Range(1, ticks.Count), ticks);
    }
}

using System.Collections.Concurrent;
using Amber.Kernel.Processes;

namespace Amber.Integration.Tests.Infrastructure;

/// <summary>Compiles the C test targets with gcc, once per test run.</summary>
public static class TargetBinaries
{
    private static readonly string CacheDir = Path.Combine(Path.GetTempPath(), $"amber-it-bin-{Environment.ProcessId}");
    private static readonly ConcurrentDictionary<string, Lazy<string>> Built = new();

    public static string Get(string name) =>
        Built.GetOrAdd(name, n => new Lazy<string>(() => Compile(n))).Value;

    private static string Compile(string name)
    {
        Directory.CreateDirectory(CacheDir);
        string output = Path.Combine(CacheDir, name);
        string source = Path.Combine(Repo.TargetSources, name + ".c");
        string log = output + ".log";
        // Not System.Diagnostics.Process: once the runtime tracks children of its own, its SIGCHLD
        // handling can reap the test's other children before the test does.
        int pid = Spawner.Spawn(new SpawnOptions("/usr/bin/gcc", ["-O1", "-g", "-Wall", "-o", output, source])
        {
            Opens = [(0, "/dev/null", SpawnOptions.Read), (1, log, SpawnOptions.Overwrite), (2, log, SpawnOptions.Overwrite)],
        });
        var status = Exited.Wait(pid, TimeSpan.FromMinutes(2), "gcc");
        if (!status.Exited || status.ExitCode != 0)
            throw new InvalidOperationException($"gcc failed for {source}: {File.ReadAllText(log)}");
        return output;
    }
}

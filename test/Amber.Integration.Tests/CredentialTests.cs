namespace Amber.Integration.Tests;

/// <summary>A process of another user comes back as that user, never as root.</summary>
public sealed class CredentialTests
{
    [Fact]
    public void ProcessOfAnotherUserKeepsItsUidsGidsAndGroups()
    {
        using var dir = new TestDir("nobody");
        File.SetUnixFileMode(dir.Path, (UnixFileMode)0x1ff); // the program writes its files here
        string counter = TargetBinaries.Get("counter");
        File.SetUnixFileMode(Path.GetDirectoryName(counter)!, (UnixFileMode)0x1ed);
        using var target = TargetProcess.Start("/usr/bin/setpriv",
            ["--reuid=65534", "--regid=65534", "--groups=65534,100", "--inh-caps=-all", counter, dir.Path, "8"], dir.Path);
        target.WaitForTicks(3);
        string Ids(string key) => File.ReadAllLines($"/proc/{target.Pid}/status").Single(l => l.StartsWith(key + ":"));
        var before = new[] { Ids("Uid"), Ids("Gid"), Ids("Groups"), Ids("CapEff"), Ids("CapPrm") };
        Assert.Contains("65534", before[0]);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            Assert.Equal(before, new[] { Ids("Uid"), Ids("Gid"), Ids("Groups"), Ids("CapEff"), Ids("CapPrm") });
            target.WaitForTicks(3);
        }
        // Still dumpable, as a program started by that user is: its /proc files belong to it.
        Assert.Equal(65534u, new FileInfo($"/proc/{target.Pid}/mem").GetUnixOwner());
        target.StopAndVerify();
    }

    /// <summary>Credentials are per thread: every thread of a program of another user comes back as that user.</summary>
    [Fact]
    public void EveryThreadOfAProcessOfAnotherUserKeepsItsCredentials()
    {
        using var dir = new TestDir("nobodythreads");
        File.SetUnixFileMode(dir.Path, (UnixFileMode)0x1ff);
        string threads = TargetBinaries.Get("threads");
        File.SetUnixFileMode(Path.GetDirectoryName(threads)!, (UnixFileMode)0x1ed);
        using var target = TargetProcess.Start("/usr/bin/setpriv",
            ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", threads, dir.Path], dir.Path);
        target.WaitForTicks(3);
        Dictionary<string, string[]> Credentials() => Directory.GetDirectories($"/proc/{target.Pid}/task").ToDictionary(t => Path.GetFileName(t),
            t => File.ReadAllLines(Path.Combine(t, "status")).Where(l => l.StartsWith("Uid:") || l.StartsWith("Gid:") || l.StartsWith("Groups:") || l.StartsWith("Cap")).ToArray());
        var before = Credentials();
        Assert.True(before.Count >= 5, $"threads.c should have 5 threads, has {before.Count}");
        Assert.All(before.Values, lines => Assert.Contains("Uid:\t65534\t65534\t65534\t65534", lines));
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            var after = Credentials();
            Assert.Equal(before.Keys.Order(), after.Keys.Order());
            foreach (var (tid, lines) in before)
                Assert.True(lines.SequenceEqual(after[tid]), $"thread {tid}: {string.Join(" ", after[tid])}, was {string.Join(" ", lines)}");
            target.WaitForTicks(3);
        }
        target.StopAndVerify();
    }
}

public sealed class CapabilityTests
{
    [Fact]
    public void NonRootProcessKeepsItsAmbientCapabilitiesAndBoundingSet()
    {
        using var dir = new TestDir("caps");
        File.SetUnixFileMode(dir.Path, (UnixFileMode)0x1ff);
        string counter = TargetBinaries.Get("counter");
        using var target = TargetProcess.Start("/usr/bin/setpriv",
            ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+net_bind_service,+net_raw",
             "--ambient-caps=+net_bind_service,+net_raw", "--bounding-set=-sys_admin,-sys_module", counter, dir.Path, "8"], dir.Path);
        target.WaitForTicks(3);
        string[] Caps() => [.. File.ReadAllLines($"/proc/{target.Pid}/status").Where(l => l.StartsWith("Cap") || l.StartsWith("Uid:"))];
        var before = Caps();
        Assert.Contains(before, l => l.StartsWith("CapAmb:") && !l.EndsWith("0000000000000000"));
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            Assert.Equal(before, Caps());
            target.WaitForTicks(3);
        }
        target.StopAndVerify();
    }
}

internal static class UnixOwner
{
    public static uint GetUnixOwner(this FileInfo file) =>
        Amber.Kernel.Files.FileStat.TryGet(file.FullName, out var st) ? st.Uid : uint.MaxValue;
}

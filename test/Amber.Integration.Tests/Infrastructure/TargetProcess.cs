using System.Globalization;
using Amber.Kernel.Processes;
using Amber.Kernel.Proc;

namespace Amber.Integration.Tests.Infrastructure;

/// <summary>
/// A program under test: started with posix_spawn (never System.Diagnostics.Process), stdout and
/// stderr to a log file, stdin /dev/null or an fd the test holds. It stays a child of the test
/// process across restores (the test process is a subreaper), so the test reaps it by PID.
/// </summary>
public sealed class TargetProcess : IDisposable
{
    private bool _reaped;

    private TargetProcess(int pid, string workDir, string log)
    {
        Pid = pid;
        WorkDir = workDir;
        LogPath = log;
    }

    public int Pid { get; }

    public string WorkDir { get; }

    public string LogPath { get; }

    public static TargetProcess Start(string program, IReadOnlyList<string> args, string workDir, int? stdinFd = null, string logName = "out.log")
    {
        string log = Path.Combine(workDir, logName);
        var options = new SpawnOptions(program, args)
        {
            WorkingDirectory = workDir,
            Environment = ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", $"HOME={workDir}"],
            Opens = stdinFd is null
                ? [(0, "/dev/null", SpawnOptions.Read), (1, log, SpawnOptions.Append), (2, log, SpawnOptions.Append)]
                : [(1, log, SpawnOptions.Append), (2, log, SpawnOptions.Append)],
            Inherits = stdinFd is int fd ? [(0, fd)] : [],
        };
        return new TargetProcess(Spawner.Spawn(options), workDir, log);
    }

    /// <summary>A C target from test/TestTargets with the work directory as its first argument.</summary>
    public static TargetProcess StartC(string name, TestDir dir, params string[] extraArgs) =>
        Start(TargetBinaries.Get(name), [dir.Path, .. extraArgs], dir.Path);

    /// <summary>Complete lines of the log so far.</summary>
    public List<string> Lines()
    {
        string text = File.Exists(LogPath) ? File.ReadAllText(LogPath) : "";
        int end = text.LastIndexOf('\n');
        return end < 0 ? [] : [.. text[..end].Split('\n')];
    }

    public string WaitForLine(Func<string, bool> match, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            var lines = Lines();
            if (lines.FirstOrDefault(l => l.StartsWith("FAIL", StringComparison.Ordinal)) is { } fail)
                Assert.Fail($"process {Pid} reported: {fail}");
            if (lines.FirstOrDefault(match) is { } line)
                return line;
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"process {Pid}: no line {what} within {(timeout ?? TimeSpan.FromSeconds(30)).TotalSeconds} s; log ends with: {string.Join(" | ", lines.TakeLast(5))}");
            Thread.Sleep(10);
        }
    }

    /// <summary>The number of the last "tick N" line (0 if none).</summary>
    public int LastTick() =>
        Lines().Where(l => l.StartsWith("tick ", StringComparison.Ordinal))
            .Select(l => int.Parse(l.Split(' ')[1], CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Last();

    /// <summary>
    /// Waits until the program's latest tick is <paramref name="more"/> past its latest tick now. The
    /// latest, not any: after a restore to an earlier moment the log holds higher numbers from before.
    /// </summary>
    public int WaitForTicks(int more, TimeSpan? timeout = null)
    {
        int target = LastTick() + more;
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        var deadline = DateTime.UtcNow + limit;
        while (LastTick() < target)
        {
            if (Lines().FirstOrDefault(l => l.StartsWith("FAIL", StringComparison.Ordinal)) is { } fail)
                Assert.Fail($"process {Pid} reported: {fail}");
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"process {Pid}: not at tick {target} within {limit.TotalSeconds} s; log ends with: {string.Join(" | ", Lines().TakeLast(5))}");
            Thread.Sleep(10);
        }
        return target;
    }

    /// <summary>The process and all its descendants now.</summary>
    public List<int> Tree()
    {
        var pids = new List<int> { Pid };
        for (int i = 0; i < pids.Count; i++)
        {
            try { pids.AddRange(ProcFs.ListChildren(pids[i])); }
            catch (Amber.Kernel.TargetGoneException) { }
        }
        return pids;
    }

    /// <summary>
    /// After a checkpoint ended the process: collect it, so its PID is free for the restore. Its
    /// descendants die orphaned and come to the test process (a subreaper), which collects them too.
    /// </summary>
    public void ReapKilled(IReadOnlyList<int>? descendants = null)
    {
        var status = Exited.Wait(Pid, TimeSpan.FromSeconds(10), "checkpointed process");
        Assert.True(status.Signaled && status.TermSignal == 9, $"process {Pid} should have been killed by the checkpoint: {status}");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        foreach (int pid in descendants ?? [])
        {
            while (ProcFs.Exists(pid) && !Spawner.TryReap(pid, out _))
            {
                Assert.True(DateTime.UtcNow < deadline, $"descendant {pid} of {Pid} did not go away");
                Thread.Sleep(2);
            }
        }
    }

    public bool IsRunning => ProcFs.TryReadStatus(Pid, out var s) && s is not null && s.State != 'Z';

    /// <summary>For a message once the process is found not running: how it ended (collected now) and what it printed last.</summary>
    public string HowItEnded()
    {
        string ended = ProcFs.Exists(Pid) ? Exited.Wait(Pid, TimeSpan.FromSeconds(5), "target").ToString() : "already collected";
        _reaped = true;
        return $"ended with {ended}; log ends with: {string.Join(" | ", Lines().TakeLast(5))}";
    }

    public bool IsTraced => ProcFs.TryReadStatus(Pid, out var s) && s is not null && s.TracerPid != 0;

    /// <summary>Asks the program to verify everything and exit; asserts it printed PASS and exited 0.</summary>
    public void StopAndVerify()
    {
        File.WriteAllText(Path.Combine(WorkDir, "stop"), "");
        FinishAndVerify();
    }

    public void FinishAndVerify()
    {
        var status = Exited.Wait(Pid, TimeSpan.FromSeconds(30), "target");
        _reaped = true;
        var lines = Lines();
        Assert.True(status.Exited && status.ExitCode == 0, $"process {Pid} ended with {status}; log ends with: {string.Join(" | ", lines.TakeLast(5))}");
        Assert.True(lines.Count > 0 && lines[^1].StartsWith("PASS", StringComparison.Ordinal), $"process {Pid} did not end with PASS: {string.Join(" | ", lines.TakeLast(5))}");
    }

    /// <summary>The test reaped the process itself.</summary>
    public void MarkEnded() => _reaped = true;

    /// <summary>The PID lives again (restored after the program had ended).</summary>
    public void Restored() => _reaped = false;

    public void Dispose()
    {
        if (_reaped)
            return;
        // Never throws: a failing test must report its own failure, not the clean-up's.
        try
        {
            Spawner.Kill(Pid, 9);
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (!Spawner.TryReap(Pid, out _) && ProcFs.Exists(Pid) && DateTime.UtcNow < deadline)
                Thread.Sleep(5);
        }
        catch (Exception)
        {
        }
        _reaped = true; // a second Dispose must not kill a process that took the PID since
    }
}

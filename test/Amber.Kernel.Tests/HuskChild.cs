using System.Diagnostics;
using System.Globalization;
using System.Runtime.ExceptionServices;
using Amber.Kernel.Proc;
using Amber.Kernel.Processes;
using Amber.Kernel.Ptrace;

namespace Amber.Kernel.Tests;

/// <summary>
/// A husk started with <see cref="Spawner"/>. Dispose kills and reaps it (always: a leaked husk
/// would pause forever); <see cref="Reaped"/> then holds its wait status.
/// </summary>
internal sealed class HuskChild : IDisposable
{
    private bool _gone;

    public HuskChild()
    {
        Pid = Spawner.Spawn(new SpawnOptions(Husk.Path, ["amber-husk"]) { Environment = [] });
    }

    public int Pid { get; }

    public WaitStatus? Reaped { get; private set; }

    /// <summary>The syscall the process is blocked in (/proc/PID/syscall), or null when it is running.</summary>
    public int? CurrentSyscall()
    {
        string text = File.ReadAllText($"/proc/{Pid}/syscall").Trim();
        return text == "running" ? null : int.Parse(text.Split(' ')[0], CultureInfo.InvariantCulture);
    }

    /// <summary>Waits until the husk sleeps in pause(2) (it starts running, then blocks within microseconds).</summary>
    public void WaitUntilPaused()
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var status = ProcFs.ReadStatus(Pid);
            if (status.State == 'S' && CurrentSyscall() == 34)
                return;
            if (watch.Elapsed > TimeSpan.FromSeconds(10))
                throw new TimeoutException($"husk {Pid} not in pause(2) after 10 s: state {status.State}, syscall '{File.ReadAllText($"/proc/{Pid}/syscall").Trim()}'");
            Thread.Sleep(1);
        }
    }

    /// <summary>
    /// SIGKILL, then waitpid: the wait status is kept in <see cref="Reaped"/>. Null if someone else
    /// reaped it already (a tracer that is also the parent reaps it in its own waitpid).
    /// </summary>
    public WaitStatus? KillAndReap()
    {
        if (Reaped is not null || _gone)
            return Reaped;
        Spawner.Kill(Pid, Signals.SIGKILL);
        try
        {
            Reaped = Spawner.Reap(Pid);
        }
        catch (KernelCallException e) when (e.Errno == Errnos.ECHILD)
        {
            _gone = true;
        }
        return Reaped;
    }

    public void Dispose() => KillAndReap();
}

/// <summary>
/// ptrace is thread-affine (every request for a tracee must come from the thread that attached it)
/// and test code may hop threads, so all ptrace work of a test runs on one dedicated thread.
/// </summary>
internal static class PtraceThread
{
    public static void Run(Action work)
    {
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                work();
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        })
        {
            IsBackground = true,
            Name = "ptrace test thread",
        };
        thread.Start();
        if (!thread.Join(TimeSpan.FromSeconds(60)))
            throw new TimeoutException("the ptrace thread did not finish within 60 s");
        failure?.Throw();
    }
}

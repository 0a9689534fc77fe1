using System.Runtime.InteropServices;
using System.Text;
using Amber.Kernel.Processes;
using Amber.Native;
using Microsoft.Win32.SafeHandles;

namespace Amber.Kernel.Net;

/// <summary>
/// A program of the system (nft, ip) run to its end, its input given, its output returned, a failure
/// turned into a <see cref="KernelCallException"/> that names it and its first line of errors. It is
/// started (posix_spawn) from the calling thread, so it is in that thread's network namespace, and
/// waited for by its PID, with every <see cref="ChildReaper"/> of this process held off meanwhile (a
/// coordinator's collects every child, and would take its exit status).
/// </summary>
internal static class ExternalTool
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    /// <summary>Its path (on PATH, or in /usr/sbin or /sbin), null if it is not installed.</summary>
    public static string? Locate(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/sbin").Append("/sbin")
            .Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);

    public static string Run(string program, string package, IReadOnlyList<string> arguments, string? input, string what)
    {
        var path = Locate(program) ?? throw new KernelCallException(program, what, $"{program} is not installed (apt-get install {package})");
        var (stdinRead, stdinWrite) = Pipe();
        var (stdoutRead, stdoutWrite) = Pipe();
        var (stderrRead, stderrWrite) = Pipe();
        using var inputEnd = new FileStream(stdinWrite, FileAccess.Write);
        using var output = new FileStream(stdoutRead, FileAccess.Read);
        using var errors = new FileStream(stderrRead, FileAccess.Read);
        using var holdOff = ChildReaper.HoldOff();
        int pid;
        try
        {
            pid = Spawner.Spawn(new SpawnOptions(path, arguments)
            {
                Inherits = [(0, (int)stdinRead.DangerousGetHandle()), (1, (int)stdoutWrite.DangerousGetHandle()), (2, (int)stderrWrite.DangerousGetHandle())],
            });
        }
        finally
        {
            // Theirs now: this end of them would keep the pipes open.
            stdinRead.Dispose();
            stdoutWrite.Dispose();
            stderrWrite.Dispose();
        }
        var outText = ReadAll(output);
        var errText = ReadAll(errors);
        try
        {
            inputEnd.Write(Encoding.UTF8.GetBytes(input ?? ""));
            inputEnd.Close();
        }
        catch (IOException)
        {
            // It ended without reading it all: its exit status says why.
        }
        if (!Task.WaitAll([outText, errText], Limit))
        {
            _ = Interop.Kill(pid, 9);
            Reap(pid);
            throw new KernelCallException(program, what, $"{program} did not finish in {Limit.TotalSeconds:0} s");
        }
        var end = Reap(pid);
        if (!end.Exited || end.ExitCode != 0)
        {
            string first = errText.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "";
            string how = end.Exited ? $"exit code {end.ExitCode}" : $"signal {end.TermSignal}";
            throw new KernelCallException(program, what, $"{how}{(first.Length > 0 ? $": {first}" : "")}");
        }
        return outText.Result;
    }

    private static Task<string> ReadAll(FileStream stream) => Task.Run(() =>
    {
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    });

    private static unsafe Ptrace.WaitStatus Reap(int pid)
    {
        int raw;
        while (Interop.WaitPid(pid, &raw, 0) < 0)
        {
            if (Marshal.GetLastPInvokeError() != Errnos.EINTR)
                Errnos.Throw("waitpid", $"process {pid}");
        }
        return new Ptrace.WaitStatus(pid, raw);
    }

    private static unsafe (SafeFileHandle Read, SafeFileHandle Write) Pipe()
    {
        int* fds = stackalloc int[2];
        Errnos.Check(Interop.Pipe2(fds, Interop.O_CLOEXEC), "pipe2", "amber");
        return (new SafeFileHandle(fds[0], ownsHandle: true), new SafeFileHandle(fds[1], ownsHandle: true));
    }
}

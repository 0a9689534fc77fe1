using Amber.Kernel.Files;
using Amber.Kernel.Processes;
using Amber.Kernel.Ptrace;

namespace Amber.Integration.Tests.Infrastructure;

/// <summary>The result of one run of the amber CLI.</summary>
public sealed record AmberRun(string Arguments, int ExitCode, string Stdout, string Stderr)
{
    public string LastStdoutLine => Stdout.TrimEnd('\n').Split('\n')[^1];

    public AmberRun ShouldSucceed()
    {
        Assert.True(ExitCode == 0, $"amber {Arguments} exited {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}");
        return this;
    }

    public AmberRun ShouldFail(string messagePart)
    {
        Assert.True(ExitCode == 1, $"amber {Arguments} exited {ExitCode}, expected 1\nstderr: {Stderr}");
        Assert.Contains(messagePart, Stderr);
        Assert.DoesNotContain("   at ", Stderr); // never a stack trace
        Assert.Single(Stderr.TrimEnd('\n').Split('\n'));
        return this;
    }

    /// <summary>Refused as a usage error: exit code 2, one line saying what is wrong.</summary>
    public AmberRun ShouldBeUsageError(string messagePart)
    {
        Assert.True(ExitCode == 2, $"amber {Arguments} exited {ExitCode}, expected 2 (usage)\nstderr: {Stderr}");
        Assert.Contains(messagePart, Stderr);
        Assert.DoesNotContain("   at ", Stderr);
        Assert.Single(Stderr.TrimEnd('\n').Split('\n'));
        return this;
    }
}

/// <summary>
/// Runs the real CLI (./amber) as a separate process (started with posix_spawn, like everything the
/// tests start, so fds can be handed to it), capturing its output in files.
/// </summary>
public static class AmberCli
{
    public static AmberRun Run(IReadOnlyList<string> args, int? stdinFd = null, IReadOnlyDictionary<string, string>? env = null, TimeSpan? timeout = null,
        string? workingDirectory = null) =>
        Start(args, stdinFd, env, workingDirectory).Wait(timeout);

    /// <summary>Starts the CLI and returns at once (to signal it while it works).</summary>
    public static RunningAmber Start(IReadOnlyList<string> args, int? stdinFd = null, IReadOnlyDictionary<string, string>? env = null, string? workingDirectory = null) =>
        ExternalProgram.Start(Repo.Amber, args, stdinFd, env, workingDirectory);

    public static AmberRun Run(params string[] args) => Run((IReadOnlyList<string>)args);
}

/// <summary>Any program run to completion by a test (redis-cli, redis-benchmark...).</summary>
public static class ExternalProgram
{
    private const int Truncate = OpenFlags.WriteOnly | OpenFlags.Truncate; // the files exist: made by GetTempFileName

    public static AmberRun Run(string path, params string[] args) => Start(path, args).Wait();

    public static RunningAmber Start(string path, IReadOnlyList<string> args, int? stdinFd = null, IReadOnlyDictionary<string, string>? env = null,
        string? workingDirectory = null)
    {
        string outFile = Path.GetTempFileName();
        string errFile = Path.GetTempFileName();
        {
            var environment = Environment.GetEnvironmentVariables().Keys.Cast<string>()
                .Where(k => env is null || !env.ContainsKey(k))
                .Select(k => $"{k}={Environment.GetEnvironmentVariable(k)}")
                .Concat(env?.Select(kv => $"{kv.Key}={kv.Value}") ?? []).ToList();
            var options = new SpawnOptions(path, args)
            {
                Environment = environment,
                WorkingDirectory = workingDirectory,
                Opens = stdinFd is null
                    ? [(0, "/dev/null", SpawnOptions.Read), (1, outFile, Truncate), (2, errFile, Truncate)]
                    : [(1, outFile, Truncate), (2, errFile, Truncate)],
                Inherits = stdinFd is int fd ? [(0, fd)] : [],
            };
            return new RunningAmber(Spawner.Spawn(options), string.Join(' ', args), outFile, errFile);
        }
    }
}

/// <summary>An amber CLI process still running.</summary>
public sealed class RunningAmber(int pid, string arguments, string outFile, string errFile)
{
    public int Pid { get; } = pid;

    private AmberRun? _ended;

    public AmberRun Wait(TimeSpan? timeout = null) =>
        _ended ?? Result(Exited.Wait(Pid, timeout ?? TimeSpan.FromSeconds(120), $"amber {arguments}"));

    /// <summary>Its result if it has ended (reaped then; <see cref="Wait"/> gives it again), null while it runs.</summary>
    public AmberRun? Ended() => _ended ??= Spawner.TryReap(Pid, out var status) ? Result(status) : null;

    private AmberRun Result(WaitStatus status)
    {
        try
        {
            int code = status.Exited ? status.ExitCode : 128 + status.TermSignal;
            return _ended = new AmberRun(arguments, code, File.ReadAllText(outFile), File.ReadAllText(errFile));
        }
        finally
        {
            File.Delete(outFile);
            File.Delete(errFile);
        }
    }
}

using System.Globalization;
using Amber.Coordinator;
using Amber.Kernel.Files;
using Amber.Kernel.Processes;

namespace Amber.Cli;

/// <summary>
/// amber checkpoint PID and amber restore --images do their ptrace work in a worker: amber itself, run
/// again with the same arguments, which a kill -9 of the amber the user started does not reach. A
/// tracer that dies leaves a checkpoint's tracees in the middle of an injected call, with a scratch
/// mapping and every signal blocked, and a restore's half released (those let go run on, the rest die
/// with it); the worker instead always finishes: if the amber that started it goes, it cancels what
/// it has not committed — the checkpoint's processes resume, the restore's are ended — or, once it is
/// committed, carries on (a checkpoint's processes run on rather than end, a restore's all run).
/// The two talk over a channel (an fd of the worker's, named in its environment): "cancel" (Ctrl-C) from
/// amber; "ending" from the worker, answered "end" by an amber still there.
/// </summary>
public sealed class CommandWorker : IDisposable
{
    private const string ControlVariable = "AMBER_WORKER_CONTROL";
    private readonly HeldFile _control;
    private readonly CancellationTokenSource _cancel = new();
    private readonly ManualResetEventSlim _answered = new();
    private volatile bool _mayEnd;

    private CommandWorker(HeldFile control)
    {
        _control = control;
        new Thread(Listen) { IsBackground = true, Name = "amber-control" }.Start();
    }

    /// <summary>In the worker: its side of the channel; null in the amber the user started.</summary>
    public static CommandWorker? Current { get; } =
        Environment.GetEnvironmentVariable(ControlVariable) is { } fd ? new CommandWorker(FdChannel.Inherited(int.Parse(fd, CultureInfo.InvariantCulture))) : null;

    /// <summary>Cancelled when the amber that started the worker is interrupted or gone.</summary>
    public CancellationToken Token => _cancel.Token;

    /// <summary>Whether the processes may be ended: the amber that started the worker is still there to say so.</summary>
    public bool MayEnd()
    {
        try
        {
            FdChannel.Send(_control, "ending", []);
        }
        catch (Kernel.KernelCallException)
        {
            return false; // gone
        }
        _answered.Wait();
        return _mayEnd;
    }

    private void Listen()
    {
        try
        {
            while (FdChannel.Receive(_control) is { } message)
            {
                if (message.Text == "end")
                {
                    _mayEnd = true;
                    _answered.Set();
                }
                else
                {
                    _cancel.Cancel(); // "cancel": the processes run on, whatever the checkpoint has got to
                    _answered.Set();
                }
            }
        }
        catch (Kernel.KernelCallException)
        {
        }
        _cancel.Cancel(); // the channel closed: amber is gone
        _answered.Set();
    }

    /// <summary>
    /// In the amber the user started: runs this same command again as the worker, answers it, passes
    /// Ctrl-C on as "cancel", and returns its exit code.
    /// </summary>
    /// <param name="ownSession">
    /// The worker in a session of its own, which Ctrl-C does not reach (a checkpoint: amber passes it
    /// on). Otherwise in amber's session and process group, which a restored root joins (a shell's,
    /// its terminal's), as it would amber's; Ctrl-C reaches it there, and it cancels on its own.
    /// </param>
    /// <param name="inherits">amber's fds the worker gets too, at the same numbers (beside 0, 1 and 2).</param>
    public static int Run(bool ownSession, IReadOnlyCollection<int> inherits)
    {
        var (ours, theirs) = FdChannel.Pair();
        using (ours)
        {
            int pid;
            using (theirs)
            {
                int controlFd = inherits.Append(2).Max() + 1;
                var environment = Spawner.CurrentEnvironment((ControlVariable, controlFd.ToString(CultureInfo.InvariantCulture)));
                var (path, args) = SelfCommand.With([.. Environment.GetCommandLineArgs().Skip(1)]);
                pid = Spawner.Spawn(new SpawnOptions(path, args)
                {
                    Environment = environment,
                    // One that is not open is left to the worker to refuse, as amber would.
                    Inherits = [(0, 0), (1, 1), (2, 2), .. inherits.Where(fd => fd > 2 && FileStat.TryGet($"/proc/self/fd/{fd}", out _)).Distinct().Select(fd => (fd, fd)), (controlFd, theirs.Fd)],
                    NewSession = ownSession,
                });
            }
            using var interrupt = new Cancellation();
            using var forward = interrupt.Token.Register(() => Send(ours, "cancel"));
            new Thread(() =>
            {
                try
                {
                    while (FdChannel.Receive(ours) is { } message)
                    {
                        if (message.Text == "ending")
                            Send(ours, interrupt.Token.IsCancellationRequested ? "cancel" : "end");
                    }
                }
                catch (Kernel.KernelCallException)
                {
                }
            }) { IsBackground = true, Name = "amber-worker" }.Start();
            var end = Spawner.Reap(pid);
            return end.Exited ? end.ExitCode : 128 + end.TermSignal;
        }
    }

    private static void Send(HeldFile channel, string text)
    {
        try
        {
            FdChannel.Send(channel, text, []);
        }
        catch (Kernel.KernelCallException)
        {
            // the worker is gone: its exit is what counts
        }
    }

    public void Dispose()
    {
        _control.Dispose();
        _cancel.Dispose();
        _answered.Dispose();
    }
}

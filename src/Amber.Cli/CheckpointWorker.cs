using System.Globalization;
using Amber.Coordinator;
using Amber.Kernel.Files;
using Amber.Kernel.Processes;

namespace Amber.Cli;

/// <summary>
/// amber checkpoint PID does its ptrace work in a worker: amber itself, run again with the same
/// arguments, in a session of its own, which neither Ctrl-C nor a kill -9 of the amber the user
/// started reaches. A tracer that dies leaves its tracees in the middle of an injected call, with a
/// scratch mapping and every signal blocked; the worker instead always finishes: if the amber that
/// started it goes, it cancels the checkpoint and resumes the processes, or, once the checkpoint is
/// committed, lets them run on rather than end them.
/// The two talk over a channel (fd 3 of the worker): "cancel" (Ctrl-C) from amber; "ending" from the
/// worker, answered "end" by an amber still there.
/// </summary>
public sealed class CheckpointWorker : IDisposable
{
    private const string ControlVariable = "AMBER_CHECKPOINT_CONTROL";
    private const int ControlFd = 3;
    private readonly HeldFile _control;
    private readonly CancellationTokenSource _cancel = new();
    private readonly ManualResetEventSlim _answered = new();
    private volatile bool _mayEnd;

    private CheckpointWorker(HeldFile control)
    {
        _control = control;
        new Thread(Listen) { IsBackground = true, Name = "amber-control" }.Start();
    }

    /// <summary>In the worker: its side of the channel; null in the amber the user started.</summary>
    public static CheckpointWorker? Current { get; } =
        Environment.GetEnvironmentVariable(ControlVariable) is { } fd ? new CheckpointWorker(FdChannel.Inherited(int.Parse(fd, CultureInfo.InvariantCulture))) : null;

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
    public static int Run()
    {
        var (ours, theirs) = FdChannel.Pair();
        using (ours)
        {
            int pid;
            using (theirs)
            {
                var environment = Spawner.CurrentEnvironment((ControlVariable, ControlFd.ToString(CultureInfo.InvariantCulture)));
                var (path, args) = SelfCommand.With([.. Environment.GetCommandLineArgs().Skip(1)]);
                pid = Spawner.Spawn(new SpawnOptions(path, args)
                {
                    Environment = environment,
                    Inherits = [(0, 0), (1, 1), (2, 2), (ControlFd, theirs.Fd)],
                    NewSession = true,
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

using Amber.Checkpoint.Restore;
using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Inject;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.SignalHandling;

/// <summary>The disposition of every signal (handler, flags, restorer, mask), asked of the process and set in it again.</summary>
public static class SignalActions
{
    /// <summary>
    /// Only signals with a handler or ignored are asked about (one injected call each), and SIGCHLD,
    /// whose flags matter even under SIG_DFL (SA_NOCLDWAIT); other flags of SIG_DFL change nothing.
    /// </summary>
    public static void Dump(RemoteCalls calls, ProcStatus status, ProcessImage image)
    {
        ulong asked = status.SigCaught | status.SigIgnored | Signals.Bit(Signals.SIGCHLD);
        for (int sig = 1; sig <= Signals.Count; sig++)
        {
            if (sig is Signals.SIGKILL or Signals.SIGSTOP || (asked & Signals.Bit(sig)) == 0)
                continue;
            var act = calls.GetSignalAction(sig);
            if (!act.IsDefault)
                image.Sigactions.Add(new SignalAction { Signal = sig, Handler = act.Handler, Flags = act.Flags, Restorer = act.Restorer, Mask = act.Mask });
        }
    }

    /// <summary>
    /// Sets every disposition that differs from what the new process already has: a child has its
    /// parent's (restored just before it was cloned), the root the husk's — default, except what
    /// exec kept ignored (SIG_IGN, no flags).
    /// </summary>
    public static void Restore(RemoteCalls calls, ProcessImage image, RestoreTree tree, bool isRoot)
    {
        var current = new Dictionary<int, SignalDisposition>();
        if (isRoot)
        {
            ulong ignored = ProcFs.ReadStatus(calls.Memory.Pid).SigIgnored;
            for (int sig = 1; sig <= Signals.Count; sig++)
            {
                if ((ignored & Signals.Bit(sig)) != 0)
                    current[sig] = new SignalDisposition(SignalDisposition.Ignore, 0, 0, 0);
            }
        }
        else
        {
            foreach (var a in tree.Images.First(i => i.Pid == image.Ppid).Sigactions)
                current[a.Signal] = Of(a);
        }
        var wanted = image.Sigactions.ToDictionary(a => a.Signal, Of);
        for (int sig = 1; sig <= Signals.Count; sig++)
        {
            if (sig is Signals.SIGKILL or Signals.SIGSTOP)
                continue;
            var want = wanted.GetValueOrDefault(sig);
            if (want != current.GetValueOrDefault(sig))
                calls.SetSignalAction(sig, want);
        }
    }

    /// <summary>The saved disposition of <paramref name="signal"/> (default if none was saved).</summary>
    public static SignalDisposition Saved(ProcessImage image, int signal) =>
        image.Sigactions.FirstOrDefault(a => a.Signal == signal) is { } saved ? Of(saved) : default;

    private static SignalDisposition Of(SignalAction a) => new(a.Handler, a.Flags, a.Restorer, a.Mask);
}

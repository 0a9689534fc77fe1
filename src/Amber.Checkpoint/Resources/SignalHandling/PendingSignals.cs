using Amber.Image.Schema;
using Amber.Kernel.Inject;
using Amber.Kernel.Ptrace;
using Google.Protobuf;

namespace Amber.Checkpoint.Resources.SignalHandling;

/// <summary>
/// Signals queued and not yet delivered, the process's and each thread's, with their whole siginfo:
/// peeked with ptrace (without dequeuing them), queued again with rt_tgsigqueueinfo.
/// </summary>
public static class PendingSignals
{
    public static void DumpShared(Tracee leader, ProcessImage image)
    {
        foreach (var info in leader.PeekPendingSignals(shared: true))
            image.SharedPending.Add(Of(info));
    }

    public static void DumpThread(Tracee thread, ThreadImage image)
    {
        foreach (var info in thread.PeekPendingSignals(shared: false))
            image.Pending.Add(Of(info));
    }

    public static void Restore(RemoteCalls calls, int pid, ProcessImage image)
    {
        foreach (var s in image.SharedPending)
            calls.QueueSignal(pid, pid, s.Signal, s.Siginfo.Span, threadDirected: false);
        foreach (var thread in image.Threads)
        {
            foreach (var s in thread.Pending)
                calls.QueueSignal(pid, thread.Tid, s.Signal, s.Siginfo.Span, threadDirected: true);
        }
    }

    private static SignalInfo Of(byte[] info) => new() { Signal = RemoteCalls.SiginfoSignal(info), Siginfo = ByteString.CopyFrom(info) };
}

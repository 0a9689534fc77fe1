using Amber.Native;

namespace Amber.Kernel.Ptrace;

/// <summary>A waitpid status word, decoded (see wait(2) and ptrace(2) "Stopped states").</summary>
public readonly record struct WaitStatus(int Tid, int Raw)
{
    public bool Exited => (Raw & 0x7f) == 0;

    public int ExitCode => (Raw >> 8) & 0xff;

    public bool Signaled => ((Raw & 0x7f) + 1) >> 1 > 0 && !Stopped && !Exited;

    public int TermSignal => Raw & 0x7f;

    public bool Stopped => (Raw & 0xff) == 0x7f;

    public int StopSignal => (Raw >> 8) & 0xff;

    /// <summary>The PTRACE_EVENT_* of an event stop, or 0.</summary>
    public int Event => Stopped ? (Raw >> 16) & 0xff : 0;

    /// <summary>Exactly SIGTRAP with no event: a finished single-step or an int3 (docs/kernel.md, pitfall 2).</summary>
    public bool IsTrap => Stopped && (Raw >> 8) == Interop.SIGTRAP;

    /// <summary>PTRACE_EVENT_STOP: the stop PTRACE_INTERRUPT (or a group-stop) produces under PTRACE_SEIZE.</summary>
    public bool IsEventStop => Stopped && Event == Interop.PTRACE_EVENT_STOP;

    public bool IsGone => Exited || Signaled;

    public override string ToString() =>
        Exited ? $"exited with code {ExitCode}"
        : Signaled ? $"killed by signal {TermSignal}"
        : Stopped ? (Event != 0 ? $"stopped at ptrace event {Event} (signal {StopSignal})" : $"stopped by signal {StopSignal}")
        : $"status 0x{Raw:x}";
}

using System.Runtime.InteropServices;

namespace Amber.Cli;

/// <summary>
/// Ctrl-C and SIGTERM cancel the running operation instead of killing amber, so a checkpoint in
/// progress still resumes and detaches its target before amber exits.
/// </summary>
public sealed class Cancellation : IDisposable
{
    private readonly CancellationTokenSource _source = new();
    private readonly PosixSignalRegistration[] _registrations;

    public Cancellation()
    {
        _registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle),
            PosixSignalRegistration.Create(PosixSignal.SIGHUP, Handle),
        ];
    }

    public CancellationToken Token => _source.Token;

    public void Dispose()
    {
        foreach (var r in _registrations)
            r.Dispose();
        _source.Dispose();
    }

    private void Handle(PosixSignalContext context)
    {
        context.Cancel = true;
        _source.Cancel();
    }
}

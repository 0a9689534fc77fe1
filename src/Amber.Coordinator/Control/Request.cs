namespace Amber.Coordinator.Control;

/// <summary>
/// A request to the coordinator, typed: one record per operation. On the control socket each
/// travels as a <see cref="ControlRequest"/> (one JSON line) whose Op names the operation; each record
/// says its own op code and fields, and <see cref="FromWire"/> is the one place that maps them back.
/// </summary>
public abstract record Request
{
    /// <summary>The request as it goes on the control socket.</summary>
    public abstract ControlRequest ToWire();

    /// <summary>The typed request a line from the control socket carries; null for an op no operation has.</summary>
    public static Request? FromWire(ControlRequest wire) => wire.Op switch
    {
        RunRequest.Op => RunRequest.From(wire),
        AttachRequest.Op => new AttachRequest(wire.Group, wire.Pid),
        DetachRequest.Op => new DetachRequest(wire.Group, wire.Pid),
        CheckpointRequest.Op => new CheckpointRequest(wire.Group, wire.Stop, wire.Full),
        RestoreRequest.Op => new RestoreRequest(wire.Group, wire.From),
        ImagesRequest.Op => new ImagesRequest(wire.Group),
        MergeRequest.Op => new MergeRequest(wire.Group, wire.From),
        VerifyRequest.Op => new VerifyRequest(wire.Group),
        StopRequest.Op => new StopRequest(wire.Group),
        RemoveRequest.Op => new RemoveRequest(wire.Group),
        MigrateRequest.Op => new MigrateRequest(wire.Group, wire.To ?? "", wire.Mode ?? MigrateRequest.PreCopy,
            wire.MaxDowntimeMs > 0 ? wire.MaxDowntimeMs : MigrateRequest.DefaultMaxDowntimeMs, wire.OnNoConvergence ?? MigrateRequest.FinalRoundAnyway, wire.Fd ?? -1),
        ReceiveRequest.Op => new ReceiveRequest(wire.Fd ?? -1, wire.Restore),
        ShutdownRequest.Op => new ShutdownRequest(),
        _ => null,
    };
}

/// <summary>A request about one group: every one but <see cref="ShutdownRequest"/> and <see cref="ReceiveRequest"/>.</summary>
/// <param name="Group">The group's name (amber run --group NAME).</param>
public abstract record GroupRequest(string Group) : Request;

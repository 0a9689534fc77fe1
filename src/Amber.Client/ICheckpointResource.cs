namespace Amber.Client;

/// <summary>
/// Something a program holds that must not be saved as it is: a listener, a file that may be rotated
/// or gone by the time the program is restored, a connection to a service that will not be there. Like
/// a CRaC Resource, it is closed before each checkpoint and opened again afterwards: after the
/// checkpoint in the program that runs on, after the restore in the restored one.
/// Added to a <see cref="GroupClient"/>, resources are told before a checkpoint in the reverse of the
/// order they were added (the last opened is closed first), and after it in the order they were added.
/// One that throws is reported to the coordinator like a callback, and the others are told all the same.
/// </summary>
public interface ICheckpointResource
{
    /// <summary>Close what must not be saved; return before the notice's deadline.</summary>
    void BeforeCheckpoint(CheckpointNotice notice);

    /// <summary>The checkpoint is taken (or failed): open again, in the program that runs on.</summary>
    void AfterCheckpoint(string id);

    /// <summary>The group came back from checkpoint <paramref name="id"/>: open again, in the restored program.</summary>
    void AfterRestore(string id);
}

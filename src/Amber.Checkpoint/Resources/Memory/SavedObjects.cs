namespace Amber.Checkpoint.Resources.Memory;

/// <summary>Kernel objects whose contents a checkpoint saves once, however many processes use them.</summary>
public enum ObjectKind
{
    /// <summary>A memfd or the object behind shared anonymous memory (by inode).</summary>
    Shmem,

    /// <summary>A System V shared memory segment (by shmid).</summary>
    Sysv,

    /// <summary>A file deleted while open or mapped (by inode).</summary>
    Deleted,
}

/// <summary>
/// Which process of a checkpoint saved each shared object's contents: processes are dumped parents
/// first, and an object a parent saved is not copied again for each child that shares it.
/// </summary>
public sealed class SavedObjects
{
    private readonly Dictionary<(ObjectKind, ulong), int> _savedBy = [];

    /// <summary>True (and recorded) if <paramref name="pid"/> is the first to save the object.</summary>
    public bool Claim(ObjectKind kind, ulong id, int pid) => _savedBy.TryAdd((kind, id), pid);
}

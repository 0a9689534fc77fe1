using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>
/// open(2) flags (x86_64), for the layers above this one: as fdinfo shows them, as an injected
/// openat takes them, as <see cref="Processes.SpawnOptions.Opens"/> takes them. The values are
/// Amber.Native's, checked against the C headers there.
/// </summary>
public static class OpenFlags
{
    public const int ReadOnly = Interop.O_RDONLY;
    public const int WriteOnly = Interop.O_WRONLY;
    public const int ReadWrite = Interop.O_RDWR;
    public const int AccessMode = Interop.O_ACCMODE;
    public const int Create = Interop.O_CREAT;
    public const int Exclusive = Interop.O_EXCL;
    public const int Truncate = Interop.O_TRUNC;
    public const int Append = Interop.O_APPEND;
    public const int NoCtty = Interop.O_NOCTTY;
    public const int CloseOnExec = Interop.O_CLOEXEC;
    public const int Directory = Interop.O_DIRECTORY;
    public const int Path = Interop.O_PATH;
    /// <summary>O_TMPFILE: __O_TMPFILE | O_DIRECTORY, as fdinfo shows a file made that way.</summary>
    public const int TmpFile = Interop.O_TMPFILE;
    public const int Direct = Interop.O_DIRECT;
    public const int NonBlock = Interop.O_NONBLOCK;

    /// <summary>
    /// What only the open that made a file meant (O_CREAT, O_EXCL, O_TRUNC): a file opened again as
    /// a process had it drops them, or it would be emptied or refused.
    /// </summary>
    public const int CreationOnly = Create | Exclusive | Truncate;
}

using Amber.Checkpoint.Resources.AnonFds;
using Amber.Checkpoint.Resources.DeletedFiles;
using Amber.Checkpoint.Resources.Fifos;
using Amber.Checkpoint.Resources.Files;
using Amber.Checkpoint.Resources.Pipes;
using Amber.Checkpoint.Resources.SharedMemory;
using Amber.Checkpoint.Resources.Sockets;
using Amber.Checkpoint.Resources.Terminals;
using Amber.Image.Schema;

namespace Amber.Checkpoint.Resources;

/// <summary>Every kind of open file Amber saves, where each one's dump and restore live.</summary>
public static class FileKinds
{
    /// <summary>
    /// In the order a checkpoint asks them: the first that claims an fd saves it. Files that connect a
    /// process to whoever started it (a terminal, a pipe or socket on fds 0-2 no other kind took) come last.
    /// </summary>
    public static IReadOnlyList<IFileKind> All { get; } =
    [
        new MemfdKind(), new DeletedFileKind(), new PathFileKind(), new FifoKind(), new PipeKind(),
        new EventFdKind(), new TimerFdKind(), new SignalFdKind(), new EpollKind(), new InotifyKind(),
        new SocketKind(), new PtyKind(), new ExternalKind(),
    ];

    private static readonly Dictionary<FdKind, IFileKind> ByKind = All.SelectMany(k => k.Restores.Select(r => (r, k))).ToDictionary(e => e.r, e => e.k);

    /// <summary>The kind that opens a saved fd again.</summary>
    public static IFileKind For(FdImage fd) =>
        ByKind.TryGetValue(fd.Kind, out var kind) ? kind : throw new CheckpointException($"fd {fd.Fd}: unknown kind {fd.Kind} in the image");
}

using Amber.Image.Schema;
using Amber.Checkpoint.Resources.Pipes;
using Amber.Kernel.Files;
using Google.Protobuf;

namespace Amber.Checkpoint.Resources.Fifos;

/// <summary>
/// An fd of a named FIFO: opened again by its path; the bytes queued in it are saved once for the
/// whole checkpoint (<see cref="Resolve"/>) and put back by the first process restored that opens it.
/// </summary>
public sealed class FifoKind : IFileKind
{

    public IReadOnlyList<FdKind> Restores { get; } = [FdKind.FdFifo];

    public bool TryDump(OpenFd fd, FdImage image)
    {
        if (!fd.Stat.IsFifo || !fd.IsNamedPath)
            return false;
        image.Kind = FdKind.FdFifo;
        image.PipeId = fd.Stat.Inode;
        image.PipeWriteEnd = fd.WriteOnly;
        return true;
    }

    /// <summary>
    /// The bytes queued in each FIFO, saved once (with the first process that has it), read without
    /// consuming them through a read end the tree holds, or one amber opens for the purpose.
    /// </summary>
    public static void Resolve(IReadOnlyList<ProcessImage> processes)
    {
        foreach (var fifo in processes.SelectMany(p => p.Fds.Where(f => f.Kind == FdKind.FdFifo).Select(f => (Process: p, Fd: f))).GroupBy(e => e.Fd.PipeId))
        {
            var first = fifo.First();
            var reader = fifo.FirstOrDefault(e => (e.Fd.Flags & OpenFlags.AccessMode) != OpenFlags.WriteOnly);
            var (data, capacity) = reader.Fd is not null
                ? ProcessFiles.PeekPipe(reader.Process.Pid, reader.Fd.Fd)
                : ProcessFiles.PeekFifo(first.Fd.Path);
            first.Process.Fifos.Add(new PipeImage { Id = fifo.Key, Capacity = (uint)capacity, Data = ByteString.CopyFrom(data) });
        }
    }

    /// <summary>
    /// Opened through a read-write helper first: opening one end alone would block until the other
    /// end is opened. The first process restored refills the queued bytes through it.
    /// </summary>
    public void Restore(FdRestore restore, FdImage fd)
    {
        var calls = restore.Calls;
        int first = calls.OpenAt(fd.Path, OpenFlags.ReadWrite | OpenFlags.NonBlock | OpenFlags.CloseOnExec);
        int helper = calls.DupAbove(first, restore.Floor);
        calls.Close(first);
        if (restore.Tree.FilledFifos.Add(fd.PipeId) && restore.Tree.Fifos[fd.PipeId] is { } fifo)
        {
            if (fifo.Capacity != PipeMaker.DefaultCapacity)
                calls.SetPipeSize(helper, (int)fifo.Capacity);
            if (!fifo.Data.IsEmpty)
                ProcessFiles.WriteThrough(restore.Calls.Memory.Pid, helper, fifo.Data.Span);
        }
        restore.Place(fd, calls.OpenAt(fd.Path, ((int)fd.Flags & ~OpenFlags.CreationOnly) | OpenFlags.CloseOnExec));
        calls.Close(helper);
    }
}

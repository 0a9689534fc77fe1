using Amber.Checkpoint.Restore;
using Amber.Image.Schema;
using Amber.Kernel.Inject;

namespace Amber.Checkpoint.Resources.Pipes;

/// <summary>
/// An fd of a pipe. At checkpoint it is only named (pipe inode and end); what the pipe is — one
/// process's, shared down the tree, widowed, held outside — is decided once every process is known
/// (<see cref="PipeResolver"/>). At restore a pipe is made by <see cref="PipeMaker"/>: by the process
/// itself (<see cref="Prepare"/>), or by the common ancestor of its holders into a slot its children
/// inherit (<see cref="CreateShared"/>).
/// </summary>
public sealed class PipeKind : IFileKind
{
    public IReadOnlyList<FdKind> Restores { get; } = [FdKind.FdPipe];

    public bool TryDump(OpenFd fd, FdImage image)
    {
        if (!fd.Stat.IsFifo || !fd.Link.StartsWith("pipe:", StringComparison.Ordinal))
            return false;
        image.Kind = FdKind.FdPipe;
        image.PipeId = fd.Stat.Inode;
        image.PipeWriteEnd = fd.WriteOnly;
        return true;
    }

    /// <summary>Each pipe of this process alone, new, above the saved fd numbers, holding the bytes it held.</summary>
    public void Prepare(FdRestore restore)
    {
        foreach (var pipe in restore.Image.Pipes)
        {
            var (read, write) = PipeMaker.Make(restore.Calls, pipe, restore.Floor);
            if (read >= 0)
                restore.OwnPipes[(pipe.Id, false)] = restore.Hold(read);
            if (write >= 0)
                restore.OwnPipes[(pipe.Id, true)] = restore.Hold(write);
        }
    }

    public void Restore(FdRestore restore, FdImage fd)
    {
        // A pipe of this process alone, or one shared in the tree, inherited in a slot.
        int end = restore.OwnPipes.TryGetValue((fd.PipeId, fd.PipeWriteEnd), out int own) ? own : restore.Tree.Slots[(fd.PipeId, fd.PipeWriteEnd)];
        if (fd.PipeReopened)
            restore.Place(fd, PipeMaker.Reopen(restore.Calls, end, fd));
        else
            restore.Share(end, fd);
    }

    /// <summary>The pipes this process creates for the processes below it that share them, each end into its slot.</summary>
    public static void CreateShared(RemoteCalls calls, ProcessImage image, RestoreTree tree)
    {
        foreach (var pipe in image.SharedPipes)
        {
            var (read, write) = PipeMaker.Make(calls, pipe, tree.SlotEnd);
            foreach (var (end, writeEnd) in new[] { (read, false), (write, true) }.Where(e => e.Item1 >= 0))
            {
                calls.Dup3(end, tree.Slots[(pipe.Id, writeEnd)], closeOnExec: true);
                calls.Close(end);
            }
        }
    }
}

using Amber.Checkpoint.Resources.DeletedFiles;
using Amber.Checkpoint.Restore;
using Amber.Image.Schema;
using Amber.Kernel.Inject;

namespace Amber.Checkpoint.Resources;

/// <summary>
/// The restore of one process's fd table as the file kinds see it: the process (through its
/// injected calls), its image, the tree's slots, the objects made for it beforehand, and where new
/// fds go until they are placed.
/// </summary>
public sealed class FdRestore(
    RemoteCalls calls, SyscallBatch batch, ProcessImage image, RestoreTree tree, IReadOnlyDictionary<ulong, int> memfds, DeletedFileRestorer deletedFiles, int floor)
{
    private readonly List<int> _temporaries = [];

    public RemoteCalls Calls => calls;

    /// <summary>Calls queued to run together (files opened by path); flushed before any other call.</summary>
    public SyscallBatch Batch => batch;

    public ProcessImage Image => image;

    public RestoreTree Tree => tree;

    /// <summary>This process's memfds and shared memory objects, by inode, above the saved fd numbers.</summary>
    public IReadOnlyDictionary<ulong, int> Memfds => memfds;

    public DeletedFileRestorer DeletedFiles => deletedFiles;

    /// <summary>The lowest fd number above every saved one: what is made for a while goes there.</summary>
    public int Floor => floor;

    /// <summary>The ends of the pipes of this process alone, made by <see cref="Pipes.PipeKind"/>, by pipe and end.</summary>
    public Dictionary<(ulong Id, bool WriteEnd), int> OwnPipes { get; } = [];

    public List<string> Warnings { get; } = [];

    /// <summary>Fds opened once every process of the tree exists (<see cref="FdTable.OpenDeferred"/>), in the order they come.</summary>
    public List<FdImage> Deferred { get; } = [];

    /// <summary>Keeps <paramref name="fd"/> open until every saved fd is placed, then closes it.</summary>
    public int Hold(int fd)
    {
        _temporaries.Add(fd);
        return fd;
    }

    /// <summary>Moves a newly created fd to its saved number with its close-on-exec flag.</summary>
    /// <param name="closeOnExec">The flag the fd was made with, when the caller knows it (then an fd made at its own number needs nothing).</param>
    public void Place(FdImage fd, int created, bool? closeOnExec = null)
    {
        if (created == fd.Fd)
        {
            if (closeOnExec != fd.CloseOnExec)
                calls.SetCloseOnExec(fd.Fd, fd.CloseOnExec);
            return;
        }
        calls.Dup3(created, fd.Fd, fd.CloseOnExec);
        // A number no saved fd has is kept until every fd is placed: the next fd made then lands on
        // the next free number, often its own, and needs no move (one injected call, not three).
        _saved ??= [.. image.Fds.Select(f => f.Fd)];
        if (_saved.Contains(created))
            calls.Close(created);
        else
            Hold(created);
    }

    private HashSet<int>? _saved;

    /// <summary>
    /// Gives the saved fd the open file <paramref name="source"/> (made beforehand and held elsewhere)
    /// with the saved status flags, which belong to the open file.
    /// </summary>
    public void Share(int source, FdImage fd)
    {
        calls.SetStatusFlags(source, (int)fd.Flags);
        calls.Dup3(source, fd.Fd, fd.CloseOnExec);
    }

    internal void CloseTemporaries()
    {
        foreach (int t in _temporaries.Concat(memfds.Values))
            calls.Close(t);
    }
}

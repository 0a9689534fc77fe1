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
    RemoteCalls calls, ProcessImage image, RestoreTree tree, IReadOnlyDictionary<ulong, int> memfds, DeletedFileRestorer deletedFiles, int floor)
{
    private readonly List<int> _temporaries = [];

    public RemoteCalls Calls => calls;

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

    /// <summary>Keeps <paramref name="fd"/> open until every saved fd is placed, then closes it.</summary>
    public int Hold(int fd)
    {
        _temporaries.Add(fd);
        return fd;
    }

    /// <summary>Moves a newly created fd to its saved number with its close-on-exec flag.</summary>
    public void Place(FdImage fd, int created)
    {
        if (created == fd.Fd)
        {
            calls.SetCloseOnExec(fd.Fd, fd.CloseOnExec);
            return;
        }
        calls.Dup3(created, fd.Fd, fd.CloseOnExec);
        calls.Close(created);
    }

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

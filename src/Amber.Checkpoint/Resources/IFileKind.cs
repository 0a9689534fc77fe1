using Amber.Image.Schema;

namespace Amber.Checkpoint.Resources;

/// <summary>
/// One kind of open file, both halves side by side: how a checkpoint recognises an fd of this kind
/// and saves it, and how a restore opens it again inside the new process. <see cref="FdTable"/>
/// asks every kind in the order of <see cref="FileKinds.All"/>; a new kind of file is one more
/// implementation there.
/// </summary>
public interface IFileKind
{
    /// <summary>The kinds of saved fd this one opens again.</summary>
    IReadOnlyList<FdKind> Restores { get; }

    /// <summary>Saves <paramref name="fd"/> into <paramref name="image"/> if it is of this kind; false leaves it to the next kind.</summary>
    bool TryDump(OpenFd fd, FdImage image);

    /// <summary>
    /// What the fds of this kind are made from, made before any fd of the process is placed (above
    /// every saved fd number, so nothing made collides with a number still to come): a pipe's two ends.
    /// </summary>
    void Prepare(FdRestore restore)
    {
    }

    /// <summary>Opens the saved fd again in the process being restored, at its number, with its flags.</summary>
    void Restore(FdRestore restore, FdImage fd);
}

using Amber.Image;

namespace Amber.Checkpoint.Restore;

/// <summary>
/// The page files a process's restore reads from: its own, and those of the processes that saved
/// the contents of shared objects it recreates (ShmemImage.pages_of and the like; 0 is its own).
/// </summary>
public sealed class PageFiles(CheckpointReader reader, int ownPid) : IDisposable
{
    private readonly Dictionary<int, PageFileReader> _open = [];

    public PageFileReader Of(int pid)
    {
        pid = pid == 0 ? ownPid : pid;
        if (!_open.TryGetValue(pid, out var pages))
            _open[pid] = pages = reader.OpenPageFile(ImageNames.Pages(pid));
        return pages;
    }

    public void Dispose()
    {
        foreach (var pages in _open.Values)
            pages.Dispose();
    }
}

using Amber.Image;

namespace Amber.Checkpoint.Restore;

/// <summary>
/// The page files a process's restore reads from: its own, those of the processes that saved the
/// contents of shared objects it recreates (ShmemImage.pages_of and the like; 0 is its own), in this
/// checkpoint or (PageRun.source) in the earlier checkpoints of the store an incremental one refers to.
/// </summary>
public sealed class PageFiles(CheckpointReader reader, int ownPid) : IDisposable
{
    private readonly Dictionary<(int, uint), PageFileReader> _open = [];

    public PageFileReader Of(int pid, uint source)
    {
        pid = pid == 0 ? ownPid : pid;
        if (!_open.TryGetValue((pid, source), out var pages))
            _open[(pid, source)] = pages = reader.OpenPageFile(ImageNames.Pages(pid), source);
        return pages;
    }

    public void Dispose()
    {
        foreach (var pages in _open.Values)
            pages.Dispose();
    }
}

using Amber.Image;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// The page files a process's restore reads from: its own, those of the processes that saved the
/// contents of shared objects it recreates (ShmemImage.pages_of and the like; 0 is its own), in this
/// checkpoint or (PageRun.source) in the earlier checkpoints of the store an incremental one refers to,
/// each file itself or one of its layers (PageRun.layer).
/// </summary>
public sealed class PageFiles(CheckpointReader reader, int ownPid) : IDisposable
{
    private readonly Dictionary<(int, PageFileRef), PageFileReader> _open = [];

    public PageFileReader Of(int pid, PageFileRef where)
    {
        pid = pid == 0 ? ownPid : pid;
        if (!_open.TryGetValue((pid, where), out var pages))
            _open[(pid, where)] = pages = reader.OpenPageFile(ImageNames.Pages(pid), where);
        return pages;
    }

    public void Dispose()
    {
        foreach (var pages in _open.Values)
            pages.Dispose();
    }
}

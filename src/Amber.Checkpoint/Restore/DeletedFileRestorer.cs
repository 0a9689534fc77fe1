using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;

namespace Amber.Checkpoint.Restore;

/// <summary>
/// Brings back files that were deleted while open: each is written again under a temporary name
/// beside where it was (owner, mode, size and contents as saved), every fd on it is opened from that
/// name, and the name is then removed — so the process again holds a file nobody else can open.
/// </summary>
public sealed class DeletedFileRestorer(RemoteCalls calls, ProcessImage image, PageFileReader pages)
{
    private readonly Dictionary<ulong, string> _paths = [];

    public string PathOf(ulong id) => _paths[id];

    public void CreateAll()
    {
        foreach (var deleted in image.DeletedFiles)
        {
            // Under its old name when that is free, so /proc/PID/fd shows "<old name> (deleted)" again.
            string dir = Path.GetDirectoryName(deleted.Path) is { Length: > 0 } d && Directory.Exists(d) ? d : Path.GetTempPath();
            string path = Directory.Exists(dir) && dir == Path.GetDirectoryName(deleted.Path) && !Path.Exists(deleted.Path)
                ? deleted.Path
                : Path.Combine(dir, $".amber-restore-{image.Pid}-{Guid.NewGuid():N}");
            int fd = calls.OpenAt(path, RemoteCalls.OpenFlags.ReadWrite | RemoteCalls.OpenFlags.Create | RemoteCalls.OpenFlags.Exclusive | RemoteCalls.OpenFlags.CloseOnExec, (int)deleted.Mode);
            _paths[deleted.Id] = path;
            calls.ChangeOwner(fd, image.Creds.Uids[1], image.Creds.Gids[1]);
            calls.Truncate(fd, (long)deleted.Size);
            using (var file = SharedMemoryFile.FromFd(image.Pid, fd))
            {
                foreach (var run in deleted.Pages)
                {
                    var data = new byte[run.Count * ImageFormat.PageSize];
                    pages.ReadRun(run.FileOffset, data, run.Xxh3);
                    file.Write((long)run.Address, data.AsSpan(0, (int)Math.Min((ulong)data.Length, deleted.Size - run.Address)));
                }
            }
            calls.Close(fd);
        }
    }

    /// <summary>Removes the temporary names; never throws (a name left behind is reported).</summary>
    public void RemoveNames(List<string> warnings)
    {
        foreach (var path in _paths.Values)
        {
            try
            {
                calls.Unlink(path);
            }
            catch (Exception e)
            {
                warnings.Add($"could not remove {path}: {e.Message}");
            }
        }
    }
}

using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.Isolation;

/// <summary>
/// The mounts a mount namespace of the checkpoint's own has that amber's has not: what a restore makes
/// again in a copy of amber's. A checkpoint's thread cannot join a mount namespace (amber has several
/// threads: they share one), so it is read from outside, through /proc/PID/mountinfo and
/// /proc/PID/root. Saved: a procfs, a tmpfs with what it holds, and a bind mount of what amber's
/// namespace has. Any other difference (a mount of amber's they do not have, another filesystem of
/// their own) is refused by name.
/// </summary>
internal static class OwnMounts
{
    /// <summary>A tmpfs holding more than this is refused: its contents go into the image's metadata.</summary>
    public const long MostTmpfsBytes = 64L << 20;

    /// <summary>The mounts of process <paramref name="pid"/>'s mount namespace that amber's has not, parents first.</summary>
    public static MountsImage Read(int pid)
    {
        var ours = MountInfo.OfThisProcess();
        // A copy of a mount namespace keeps each mount's filesystem, directory and place: what is left
        // over on their side is theirs alone, what is left on ours they have removed.
        var left = ours.GroupBy(m => m.Identity).ToDictionary(g => g.Key, g => g.Count());
        var image = new MountsImage();
        foreach (var m in MountInfo.Of(pid))
        {
            if (left.TryGetValue(m.Identity, out int n) && n > 0)
            {
                left[m.Identity] = n - 1;
                continue;
            }
            image.Mounts.Add(Saved(pid, m, ours));
        }
        // One of ours they lack was made after their namespace was (a copy shares no mount made later):
        // they never had it, and a restore's copy of ours has it as the host has it then. One that was
        // there when their namespace was made, they have removed: refused, as hiding it would be lost.
        ulong? made = MountInfo.UniqueId($"/proc/{pid}/root/");
        if (left.Where(l => l.Value > 0).Select(l => l.Key).FirstOrDefault(m => !(made is ulong since && MountInfo.UniqueId(m.MountPoint) > since))
            is { MountPoint: not null } removed)
            throw new UnsupportedResourceException(pid, $"its mount namespace, where {removed.MountPoint} ({removed.FsType}) is not mounted",
                "a mount namespace without a mount amber's had when it was made");
        return image;
    }

    private static MountImage Saved(int pid, MountEntry m, List<MountEntry> ours)
    {
        // A filesystem amber's namespace has too, shown elsewhere: a bind mount of what amber sees there.
        if (ours.Where(o => o.Device == m.Device && o.FsType == m.FsType).Select(o => Below(o, m.Root)).FirstOrDefault(s => s is not null) is { } source)
            return new MountImage { Kind = MountImage.Types.Kind.Bind, Target = m.MountPoint, Source = source, Flags = m.Flags };
        if (m.FsType == "proc")
            return new MountImage { Kind = MountImage.Types.Kind.Proc, Target = m.MountPoint, Flags = m.Flags };
        if (m.FsType == "tmpfs" && m.Root == "/")
        {
            var tmpfs = new MountImage { Kind = MountImage.Types.Kind.Tmpfs, Target = m.MountPoint, Flags = m.Flags, Data = TmpfsOptions(m.SuperOptions) };
            long bytes = 0;
            ReadFiles(pid, $"/proc/{pid}/root{(m.MountPoint == "/" ? "" : m.MountPoint)}", "", tmpfs, ref bytes);
            return tmpfs;
        }
        throw new UnsupportedResourceException(pid, $"the mount of {m.Source} ({m.FsType}) on {m.MountPoint} in its mount namespace",
            "a mount other than a procfs, a tmpfs or a bind mount of what amber's mount namespace has");
    }

    /// <summary>Where amber's namespace shows directory <paramref name="root"/> of mount <paramref name="ours"/>'s filesystem; null if it does not.</summary>
    private static string? Below(MountEntry ours, string root)
    {
        string rest = ours.Root == "/" ? root : root == ours.Root ? "/" : root.StartsWith(ours.Root + "/", StringComparison.Ordinal) ? root[ours.Root.Length..] : "";
        if (rest.Length == 0)
            return null;
        return ours.MountPoint == "/" ? rest : rest == "/" ? ours.MountPoint : ours.MountPoint + rest;
    }

    /// <summary>The tmpfs options that make one like it (its size, inodes, and its root's mode and owner).</summary>
    private static string TmpfsOptions(string superOptions) =>
        string.Join(",", superOptions.Split(',').Where(o => o.Split('=')[0] is "size" or "nr_inodes" or "mode" or "uid" or "gid"));

    /// <summary>The mode of a mount point made again on a tmpfs: a directory 0755, or a regular file 0644, root's.</summary>
    private const uint MountPointDirectory = 0x4000 | 0x1ED, MountPointFile = 0x8000 | 0x1A4;

    /// <summary>What a tmpfs holds, each directory before what is in it, on its own device only (not what is mounted below).</summary>
    private static void ReadFiles(int pid, string root, string below, MountImage tmpfs, ref long bytes)
    {
        string dir = below.Length == 0 ? root : $"{root}/{below}";
        if (!FileStat.TryGetNoFollow(dir, out var top))
            throw new Kernel.TargetGoneException(pid);
        foreach (string path in Directory.EnumerateFileSystemEntries(dir).Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(path);
            string relative = below.Length == 0 ? name : $"{below}/{name}";
            if (!FileStat.TryGetNoFollow(path, out var st))
                continue; // gone meanwhile
            if (st.Device != top.Device)
            {
                // Another mount's mount point (the mount is saved as one of its own): what it covers is
                // never seen while it is there, so it is made again as a plain one for the mount to go on.
                tmpfs.Files.Add(new MountedFile { Path = relative, Mode = st.IsDirectory ? MountPointDirectory : MountPointFile, MtimeNs = st.MtimeNs });
                continue;
            }
            var file = new MountedFile { Path = relative, Mode = st.Mode, Uid = st.Uid, Gid = st.Gid, MtimeNs = st.MtimeNs };
            if (st.IsSymlink)
            {
                file.Link = new FileInfo(path).LinkTarget ?? "";
            }
            else if (st.IsRegular)
            {
                bytes += st.Size;
                if (bytes > MostTmpfsBytes)
                    throw new UnsupportedResourceException(pid, $"the tmpfs on {tmpfs.Target} in its mount namespace",
                        $"a tmpfs holding more than {MostTmpfsBytes >> 20} MiB");
                file.Data = Google.Protobuf.ByteString.CopyFrom(File.ReadAllBytes(path));
            }
            else if (!st.IsDirectory)
            {
                throw new UnsupportedResourceException(pid, $"{tmpfs.Target}/{relative} on a tmpfs of its mount namespace",
                    "a file other than a regular file, a directory or a symbolic link on a tmpfs");
            }
            tmpfs.Files.Add(file);
            if (st.IsDirectory)
                ReadFiles(pid, root, relative, tmpfs, ref bytes);
        }
    }
}

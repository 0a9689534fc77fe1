using Amber.Checkpoint.Restore;
using Amber.Checkpoint.Storage;
using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;

namespace Amber.Checkpoint.Resources.Isolation;

/// <summary>
/// A mount namespace of their own, made again (<see cref="OwnMounts"/> saved it). The husk, which has
/// one thread, moves to a copy of amber's, made private, and makes their tmpfs and bind mounts in it,
/// in order; amber fills each tmpfs through /proc/HUSK/root. Every process is then cloned from the
/// husk, so is born in it, and the namespace ends with the last of them (a failed restore leaves none).
/// A procfs is mounted by their first process, once that is born in their PID namespace.
/// </summary>
public static class MountRestorer
{
    /// <summary>What the checkpoint saved of their mounts, checked (<see cref="Problem"/>): a path out of its mount is an image fault.</summary>
    public static MountsImage Load(CheckpointReader reader)
    {
        var mounts = reader.ReadMessage(ImageNames.Mounts, ImageFileKind.Metadata, MountsImage.Parser);
        if (Problem(mounts) is { } problem)
            throw new ImageFormatException($"{reader.Directory}: {problem}");
        return mounts;
    }

    /// <summary>
    /// Why saved mounts cannot be made again safely, or null: a mount point or bind source that is not
    /// absolute and canonical, a tmpfs file path that is not below its mount, or one whose parent the
    /// image makes a symbolic link (the file would be written wherever the link leads).
    /// </summary>
    public static string? Problem(MountsImage mounts)
    {
        foreach (var m in mounts.Mounts)
        {
            if (ImageValidator.CanonicalPathProblem(m.Target) is { } target)
                return $"the mount point '{m.Target}' {target}";
            if (m.Kind == MountImage.Types.Kind.Bind && ImageValidator.CanonicalPathProblem(m.Source) is { } source)
                return $"the source '{m.Source}' of the bind mount on {m.Target} {source}";
            var links = new HashSet<string>(StringComparer.Ordinal);
            foreach (var file in m.Files)
            {
                var parts = file.Path.Split('/');
                bool underLink = Enumerable.Range(1, parts.Length - 1).Any(n => links.Contains(string.Join('/', parts.Take(n))));
                if (!StoragePaths.IsSafeRelative(file.Path) || underLink)
                    return $"the file '{file.Path}' on the tmpfs on {m.Target} is not a path below it";
                if ((file.Mode & FileTypeMask) == SymlinkType)
                    links.Add(file.Path);
            }
        }
        return null;
    }

    private const uint FileTypeMask = 0xF000, SymlinkType = 0xA000, DirectoryType = 0x4000, RegularType = 0x8000;

    /// <summary>Whether <paramref name="path"/> is on one of their mounts: made by the restore, not there to check beforehand.</summary>
    public static bool Covers(MountsImage? mounts, string path) =>
        mounts is not null && StoragePaths.Covers(mounts.Mounts.Select(m => m.Target), path);

    /// <summary>In the husk (<paramref name="husk"/>, process <paramref name="huskPid"/>): a copy of amber's mount namespace, with their mounts but their procfs.</summary>
    public static void Make(RemoteCalls husk, int huskPid, MountsImage mounts)
    {
        husk.NewMountNamespace();
        // Every bind's source held first, as amber's namespace has it: a tmpfs made before the bind may
        // cover it (a group's /tmp over a source in the host's /tmp).
        var sources = mounts.Mounts.Where(m => m.Kind == MountImage.Types.Kind.Bind).Select(m => m.Source).Distinct()
            .ToDictionary(source => source, source => husk.OpenAt(source, OpenFlags.Path | OpenFlags.CloseOnExec));
        foreach (var m in mounts.Mounts)
        {
            switch (m.Kind)
            {
                case MountImage.Types.Kind.Tmpfs:
                    husk.Mount("tmpfs", m.Target, "tmpfs", m.Flags, m.Data);
                    Fill($"/proc/{huskPid}/root{(m.Target == "/" ? "" : m.Target)}", m);
                    break;
                case MountImage.Types.Kind.Bind:
                    husk.BindMount($"/proc/thread-self/fd/{sources[m.Source]}", m.Target, m.Flags);
                    break;
            }
        }
        foreach (int fd in sources.Values)
            husk.Close(fd);
    }

    /// <summary>Their procfs, mounted by <paramref name="first"/>, their first process: it shows the PID namespace that process is in.</summary>
    public static void MountProcs(RemoteCalls first, MountsImage mounts)
    {
        foreach (var m in mounts.Mounts.Where(m => m.Kind == MountImage.Types.Kind.Proc))
            first.Mount("proc", m.Target, "proc", m.Flags, null);
    }

    /// <summary>What a tmpfs held, put back below <paramref name="root"/> (its mount point, as the husk sees it).</summary>
    private static void Fill(string root, MountImage tmpfs)
    {
        // Directories get their times last: what is made in them changes them.
        var directories = new List<(string Path, MountedFile File)>();
        foreach (var file in tmpfs.Files)
        {
            string path = StoragePaths.Join(root, file.Path);
            switch (file.Mode & FileTypeMask)
            {
                case DirectoryType:
                    Directory.CreateDirectory(path);
                    directories.Add((path, file));
                    continue;
                case SymlinkType:
                    File.CreateSymbolicLink(path, file.Link);
                    break;
                case RegularType:
                    using (var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
                        stream.Write(file.Data.Span);
                    break;
                default:
                    throw new ImageFormatException($"the file '{file.Path}' on the tmpfs on {tmpfs.Target} is of type 0x{file.Mode & FileTypeMask:x}");
            }
            PathAttributes.Set(path, (file.Mode & FileTypeMask) == SymlinkType, file.Uid, file.Gid, file.Mode & 0xFFF, file.MtimeNs, file.MtimeNs);
        }
        foreach (var (path, file) in directories.AsEnumerable().Reverse())
            PathAttributes.Set(path, symlink: false, file.Uid, file.Gid, file.Mode & 0xFFF, file.MtimeNs, file.MtimeNs);
    }
}

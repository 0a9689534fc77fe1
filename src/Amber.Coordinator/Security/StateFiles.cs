using Amber.Kernel.Files;

namespace Amber.Coordinator.Security;

/// <summary>
/// Who may read the coordinator's own files. Nothing of it is world-readable: group.json, the
/// daemon's log and the worker reports are root's (0600); a group's output log is its owner's
/// (0600); its process table is root's, readable by the owner's primary group (0640: amber ps reads
/// it without asking the coordinator). State directories are 0711 (reachable, not listable); the run
/// directories 0755 and the sockets 0666, since any user may ask (every request is checked against
/// its peer credentials) and a group's programs of any user register.
/// </summary>
public static class StateFiles
{
    public const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode OwnerAndGroupRead = Private | UnixFileMode.GroupRead;
    public const UnixFileMode Reachable = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
    public const UnixFileMode Open = Reachable | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>The coordinator's own user (root, but for a coordinator of a home of one's own).</summary>
    public static uint Self { get; } = Kernel.Proc.ProcFs.ReadStatus(Environment.ProcessId).Uids[1];

    /// <summary>Makes a directory of the coordinator's (if missing) with exactly this mode.</summary>
    public static void Directory(string path, UnixFileMode mode)
    {
        System.IO.Directory.CreateDirectory(path);
        File.SetUnixFileMode(path, mode);
    }

    /// <summary>Writes a file of the coordinator's whole (a temporary file renamed over it), mode 0600.</summary>
    public static void Write(string path, string text)
    {
        string temporary = path + ".tmp";
        File.Delete(temporary);
        using (var file = new FileStream(temporary, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = Private }))
        using (var writer = new StreamWriter(file))
            writer.Write(text);
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>
    /// A file of the coordinator's that <paramref name="uid"/> and <paramref name="gid"/> get (a log, a
    /// table): made if missing; one that is a link or another user's (left by an earlier group of that
    /// name, or put there in /dev/shm by anyone) is replaced, never followed or handed over.
    /// </summary>
    public static void Give(string path, uint uid, uint gid, UnixFileMode mode)
    {
        if (FileStat.TryGetNoFollow(path, out var old) && (!old.IsRegular || old.Uid != uid))
            File.Delete(path);
        if (!File.Exists(path))
            new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = Private }).Dispose();
        FileStat.TryGetNoFollow(path, out var st);
        PathAttributes.Set(path, symlink: false, uid, gid, (uint)mode, st.AtimeNs, st.MtimeNs);
    }
}

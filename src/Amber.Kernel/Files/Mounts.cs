using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>
/// Mounts made by the calling thread, in its mount namespace: an exec helper's, in a group's own
/// namespace (<see cref="Processes.Namespaces.Make"/>), just before it becomes the group's program.
/// </summary>
public static class Mounts
{
    /// <summary>A tmpfs on <paramref name="target"/> with these options (e.g. "mode=1777"), its owner root.</summary>
    public static void Tmpfs(string target, string options) => Mount("tmpfs", target, "tmpfs", 0, options);

    /// <summary>
    /// A bind mount of <paramref name="source"/> (a file or a directory, and what is mounted below it)
    /// on <paramref name="target"/>, which must be of the same kind.
    /// </summary>
    public static void Bind(string source, string target) => Mount(source, target, null, Interop.MS_BIND | Interop.MS_REC, null);

    /// <summary>
    /// A procfs on <paramref name="target"/>: it shows the PID namespace of the process that mounts it
    /// (not that of the children the thread would have), so its PID 1 mounts it.
    /// </summary>
    public static void Proc(string target) => Mount("proc", target, "proc", Interop.MS_NOSUID | Interop.MS_NODEV | Interop.MS_NOEXEC, null);

    /// <summary>Every mount of the calling thread's namespace private: a new one's, so that it and the one it was copied from stay apart.</summary>
    public static void MakeAllPrivate() => Mount(null, "/", null, Interop.MS_REC | Interop.MS_PRIVATE, null);

    private static unsafe void Mount(string? source, string target, string? fsType, ulong flags, string? data)
    {
        fixed (byte* from = source is null ? null : NativeString.Utf8Z(source))
        fixed (byte* to = NativeString.Utf8Z(target))
        fixed (byte* type = fsType is null ? null : NativeString.Utf8Z(fsType))
        fixed (byte* options = data is null ? null : NativeString.Utf8Z(data))
            Errnos.Check(Interop.Mount(from, to, type, flags, options), "mount", $"{fsType ?? "bind"} {source} on {target}");
    }
}

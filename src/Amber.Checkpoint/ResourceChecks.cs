using Amber.Kernel.Proc;

namespace Amber.Checkpoint;

/// <summary>
/// Kernel state Amber cannot save yet and would silently lose: refused before anything is written,
/// naming the process, the resource and its kind.
/// </summary>
public static class ResourceChecks
{
    private static readonly string[] Namespaces = ["pid", "mnt", "net", "ipc", "uts", "user", "cgroup", "time"];

    /// <param name="notJoined">The checkpoint's namespaces its thread has not joined, by name (OwnNamespaces.NotJoinedByName).</param>
    public static void Check(int pid, IReadOnlyDictionary<string, string>? notJoined = null)
    {
        if (ProcFs.ReadStatus(pid).Seccomp == 1)
            throw new UnsupportedResourceException(pid, "its seccomp strict mode", "a process in seccomp strict mode");
        foreach (var ns in Namespaces)
        {
            // The checkpoint's thread, which joined the processes' own UTS, IPC and network namespaces (OwnNamespaces).
            string? theirs = Link($"/proc/{pid}/ns/{ns}");
            string? ours = notJoined?.GetValueOrDefault(ns) ?? Link($"/proc/thread-self/ns/{ns}");
            if (theirs is not null && ours is not null && theirs != ours)
                throw new UnsupportedResourceException(pid, $"its {ns} namespace {theirs}", $"a process in another {ns} namespace than the checkpoint's ({ours})",
                    Kernel.Processes.Namespaces.Parse(ns) is not null ? "the processes of one checkpoint share one" : null);
        }
    }

    private static string? Link(string path)
    {
        try { return new FileInfo(path).LinkTarget; }
        catch (IOException) { return null; }
    }
}

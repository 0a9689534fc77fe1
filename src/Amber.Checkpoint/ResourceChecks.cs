using Amber.Kernel.Proc;

namespace Amber.Checkpoint;

/// <summary>
/// Kernel state Amber cannot save yet and would silently lose: refused before anything is written,
/// naming the process, the resource and its kind.
/// </summary>
public static class ResourceChecks
{
    private static readonly string[] Namespaces = ["pid", "mnt", "net", "ipc", "uts", "user", "cgroup", "time"];

    public static void Check(int pid)
    {
        if (ProcFs.ReadStatus(pid).Seccomp == 1)
            throw new UnsupportedResourceException(pid, "its seccomp strict mode", "a process in seccomp strict mode");
        foreach (var ns in Namespaces)
        {
            string? theirs = Link($"/proc/{pid}/ns/{ns}");
            string? ours = Link($"/proc/self/ns/{ns}");
            if (theirs is not null && ours is not null && theirs != ours)
                throw new UnsupportedResourceException(pid, $"its {ns} namespace {theirs}", $"a process in another {ns} namespace than amber's");
        }
    }

    private static string? Link(string path)
    {
        try { return new FileInfo(path).LinkTarget; }
        catch (IOException) { return null; }
    }
}

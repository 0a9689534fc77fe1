using Amber.Image.Schema;
using Amber.Kernel.Inject;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.Cred;

/// <summary>
/// Gives the process back its user, groups, capabilities and dumpable flag — a process of another
/// user must not come back as root, nor with more (or fewer) privileges than it had. Order matters:
/// the bounding set is narrowed while still privileged; permitted capabilities are kept across the
/// switch to a non-root uid (PR_SET_KEEPCAPS) and then set exactly with capset; ambient ones last.
/// Each thread gets its own (fsuid and fsgid included); the dumpable flag, the process's, comes after all.
/// The parent-death signal, which changing credentials clears, is set again after them.
/// </summary>
public static class ProcessCredentials
{
    private const int Inheritable = 0, Permitted = 1, Effective = 2, Bounding = 3, Ambient = 4;
    private static readonly string[] Names = ["inheritable", "permitted", "effective", "bounding", "ambient"];

    /// <summary>Uids and gids (real, effective, saved, file-system), groups and the five capability sets, as /proc shows them for a process or a thread.</summary>
    public static Credentials Dump(ProcStatus status) =>
        new() { Uids = { status.Uids }, Gids = { status.Gids }, Groups = { status.Groups }, Capabilities = { status.Capabilities } };

    /// <summary>
    /// The credentials of one thread, through an injector of that thread: credentials are per thread
    /// (a thread left out would stay root). Older images have one set for every thread.
    /// </summary>
    public static void Restore(RemoteCalls calls, ProcessImage image, ThreadImage thread, List<string> warnings)
    {
        var creds = thread.Creds ?? image.Creds;
        var now = ProcFs.ReadThreadStatus(calls.Injector.Thread.Pid, calls.Injector.Thread.Tid);
        var saved = creds.Capabilities.Count == 5 ? creds.Capabilities.ToArray() : null;
        if (saved is not null)
        {
            ulong drop = now.Capabilities[Bounding] & ~saved[Bounding];
            for (int cap = 0; cap < 64; cap++)
            {
                if ((drop & (1UL << cap)) != 0)
                    calls.DropBoundingCapability(cap);
            }
        }

        bool same = creds.Uids.Take(3).SequenceEqual(now.Uids.Take(3)) && creds.Gids.Take(3).SequenceEqual(now.Gids.Take(3))
            && creds.Groups.SequenceEqual(now.Groups);
        bool keep = saved is not null && saved[Permitted] != 0 && !same;
        if (keep)
            calls.KeepCapabilities(true);
        if (!same)
            calls.SetCredentials([.. creds.Uids], [.. creds.Gids], [.. creds.Groups]);
        // Set after the ids (which reset them) and before the capabilities (leaving fsuid 0 drops
        // the file-system ones from the effective set: the saved set is what that left).
        bool fsIds = creds.Uids.Count == 4 && creds.Gids.Count == 4;
        if (fsIds && (creds.Uids[3] != now.Uids[3] || creds.Gids[3] != now.Gids[3] || !same))
            calls.SetFileSystemIds(creds.Uids[3], creds.Gids[3]);
        if (saved is not null)
        {
            // What the kernel refuses here is reported below, as a difference, not a failure.
            try
            {
                calls.SetCapabilities(saved[Effective], saved[Permitted], saved[Inheritable]);
                for (int cap = 0; cap < 64; cap++)
                {
                    if ((saved[Ambient] & (1UL << cap)) != 0)
                        calls.RaiseAmbientCapability(cap);
                }
            }
            catch (Kernel.KernelCallException e) when (e.Errno == Kernel.Errnos.EPERM)
            {
            }
        }
        if (keep)
            calls.KeepCapabilities(false);

        var after = ProcFs.ReadThreadStatus(calls.Injector.Thread.Pid, calls.Injector.Thread.Tid);
        string who = thread.Tid == image.Pid ? "" : $"thread {thread.Tid}: ";
        if (fsIds && (after.Uids[3] != creds.Uids[3] || after.Gids[3] != creds.Gids[3]))
            warnings.Add($"{who}fsuid/fsgid are {after.Uids[3]}/{after.Gids[3]} after the restore, {creds.Uids[3]}/{creds.Gids[3]} at the checkpoint");
        var caps = after.Capabilities;
        for (int i = 0; saved is not null && i < caps.Length; i++)
        {
            if (caps[i] != saved[i])
                warnings.Add($"{who}{Names[i]} capabilities are {caps[i]:x} after the restore, {saved[i]:x} at the checkpoint");
        }
    }

    /// <summary>Once every thread has its credentials: "dumpable" is the process's, cleared by changing the effective or file-system ids.</summary>
    public static void RestoreDumpable(RemoteCalls calls, ProcessImage image)
    {
        if (calls.GetDumpable() != image.Creds.Dumpable)
            calls.SetDumpable(image.Creds.Dumpable);
    }

    /// <summary>
    /// After the credentials, whose change clears it. A tree root's parent is not restored (it is
    /// amber, which exits): the signal would kill it then, so a root does not get it back.
    /// </summary>
    public static void RestoreParentDeathSignal(RemoteCalls calls, ProcessImage image, ThreadImage thread, bool isRoot, List<string> warnings)
    {
        if (thread.ParentDeathSignal == 0)
            return;
        if (isRoot)
            warnings.Add($"process {image.Pid}{(thread.Tid == image.Pid ? "" : $" thread {thread.Tid}")} asked for signal {thread.ParentDeathSignal} when its parent dies; its parent is not restored, so it is not set again");
        else
            calls.SetParentDeathSignal(thread.ParentDeathSignal);
    }
}

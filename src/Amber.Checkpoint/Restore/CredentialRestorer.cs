using Amber.Image.Schema;
using Amber.Kernel.Inject;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Restore;

/// <summary>
/// Gives the process back its user, groups, capabilities and dumpable flag — a process of another
/// user must not come back as root, nor with more (or fewer) privileges than it had. Order matters:
/// the bounding set is narrowed while still privileged; permitted capabilities are kept across the
/// switch to a non-root uid (PR_SET_KEEPCAPS) and then set exactly with capset; ambient ones last.
/// </summary>
public static class CredentialRestorer
{
    private const int Inheritable = 0, Permitted = 1, Effective = 2, Bounding = 3, Ambient = 4;
    private static readonly string[] Names = ["inheritable", "permitted", "effective", "bounding", "ambient"];

    public static void Restore(RemoteCalls calls, ProcessImage image, List<string> warnings)
    {
        var creds = image.Creds;
        var now = ProcFs.ReadStatus(image.Pid);
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
        // Changing the effective uid clears "dumpable"; a program started as that user had it set.
        if (calls.GetDumpable() != creds.Dumpable)
            calls.SetDumpable(creds.Dumpable);

        var caps = ProcFs.ReadStatus(image.Pid).Capabilities;
        for (int i = 0; saved is not null && i < caps.Length; i++)
        {
            if (caps[i] != saved[i])
                warnings.Add($"{Names[i]} capabilities are {caps[i]:x} after the restore, {saved[i]:x} at the checkpoint");
        }
    }
}

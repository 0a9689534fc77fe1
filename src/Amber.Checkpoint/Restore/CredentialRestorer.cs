using Amber.Image.Schema;
using Amber.Kernel.Inject;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Restore;

/// <summary>
/// Gives the process back its user, groups and dumpable flag (a process of another user must not
/// come back as root), and says so when its capabilities end up different from the saved ones.
/// </summary>
public static class CredentialRestorer
{
    public static void Restore(RemoteCalls calls, ProcessImage image, List<string> warnings)
    {
        var creds = image.Creds;
        var now = ProcFs.ReadStatus(image.Pid);
        bool same = creds.Uids.Take(3).SequenceEqual(now.Uids.Take(3)) && creds.Gids.Take(3).SequenceEqual(now.Gids.Take(3))
            && creds.Groups.SequenceEqual(now.Groups);
        if (!same)
            calls.SetCredentials([.. creds.Uids], [.. creds.Gids], [.. creds.Groups]);
        // Changing the effective uid clears "dumpable"; a program started as that user had it set.
        if (calls.GetDumpable() != creds.Dumpable)
            calls.SetDumpable(creds.Dumpable);

        var caps = ProcFs.ReadStatus(image.Pid).Capabilities;
        string[] names = ["inheritable", "permitted", "effective", "bounding", "ambient"];
        for (int i = 0; i < Math.Min(caps.Length, creds.Capabilities.Count); i++)
        {
            if (caps[i] != creds.Capabilities[i])
                warnings.Add($"{names[i]} capabilities are {caps[i]:x} after the restore, {creds.Capabilities[i]:x} at the checkpoint");
        }
    }
}

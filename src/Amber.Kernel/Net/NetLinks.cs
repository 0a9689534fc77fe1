using System.Globalization;

namespace Amber.Kernel.Net;

/// <summary>An interface of amber's network namespace, as sysfs shows it.</summary>
/// <param name="PeerIndex">Its iflink: for a veth, the ifindex of its other end (in whichever namespace that is).</param>
/// <param name="Master">The bridge it is attached to, or null.</param>
public sealed record NetLink(string Name, int Index, int PeerIndex, string? Master, string Mac, int Mtu, bool Up);

/// <summary>
/// The interfaces of amber's network namespace, read in /sys/class/net (sysfs shows the interfaces of
/// the namespace it was mounted in, whichever namespace the reading thread has joined).
/// </summary>
public static class NetLinks
{
    private const string Root = "/sys/class/net";

    /// <summary>The interface whose ifindex is <paramref name="index"/>; null if none.</summary>
    public static NetLink? ByIndex(int index) =>
        Directory.EnumerateDirectories(Root).Select(d => Path.GetFileName(d)).Where(n => Number(n, "ifindex") == index).Select(ByName).FirstOrDefault(l => l is not null);

    /// <summary>The interface named <paramref name="name"/>; null if there is none.</summary>
    public static NetLink? ByName(string name)
    {
        try
        {
            string directory = Path.Combine(Root, name);
            if (!Directory.Exists(directory))
                return null;
            string? master = new FileInfo(Path.Combine(directory, "master")).LinkTarget is { } target ? Path.GetFileName(target) : null;
            int flags = int.Parse(File.ReadAllText(Path.Combine(directory, "flags")).Trim().AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            return new NetLink(name, Number(name, "ifindex"), Number(name, "iflink"), master, File.ReadAllText(Path.Combine(directory, "address")).Trim(),
                Number(name, "mtu"), (flags & 1) != 0);
        }
        catch (IOException)
        {
            return null; // removed while read
        }
    }

    /// <summary>Whether <paramref name="name"/> is a bridge.</summary>
    public static bool IsBridge(string name) => Directory.Exists(Path.Combine(Root, name, "bridge"));

    /// <summary>
    /// Sets net.ipv4.conf.NAME.KEY of the calling thread's network namespace (/proc/sys/net is the
    /// opening thread's).
    /// </summary>
    public static void SetIpv4Setting(string name, string key, string value) =>
        File.WriteAllText($"/proc/sys/net/ipv4/conf/{name}/{key}", value);

    private static int Number(string name, string file)
    {
        try
        {
            return int.Parse(File.ReadAllText(Path.Combine(Root, name, file)).Trim(), CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return -1;
        }
    }
}

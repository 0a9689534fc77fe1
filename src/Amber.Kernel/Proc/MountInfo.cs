using System.Globalization;
using System.Text;

namespace Amber.Kernel.Proc;

/// <summary>
/// One line of /proc/PID/mountinfo: a mount as the process's mount namespace has it.
/// </summary>
/// <param name="Device">The filesystem's device, "major:minor": the same in every mount namespace a mount was copied into.</param>
/// <param name="Root">The directory of that filesystem the mount shows (a bind mount's is not "/").</param>
/// <param name="MountPoint">Where it is, from the process's root.</param>
/// <param name="Options">Per-mount options (rw, nosuid, relatime...).</param>
/// <param name="SuperOptions">The filesystem's own options (tmpfs: size, mode...).</param>
public sealed record MountEntry(int Id, int ParentId, string Device, string Root, string MountPoint, string Options, string FsType, string Source, string SuperOptions)
{
    /// <summary>What a mount is, whichever mount namespace it is in: the same filesystem, directory and place.</summary>
    public (string Device, string Root, string MountPoint, string FsType) Identity => (Device, Root, MountPoint, FsType);

    /// <summary>Its per-mount options as mount(2) flags (MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_*ATIME).</summary>
    public ulong Flags => Options.Split(',').Aggregate(0UL, (flags, option) => flags | option switch
    {
        "ro" => Native.Interop.MS_RDONLY,
        "nosuid" => Native.Interop.MS_NOSUID,
        "nodev" => Native.Interop.MS_NODEV,
        "noexec" => Native.Interop.MS_NOEXEC,
        "noatime" => Native.Interop.MS_NOATIME,
        "nodiratime" => Native.Interop.MS_NODIRATIME,
        "relatime" => Native.Interop.MS_RELATIME,
        _ => 0UL,
    });
}

/// <summary>/proc/PID/mountinfo, parsed (proc_pid_mountinfo(5)).</summary>
public static class MountInfo
{
    /// <summary>The mounts of process <paramref name="pid"/>'s mount namespace, parents before children.</summary>
    public static List<MountEntry> Of(int pid) => Parse(File.ReadAllText($"/proc/{pid}/mountinfo"));

    /// <summary>The mounts of this process's mount namespace.</summary>
    public static List<MountEntry> OfThisProcess() => Parse(File.ReadAllText("/proc/self/mountinfo"));

    /// <summary>
    /// The unique id of the mount <paramref name="path"/> is on (the top one where mounts are stacked):
    /// ids the kernel gives in the order mounts are made, never twice (6.8); null where it cannot tell.
    /// A copy of a mount namespace gets new ones, so a mount made after the copy has a greater id than
    /// the copy's root.
    /// </summary>
    public static unsafe ulong? UniqueId(string path)
    {
        Native.Statx st;
        fixed (byte* p = Native.NativeString.Utf8Z(path))
        {
            if (Native.Interop.Statx(Native.Interop.AT_FDCWD, p, Native.Interop.AT_SYMLINK_NOFOLLOW, Native.Interop.STATX_MNT_ID_UNIQUE, &st) != 0)
                return null;
        }
        return (st.stx_mask & Native.Interop.STATX_MNT_ID_UNIQUE) != 0 ? st.stx_mnt_id : null;
    }

    public static List<MountEntry> Parse(string text)
    {
        var mounts = new List<MountEntry>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            // id parent major:minor root mount-point options [optional fields...] - fstype source super-options
            var f = line.Split(' ');
            int dash = Array.IndexOf(f, "-", 6);
            if (f.Length < 7 || dash < 0 || dash + 3 > f.Length)
                throw new FormatException($"mountinfo line '{line}' is not id parent dev root point options [fields] - type source options");
            mounts.Add(new MountEntry(int.Parse(f[0], CultureInfo.InvariantCulture), int.Parse(f[1], CultureInfo.InvariantCulture), f[2],
                Unescape(f[3]), Unescape(f[4]), f[5], Unescape(f[dash + 1]), Unescape(f[dash + 2]), dash + 3 < f.Length ? Unescape(f[dash + 3]) : ""));
        }
        return mounts;
    }

    /// <summary>mountinfo escapes space, tab, newline and backslash as \ and three octal digits.</summary>
    public static string Unescape(string field)
    {
        if (!field.Contains('\\'))
            return field;
        var bytes = new List<byte>();
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length && field.AsSpan(i + 1, 3).IndexOfAnyExceptInRange('0', '7') < 0)
            {
                bytes.Add((byte)Convert.ToInt32(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(field[i].ToString()));
            }
        }
        return Encoding.UTF8.GetString([.. bytes]);
    }
}

using System.Globalization;

namespace Amber.Kernel.Proc;

/// <summary>The state /proc/PID/fdinfo/N shows for eventfd, timerfd, signalfd and epoll fds.</summary>
public static class AnonFdInfo
{
    public readonly record struct EventFd(ulong Count, bool Semaphore);

    public readonly record struct TimerFd(int ClockId, ulong Ticks, uint SettimeFlags, long ValueNs, long IntervalNs);

    public readonly record struct EpollTarget(int Fd, uint Events, ulong Data, ulong Inode);

    public readonly record struct InotifyWatch(int Wd, ulong Inode, ulong Device, uint Mask, int HandleType, byte[] Handle);

    /// <summary>"inotify wd:1 ino:a0b7f sdev:800001 mask:fc6 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:7fb0..."</summary>
    public static List<InotifyWatch> ParseInotify(string text)
    {
        var watches = new List<InotifyWatch>();
        foreach (var line in text.Split('\n'))
        {
            if (!line.StartsWith("inotify ", StringComparison.Ordinal))
                continue;
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
                .Select(t => t.Split(':', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
            watches.Add(new InotifyWatch(
                (int)Hex(fields["wd"]), Hex(fields["ino"]), Hex(fields["sdev"]), (uint)Hex(fields["mask"]),
                int.Parse(fields["fhandle-type"], NumberStyles.HexNumber, CultureInfo.InvariantCulture), Convert.FromHexString(fields["f_handle"])));
        }
        return watches;
    }

    public static EventFd ParseEventFd(string text) =>
        new(Hex(Value(text, "eventfd-count") ?? "0"), (Value(text, "eventfd-semaphore") ?? "0") != "0");

    public static TimerFd ParseTimerFd(string text) => new(
        int.Parse(Value(text, "clockid") ?? throw Missing("clockid"), CultureInfo.InvariantCulture),
        ulong.Parse(Value(text, "ticks") ?? "0", CultureInfo.InvariantCulture),
        Convert.ToUInt32(Value(text, "settime flags") ?? "0", 8),
        TimeSpec(Value(text, "it_value") ?? throw Missing("it_value")),
        TimeSpec(Value(text, "it_interval") ?? throw Missing("it_interval")));

    public static ulong ParseSignalFdMask(string text) => Hex(Value(text, "sigmask") ?? throw Missing("sigmask"));

    /// <summary>"tfd:        5 events:       19 data:                5  pos:0 ino:61af sdev:7"</summary>
    public static List<EpollTarget> ParseEpoll(string text)
    {
        var targets = new List<EpollTarget>();
        foreach (var line in text.Split('\n'))
        {
            if (!line.StartsWith("tfd:", StringComparison.Ordinal))
                continue;
            var tokens = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            string Field(string key) => tokens[Array.IndexOf(tokens, key) + 1];
            ulong inode = 0;
            foreach (var t in tokens)
            {
                if (t.StartsWith("ino:", StringComparison.Ordinal))
                    inode = Hex(t[4..]);
            }
            targets.Add(new EpollTarget(int.Parse(Field("tfd:"), CultureInfo.InvariantCulture), (uint)Hex(Field("events:")), Hex(Field("data:")), inode));
        }
        return targets;
    }

    private static string? Value(string text, string key)
    {
        foreach (var line in text.Split('\n'))
        {
            int colon = line.IndexOf(':');
            if (colon > 0 && line.AsSpan(0, colon).Trim().SequenceEqual(key))
                return line[(colon + 1)..].Trim();
        }
        return null;
    }

    /// <summary>"(sec, nsec)" → nanoseconds.</summary>
    private static long TimeSpec(string value)
    {
        var parts = value.Trim('(', ')').Split(',');
        return long.Parse(parts[0].Trim(), CultureInfo.InvariantCulture) * 1_000_000_000 + long.Parse(parts[1].Trim(), CultureInfo.InvariantCulture);
    }

    private static ulong Hex(string s) => ulong.Parse(s.Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    private static FormatException Missing(string key) => new($"fdinfo has no '{key}' line");
}

using System.Globalization;
using Amber.Coordinator;

namespace Amber.Cli;

/// <summary>
/// The values of the command line's options, checked before anything is started or created: a
/// wrong one is a usage error (exit 2) naming the option, what it expects and what it got.
/// </summary>
public static class OptionValues
{
    private static readonly TimeSpan LongestInterval = TimeSpan.FromDays(365);

    /// <summary>A group name: the same rule as the coordinator's (a file name and a cgroup name).</summary>
    public static string GroupName(string name) =>
        AmberHome.IsValidGroupName(name) ? name : throw new UsageException($"'{name}' is not a group name ({AmberHome.GroupNameRule})");

    /// <summary>A node's name (its certificate's), as the cluster's CA issues them.</summary>
    public static string NodeName(string name) =>
        Amber.Transport.Cluster.ClusterAuthority.IsNodeName(name) ? name : throw new UsageException($"'{name}' is not a node name ({Amber.Transport.Cluster.ClusterAuthority.NodeNameRule})");

    /// <summary>A process id: a whole number, 1 or more.</summary>
    public static int Pid(int pid) =>
        pid > 0 ? pid : throw new UsageException($"{pid} is not a process id (a PID is 1 or more)");

    /// <summary>"30s", "5m", "1h", "7d", "500ms", or a number of seconds, from 1 ms to 365 days; in seconds.</summary>
    public static double Interval(string text, string option)
    {
        text = text.Trim();
        (string number, double unit) = text switch
        {
            _ when text.EndsWith("ms", StringComparison.Ordinal) => (text[..^2], 0.001),
            _ when text.EndsWith('s') => (text[..^1], 1),
            _ when text.EndsWith('m') => (text[..^1], 60),
            _ when text.EndsWith('h') => (text[..^1], 3600),
            _ when text.EndsWith('d') => (text[..^1], 86400),
            _ => (text, 1),
        };
        // NaN fails every comparison: "is at least" is asked, never "is not below".
        bool parsed = double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double value);
        double seconds = value * unit;
        if (!parsed || !(seconds >= 0.001) || !(seconds <= LongestInterval.TotalSeconds))
            throw new UsageException($"{option} expects an interval such as 30s, 5m, 1h or 7d (1ms to 365 days), got '{text}'");
        return seconds;
    }

    /// <summary>"512M", "2G", "64K", "1T" (powers of 1024), or a number of bytes; 1 or more.</summary>
    public static long Size(string text, string option)
    {
        text = text.Trim();
        int shift = text.Length > 0 ? char.ToUpperInvariant(text[^1]) switch { 'K' => 10, 'M' => 20, 'G' => 30, 'T' => 40, _ => 0 } : 0;
        string number = shift > 0 ? text[..^1] : text;
        if (!long.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out long value) || value <= 0 || value > long.MaxValue >> shift)
            throw new UsageException($"{option} expects a size such as 512M or 2G, got '{text}'");
        return value << shift;
    }

    /// <summary>A count: a whole number, 1 or more.</summary>
    public static int Count(string text, string option, string what) =>
        int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value > 0
            ? value
            : throw new UsageException($"{option} expects a number of {what}, 1 or more, got '{text}'");

    /// <summary>Seconds to wait: 0 (do not wait) or more, at most a day.</summary>
    public static double WaitSeconds(double seconds, string option) =>
        seconds is >= 0 and <= 86400 ? seconds : throw new UsageException($"{option} expects a number of seconds from 0 to 86400, got {seconds.ToString(CultureInfo.InvariantCulture)}");
}

using System.Globalization;

namespace Amber.Kernel.Features;

/// <summary>The running kernel's release (/proc/sys/kernel/osrelease), e.g. "6.18.44-fc-v782".</summary>
internal static class KernelRelease
{
    /// <summary>userfaultfd WP_ASYNC and PAGEMAP_SCAN, for incremental checkpoints, came in 6.7.</summary>
    public static readonly Version Recommended = new(6, 7);

    public static string Read() => File.ReadAllText("/proc/sys/kernel/osrelease").Trim();

    /// <summary>Major.minor of a release string; 0.0 if it does not start with one.</summary>
    public static Version Parse(string release)
    {
        var parts = release.Split('.', 3);
        return parts.Length >= 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int major)
            && int.TryParse(new string([.. parts[1].TakeWhile(char.IsAsciiDigit)]), NumberStyles.None, CultureInfo.InvariantCulture, out int minor)
            ? new Version(major, minor)
            : new Version(0, 0);
    }

    public static Version Current() => Parse(Read());

    public static (bool Present, string Detail) Probe()
    {
        string release = Read();
        return Parse(release) >= Recommended
            ? (true, release)
            : (false, $"{release}: older than {Recommended}, incremental checkpoints will be slower");
    }
}

using System.Globalization;

namespace Amber.Kernel.Proc;

/// <summary>/proc/meminfo: the machine's memory, as the kernel counts it.</summary>
public static class MemInfo
{
    /// <summary>
    /// MemAvailable: what can be allocated without swapping (free memory and reclaimable caches),
    /// in bytes; 0 when the kernel does not say.
    /// </summary>
    public static long AvailableBytes()
    {
        foreach (var line in File.ReadLines("/proc/meminfo"))
        {
            if (!line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                continue;
            var kib = line["MemAvailable:".Length..].Trim().Split(' ')[0];
            return long.TryParse(kib, NumberStyles.None, CultureInfo.InvariantCulture, out long value) ? value * 1024 : 0;
        }
        return 0;
    }
}

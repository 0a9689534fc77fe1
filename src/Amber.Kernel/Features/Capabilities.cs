using System.Globalization;

namespace Amber.Kernel.Features;

/// <summary>The effective capabilities of this process (CapEff in /proc/self/status).</summary>
internal static class Capabilities
{
    public const int CAP_SYS_PTRACE = 19;
    public const int CAP_SYS_ADMIN = 21;
    public const int CAP_CHECKPOINT_RESTORE = 40;

    public static string Name(int cap) => cap switch
    {
        CAP_SYS_PTRACE => "CAP_SYS_PTRACE",
        CAP_SYS_ADMIN => "CAP_SYS_ADMIN",
        CAP_CHECKPOINT_RESTORE => "CAP_CHECKPOINT_RESTORE",
        _ => $"capability {cap}",
    };

    public static bool HasEffective(int cap) => (Effective() & (1UL << cap)) != 0;

    public static (bool Present, string Detail) Require(int cap) =>
        HasEffective(cap) ? (true, $"{Name(cap)} effective") : (false, $"{Name(cap)} not effective (run as root)");

    private static ulong Effective()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("CapEff:", StringComparison.Ordinal))
                return ulong.Parse(line.AsSpan("CapEff:".Length).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        }
        throw new InvalidDataException("/proc/self/status has no CapEff line");
    }
}

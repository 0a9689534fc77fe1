using System.Globalization;

namespace Amber.Kernel.Proc;

/// <summary>One timer of /proc/PID/timers.</summary>
public readonly record struct PosixTimerInfo(int Id, int Signal, ulong Value, int Notify, int NotifyTid, int Clock)
{
    private const int SigevNone = 1, SigevThread = 2, SigevThreadId = 4;

    /// <summary>"ID: 0 / signal: 14/00000000deadbeef / notify: signal/pid.1234 / ClockID: 1", four lines a timer.</summary>
    public static List<PosixTimerInfo> Parse(string text)
    {
        var timers = new List<PosixTimerInfo>();
        int id = 0, signal = 0, notify = 0, tid = 0;
        ulong value = 0;
        foreach (var raw in text.Split('\n'))
        {
            string line = raw.Trim();
            if (line.StartsWith("ID:", StringComparison.Ordinal))
                id = int.Parse(line[3..].Trim(), CultureInfo.InvariantCulture);
            else if (line.StartsWith("signal:", StringComparison.Ordinal))
            {
                var parts = line[7..].Trim().Split('/');
                signal = int.Parse(parts[0], CultureInfo.InvariantCulture);
                value = ulong.Parse(parts[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("notify:", StringComparison.Ordinal))
            {
                var parts = line[7..].Trim().Split('/', '.');
                notify = parts[0] switch { "none" => SigevNone, "thread" => SigevThread, _ => 0 } | (parts[1] == "tid" ? SigevThreadId : 0);
                tid = int.Parse(parts[2], CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("ClockID:", StringComparison.Ordinal))
                timers.Add(new PosixTimerInfo(id, signal, value, notify, tid, int.Parse(line[8..].Trim(), CultureInfo.InvariantCulture)));
        }
        return timers;
    }
}

using System.Globalization;
using System.Text;
using Amber.Kernel.Files;
using Amber.Kernel.Memory;

namespace Amber.Coordinator.Workers;

/// <summary>
/// Write trackers travelling between the coordinator, which keeps them alive between checkpoints,
/// and a checkpoint worker: one message per process, "tracker PID START-END,..." (hex) with its
/// userfaultfd attached, then "end".
/// </summary>
public static class TrackerMessages
{
    public static void Send(HeldFile channel, int pid, HeldFile uffd, IReadOnlyList<(ulong Start, ulong End)> ranges) =>
        FdChannel.Send(channel, $"tracker {pid.ToString(CultureInfo.InvariantCulture)} {Encode(ranges)}", [uffd]);

    public static void End(HeldFile channel) => FdChannel.Send(channel, "end", []);

    public static void SendAll(HeldFile channel, IEnumerable<(int Pid, DirtyTracker Tracker, IReadOnlyList<(ulong Start, ulong End)> Ranges)> trackers)
    {
        foreach (var (pid, tracker, ranges) in trackers)
            Send(channel, pid, tracker.Handle, ranges);
        End(channel);
    }

    /// <summary>Every tracker until "end" (or the end of the channel), by pid; the caller owns the files.</summary>
    public static Dictionary<int, (HeldFile Uffd, IReadOnlyList<(ulong Start, ulong End)> Ranges)> ReceiveAll(HeldFile channel)
    {
        var trackers = new Dictionary<int, (HeldFile, IReadOnlyList<(ulong, ulong)>)>();
        while (FdChannel.Receive(channel) is { } message)
        {
            var parts = message.Text.Split(' ');
            if (parts[0] == "end")
            {
                foreach (var f in message.Files)
                    f.Dispose();
                break;
            }
            if (parts.Length != 3 || parts[0] != "tracker" || message.Files.Count != 1 || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                throw new IOException($"an unexpected message on the tracker channel: '{message.Text}'");
            trackers[pid] = (message.Files[0], Decode(parts[2]));
        }
        return trackers;
    }

    private static string Encode(IReadOnlyList<(ulong Start, ulong End)> ranges)
    {
        var text = new StringBuilder();
        foreach (var (start, end) in ranges)
            text.Append(text.Length > 0 ? "," : "").Append(start.ToString("x", CultureInfo.InvariantCulture)).Append('-').Append(end.ToString("x", CultureInfo.InvariantCulture));
        return text.Length > 0 ? text.ToString() : "-";
    }

    private static List<(ulong, ulong)> Decode(string text) =>
        text == "-" ? [] : [.. text.Split(',').Select(r => r.Split('-')).Select(p => (ulong.Parse(p[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture), ulong.Parse(p[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture)))];
}

using System.Globalization;
using System.Text;
using Amber.Image;
using Amber.Kernel;
using Amber.Kernel.Files;

namespace Amber.Coordinator.Workers;

/// <summary>
/// A restore worker whose page files are still arriving (a post-copy migration): the coordinator
/// receives them from the other node, the worker reads them. Before each read of bytes it has not
/// been told are in, the worker says "need OFFSET LENGTH PATH" on its channel and waits; the
/// coordinator answers "have" once they are in the file, or "fail REASON" if they never will be.
/// Before a batch of reads it may say "want COUNT OFFSET LENGTH... PATH": the coordinator asks for them
/// all at once and answers "have" at once (a prefetch; each read still says "need").
/// </summary>
public static class PageNeeds
{
    private const string Need = "need ";
    private const string Want = "want ";
    private const string Have = "have";
    private const string Fail = "fail ";
    /// <summary>Ranges per "want": its text well within a channel message (64 KiB).</summary>
    private const int WantAtMost = 1000;

    /// <summary>In the worker: page files that wait for the coordinator's answers over <paramref name="channel"/>.</summary>
    public static IPageArrivals Asking(HeldFile channel) => new Asker(channel);

    /// <summary>
    /// In the coordinator: a thread that answers the worker's needs from <paramref name="arrivals"/>
    /// until the channel closes (the worker ended).
    /// </summary>
    public static Thread Answer(HeldFile channel, IPageArrivals arrivals)
    {
        var thread = new Thread(() =>
        {
            try
            {
                while (FdChannel.Receive(channel) is { } message)
                {
                    foreach (var file in message.Files)
                        file.Dispose();
                    FdChannel.Send(channel, Serve(message.Text, arrivals), []);
                }
            }
            catch (KernelCallException)
            {
                // The worker is gone: it needs nothing more.
            }
        })
        { IsBackground = true, Name = "amberd-page-needs" };
        thread.Start();
        return thread;
    }

    private static string Serve(string text, IPageArrivals arrivals)
    {
        if (text.StartsWith(Want, StringComparison.Ordinal))
            return ServeWant(text, arrivals);
        var parts = text.Split(' ', 4);
        if (parts is not [_, var offset, var length, var path] || !text.StartsWith(Need, StringComparison.Ordinal)
            || !ulong.TryParse(offset, NumberStyles.None, CultureInfo.InvariantCulture, out ulong from)
            || !ulong.TryParse(length, NumberStyles.None, CultureInfo.InvariantCulture, out ulong count))
            return $"{Fail}'{text}' is not a need";
        try
        {
            arrivals.Await(path, from, count);
            return Have;
        }
        catch (ImageFormatException e)
        {
            return Fail + e.Message.ReplaceLineEndings(" ");
        }
    }

    private static string ServeWant(string text, IPageArrivals arrivals)
    {
        var head = text.Split(' ', 3);
        if (head.Length != 3 || !int.TryParse(head[1], NumberStyles.None, CultureInfo.InvariantCulture, out int count) || count is <= 0 or > WantAtMost)
            return $"{Fail}'{text}' is not a want";
        var parts = head[2].Split(' ', 2 * count + 1);
        if (parts.Length != 2 * count + 1)
            return $"{Fail}'{text}' is not a want";
        var ranges = new List<(ulong, ulong)>(count);
        for (int i = 0; i < count; i++)
        {
            if (!ulong.TryParse(parts[2 * i], NumberStyles.None, CultureInfo.InvariantCulture, out ulong offset)
                || !ulong.TryParse(parts[2 * i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong length))
                return $"{Fail}'{text}' is not a want";
            ranges.Add((offset, length));
        }
        arrivals.Prefetch(parts[^1], ranges);
        return Have;
    }

    /// <summary>The worker's side: what it was told is in, and a question for the rest (one at a time).</summary>
    private sealed class Asker(HeldFile channel) : IPageArrivals
    {
        private readonly Dictionary<string, ByteRanges> _known = new(StringComparer.Ordinal);
        private readonly Lock _lock = new();

        public void Await(string path, ulong offset, ulong length)
        {
            lock (_lock)
            {
                if (!_known.TryGetValue(path, out var known))
                    _known[path] = known = new ByteRanges();
                if (known.Covers(offset, offset + length))
                    return;
                string? answer;
                try
                {
                    FdChannel.Send(channel, string.Create(CultureInfo.InvariantCulture, $"{Need}{offset} {length} {path}"), []);
                    var message = FdChannel.Receive(channel);
                    foreach (var file in message?.Files ?? [])
                        file.Dispose();
                    answer = message?.Text;
                }
                catch (KernelCallException e)
                {
                    answer = $"{Fail}the coordinator could not be asked ({e.Message})";
                }
                if (answer == Have)
                {
                    known.Add(offset, offset + length);
                    return;
                }
                string why = answer is not null && answer.StartsWith(Fail, StringComparison.Ordinal) ? answer[Fail.Length..] : "the coordinator went away";
                throw new ImageFormatException($"{path}: bytes {offset} to {offset + length} never arrived: {why}");
            }
        }

        public void Prefetch(string path, IReadOnlyList<(ulong Offset, ulong Length)> ranges)
        {
            lock (_lock)
            {
                _known.TryGetValue(path, out var known);
                var wanted = ranges.Where(r => known?.Covers(r.Offset, r.Offset + r.Length) != true).ToList();
                foreach (var chunk in wanted.Chunk(WantAtMost))
                {
                    var text = new StringBuilder(Want).Append(chunk.Length.ToString(CultureInfo.InvariantCulture));
                    foreach (var (offset, length) in chunk)
                        text.Append(CultureInfo.InvariantCulture, $" {offset} {length}");
                    text.Append(' ').Append(path);
                    try
                    {
                        FdChannel.Send(channel, text.ToString(), []);
                        var message = FdChannel.Receive(channel);
                        foreach (var file in message?.Files ?? [])
                            file.Dispose();
                    }
                    catch (KernelCallException)
                    {
                        return; // only a prefetch: the reads that follow say what failed
                    }
                }
            }
        }
    }
}

/// <summary>
/// Page arrivals known only later (a restore started before its checkpoint is known): every call goes
/// to what <see cref="Forward"/> gave, which comes before the worker is told what to restore, and so
/// before it reads anything.
/// </summary>
public sealed class ForwardedArrivals : IPageArrivals
{
    private IPageArrivals? _to;

    public void Forward(IPageArrivals to) => Volatile.Write(ref _to, to);

    public void Await(string path, ulong offset, ulong length) => To.Await(path, offset, length);

    public void Prefetch(string path, IReadOnlyList<(ulong Offset, ulong Length)> ranges) => To.Prefetch(path, ranges);

    private IPageArrivals To => Volatile.Read(ref _to) ?? throw new ImageFormatException($"page data was asked for before the checkpoint to restore was known");
}

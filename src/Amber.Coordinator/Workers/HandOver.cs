using Amber.Kernel;
using Amber.Kernel.Files;

namespace Amber.Coordinator.Workers;

/// <summary>
/// A worker's last step, decided by the coordinator: a checkpoint whose processes are frozen and
/// saved asks whether to end them, a restore whose processes are made asks whether to release them,
/// a checkpoint of a group across nodes whose processes are read out asks whether to let them run on.
/// The worker says "ready" on its channel and waits; the coordinator answers "go", or "stop REASON"
/// (the processes run on, or the restored ones are killed). A migration decides this way that the
/// group runs on exactly one node. A channel that closes before an answer is a "stop".
/// </summary>
public static class HandOver
{
    private const string Ready = "ready";
    private const string Go = "go";
    private const string Stop = "stop ";
    private const string Ending = "ending";
    private const string Released = "released";
    private const string Waiting = "waiting";
    private const string Images = "images ";

    /// <summary>What a checkpoint worker at a group's barrier across nodes says with its "ready" (<see cref="Ask"/>).</summary>
    public const string AtBarrier = "barrier";

    /// <summary>What a checkpoint worker of a group across nodes says with its "ready" just before its freeze.</summary>
    public const string BeforeFreeze = "freeze";

    /// <summary>
    /// The <c>--images</c> of a restore worker started ahead of its restore: it gets ready (the
    /// runtime started, its memory faulted in) and asks for the checkpoint (<see cref="AwaitImages"/>).
    /// </summary>
    public const string Later = "-";

    /// <summary>
    /// In a restore worker started ahead (<see cref="Later"/>): the checkpoint to restore, once the
    /// coordinator has it; or null, and why not (<paramref name="why"/>).
    /// </summary>
    public static string? AwaitImages(HeldFile channel, out string why)
    {
        string? answer = Exchange(channel, Waiting, out string? failed);
        why = failed ?? "";
        switch (answer)
        {
            case null when failed is not null:
                return null;
            case { } text when text.StartsWith(Images, StringComparison.Ordinal) && text.Length > Images.Length:
                return text[Images.Length..];
            case { } text when text.StartsWith(Stop, StringComparison.Ordinal):
                why = text[Stop.Length..];
                return null;
            default:
                why = "the coordinator went away before it said which checkpoint";
                return null;
        }
    }

    /// <summary>In the worker: null to go on, or why not. <paramref name="about"/>: what the coordinator needs to know to decide (a checkpoint's sealed directory).</summary>
    public static string? Ask(HeldFile channel, string about = "")
    {
        string? answer = Exchange(channel, about.Length == 0 ? Ready : $"{Ready} {about}", out string? failed);
        if (failed is not null)
            return failed;
        return answer switch
        {
            Go => null,
            { } text when text.StartsWith(Stop, StringComparison.Ordinal) => text[Stop.Length..],
            _ => "the coordinator went away before it said",
        };
    }

    /// <summary>
    /// In the worker: says <paramref name="text"/> and waits for the coordinator's answer; null if the
    /// channel closed first, or if it could not be asked at all (then <paramref name="failed"/> says why).
    /// </summary>
    private static string? Exchange(HeldFile channel, string text, out string? failed)
    {
        failed = null;
        try
        {
            FdChannel.Send(channel, text, []);
            var answer = FdChannel.Receive(channel);
            foreach (var file in answer?.Files ?? [])
                file.Dispose();
            return answer?.Text;
        }
        catch (KernelCallException e)
        {
            failed = $"the coordinator could not be asked ({e.Message})";
            return null;
        }
    }

    /// <summary>
    /// In the worker, after a "go": the processes have been sent SIGKILL, none runs again (a
    /// checkpoint's); the coordinator may act on it before the worker has collected them and reported.
    /// </summary>
    public static void Ended(HeldFile channel)
    {
        try
        {
            FdChannel.Send(channel, Ending, []);
        }
        catch (KernelCallException)
        {
            // The coordinator is gone: its report, or its absence, tells the rest.
        }
    }

    /// <summary>
    /// In the worker, after a "go": the restored processes run (a lazy restore's worker goes on
    /// placing their memory, and reports only once that is done).
    /// </summary>
    public static void Running(HeldFile channel)
    {
        try
        {
            FdChannel.Send(channel, Released, []);
        }
        catch (KernelCallException)
        {
            // The coordinator is gone: its report, or its absence, tells the rest.
        }
    }

    /// <summary>
    /// In the coordinator: a thread that waits for the worker's "ready" and answers what
    /// <paramref name="decide"/> says, given what the worker said with it (null: go; else why not), then, after a go, for the worker's
    /// "ending" to call <paramref name="ended"/> (a checkpoint's) or its "released" to call
    /// <paramref name="released"/> (a restore's). It ends with the channel, or once it has done so;
    /// <see cref="Answerer.Asked"/> tells whether the worker got so far.
    /// </summary>
    /// <param name="images">
    /// For a restore worker started ahead (<see cref="Later"/>): the checkpoint it restores, asked for
    /// when it is ready; waits until it is known; null if it is not to restore anything.
    /// </param>
    /// <param name="questions">How many "ready"s the worker asks (each answered, until one is not a go): a checkpoint of a group across nodes asks two.</param>
    public static Answerer Answer(HeldFile channel, Func<string, string?> decide, Action? ended = null, Action? released = null, Func<string?>? images = null, int questions = 1)
    {
        var answerer = new Answerer();
        answerer.Start(channel, decide, ended, released, images, questions);
        return answerer;
    }

    /// <summary>The coordinator's side of one hand-over.</summary>
    public sealed class Answerer
    {
        private Thread? _thread;

        /// <summary>The worker asked (it got to its last step), and this is what it was told (null: go).</summary>
        public bool Asked { get; private set; }

        public string? Answer { get; private set; }

        /// <summary>The worker said its processes were ending (after a go).</summary>
        public bool Ending { get; private set; }

        internal void Start(HeldFile channel, Func<string, string?> decide, Action? ended, Action? released, Func<string?>? images, int questions)
        {
            int asked = 0;
            _thread = new Thread(() =>
            {
                try
                {
                    while (FdChannel.Receive(channel) is { } message)
                    {
                        foreach (var file in message.Files)
                            file.Dispose();
                        if (message.Text == HandOver.Ending && Asked && Answer is null)
                        {
                            Ending = true;
                            ended?.Invoke();
                            return;
                        }
                        if (message.Text == Released && Asked && Answer is null)
                        {
                            released?.Invoke();
                            return;
                        }
                        if (message.Text == Waiting && images is not null && !Asked)
                        {
                            string? path;
                            try
                            {
                                path = images();
                            }
                            catch (Exception e)
                            {
                                FdChannel.Send(channel, Stop + e.Message.ReplaceLineEndings(" "), []);
                                return;
                            }
                            FdChannel.Send(channel, path is null ? Stop + "nothing to restore (the migration ended first)" : Images + path, []);
                            if (path is null)
                                return;
                            continue;
                        }
                        string about = message.Text.StartsWith(Ready + " ", StringComparison.Ordinal) ? message.Text[(Ready.Length + 1)..] : "";
                        if ((message.Text != Ready && about.Length == 0) || asked == questions)
                            continue; // trackers' "end", say
                        Asked = true;
                        asked++;
                        try
                        {
                            Answer = decide(about);
                        }
                        catch (Exception e)
                        {
                            Answer = e.Message;
                        }
                        FdChannel.Send(channel, Answer is null ? Go : Stop + Answer.ReplaceLineEndings(" "), []);
                        if (Answer is not null || (asked == questions && ended is null && released is null))
                            return;
                    }
                }
                catch (KernelCallException)
                {
                    // The worker is gone: it decides nothing more.
                }
            })
            { IsBackground = true, Name = "amberd-hand-over" };
            _thread.Start();
        }

        /// <summary>Waits for the thread: call once the worker has ended and the worker's end of the channel is closed.</summary>
        public void Join() => _thread?.Join();
    }
}

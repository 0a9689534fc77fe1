using System.Diagnostics;
using System.Net;
using System.Runtime.CompilerServices;
using Amber.Coordinator.Control;
using Amber.Transport.Peers;

namespace Amber.Transport.Cluster;

/// <summary>
/// The leader's side of one operation of a group across nodes, in rounds: in each, every node (this
/// one too) takes its part up to its next barrier and says so, "held"; once every node has, the
/// leader says "go" to all, and they go on to the next. A checkpoint has two: ready to freeze (its
/// copies made while the processes run), then frozen and read out; a restore one: made, its network
/// locked. If a node fails, or says nothing in time, "abort" to all, and every part is undone. Then
/// each says how its part ended.
/// </summary>
internal static class BarrierAcrossNodes
{
    /// <summary>
    /// How it went: why it was abandoned (null: it went), how long each round took until every part
    /// held, this node's response, and each other node's last word or failure.
    /// </summary>
    public sealed record Outcome(string? Abandoned, IReadOnlyList<double> RoundMs, ControlResponse Local, List<(string Node, PeerMessage? Done, string? Failure)> Remote);

    /// <param name="self">This node's name.</param>
    /// <param name="local">This node's part, given what to ask at each of its barriers, in order (null: go on; else why not).</param>
    /// <param name="remotes">The other nodes, each with the request of its part.</param>
    /// <param name="rounds">How many barriers a part has.</param>
    /// <param name="done">The op a node's part ends with when it went well.</param>
    /// <param name="identity">This node, to connect to the others.</param>
    /// <param name="timeout">How long every part may take to each barrier, and a peer may be silent.</param>
    /// <param name="lost">
    /// Which of the nodes named is lost (the cluster's store lists it live no longer), or null; asked
    /// every <see cref="LossPoll"/> until the operation is over: a lost node's link is cut then, its part
    /// failed, rather than waited for until <paramref name="timeout"/> (null: not asked).
    /// </param>
    public static Outcome Run(string self, Func<IReadOnlyList<Func<string?>>, ControlResponse> local, IReadOnlyList<(NodeRecord Node, PeerMessage Request)> remotes,
        int rounds, string done, NodeIdentity identity, TimeSpan timeout, Func<IReadOnlyList<string>, string?>? lost = null)
    {
        var parts = remotes.Select(r => new RemotePart(r.Node, identity, timeout, rounds)).ToList();
        var over = new StrongBox<bool>();
        if (lost is not null && parts.Count > 0)
            new Thread(() => WatchLosses(parts, lost, over)) { IsBackground = true, Name = "amber-barrier-losses" }.Start();
        var mine = new LocalPart(rounds);
        var localDone = Task.Factory.StartNew(() => local(mine.Barriers), TaskCreationOptions.LongRunning);
        _ = localDone.ContinueWith(t => mine.Failed(t.IsFaulted ? t.Exception!.InnerException!.Message : t.Result.Ok ? "" : t.Result.Error), TaskScheduler.Default);
        for (int i = 0; i < parts.Count; i++)
            parts[i].Ask(remotes[i].Request);

        var roundMs = new List<double>();
        string? abandon = null;
        for (int round = 0; round < rounds && abandon is null; round++)
        {
            var clock = Stopwatch.StartNew();
            // Held everywhere, or the first reason not to be.
            var pending = parts.Select(r => (Name: r.Node.Name, Held: r.Held)).Prepend((Name: self, Held: mine.Held(round))).ToList();
            while (pending.Count > 0 && abandon is null)
            {
                var left = timeout - clock.Elapsed;
                int first = left <= TimeSpan.Zero ? -1 : Task.WaitAny([.. pending.Select(p => (Task)p.Held)], left);
                if (first < 0)
                {
                    abandon = $"node{(pending.Count > 1 ? "s" : "")} {string.Join(", ", pending.Select(p => p.Name))} did not reach the barrier within {timeout.TotalSeconds:0} s";
                    break;
                }
                var (node, held) = pending[first];
                pending.RemoveAt(first);
                if (held.Result is { } why)
                    abandon = $"node {node}: {why}";
            }
            roundMs.Add(clock.Elapsed.TotalMilliseconds);
            if (abandon is not null)
                break;
            // The word to every part first, this node's last (its path is the shortest); only then the
            // waits for the next barrier, each a thread started: not between two parts' words.
            foreach (var part in parts)
                part.Go();
            mine.Decide(round, null);
            if (round + 1 < rounds)
            {
                foreach (var part in parts)
                    part.AwaitNext();
            }
        }
        if (abandon is not null)
        {
            foreach (var part in parts)
                part.Abort(abandon);
            mine.Abort($"abandoned across nodes: {abandon}");
        }
        var response = localDone.GetAwaiter().GetResult();
        var outcome = new Outcome(abandon, roundMs, response, [.. parts.Select(p => p.Finish(done) is var (message, failure) ? (p.Node.Name, message, failure) : default)]);
        Volatile.Write(ref over.Value, true);
        return outcome;
    }

    /// <summary>How often the store is asked whether a node of an operation under way is lost.</summary>
    private static readonly TimeSpan LossPoll = TimeSpan.FromMilliseconds(250);

    /// <summary>Until the operation is over: the link of every part whose node is lost cut (its part failed at once).</summary>
    private static void WatchLosses(List<RemotePart> parts, Func<IReadOnlyList<string>, string?> lost, StrongBox<bool> over)
    {
        try
        {
            while (true)
            {
                Thread.Sleep(LossPoll);
                if (Volatile.Read(ref over.Value))
                    return;
                var watched = parts.Where(p => !p.IsLost).Select(p => p.Node.Name).ToList();
                if (watched.Count == 0)
                    return;
                if (lost(watched) is { } node)
                    parts.First(p => p.Node.Name == node).Lose();
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The store's client gone (the agent stops): the operation's own timeout stands.
        }
    }

    /// <summary>This node's part: held at each barrier until the leader (this node) decides.</summary>
    private sealed class LocalPart
    {
        private readonly TaskCompletionSource<string?>[] _held;
        private readonly TaskCompletionSource<string?>[] _decisions;

        public LocalPart(int rounds)
        {
            _held = [.. Enumerable.Range(0, rounds).Select(_ => new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously))];
            _decisions = [.. Enumerable.Range(0, rounds).Select(_ => new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously))];
            Barriers = [.. Enumerable.Range(0, rounds).Select(round => (Func<string?>)(() =>
            {
                _held[round].TrySetResult(null);
                return _decisions[round].Task.GetAwaiter().GetResult();
            }))];
        }

        /// <summary>What the part asks at each of its barriers.</summary>
        public IReadOnlyList<Func<string?>> Barriers { get; }

        /// <summary>Null once held at barrier <paramref name="round"/>; why not, if the part ended first.</summary>
        public Task<string?> Held(int round) => _held[round].Task;

        /// <summary>The part ended (how it ended said only where it had not reached a barrier).</summary>
        public void Failed(string why)
        {
            foreach (var held in _held)
                held.TrySetResult(why.Length > 0 ? why : "its part ended before its barrier");
        }

        public void Decide(int round, string? abandon) => _decisions[round].TrySetResult(abandon);

        public void Abort(string why)
        {
            foreach (var decision in _decisions)
                decision.TrySetResult(why);
        }
    }

    /// <summary>Another node's part, over a link to its agent.</summary>
    private sealed class RemotePart(NodeRecord node, NodeIdentity identity, TimeSpan timeout, int rounds)
    {
        private volatile PeerLink? _link;
        private int _round;
        private volatile bool _lost;

        /// <summary>Why its link failed: its node lost, or <paramref name="problem"/>.</summary>
        private string Why(string problem) => _lost ? "it is lost (the cluster's store no longer lists it live)" : problem;

        /// <summary>Its node is lost: found so by the store.</summary>
        public bool IsLost => _lost;

        /// <summary>Its node is lost: its link cut, whatever waits on it fails now.</summary>
        public void Lose()
        {
            _lost = true;
            _link?.Cut();
        }

        public NodeRecord Node => node;

        /// <summary>Null once held there at the current barrier; why not otherwise.</summary>
        public Task<string?> Held { get; private set; } = Task.FromResult<string?>("not asked");

        public void Ask(PeerMessage request) => Held = Task.Factory.StartNew(() =>
        {
            try
            {
                if (!IPEndPoint.TryParse(node.Address, out var address))
                    return $"its address '{node.Address}' in the cluster's store is not ADDR:PORT";
                _link = PeerLink.Connect(address, identity, timeout);
                if (_lost)
                    _link.Cut(); // lost while it connected
                _link.Greet();
                _link.Send(request);
                return AwaitHeld();
            }
            catch (IOException e)
            {
                return Why(e.Message);
            }
        }, TaskCreationOptions.LongRunning);

        private string? AwaitHeld()
        {
            var answer = NodeParts.Next(_link!);
            return answer.Op == Ops.Held ? null : answer.Op == Ops.Error ? answer.Error : $"it answered '{answer.Op}'";
        }

        private bool IsHeld => _link is not null && Held.IsCompletedSuccessfully && Held.Result is null;

        /// <summary>Every part held: "go".</summary>
        public void Go()
        {
            try
            {
                _link!.Send(PeerMessage.Of(Ops.Go));
            }
            catch (IOException e)
            {
                Held = Task.FromResult<string?>(Why(e.Message));
                return;
            }
            _round++;
        }

        /// <summary>After <see cref="Go"/>, when a round follows: the wait for its next barrier begins (unless the word did not go).</summary>
        public void AwaitNext()
        {
            if (!IsHeld)
                return;
            Held = Task.Factory.StartNew(() =>
            {
                try
                {
                    return AwaitHeld();
                }
                catch (IOException e)
                {
                    return Why(e.Message);
                }
            }, TaskCreationOptions.LongRunning);
        }

        /// <summary>The operation is abandoned: "abort" to a part at its barrier; one still on its way finds its link closed when it gets there.</summary>
        public void Abort(string why)
        {
            if (!Held.IsCompleted)
            {
                _ = Held.ContinueWith(_ => _link?.Dispose(), TaskScheduler.Default);
                return;
            }
            if (!IsHeld)
            {
                _link?.Dispose();
                return;
            }
            try
            {
                _link!.Send(new PeerMessage { Op = Ops.Abort, Error = why });
            }
            catch (IOException)
            {
                // lost: the node undoes its part (a leader gone silent), and Finish says so
            }
        }

        /// <summary>The node's last word (<paramref name="done"/>), or why there is none.</summary>
        public (PeerMessage? Done, string? Failure) Finish(string done)
        {
            if (_round < rounds && !IsHeld)
                return (null, Held.IsCompleted ? Held.Result : "it did not reach the barrier in time");
            try
            {
                var answer = NodeParts.Next(_link!);
                if (answer.Op == Ops.Error)
                    return (null, answer.Error);
                return answer.Op == done ? (answer, null) : (null, $"it answered '{answer.Op}' where '{done}' was due");
            }
            catch (IOException e)
            {
                return (null, Why(e.Message));
            }
            finally
            {
                _link!.Dispose();
            }
        }
    }
}

using System.Diagnostics;
using System.Net;
using Amber.Coordinator.Control;
using Amber.Transport.Peers;

namespace Amber.Transport.Cluster;

/// <summary>
/// The leader's side of one operation of a group across nodes, in two phases: every node (this one
/// too) does its part up to its barrier (a checkpoint: its members frozen and read out; a restore:
/// its members made, their network locked) and says so, "held"; once every node has, the leader says
/// "go" to all, and they go on (run on and write; are released); if one fails or says nothing in
/// time, "abort" to all, and every part is undone. Then each says how its part ended.
/// </summary>
internal static class BarrierAcrossNodes
{
    /// <summary>How it went: why it was abandoned (null: it went), how long until every part held, this node's response, and each other node's last word or failure.</summary>
    public sealed record Outcome(string? Abandoned, double BarrierMs, ControlResponse Local, List<(string Node, PeerMessage? Done, string? Failure)> Remote);

    /// <param name="self">This node's name.</param>
    /// <param name="local">This node's part, given what to ask at its barrier (null: go on; else why not).</param>
    /// <param name="remotes">The other nodes, each with the request of its part.</param>
    /// <param name="done">The op a node's part ends with when it went well.</param>
    /// <param name="identity">This node, to connect to the others.</param>
    /// <param name="timeout">How long every part may take to its barrier, and a peer may be silent.</param>
    public static Outcome Run(string self, Func<Func<string?>, ControlResponse> local, IReadOnlyList<(NodeRecord Node, PeerMessage Request)> remotes,
        string done, NodeIdentity identity, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        var parts = remotes.Select(r => new RemotePart(r.Node, identity, timeout)).ToList();
        var mine = new LocalPart();
        var localDone = Task.Factory.StartNew(() => local(mine.AtBarrier), TaskCreationOptions.LongRunning);
        _ = localDone.ContinueWith(t => mine.Failed(t.IsFaulted ? t.Exception!.InnerException!.Message : t.Result.Ok ? "" : t.Result.Error), TaskScheduler.Default);
        for (int i = 0; i < parts.Count; i++)
            parts[i].Ask(remotes[i].Request);

        // Held everywhere, or the first reason not to be.
        var pending = parts.Select(r => (Name: r.Node.Name, r.Held)).Prepend((Name: self, Held: mine.Held)).ToList();
        string? abandon = null;
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
        double barrierMs = clock.Elapsed.TotalMilliseconds;
        foreach (var part in parts)
            part.Decide(abandon);
        mine.Decide(abandon is null ? null : $"abandoned across nodes: {abandon}");

        var response = localDone.GetAwaiter().GetResult();
        return new Outcome(abandon, barrierMs, response, [.. parts.Select(p => p.Finish(done) is var (message, failure) ? (p.Node.Name, message, failure) : default)]);
    }

    /// <summary>This node's part: held at its barrier until the leader (this node) decides.</summary>
    private sealed class LocalPart
    {
        private readonly TaskCompletionSource<string?> _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource<string?> _decision = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Null once held; why not, if the part ended first.</summary>
        public Task<string?> Held => _held.Task;

        public string? AtBarrier()
        {
            _held.TrySetResult(null);
            return _decision.Task.GetAwaiter().GetResult();
        }

        public void Failed(string why) => _held.TrySetResult(why.Length > 0 ? why : "its part ended before its barrier");

        public void Decide(string? abandon) => _decision.TrySetResult(abandon);
    }

    /// <summary>Another node's part, over a link to its agent.</summary>
    private sealed class RemotePart(NodeRecord node, NodeIdentity identity, TimeSpan timeout)
    {
        private PeerLink? _link;
        private Task<string?>? _held;

        public NodeRecord Node => node;

        /// <summary>Null once held there; why not otherwise.</summary>
        public Task<string?> Held => _held!;

        public void Ask(PeerMessage request) => _held = Task.Factory.StartNew(() =>
        {
            try
            {
                if (!IPEndPoint.TryParse(node.Address, out var address))
                    return $"its address '{node.Address}' in the cluster's store is not ADDR:PORT";
                _link = PeerLink.Connect(address, identity, timeout);
                _link.Greet();
                _link.Send(request);
                var answer = NodeParts.Next(_link);
                return answer.Op == Ops.Held ? null : answer.Op == Ops.Error ? answer.Error : $"it answered '{answer.Op}'";
            }
            catch (IOException e)
            {
                return e.Message;
            }
        }, TaskCreationOptions.LongRunning);

        private bool IsHeld => _link is not null && _held!.IsCompletedSuccessfully && _held.Result is null;

        /// <summary>Tells the node the leader's word: go (null), or abort and why.</summary>
        public void Decide(string? abandon)
        {
            if (!_held!.IsCompleted)
            {
                // Still on its way: the link closed once it gets there is its abort (a leader gone).
                _ = _held.ContinueWith(_ => _link?.Dispose(), TaskScheduler.Default);
                return;
            }
            if (!IsHeld)
            {
                _link?.Dispose();
                return;
            }
            try
            {
                _link!.Send(abandon is null ? PeerMessage.Of(Ops.Go) : new PeerMessage { Op = Ops.Abort, Error = abandon });
            }
            catch (IOException)
            {
                // lost: the node undoes its part (a leader gone silent), and Finish says so
            }
        }

        /// <summary>The node's last word (<paramref name="done"/>), or why there is none.</summary>
        public (PeerMessage? Done, string? Failure) Finish(string done)
        {
            if (!IsHeld)
                return (null, _held!.IsCompleted ? _held.Result : "it did not reach the barrier in time");
            try
            {
                var answer = NodeParts.Next(_link!);
                if (answer.Op == Ops.Error)
                    return (null, answer.Error);
                return answer.Op == done ? (answer, null) : (null, $"it answered '{answer.Op}' where '{done}' was due");
            }
            catch (IOException e)
            {
                return (null, e.Message);
            }
            finally
            {
                _link!.Dispose();
            }
        }
    }
}

using System.Globalization;
using Amber.Coordinator.Daemon;
using Amber.Coordinator.Groups;
using Amber.Image;
using Amber.Transport.Peers;
using Microsoft.Extensions.Logging;

namespace Amber.Transport.Migration;

/// <summary>
/// The receiving end of a migration, on the destination's agent: the group is made here with no
/// process, its checkpoints arrive (each checked and signed by this host), then it is restored with
/// every process held until the source says it has ended its copy ("commit"), and only then released.
/// Anything that fails before that commit — the link, the source, a restore step — removes everything
/// the session made: the group, its checkpoints, its processes. After the commit the group is this
/// node's whatever happens: if it cannot run, it stays here stopped, with its checkpoint.
/// The restore is lazy (<c>amber restore --lazy</c>): every page is here already, and the group runs
/// ("released") before they are all placed, which is most of what a restore of a big group costs;
/// "running" follows once they are.
/// </summary>
internal sealed class MigrationTarget(NodeServices services, PeerLink link, string node, ILogger logger)
{
    /// <summary>How long the source may take to say commit or abort once the group is ready here.</summary>
    private static readonly TimeSpan CommitWait = TimeSpan.FromSeconds(30);

    /// <summary>The session, from the source's "begin" on; returns when it is over, whichever way.</summary>
    public void Serve(PeerMessage begin)
    {
        if (begin.Group is not { } sent)
        {
            link.Send(PeerMessage.Failure("a migration must say which group it moves"));
            return;
        }
        var group = services.Receive(sent, out string? problem);
        if (group is null)
        {
            link.Send(PeerMessage.Failure($"group {sent.Name} cannot come to node {node}: {problem}"));
            return;
        }
        bool committed = false;
        string restoring = "";
        try
        {
            services.WhileBusy(group, () =>
            {
                link.Send(PeerMessage.Of(Ops.Ok));
                while (true)
                {
                    var message = link.Receive();
                    switch (message.Op)
                    {
                        case Ops.Checkpoints:
                            link.Send(Receive(group));
                            break;
                        case Ops.Restore:
                            restoring = message.Checkpoints.FirstOrDefault() ?? "";
                            (var answer, committed) = Restore(group, restoring);
                            link.Send(answer);
                            return true;
                        case Ops.Abort:
                            throw new IOException($"the source aborted it: {message.Error}");
                        default:
                            throw new IOException($"node {link.Peer} sent '{message.Op}' in the middle of a migration");
                    }
                }
            });
        }
        catch (Exception e)
        {
            // Whatever failed, a group that was not committed must not stay half here.
            if (committed)
            {
                logger.MigrationInFailedAfterCommit(group.Config.Name, link.Peer, restoring, e.Message);
                return;
            }
            Abandon(group, e.Message);
            TrySend(PeerMessage.Failure(e.Message));
            return;
        }
        if (!committed)
            Abandon(group, "its restore failed");
    }

    /// <summary>An image stream into the group's store; its checkpoints become this host's (signed by its key).</summary>
    private PeerMessage Receive(GroupRuntime group)
    {
        var reader = CheckpointStreamReader.Begin(link.Stream, group.Store.Directory, sign: true);
        var received = new List<string>();
        while (reader.Next() is { } checkpoint)
            received.Add(checkpoint.Name);
        return new PeerMessage { Op = Ops.Ok, Checkpoints = received, Bytes = reader.BytesRead };
    }

    /// <summary>The group restored from <paramref name="id"/>, released only on the source's commit; the answer, and whether it was committed.</summary>
    private (PeerMessage Answer, bool Committed) Restore(GroupRuntime group, string id)
    {
        var checkpoint = group.Store.Find(id);
        if (checkpoint is null)
            return (PeerMessage.Failure($"checkpoint {id} of group {group.Config.Name} did not arrive"), false);
        bool committed = false;
        var response = services.Restore(group, checkpoint, () =>
        {
            // Every process is made and held: the source may end its copy now, and says so.
            link.Send(PeerMessage.Of(Ops.Prepared));
            link.WaitAtMost(CommitWait);
            var decision = link.Receive();
            committed = decision.Op == Ops.Commit;
            return committed ? null : $"the source did not commit ({decision.Op}{(decision.Error.Length > 0 ? $": {decision.Error}" : "")})";
        }, released: () => TrySend(PeerMessage.Of(Ops.Released)), lazy: true);
        if (!response.Ok)
        {
            if (committed)
                logger.MigrationInFailedAfterCommit(group.Config.Name, link.Peer, id, response.Error);
            return (PeerMessage.Failure($"the restore of group {group.Config.Name} on node {node} failed: {response.Error}"), committed);
        }
        var roots = group.Config.Roots;
        logger.MigratedIn(group.Config.Name, link.Peer, string.Join(' ', roots.Select(r => r.ToString(CultureInfo.InvariantCulture))));
        return (new PeerMessage
        {
            Op = Ops.Running, Roots = [.. roots], Warnings = [.. response.Stderr.Where(l => l.StartsWith("warning: ", StringComparison.Ordinal))],
        }, true);
    }

    private void Abandon(GroupRuntime group, string why)
    {
        logger.MigrationInAbandoned(group.Config.Name, link.Peer, why);
        foreach (string problem in services.Forget(group))
            logger.MigrationInAbandoned(group.Config.Name, link.Peer, problem);
    }

    private void TrySend(PeerMessage message)
    {
        try
        {
            link.Send(message);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The link is what failed: the source learns it from the link.
        }
    }
}

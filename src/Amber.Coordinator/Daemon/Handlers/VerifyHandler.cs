using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Security;
using Amber.Coordinator.Store;

namespace Amber.Coordinator.Daemon.Handlers;

/// <summary>amber verify --group: every checkpoint of the group's store checked (no merge or checkpoint runs meanwhile).</summary>
internal sealed class VerifyHandler(StoreApproval approval) : IGroupHandler<VerifyRequest>
{
    public ControlResponse Handle(GroupRuntime group, VerifyRequest request, Requester who, Action<ProgressSample>? progress)
    {
        if (approval.Confirm(group) is { } changed)
            return ControlResponse.Failure(changed);
        Amber.Image.ImageKey? key;
        try
        {
            key = GroupKey.Of(group.Config);
        }
        catch (Amber.Image.ImageStoreException e)
        {
            return ControlResponse.Failure($"group {group.Config.Name}: {e.Message}");
        }
        var found = progress is null ? StoreVerifier.Verify(group.Store, key) : WithProgress(group, progress, () => StoreVerifier.Verify(group.Store, key));
        string report = ReportJson.Verification(found.Checkpoints, found.Damaged, found.Lines, found.Unfinished);
        if (found.Checkpoints == 0)
            return new ControlResponse { Ok = false, Stdout = found.Lines, Report = report, Error = $"group {group.Config.Name} has no checkpoint to verify (its store: {group.Config.Store})" };
        if (found.Damaged > 0)
            return new ControlResponse { Ok = false, Stdout = found.Lines, Report = report, Error = $"{found.Damaged} of {found.Checkpoints} checkpoint(s) of group {group.Config.Name} are damaged" };
        return new ControlResponse { Ok = true, Stdout = found.Lines, Stderr = [$"group {group.Config.Name}: {found.Summary}"], Report = report };
    }

    /// <summary>
    /// Verify reads in the coordinator itself: its progress is the coordinator's image reads meanwhile,
    /// sampled every 100 ms, of the store's image files in all. Reads for other groups at the same
    /// moment count too: a bar's figure, not an account.
    /// </summary>
    private static T WithProgress<T>(GroupRuntime group, Action<ProgressSample> progress, Func<T> work)
    {
        long expected = group.Store.Scan().Entries.Sum(e => new DirectoryInfo(e.Path).EnumerateFiles("*.img", SearchOption.AllDirectories).Sum(f => f.Length));
        long start = Amber.Image.PageProgress.BytesRead;
        using var done = new ManualResetEventSlim();
        var sampler = new Thread(() =>
        {
            do
                progress(new ProgressSample { Phase = "verify", BytesRead = Amber.Image.PageProgress.BytesRead - start, Expected = expected });
            while (!done.Wait(100));
        }) { IsBackground = true, Name = "amberd-verify-progress" };
        sampler.Start();
        try
        {
            return work();
        }
        finally
        {
            done.Set();
            sampler.Join();
        }
    }
}

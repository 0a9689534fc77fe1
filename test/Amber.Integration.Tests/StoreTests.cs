using System.Globalization;

namespace Amber.Integration.Tests;

/// <summary>
/// A store, whatever its checkpoints are named: amber images and amber verify see the same
/// checkpoints (every directory with a manifest, never an unfinished one) in the same order (as
/// taken: a chain's earlier checkpoints first); verify says what is not a checkpoint, and fails when
/// it verified nothing.
/// </summary>
public sealed class StoreTests
{
    [Fact]
    public void ImagesAndVerifySeeTheSameCheckpointsInTheOrderTheyWereTaken()
    {
        using var dir = new TestDir("store-names");
        string store = dir["store"];
        Directory.CreateDirectory(store);
        using var target = TargetProcess.StartC("counter", dir, "16");
        target.WaitForTicks(3);
        string pid = target.Pid.ToString(CultureInfo.InvariantCulture);
        // Named against the alphabet: zeta first, then alpha after it, then mid after alpha.
        AmberCli.Run("checkpoint", pid, "--images", Path.Combine(store, "zeta"), "--leave-running").ShouldSucceed();
        AmberCli.Run("checkpoint", pid, "--images", Path.Combine(store, "alpha"), "--leave-running", "--parent", "zeta").ShouldSucceed();
        AmberCli.Run("checkpoint", pid, "--images", Path.Combine(store, "mid"), "--leave-running", "--parent", "alpha").ShouldSucceed();
        File.WriteAllText(dir["stop"], "");
        target.FinishAndVerify();
        // What interrupted checkpoints leave: a directory being written, and one whose manifest went.
        Directory.CreateDirectory(Path.Combine(store, "alpha.tmp-0123456789ab"));
        Directory.CreateDirectory(Path.Combine(store, "torn"));
        File.Copy(Path.Combine(store, "zeta", $"process-{pid}.img"), Path.Combine(store, "torn", $"process-{pid}.img"));

        var images = AmberCli.Run("images", store).ShouldSucceed().Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["zeta", "alpha", "mid"], images.Select(l => l.Split(' ')[0]));
        Assert.Matches(@"^zeta  .*  full  ", images[0]);
        Assert.Matches(@"^alpha  .*  incremental after zeta, uses zeta  ", images[1]);
        Assert.Matches(@"^mid  .*  incremental after alpha, uses (alpha zeta|zeta alpha)  .*\(latest\)$", images[2]);

        var verify = AmberCli.Run("verify", store).ShouldSucceed();
        Assert.Equal(
            ["zeta: ok", "alpha: ok", "mid: ok",
             "alpha.tmp-0123456789ab: not a checkpoint (a checkpoint being written, or left by an interrupted one)",
             "torn: not a checkpoint (no manifest.img: left by an interrupted checkpoint?)"],
            verify.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("3 checkpoint(s) verified; not checkpoints: alpha.tmp-0123456789ab, torn", verify.Stderr.Trim());

        // Nothing verified is a failure, said for what the directory is.
        AmberCli.Run("verify", Path.Combine(store, "torn"))
            .ShouldFail($"{Path.Combine(store, "torn")} is not a checkpoint (no manifest.img: left by an interrupted checkpoint?) nor a store of checkpoints (there is none in it)");
        Directory.CreateDirectory(dir["empty"]);
        AmberCli.Run("verify", dir["empty"]).ShouldFail($"{dir["empty"]} is not a checkpoint (no manifest.img) nor a store of checkpoints (there is none in it)");
        foreach (var checkpoint in new[] { "zeta", "alpha", "mid" })
            Directory.Delete(Path.Combine(store, checkpoint), recursive: true);
        AmberCli.Run("verify", store).ShouldFail(
            $"{store} is not a checkpoint (no manifest.img) nor a store of checkpoints (it holds none, only alpha.tmp-0123456789ab, torn, which are not checkpoints)");
        var none = AmberCli.Run("images", store).ShouldSucceed();
        Assert.Equal("", none.Stdout);
        Assert.Equal($"no checkpoint in {store}", none.Stderr.Trim());
    }

    [Fact]
    public void AGroupWithoutACheckpointHasNothingToVerify()
    {
        using var home = new GroupHome("store-group");
        home.Run("empty", [], "/bin/sleep", "1000");
        home.Amber("verify", "--group", "empty").ShouldFail("group empty has no checkpoint to verify");
        home.Amber("checkpoint", "--group", "empty").ShouldSucceed();
        var verify = home.Amber("verify", "--group", "empty").ShouldSucceed();
        Assert.Equal("ckpt-000001: ok", verify.Stdout.Trim());
        Assert.Equal("group empty: 1 checkpoint(s) verified", verify.Stderr.Trim());
    }
}

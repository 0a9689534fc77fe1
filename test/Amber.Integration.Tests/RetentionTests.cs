using System.Globalization;
using System.Text.Json;

namespace Amber.Integration.Tests;

/// <summary>
/// Retention (amber run --keep-last N / --keep-for D): checkpoints beyond the policy are removed,
/// once the kept incremental ones that still refer to them are folded into full ones; every kept
/// checkpoint restores; under a schedule the store stays bounded.
/// </summary>
public sealed class RetentionTests
{
    private sealed record Listed(string Name, string Kind, DateTimeOffset Created, long Bytes);

    private static List<Listed> Images(GroupHome home, string group)
    {
        using var json = JsonDocument.Parse(home.Amber("images", "--group", group, "--json").ShouldSucceed().Stdout);
        return [.. json.RootElement.GetProperty("checkpoints").EnumerateArray().Where(c => c.TryGetProperty("kind", out _)).Select(c => new Listed(
            c.GetProperty("name").GetString()!, c.GetProperty("kind").GetString()!, c.GetProperty("created").GetDateTimeOffset(), c.GetProperty("bytes").GetInt64()))];
    }

    [Fact]
    public void CheckpointsBeyondKeepLastGoOnceTheKeptOnesNoLongerNeedThemAndEveryKeptOneRestores()
    {
        using var home = new GroupHome("keep-last");
        // No merge by length here: only retention folds the chain.
        var (server, client) = GroupTests.StartDuo(home, "kl", ["--keep-last", "2", "--merge-after", "100"]);
        for (int i = 0; i < 3; i++)
        {
            client.WaitForTicks(2);
            home.Amber("checkpoint", "--group", "kl").ShouldSucceed();
        }
        // ckpt-000002 and -000003 are kept; both referred to ckpt-000001, so both were folded first.
        GroupHome.WaitUntil(() => Images(home, "kl") is [{ Name: "ckpt-000002", Kind: "full (merged)" }, { Name: "ckpt-000003", Kind: "full (merged)" }],
            "ckpt-000001 to go, ckpt-000002 and ckpt-000003 folded");
        Assert.False(Directory.Exists(Path.Combine(home.Home.DefaultStore("kl"), "ckpt-000001")));
        home.Amber("verify", "--group", "kl").ShouldSucceed();

        // The older kept one restores (the pair goes back to that cut, their sequence checked by both) ...
        home.Amber("stop", "--group", "kl").ShouldSucceed();
        GroupHome.WaitUntil(() => !server.IsRunning && !client.IsRunning, "the group to end");
        home.Amber("restore", "--group", "kl", "--from", "ckpt-000002").ShouldSucceed();
        client.WaitForTicks(3);
        // ... and ckpt-000004 (taken with --stop) makes ckpt-000002 go: the policy holds after a restore too.
        home.Amber("checkpoint", "--group", "kl", "--stop").ShouldSucceed();
        GroupHome.WaitUntil(() => !server.IsRunning && !client.IsRunning, "the group to end");
        GroupHome.WaitUntil(() => Images(home, "kl").Select(c => c.Name).SequenceEqual(["ckpt-000003", "ckpt-000004"]), "the store to hold the last two");
        home.Amber("restore", "--group", "kl").ShouldSucceed();
        client.WaitForTicks(3);
        File.WriteAllText(home.Dir["stop"], "");
        client.WaitForPass();
        server.WaitForPass();
    }

    [Fact]
    public void UnderACheckpointEveryQuarterSecondTheStoreStaysBoundedForMinutes()
    {
        const int keep = 3;
        using var home = new GroupHome("keep-bound");
        var (server, client) = GroupTests.StartDuo(home, "kb", ["--every", "250ms", "--merge-after", "4", "--keep-last", keep.ToString(CultureInfo.InvariantCulture)]);
        string store = home.Home.DefaultStore("kb");
        GroupHome.WaitUntil(() => Directory.Exists(store) && Images(home, "kb").Any(c => c.Kind.StartsWith("full", StringComparison.Ordinal)), "a full checkpoint");

        // The measure is a full checkpoint's size on disk: the largest one directory holds, its
        // hard-linked page files counted whole (the catalog's bytes of a merged one are only what
        // the merge wrote, and the first full one may be merged away before it is first seen).
        long full = 0;
        int maxDirectories = 0;
        long maxBytes = 0;
        var until = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (DateTime.UtcNow < until)
        {
            // Every directory of the store, being written or merged ones too; hard-linked page files once.
            string[] directories = Directory.GetDirectories(store);
            maxDirectories = Math.Max(maxDirectories, directories.Length);
            maxBytes = Math.Max(maxBytes, DiskUsage(store));
            full = Math.Max(full, LargestDirectory(directories.Where(d => Path.GetFileName(d).StartsWith("ckpt-", StringComparison.Ordinal))));
            Thread.Sleep(500);
        }
        int taken = Directory.GetDirectories(store, "ckpt-*").Select(d => int.Parse(Path.GetFileName(d).AsSpan(5, 6), CultureInfo.InvariantCulture)).Max();
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"{taken} checkpoints in 2 min, keep-last {keep}: at most {maxDirectories} directories, {maxBytes} bytes in the store (a full checkpoint: {full} bytes)");
        Assert.True(taken >= 60, $"only {taken} checkpoints were taken in two minutes");
        // The kept ones, the one just taken before the policy runs, and one being written or merged.
        Assert.InRange(maxDirectories, keep, keep + 2);
        Assert.InRange(maxBytes, 1, (keep + 2) * 2 * full);

        // What is kept is whole: it verifies, and the latest restores.
        home.Amber("verify", "--group", "kb").ShouldSucceed();
        home.Amber("checkpoint", "--group", "kb", "--stop").ShouldSucceed();
        GroupHome.WaitUntil(() => !server.IsRunning && !client.IsRunning, "the group to end");
        home.Amber("restore", "--group", "kb").ShouldSucceed();
        client.WaitForTicks(3);
        File.WriteAllText(home.Dir["stop"], "");
        client.WaitForPass();
        server.WaitForPass();
    }

    [Fact]
    public void KeepForKeepsOnlyTheCheckpointsOfItsWindow()
    {
        using var home = new GroupHome("keep-for");
        var (server, client) = GroupTests.StartDuo(home, "kf", ["--every", "200ms", "--keep-for", "2s"]);
        // Let the schedule run well past the window.
        GroupHome.WaitUntil(() => Directory.Exists(home.Home.DefaultStore("kf"))
            && Images(home, "kf") is { Count: > 0 } listed && int.Parse(listed[^1].Name.AsSpan(5), CultureInfo.InvariantCulture) >= 25,
            "25 scheduled checkpoints", TimeSpan.FromMinutes(1));
        var images = Images(home, "kf");
        // Listed after the latest was taken: what is older than the window by more than a few checkpoints' time has gone.
        Assert.All(images, c => Assert.True(images[^1].Created - c.Created < TimeSpan.FromSeconds(4), $"{c.Name} of {c.Created:O} kept, the latest is of {images[^1].Created:O}"));
        Assert.DoesNotContain(images, c => c.Name == "ckpt-000001");
        home.Amber("verify", "--group", "kf").ShouldSucceed();
        File.WriteAllText(home.Dir["stop"], "");
        client.WaitForPass();
        server.WaitForPass();
    }

    /// <summary>du -sbl: the bytes of the largest of these directories, each counted whole (hard links too).</summary>
    private static long LargestDirectory(IEnumerable<string> directories)
    {
        string[] given = [.. directories];
        if (given.Length == 0)
            return 0;
        // A directory removed under du makes it complain; the others are still listed.
        var du = ExternalProgram.Run("/usr/bin/du", ["-sbl", .. given]);
        return du.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => long.Parse(line.Split('\t')[0], CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Max();
    }

    /// <summary>du -sb: the bytes of a directory tree, a file with several links counted once.</summary>
    private static long DiskUsage(string directory)
    {
        var du = ExternalProgram.Run("/usr/bin/du", "-sb", directory);
        // A directory removed under du makes it complain; the size it prints is still of what it saw.
        return long.Parse(du.Stdout.Split('\t')[0], CultureInfo.InvariantCulture);
    }
}

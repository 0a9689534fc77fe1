using System.Globalization;
using System.Text;
using Amber.Kernel;
using Amber.Kernel.Processes;

namespace Amber.Integration.Tests;

/// <summary>
/// Checkpoints encrypted at rest (--encrypt KEYFILE): a program whose memory is full of a marker
/// leaves no trace of it in any file of an encrypted image (while one in clear holds it); restore,
/// verify, merge and inspect need its key, refuse none or another with one line, and with it the
/// program carries on exactly. A group made with --encrypt is checkpointed, merged, verified and
/// restored by its coordinator with the group's key.
/// </summary>
public sealed class EncryptionTests
{
    private static string NewMarker() => $"AMBER-SECRET-MARKER-{Guid.NewGuid():N}";

    /// <summary>Files of <paramref name="dir"/> (and below) that hold <paramref name="marker"/>.</summary>
    private static List<string> Holding(string dir, string marker)
    {
        byte[] bytes = Encoding.ASCII.GetBytes(marker);
        return [.. Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Where(f => File.ReadAllBytes(f).AsSpan().IndexOf(bytes) >= 0)];
    }

    private static string NewKey(string path)
    {
        string id = AmberCli.Run("key", "new", path).ShouldSucceed().LastStdoutLine;
        Assert.Matches("^[0-9a-f]{16}$", id);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        return id;
    }

    [Fact]
    public void AnEncryptedCheckpointHoldsNoClearTextAndRestoresOnlyWithItsKey()
    {
        using var dir = new TestDir("encrypt");
        string marker = NewMarker(), key = dir["key"], other = dir["other.key"];
        string id = NewKey(key), otherId = NewKey(other);
        using var target = TargetProcess.StartC("secret", dir, marker, "8");
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(3);
        string pid = target.Pid.ToString(CultureInfo.InvariantCulture);
        // Storage too: a file of the marker, captured with the memory and rolled back by the restore.
        Directory.CreateDirectory(dir["data"]);
        string secretFile = Path.Combine(dir["data"], "secret.txt");
        string contents = string.Concat(Enumerable.Repeat(marker + "\n", 500));
        File.WriteAllText(secretFile, contents);

        // In clear, the image holds the marker (memory and storage): what the encrypted one must not.
        Directory.CreateDirectory(dir["clear"]);
        AmberCli.Run("checkpoint", pid, "--images", dir["clear/c1"], "--leave-running", "--storage", dir["data"]).ShouldSucceed();
        Assert.Contains(Path.Combine(dir["clear/c1"], "storage-pages.img"), Holding(dir["clear"], marker));
        Assert.Contains(Directory.GetFiles(dir["clear/c1"], "pages-*.img").Single(), Holding(dir["clear"], marker));

        Spawner.Kill(target.Pid, Signals.SIGSTOP);
        GroupHome.WaitUntil(() => Amber.Kernel.Proc.ProcFs.ReadStat(target.Pid).State == 'T', "the target to stop");
        int tick = target.LastTick();
        Directory.CreateDirectory(dir["store"]);
        string image = dir["store/c1"];
        AmberCli.Run("checkpoint", pid, "--images", image, "--encrypt", key, "--storage", dir["data"]).ShouldSucceed();
        target.ReapKilled();
        Assert.Empty(Holding(dir["store"], marker));
        File.WriteAllText(secretFile, "changed since");
        Assert.All(Directory.GetFiles(image), f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f)));

        // No key, another key, not a key: one line each, and nothing is started.
        AmberCli.Run("restore", "--images", image, "--detach").ShouldFail($"checkpoint {image} is encrypted (key {id}): give --key KEYFILE");
        AmberCli.Run("restore", "--images", image, "--detach", "--key", other).ShouldFail($"checkpoint {image} is encrypted with key {id}; --key names key {otherId}");
        File.WriteAllBytes(dir["short.key"], new byte[16]);
        File.SetUnixFileMode(dir["short.key"], UnixFileMode.UserRead | UnixFileMode.UserWrite);
        AmberCli.Run("restore", "--images", image, "--detach", "--key", dir["short.key"]).ShouldFail("holds 16 bytes; a key is exactly 32 random bytes");
        AmberCli.Run("verify", image).ShouldFail("give --key KEYFILE");
        AmberCli.Run("inspect", image).ShouldFail("give --key KEYFILE");
        Assert.False(target.IsRunning);

        Assert.Contains($"encrypted (AES-256-GCM) with key {id}", AmberCli.Run("inspect", image, "--key", key).ShouldSucceed().Stdout);
        Assert.Contains("c1: ok", AmberCli.Run("verify", image, "--key", key).ShouldSucceed().Stdout);
        var restored = AmberCli.Run("restore", "--images", image, "--detach", "--key", key).ShouldSucceed();
        Assert.Equal(pid, restored.LastStdoutLine);
        target.Restored();
        Assert.Equal(contents, File.ReadAllText(secretFile));
        int lines = target.Lines().Count;
        Spawner.Kill(target.Pid, Signals.SIGCONT);
        target.WaitForLine(l => target.Lines().Count > lines + 2, "ticks after the restore");
        Assert.StartsWith($"tick {tick + 1} ", target.Lines()[lines]);
        target.StopAndVerify(); // every page and the checksum as they were
    }

    [Fact]
    public void AnEncryptedChainStaysEncryptedThroughIncrementalCheckpointsAndAMerge()
    {
        using var dir = new TestDir("encrypt-chain");
        string marker = NewMarker(), key = dir["key"], other = dir["other.key"], store = dir["store"];
        string id = NewKey(key);
        NewKey(other);
        Directory.CreateDirectory(store);
        using var target = TargetProcess.StartC("secret", dir, marker, "16");
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(3);
        string pid = target.Pid.ToString(CultureInfo.InvariantCulture);
        AmberCli.Run("checkpoint", pid, "--images", Path.Combine(store, "c1"), "--leave-running", "--encrypt", key, "--compress", "zstd").ShouldSucceed();
        target.WaitForTicks(3);

        // A chain has one key: none, or another, is refused by name.
        AmberCli.Run("checkpoint", pid, "--images", Path.Combine(store, "c2"), "--leave-running", "--parent", "c1")
            .ShouldFail($"the parent checkpoint {Path.Combine(store, "c1")} is encrypted (key {id}): an incremental checkpoint after it must be encrypted with the same key (--encrypt KEYFILE)");
        AmberCli.Run("checkpoint", pid, "--images", Path.Combine(store, "c2"), "--leave-running", "--parent", "c1", "--encrypt", other)
            .ShouldFail($"checkpoint {Path.Combine(store, "c1")} is encrypted with key {id}; --key names key");
        var second = AmberCli.Run("checkpoint", pid, "--images", Path.Combine(store, "c2"), "--leave-running", "--parent", "c1", "--encrypt", key).ShouldSucceed();
        Assert.Contains("(incremental after c1:", second.Stderr);
        target.WaitForTicks(3);
        Spawner.Kill(target.Pid, Signals.SIGSTOP);
        GroupHome.WaitUntil(() => Amber.Kernel.Proc.ProcFs.ReadStat(target.Pid).State == 'T', "the target to stop");
        int tick = target.LastTick();
        AmberCli.Run("checkpoint", pid, "--images", Path.Combine(store, "c3"), "--parent", "c2", "--encrypt", key).ShouldSucceed();
        target.ReapKilled();
        Assert.Empty(Holding(store, marker));

        AmberCli.Run("merge", Path.Combine(store, "c3")).ShouldFail("give --key KEYFILE");
        Assert.Contains("removed c2 c1", AmberCli.Run("merge", Path.Combine(store, "c3"), "--key", key).ShouldSucceed().Stderr);
        Assert.Empty(Holding(store, marker));
        AmberCli.Run("verify", store, "--key", key).ShouldSucceed();
        AmberCli.Run("verify", store, "--key", other).ShouldFail($"is encrypted with key {id}");
        Assert.Matches("requires [a-z, -]*encryption", AmberCli.Run("inspect", Path.Combine(store, "c3"), "--key", key).ShouldSucceed().Stdout);

        AmberCli.Run("restore", "--images", Path.Combine(store, "c3"), "--detach", "--key", key).ShouldSucceed();
        target.Restored();
        int lines = target.Lines().Count;
        Spawner.Kill(target.Pid, Signals.SIGCONT);
        target.WaitForLine(l => target.Lines().Count > lines + 2, "ticks after the restore");
        Assert.StartsWith($"tick {tick + 1} ", target.Lines()[lines]);
        target.StopAndVerify();
    }

    [Fact]
    public void AGroupMadeWithAKeyIsCheckpointedMergedVerifiedAndRestoredWithIt()
    {
        using var home = new GroupHome("group-encrypt");
        string marker = NewMarker(), key = home.Dir["key"], wd = home.Dir["wd"];
        string id = NewKey(key);
        Directory.CreateDirectory(wd);
        File.WriteAllBytes(home.Dir["open.key"], new byte[32]);
        File.SetUnixFileMode(home.Dir["open.key"], UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        home.Amber("run", "--group", "bad", "--encrypt", home.Dir["open.key"], "--", "/bin/true").ShouldFail("may be read or written by others (mode 604): chmod 600 it");

        int pid = home.Run("enc", ["--encrypt", key], TargetBinaries.Get("secret"), wd, marker, "8");
        var member = new GroupMember(pid, home.Home.GroupLog("enc"));
        member.WaitForTicks(3);
        home.Amber("run", "--group", "enc", "--encrypt", home.Dir["open.key"], "--", "/bin/true").ShouldFail("may be read or written by others");
        home.Amber("checkpoint", "--group", "enc").ShouldSucceed();
        member.WaitForTicks(3);
        home.Amber("checkpoint", "--group", "enc", "--stop").ShouldSucceed();
        GroupHome.WaitUntil(() => !member.IsRunning, "the program to end");
        int tick = member.LastTick();
        string store = home.Home.DefaultStore("enc");
        Assert.Equal(2, Directory.GetDirectories(store).Length);
        Assert.Empty(Holding(store, marker));
        string latest = Directory.GetDirectories(store).Order(StringComparer.Ordinal).Last();
        AmberCli.Run("restore", "--images", latest, "--detach").ShouldFail($"is encrypted (key {id}): give --key KEYFILE");

        home.Amber("merge", "--group", "enc").ShouldSucceed();
        home.Amber("verify", "--group", "enc").ShouldSucceed();
        Assert.Empty(Holding(store, marker));
        int logged = member.Lines().Count;
        home.Amber("restore", "--group", "enc").ShouldSucceed();
        member.WaitForTicks(3);
        Assert.StartsWith($"tick {tick + 1} ", member.Lines()[logged]);
        File.WriteAllText(Path.Combine(wd, "stop"), "");
        member.WaitForPass();
    }
}

using Amber.Image.Schema;

namespace Amber.Integration.Tests;

/// <summary>A torn, truncated, corrupted or foreign image is refused before any process is created.</summary>
public sealed class CorruptImageTests
{
    public static TheoryData<string> Damages => ["truncate-pages", "flip-pages", "flip-process", "drop-manifest", "foreign", "truncate-process"];

    [Theory]
    [MemberData(nameof(Damages))]
    public void DamagedImageIsRefusedWithOneLine(string damage)
    {
        using var dir = new TestDir("corrupt-" + damage);
        using var target = TargetProcess.StartC("counter", dir, "8");
        target.WaitForTicks(2);
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"]).ShouldSucceed();
        target.ReapKilled();
        target.MarkEnded();
        string img = dir["img"];
        string pages = Directory.GetFiles(img, "pages-*.img").Single();
        string process = Directory.GetFiles(img, "process-*.img").Single();
        switch (damage)
        {
            case "truncate-pages":
                using (var f = File.OpenWrite(pages)) f.SetLength(f.Length - 4096);
                break;
            case "flip-pages":
                Flip(pages, new FileInfo(pages).Length - 1000);
                break;
            case "flip-process":
                Flip(process, 100);
                break;
            case "truncate-process":
                using (var f = File.OpenWrite(process)) f.SetLength(40);
                break;
            case "drop-manifest":
                File.Delete(Path.Combine(img, "manifest.img"));
                break;
            case "foreign":
                foreach (var file in Directory.GetFiles(img))
                    File.WriteAllBytes(file, System.Text.Encoding.ASCII.GetBytes("this is not an amber image\n"));
                break;
        }
        var run = AmberCli.Run("restore", "--images", img, "--detach");
        run.ShouldFail("");
        Assert.False(target.IsRunning, "nothing may run after a refused restore");
        Assert.Contains(img, run.Stderr);
    }

    /// <summary>
    /// amber restore --check tells, before anything is killed, whether a checkpoint can be restored:
    /// every page checksum and what the restore needs of this machine, making nothing.
    /// </summary>
    [Fact]
    public void RestoreCheckTellsBeforeAnythingIsKilled()
    {
        using var dir = new TestDir("restorecheck");
        using var target = TargetProcess.StartC("counter", dir, "8");
        target.WaitForTicks(2);
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"], "--leave-running").ShouldSucceed();
        var ok = AmberCli.Run("restore", "--images", dir["img"], "--check").ShouldSucceed();
        Assert.Contains("can be restored here", ok.Stderr);
        Assert.Contains($"PID {target.Pid} is taken now", ok.Stderr);
        Assert.Empty(ok.Stdout);

        // A page flipped on disk: found by --check, which verifies every page, not only by a restore.
        foreach (var name in new[] { "flipped", "gone" })
            CopyDirectory(dir["img"], dir[name]);
        string pages = Directory.GetFiles(dir["flipped"], "pages-*.img").Single();
        Flip(pages, new FileInfo(pages).Length - 1000);
        AmberCli.Run("restore", "--images", dir["flipped"], "--check").ShouldFail("checksum");
        // A file the process had open is gone: the restore would fail, so --check does, naming it.
        File.Move(dir["data.txt"], dir["data.moved"]);
        AmberCli.Run("restore", "--images", dir["gone"], "--check").ShouldFail("data.txt");
        File.Move(dir["data.moved"], dir["data.txt"]);
        Assert.True(target.IsRunning && !target.IsTraced, "--check must make and touch nothing");
        target.StopAndVerify();
    }

    /// <summary>
    /// A checkpoint signed with another host's key (AMBER_HOST_KEY stands for another machine) is
    /// refused with one line, and restored with --trust.
    /// </summary>
    [Fact]
    public void ACheckpointFromAnotherHostIsRefusedUnlessTrusted()
    {
        using var dir = new TestDir("otherhost");
        using var target = TargetProcess.StartC("counter", dir, "8");
        target.WaitForTicks(2);
        var otherHost = new Dictionary<string, string> { ["AMBER_HOST_KEY"] = dir["other-host.key"] };
        AmberCli.Run(["checkpoint", target.Pid.ToString(), "--images", dir["img"]], env: otherHost).ShouldSucceed();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(dir["other-host.key"]));
        target.ReapKilled();
        AmberCli.Run("restore", "--images", dir["img"], "--detach").ShouldFail("was not written by this host");
        Assert.False(target.IsRunning);
        AmberCli.Run("restore", "--images", dir["img"], "--detach", "--trust").ShouldSucceed();
        target.Restored();
        target.WaitForTicks(3);
        target.StopAndVerify();
    }

    [Theory]
    [InlineData("/etc/shadow", null)]
    [InlineData("/", null)]
    [InlineData("/tmp/a b/c (deleted)", null)]
    [InlineData("../../../../etc/shadow", "is not absolute")]
    [InlineData("etc/shadow", "is not absolute")]
    [InlineData("/tmp/../etc/shadow", "is not canonical (it has a '..' component)")]
    [InlineData("/tmp/./x", "is not canonical (it has a '.' component)")]
    [InlineData("/tmp//x", "is not canonical (it has an empty component)")]
    [InlineData("/tmp/x/", "is not canonical (it has an empty component)")]
    public void PathsInAnImageMustBeAbsoluteAndCanonical(string path, string? problem) =>
        Assert.Equal(problem, Amber.Checkpoint.Restore.ImageValidator.CanonicalPathProblem(path));

    /// <summary>
    /// The files of a mount namespace's tmpfs are written below its mount point through their parents:
    /// a path that leaves it, or one under a symbolic link the image itself makes, is refused before
    /// anything is made.
    /// </summary>
    [Theory]
    [InlineData("/mnt/t", "d/f", false, null)]
    [InlineData("mnt/t", "f", false, "the mount point 'mnt/t' is not absolute")]
    [InlineData("/mnt/t", "../etc/passwd", false, "the file '../etc/passwd' on the tmpfs on /mnt/t is not a path below it")]
    [InlineData("/mnt/t", "/etc/passwd", false, "the file '/etc/passwd' on the tmpfs on /mnt/t is not a path below it")]
    [InlineData("/mnt/t", "", false, "the file '' on the tmpfs on /mnt/t is not a path below it")]
    [InlineData("/mnt/t", "link/passwd", true, "the file 'link/passwd' on the tmpfs on /mnt/t is not a path below it")]
    [InlineData("/mnt/t", "link/deeper/passwd", true, "the file 'link/deeper/passwd' on the tmpfs on /mnt/t is not a path below it")]
    public void MountsOfAnImageMustStayBelowTheirMountPoints(string target, string path, bool underALink, string? problem)
    {
        var tmpfs = new MountImage { Kind = MountImage.Types.Kind.Tmpfs, Target = target };
        tmpfs.Files.Add(new MountedFile { Path = "d", Mode = 0x41ed }); // a directory
        if (underALink)
            tmpfs.Files.Add(new MountedFile { Path = "link", Mode = 0xa1ff, Link = "/etc" });
        tmpfs.Files.Add(new MountedFile { Path = path, Mode = 0x81a4 }); // a regular file
        var mounts = new MountsImage { Mounts = { tmpfs } };
        Assert.Equal(problem, Amber.Checkpoint.Resources.Isolation.MountRestorer.Problem(mounts));
        // A bind mount's source too.
        Assert.Equal("the source 'etc' of the bind mount on /b is not absolute",
            Amber.Checkpoint.Resources.Isolation.MountRestorer.Problem(new MountsImage { Mounts = { new MountImage { Kind = MountImage.Types.Kind.Bind, Target = "/b", Source = "etc" } } }));
    }

    [Theory]
    [InlineData("eth0", "veth", "02:00:00:00:00:01", "10.1.2.3", "default", null)]
    [InlineData("eth0 up\nlink delete amber0", "veth", "02:00:00:00:00:01", "10.1.2.3", "default", "'eth0 up\nlink delete amber0' is not an interface's name")]
    [InlineData("lo", "veth", "02:00:00:00:00:01", "10.1.2.3", "default", "'lo' is not an interface's name")]
    [InlineData("eth0", "vxlan", "02:00:00:00:00:01", "10.1.2.3", "default", "interface eth0 is of kind 'vxlan'")]
    [InlineData("eth0", "veth", "02:00:00:00:00:01 netns 1", "10.1.2.3", "default", "'02:00:00:00:00:01 netns 1' is not a MAC address")]
    [InlineData("eth0", "veth", "02:00:00:00:00:01", "10.1.2.300", "default", "address '10.1.2.300/24' of 'eth0' is not one")]
    [InlineData("eth0", "veth", "02:00:00:00:00:01", "10.1.2.3", "default\nlink", "route 'default\nlink via 10.1.2.1' is not one")]
    [InlineData("eth0", "veth", "02:00:00:00:00:01", "10.1.2.3", "default via", "route 'default via via 10.1.2.1' is not one")]
    public void TheNetworkOfAnImageIsGivenToIpOnlyWordByWord(string name, string kind, string mac, string address, string route, string? problem)
    {
        var saved = new NamespacesImage
        {
            Net = true,
            Links = { new NetLinkImage { Name = name, Kind = kind, Mac = mac, Mtu = 1500, Peer = "amb0123", PeerMac = "02:00:00:00:00:02", PeerMtu = 1500 } },
            Addresses = { new NetAddressImage { Dev = "eth0", Family = "inet", Local = address, PrefixLength = 24 } },
            Routes = { new NetRouteImage { Family = "inet", Arguments = { route, "via", "10.1.2.1" } } },
        };
        Assert.Equal(problem, Amber.Checkpoint.Resources.Isolation.NetworkRestorer.Problem(saved));
        // nft reads no file of the host's for an image.
        Assert.Equal("the nftables tables include a file", Amber.Checkpoint.Resources.Isolation.NetworkRestorer.Problem(new NamespacesImage { Net = true, Nftables = "include \"/etc/passwd\"\n" }));
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
    }

    /// <summary>Flips one bit of the byte at <paramref name="offset"/> of a file.</summary>
    internal static void Flip(string path, long offset)
    {
        using var f = File.Open(path, FileMode.Open, FileAccess.ReadWrite);
        f.Position = offset;
        int b = f.ReadByte();
        f.Position = offset;
        f.WriteByte((byte)(b ^ 0x10));
    }
}

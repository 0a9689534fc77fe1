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

    private static void Flip(string path, long offset)
    {
        using var f = File.Open(path, FileMode.Open, FileAccess.ReadWrite);
        f.Position = offset;
        int b = f.ReadByte();
        f.Position = offset;
        f.WriteByte((byte)(b ^ 0x10));
    }
}

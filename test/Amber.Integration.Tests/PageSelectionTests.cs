using System.Text.Json;

namespace Amber.Integration.Tests;

/// <summary>Pages never touched, and file pages never changed, are not written to the image.</summary>
public sealed class PageSelectionTests
{
    [Fact]
    public void OnlyTouchedAnonymousAndModifiedFilePagesAreSaved()
    {
        using var dir = new TestDir("untouched");
        const string script = """
            import mmap, sys, time
            m = mmap.mmap(-1, 1 << 30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            for i in range(10):
                m[i * 4096 * 1000] = 7
            print("READY", flush=True)
            n = 0
            while True:
                n += 1
                print(f"tick {n}", flush=True)
                time.sleep(0.02)
            """;
        File.WriteAllText(dir["big.py"], script);
        using var target = TargetProcess.Start("/usr/bin/python3", [dir["big.py"]], dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(30));
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"], "--leave-running").ShouldSucceed();

        long pageFile = new FileInfo(Directory.GetFiles(dir["img"], "pages-*.img").Single()).Length;
        Assert.True(pageFile < 64L << 20, $"page file is {pageFile >> 20} MiB for a process with 1 GiB mapped and ~10 MiB used");

        using var json = JsonDocument.Parse(AmberCli.Run("inspect", dir["img"], "--json").ShouldSucceed().Stdout);
        var process = json.RootElement.GetProperty("processes")[0];
        var mm = process.GetProperty("mm");
        ulong U(JsonElement e, string name) => ulong.Parse(e.GetProperty(name).GetString()!);
        var big = mm.GetProperty("vmas").EnumerateArray().Single(v => U(v, "end") - U(v, "start") == 1UL << 30);
        ulong savedInBig = mm.GetProperty("pages").EnumerateArray()
            .Where(r => U(r, "address") >= U(big, "start") && U(r, "address") < U(big, "end")).Aggregate(0UL, (sum, r) => sum + U(r, "count"));
        Assert.Equal(10UL, savedInBig);

        // Code (executable file mappings, never written) holds no saved page at all. Read-only data can:
        // the loader writes relocations there before it makes them read-only.
        foreach (var vma in mm.GetProperty("vmas").EnumerateArray().Where(v => v.GetProperty("kind").GetString() == "VMA_FILE" && (v.GetProperty("prot").GetUInt32() & 4) != 0))
        {
            Assert.DoesNotContain(mm.GetProperty("pages").EnumerateArray(),
                r => U(r, "address") >= U(vma, "start") && U(r, "address") < U(vma, "end"));
        }
    }
}

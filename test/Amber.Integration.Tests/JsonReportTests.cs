using System.Globalization;
using System.Text.Json;

namespace Amber.Integration.Tests;

/// <summary>
/// --json: checkpoint, restore (and --check), images, verify and ps print one JSON document on stdout
/// with the figures their human lines show, which must agree with the images on disk; a damaged
/// checkpoint is reported damaged and still fails; a group's verbs report the same way through the
/// coordinator.
/// </summary>
public sealed class JsonReportTests
{
    [Fact]
    public void EveryReportingVerbPrintsOneJsonDocumentThatAgreesWithTheImages()
    {
        using var dir = new TestDir("json");
        string store = dir["store"];
        Directory.CreateDirectory(store);
        using var target = TargetProcess.StartC("counter", dir, "16");
        target.WaitForTicks(3);
        string pid = target.Pid.ToString(CultureInfo.InvariantCulture);

        using var full = Json(AmberCli.Run("checkpoint", pid, "--images", Path.Combine(store, "c1"), "--leave-running", "--json").ShouldSucceed());
        var c1 = full.RootElement;
        Assert.Equal(target.Pid, c1.GetProperty("pid").GetInt32());
        Assert.Equal([target.Pid], c1.GetProperty("processes").EnumerateArray().Select(p => p.GetInt32()));
        Assert.True(c1.GetProperty("pages").GetInt64() >= 16 * 256, $"{c1.GetProperty("pages")} pages of a program holding 16 MiB");
        Assert.Equal(Size(Path.Combine(store, "c1")), c1.GetProperty("bytes").GetInt64());
        Assert.True(c1.GetProperty("frozenMs").GetDouble() > 0 && c1.GetProperty("frozenMs").GetDouble() <= c1.GetProperty("totalMs").GetDouble());
        Assert.Equal(JsonValueKind.Null, c1.GetProperty("parent").ValueKind);

        // Still running: restorable, but its PID is taken now.
        using var check = Json(AmberCli.Run("restore", "--images", Path.Combine(store, "c1"), "--check", "--json").ShouldSucceed());
        Assert.True(check.RootElement.GetProperty("restorable").GetBoolean());
        Assert.Equal([target.Pid], check.RootElement.GetProperty("pidsTaken").EnumerateArray().Select(p => p.GetInt32()));

        // This one ends the program: its data file stays as the checkpoint saw it, for the restore.
        target.WaitForTicks(2);
        using var incremental = Json(AmberCli.Run("checkpoint", pid, "--images", Path.Combine(store, "c2"), "--parent", "c1", "--json").ShouldSucceed());
        target.ReapKilled();
        var c2 = incremental.RootElement;
        Assert.Equal("c1", c2.GetProperty("parent").GetString());
        Assert.True(c2.GetProperty("pagesKept").GetInt64() > 0, "an incremental checkpoint keeps pages in its parent");
        Assert.Equal(Size(Path.Combine(store, "c2")), c2.GetProperty("bytes").GetInt64());

        using var images = Json(AmberCli.Run("images", store, "--json").ShouldSucceed());
        var listed = images.RootElement.GetProperty("checkpoints").EnumerateArray().ToList();
        Assert.Equal(["c1", "c2"], listed.Select(c => c.GetProperty("name").GetString()));
        Assert.Equal(["full", "incremental"], listed.Select(c => c.GetProperty("kind").GetString()));
        Assert.Equal([false, true], listed.Select(c => c.GetProperty("latest").GetBoolean()));
        Assert.Equal(c2.GetProperty("bytes").GetInt64(), listed[1].GetProperty("bytes").GetInt64());

        using var verified = Json(AmberCli.Run("verify", store, "--json").ShouldSucceed());
        Assert.Equal(2, verified.RootElement.GetProperty("checkpoints").GetInt32());
        Assert.Equal(0, verified.RootElement.GetProperty("damaged").GetInt32());

        using var restored = Json(AmberCli.Run("restore", "--images", Path.Combine(store, "c2"), "--detach", "--json").ShouldSucceed());
        target.Restored();
        Assert.Equal(target.Pid, restored.RootElement.GetProperty("pid").GetInt32());
        Assert.Equal(JsonValueKind.Null, restored.RootElement.GetProperty("exitCode").ValueKind);
        target.WaitForTicks(2);

        using var ps = Json(AmberCli.Run("ps", "--json").ShouldSucceed());
        Assert.Equal(JsonValueKind.Array, ps.RootElement.ValueKind);

        // A damaged checkpoint: reported so, and the verb still fails.
        var pages = Directory.GetFiles(Path.Combine(store, "c1"), "pages-*.img").First();
        using (var file = new FileStream(pages, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = file.Length / 2;
            int b = file.ReadByte();
            file.Position = file.Length / 2;
            file.WriteByte((byte)(b ^ 0x40));
        }
        var damaged = AmberCli.Run("verify", store, "--json");
        Assert.NotEqual(0, damaged.ExitCode);
        using var report = JsonDocument.Parse(damaged.Stdout);
        Assert.True(report.RootElement.GetProperty("damaged").GetInt32() >= 1, damaged.Stdout);
    }

    /// <summary>A group's verbs: the coordinator's answer carries the report, which --json prints instead of its lines.</summary>
    [Fact]
    public void AGroupsVerbsReportTheirFiguresAsJsonThroughTheCoordinator()
    {
        using var home = new GroupHome("json-group");
        int pid = home.Run("js", [], "/bin/sleep", "1000");

        using var taken = Json(home.Amber("checkpoint", "--group", "js", "--json").ShouldSucceed());
        var first = taken.RootElement;
        Assert.Equal("js", first.GetProperty("group").GetString());
        Assert.Equal([pid], first.GetProperty("processes").EnumerateArray().Select(p => p.GetInt32()));
        Assert.True(first.GetProperty("pages").GetInt64() > 0 && first.GetProperty("barrierMs").GetDouble() >= 0);
        Assert.Equal(Size(first.GetProperty("images").GetString()!), first.GetProperty("bytes").GetInt64());

        using var images = Json(home.Amber("images", "--group", "js", "--json").ShouldSucceed());
        var listed = images.RootElement.GetProperty("checkpoints").EnumerateArray().ToList();
        Assert.Equal([first.GetProperty("checkpoint").GetString()], listed.Select(c => c.GetProperty("name").GetString()));
        Assert.True(listed[0].GetProperty("latest").GetBoolean());

        using var verified = Json(home.Amber("verify", "--group", "js", "--json").ShouldSucceed());
        Assert.Equal(1, verified.RootElement.GetProperty("checkpoints").GetInt32());

        using var stopped = Json(home.Amber("checkpoint", "--group", "js", "--stop", "--json").ShouldSucceed());
        Assert.True(stopped.RootElement.GetProperty("stopped").GetBoolean());
        Assert.Equal(first.GetProperty("checkpoint").GetString(), stopped.RootElement.GetProperty("parent").GetString());
        GroupHome.WaitUntil(() => !Amber.Kernel.Proc.ProcFs.Exists(pid), "the group to end after checkpoint --stop");
        using var restored = Json(home.Amber("restore", "--group", "js", "--json").ShouldSucceed());
        Assert.Equal(stopped.RootElement.GetProperty("checkpoint").GetString(), restored.RootElement.GetProperty("checkpoint").GetString());
        Assert.Equal([pid], restored.RootElement.GetProperty("roots").EnumerateArray().Select(p => p.GetInt32()));
        Assert.True(Amber.Kernel.Proc.ProcFs.Exists(pid));
    }

    /// <summary>stdout is one JSON document, nothing else.</summary>
    private static JsonDocument Json(AmberRun run)
    {
        try
        {
            return JsonDocument.Parse(run.Stdout);
        }
        catch (JsonException e)
        {
            throw new Xunit.Sdk.XunitException($"stdout is not one JSON document ({e.Message}): {run.Stdout}");
        }
    }

    private static long Size(string directory) => new DirectoryInfo(directory).EnumerateFiles().Sum(f => f.Length);
}

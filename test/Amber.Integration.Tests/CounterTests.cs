namespace Amber.Integration.Tests;

/// <summary>A counter that checksums a large heap and writes through an fd, over two cycles.</summary>
public sealed class CounterTests
{
    [Fact]
    public void CounterCarriesOnAfterTwoCycles()
    {
        using var dir = new TestDir("counter");
        using var target = TargetProcess.StartC("counter", dir, "64");
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(3);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            int before = target.LastTick();
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            int after = target.WaitForTicks(3);
            Assert.True(after > before);
        }
        target.StopAndVerify();
        // The fd offset carried on exactly: lines 1..n, each once (the program checked too).
        var lines = File.ReadAllLines(dir["data.txt"]);
        Assert.Equal(Enumerable.Range(1, lines.Length).Select(i => i.ToString()), lines);
    }

    [Fact]
    public void LeaveRunningThenRestoreTheSavedMoment()
    {
        using var dir = new TestDir("leave");
        using var target = TargetProcess.StartC("counter", dir, "16");
        target.WaitForTicks(3);
        // The saved moment is at or after this tick (the program runs on while the image is made durable).
        int before = target.LastTick();
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"], "--leave-running").ShouldSucceed();
        Assert.True(target.IsRunning);
        Assert.False(target.IsTraced);
        target.WaitForTicks(5); // it runs on, unharmed
        File.WriteAllText(dir["stop"], "");
        target.FinishAndVerify();
        File.Delete(dir["stop"]);

        // Amber does not roll files back without a storage checkpoint: cut data.txt back to the
        // offset the image holds, as the program's own invariant (offset == size) requires.
        var inspect = AmberCli.Run("inspect", dir["img"], "--json").ShouldSucceed();
        using var json = System.Text.Json.JsonDocument.Parse(inspect.Stdout);
        var fd = json.RootElement.GetProperty("processes")[0].GetProperty("fds").EnumerateArray()
            .Single(f => f.GetProperty("path").GetString() == dir["data.txt"]);
        long offset = long.Parse(fd.GetProperty("offset").GetString()!);
        Assert.True(offset > 0);
        using (var data = File.OpenWrite(dir["data.txt"]))
            data.SetLength(offset);

        // Back to the moment of the checkpoint: it re-writes data.txt from its saved offset.
        var restored = AmberCli.Run("restore", "--images", dir["img"], "--detach").ShouldSucceed();
        Assert.Equal(target.Pid.ToString(), restored.LastStdoutLine);
        target.Restored();
        target.WaitForTicks(3);
        Assert.True(target.LastTick() >= before + 3, $"saved at or after tick {before}, last tick {target.LastTick()}: {string.Join(" | ", target.Lines().TakeLast(6))}");
        target.StopAndVerify();
    }
}

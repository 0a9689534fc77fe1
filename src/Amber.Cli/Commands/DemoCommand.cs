using System.CommandLine;
using Amber.Checkpoint;
using Amber.Checkpoint.Restore;
using Amber.Kernel.Processes;
using Amber.Kernel.Proc;

namespace Amber.Cli.Commands;

/// <summary>
/// The main job in one command: start a small program Amber knows nothing about, checkpoint it from
/// outside, kill it, restore it with the same PID, and show that it carried on where it was.
/// </summary>
public static class DemoCommand
{
    private const string Program = """
        import time
        squares = [i * i for i in range(200000)]
        n = 0
        while True:
            n += 1
            squares.append(n)
            print(f"count {n:4d}   memory checksum {sum(squares) % 1000003:7d}", flush=True)
            time.sleep(0.25)
        """;

    public static Command Create()
    {
        var command = new Command("demo", "Start a small program, checkpoint it, kill it, restore it, and show that it carried on");
        command.SetAction(_ => CliErrors.Run(Run));
        return command;
    }

    private static int Run()
    {
        const string python = "/usr/bin/python3";
        if (!File.Exists(python))
            throw new IOException("the demo runs a small Python program and needs /usr/bin/python3 (apt-get install python3)");
        string dir = Directory.CreateTempSubdirectory("amber-demo-").FullName;
        string log = Path.Combine(dir, "counter.log");
        string images = Path.Combine(dir, "checkpoint");
        File.WriteAllText(Path.Combine(dir, "counter.py"), Program);
        int pid = Spawner.Spawn(new SpawnOptions(python, [Path.Combine(dir, "counter.py")])
        {
            WorkingDirectory = dir,
            Opens = [(0, "/dev/null", SpawnOptions.Read), (1, log, SpawnOptions.Append), (2, log, SpawnOptions.Append)],
        });
        int shown = 0;
        try
        {
            Say($"1. Started a Python counter, PID {pid}. Its output so far:");
            Thread.Sleep(1500);
            shown = Show(log, shown);

            var saved = Checkpointer.Checkpoint(pid, new CheckpointOptions(images, LeaveRunning: false));
            Spawner.TryReap(pid, out _); // the checkpoint, as tracer and parent, may have reaped it already
            Say($"2. Checkpointed it into {images} ({saved.ImageBytes / 1048576.0:0.0} MiB, frozen {saved.FrozenFor.TotalMilliseconds:0} ms) and killed it.");
            shown = Show(log, shown);
            Thread.Sleep(1000);
            Say($"   A second later: PID {pid} {(ProcFs.Exists(pid) ? "still exists (unexpected)" : "does not exist")}, and {File.ReadAllLines(log).Length - shown} new lines.");

            var restored = Restorer.Restore(new RestoreOptions(images, Detach: true, [], TimeSpan.FromSeconds(10)));
            Say($"3. Restored it in {restored.Total.TotalMilliseconds:0} ms with the same PID {restored.Pid}. It carries on where it was:");
            Thread.Sleep(1500);
            Show(log, shown);
            Say($"   (same process: /proc/{pid}/cmdline = {File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim()})");
            Say("Done. Try it on your own program: amber checkpoint PID --images DIR; amber restore --images DIR --detach");
            return ExitCodes.Ok;
        }
        finally
        {
            Spawner.Kill(pid, 9);
            Spawner.TryReap(pid, out _);
            Thread.Sleep(50);
            Spawner.TryReap(pid, out _);
            Directory.Delete(dir, recursive: true);
        }
    }

    private static int Show(string log, int from)
    {
        var lines = File.ReadAllLines(log);
        foreach (var line in lines.Skip(from))
            Say("     " + line);
        return lines.Length;
    }

    private static void Say(string text) => Console.Out.WriteLine(text);
}

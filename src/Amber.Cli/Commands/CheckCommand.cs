using System.CommandLine;
using Amber.Checkpoint.Resources.Sockets;
using Amber.Kernel.Features;

namespace Amber.Cli.Commands;

/// <summary>Lists the kernel features Amber relies on, probed for real; exit 1 if a required one is missing.</summary>
public static class CheckCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Machine-readable output: an array of {name, required, present, detail}" };
        var command = new Command("check", "List the kernel features Amber relies on; exit 1 if a required one is missing") { json };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            // Synchronous on this thread: the ptrace probe seizes, waits and detaches from one OS thread.
            var features = KernelFeatures.ProbeAll();
            // A lock an amber that died left behind keeps connections paused: found and removed here.
            foreach (string removed in NetworkLock.RemoveStale())
                Console.Error.WriteLine($"amber: {removed}");
            var missing = features.Where(f => f.Required && !f.Present).Select(f => f.Name).ToList();
            if (parse.GetValue(json))
                WriteJson(features);
            else
            {
                WriteText(features, missing);
                foreach (var parked in NetworkLock.All().Where(l => l.Checkpoint is not null))
                    Console.Out.WriteLine($"  network lock {parked.Id}: {parked.Connections.Count} TCP connection{(parked.Connections.Count == 1 ? "" : "s")} paused until {parked.Checkpoint} is restored (delete that checkpoint to let them go)");
            }
            if (missing.Count == 0)
                return ExitCodes.Ok;
            Console.Error.WriteLine($"amber: required kernel features missing: {string.Join(", ", missing)}");
            return ExitCodes.Failed;
        }));
        return command;
    }

    private static void WriteText(IReadOnlyList<FeatureProbe> features, List<string> missing)
    {
        int width = features.Max(f => f.Name.Length) + 1;
        foreach (var f in features)
        {
            string status = f.Present ? "[ok]" : "[missing]";
            string optional = !f.Present && !f.Required ? " (optional)" : "";
            Console.Out.WriteLine($"  {status,-9} {(f.Name + ":").PadRight(width)} {f.Detail}{optional}");
        }
        Console.Out.WriteLine(missing.Count == 0
            ? "Amber can checkpoint and restore on this machine."
            : $"Amber cannot run here: {string.Join(", ", missing)} missing.");
    }

    private static void WriteJson(IReadOnlyList<FeatureProbe> features) => JsonReport.Write(writer =>
    {
        writer.WriteStartArray();
        foreach (var f in features)
        {
            writer.WriteStartObject();
            writer.WriteString("name", f.Name);
            writer.WriteBoolean("required", f.Required);
            writer.WriteBoolean("present", f.Present);
            writer.WriteString("detail", f.Detail);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
    });
}

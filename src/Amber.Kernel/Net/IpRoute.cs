using System.Text;
using System.Text.Json;

namespace Amber.Kernel.Net;

/// <summary>
/// Interfaces, addresses and routes through the ip program (iproute2), as CRIU does: several commands
/// in one run (ip -batch), in the network namespace of the calling thread.
/// </summary>
public static class IpRoute
{
    private const string Program = "ip";

    /// <summary>
    /// Runs <paramref name="commands"/> (each as after "ip -json -details", e.g. "address show") in
    /// one ip (with -6 if <paramref name="ipv6"/>), and gives what each printed, in order: a JSON array each.
    /// </summary>
    public static List<JsonElement> Query(IReadOnlyList<string> commands, string what, bool ipv6 = false)
    {
        // A family is ip's option, not a command's: IPv6 policy rules need a run of their own.
        string[] options = ipv6 ? ["-6", "-json", "-details", "-batch", "-"] : ["-json", "-details", "-batch", "-"];
        string output = ExternalTool.Run(Program, "iproute2", options, string.Join('\n', commands) + "\n", what);
        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(output), new JsonReaderOptions { AllowMultipleValues = true });
        var results = new List<JsonElement>();
        while (reader.Read())
            results.Add(JsonElement.ParseValue(ref reader));
        if (results.Count != commands.Count || results.Any(r => r.ValueKind != JsonValueKind.Array))
            throw new KernelCallException(Program, what, $"ip printed {results.Count} answers to {commands.Count} commands");
        return results;
    }

    /// <summary>Runs <paramref name="commands"/> in one ip (ip -batch), which stops at the first that fails.</summary>
    public static void Apply(IReadOnlyList<string> commands, string what)
    {
        if (commands.Count > 0)
            ExternalTool.Run(Program, "iproute2", ["-batch", "-"], string.Join('\n', commands) + "\n", what);
    }
}

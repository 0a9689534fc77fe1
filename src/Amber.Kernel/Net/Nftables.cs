using System.Diagnostics;

namespace Amber.Kernel.Net;

/// <summary>
/// nftables, through the nft program (Debian's nftables package): a script is applied as one
/// transaction, all of it or none of it.
/// </summary>
public static class Nftables
{
    private const string Program = "nft";
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    /// <summary>Whether nft is installed (on PATH or in /usr/sbin).</summary>
    public static bool Installed => Locate() is not null;

    /// <summary>Applies <paramref name="script"/> (nft -f -) atomically; <paramref name="what"/> names it in an error.</summary>
    public static void Apply(string script, string what) => Run(["-f", "-"], script, what);

    /// <summary>The names of the tables of <paramref name="family"/> (nft list tables).</summary>
    public static List<string> Tables(string family)
    {
        var prefix = $"table {family} ";
        return [.. Run(["list", "tables", family], null, $"the {family} tables")
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.StartsWith(prefix, StringComparison.Ordinal))
            .Select(l => l[prefix.Length..])];
    }

    private static string Run(string[] arguments, string? input, string what)
    {
        var program = Locate() ?? throw new KernelCallException(Program, what, "nft is not installed (apt-get install nftables)");
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardInput = input is not null,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in arguments)
            start.ArgumentList.Add(a);
        using var nft = Process.Start(start) ?? throw new KernelCallException(Program, what, "could not start nft");
        if (input is not null)
        {
            nft.StandardInput.Write(input);
            nft.StandardInput.Close();
        }
        var output = nft.StandardOutput.ReadToEndAsync();
        var errors = nft.StandardError.ReadToEndAsync();
        if (!nft.WaitForExit(Limit))
        {
            nft.Kill();
            throw new KernelCallException(Program, what, $"nft did not finish in {Limit.TotalSeconds:0} s");
        }
        nft.WaitForExit();
        if (nft.ExitCode != 0)
        {
            string first = errors.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "";
            throw new KernelCallException(Program, what, $"exit code {nft.ExitCode}{(first.Length > 0 ? $": {first}" : "")}");
        }
        return output.Result;
    }

    private static string? Locate() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/sbin").Append("/sbin")
            .Select(d => Path.Combine(d, Program)).FirstOrDefault(File.Exists);
}

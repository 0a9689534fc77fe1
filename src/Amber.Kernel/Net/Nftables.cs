namespace Amber.Kernel.Net;

/// <summary>
/// nftables, through the nft program (Debian's nftables package): a script is applied as one
/// transaction, all of it or none of it.
/// </summary>
public static class Nftables
{
    private const string Program = "nft";

    /// <summary>Whether nft is installed (on PATH or in /usr/sbin).</summary>
    public static bool Installed => ExternalTool.Locate(Program) is not null;

    /// <summary>Applies <paramref name="script"/> (nft -f -) atomically; <paramref name="what"/> names it in an error.</summary>
    public static void Apply(string script, string what) => Run(["-f", "-"], script, what);

    /// <summary>The names of the tables of <paramref name="family"/> (nft list tables).</summary>
    public static List<string> Tables(string family) => [.. ListTables([family]).Select(t => t.Name)];

    /// <summary>Every table of every family, as (family, name).</summary>
    public static List<(string Family, string Name)> AllTables() => ListTables([]);

    /// <summary>nft list tables [FAMILY]: its lines "table FAMILY NAME".</summary>
    private static List<(string Family, string Name)> ListTables(string[] family) =>
        [.. Run(["list", "tables", .. family], null, family is [var f] ? $"the {f} tables" : "the tables")
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split(' '))
            .Where(p => p is ["table", _, _])
            .Select(p => (p[1], p[2]))];

    /// <summary>One table, whole (its sets, maps, chains, rules and counters), as nft -f takes it back.</summary>
    public static string ListTable(string family, string name) => Run(["list", "table", family, name], null, $"table {family} {name}");

    private static string Run(string[] arguments, string? input, string what) => ExternalTool.Run(Program, "nftables", arguments, input, what);
}

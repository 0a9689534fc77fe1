namespace Amber.Integration.Tests.Infrastructure;

/// <summary>Paths of the repository and of the built CLI the tests drive.</summary>
public static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string TargetSources => Path.Combine(Root, "test", "TestTargets");

    /// <summary>
    /// The CLI as users run it: ./amber at the repository root, which builds it (Native AOT) when a
    /// source is newer than the build, so the tests drive exactly what ships.
    /// </summary>
    public static string Amber => Path.Combine(Root, "amber");

    public static string Dotnet { get; } = FindDotnet();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Amber.slnx")))
                return dir.FullName;
        }
        throw new InvalidOperationException("cannot find the repository root (Amber.slnx) above " + AppContext.BaseDirectory);
    }

    private static string FindDotnet()
    {
        if (Environment.ProcessPath is { } self && Path.GetFileName(self) == "dotnet")
            return self;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
        {
            var candidate = Path.Combine(dir, "dotnet");
            if (File.Exists(candidate))
                return candidate;
        }
        return "/usr/bin/dotnet";
    }
}

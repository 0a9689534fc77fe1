namespace Amber.Native.Tests;

/// <summary>Locates the repository the tests were built from.</summary>
internal static class RepoPaths
{
    /// <summary>The first directory above the test binaries that contains Amber.slnx.</summary>
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Join(dir.FullName, "Amber.slnx")))
                return dir.FullName;
        }
        throw new InvalidOperationException($"no directory containing Amber.slnx above {AppContext.BaseDirectory}");
    }
}

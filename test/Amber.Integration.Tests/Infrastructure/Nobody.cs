namespace Amber.Integration.Tests.Infrastructure;

/// <summary>
/// A real unprivileged user for the tests of what the coordinator lets users do: nobody (65534),
/// which every Debian system has. Commands run as it through setpriv, with its own group only and no
/// capabilities.
/// </summary>
public static class Nobody
{
    public const uint Uid = 65534;

    public static AmberRun Run(string program, IReadOnlyList<string> args, IReadOnlyDictionary<string, string>? env = null) =>
        ExternalProgram.Start("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", program, .. args], null, env).Wait();

    /// <summary>The amber CLI, run as nobody against the test's coordinator.</summary>
    public static AmberRun Amber(GroupHome home, params string[] args) => Run(Repo.Amber, args, home.Environment);

    /// <summary>A directory of nobody's own (made, then given to it).</summary>
    public static string Directory(string path)
    {
        System.IO.Directory.CreateDirectory(path);
        ExternalProgram.Run("/bin/chown", $"{Uid}:{Uid}", path).ShouldSucceed();
        return path;
    }
}

using System.Runtime.InteropServices;
using Amber.Native;

namespace Amber.Kernel.Processes;

/// <summary>Becomes another program in this very process (execve), optionally as another user first.</summary>
public static class Exec
{
    /// <summary>Gives up root for <paramref name="uid"/>/<paramref name="gid"/> with only that group: what a user's own program runs as.</summary>
    public static unsafe void BecomeUser(uint uid, uint gid)
    {
        uint g = gid;
        Errnos.Check(Interop.Setgroups(1, &g), "setgroups", $"uid {uid}");
        Errnos.Check(Interop.Setresgid(gid, gid, gid), "setresgid", $"gid {gid}");
        Errnos.Check(Interop.Setresuid(uid, uid, uid), "setresuid", $"uid {uid}");
    }

    /// <summary>execve: never returns on success. The program is looked up in PATH when it has no '/'.</summary>
    public static unsafe void Replace(IReadOnlyList<string> argv, IReadOnlyList<string> environment)
    {
        string program = Resolve(argv[0], environment);
        var strings = new List<nint>();
        try
        {
            nint Z(string s) { var p = Marshal.StringToCoTaskMemUTF8(s); strings.Add(p); return p; }
            var args = new nint[argv.Count + 1];
            for (int i = 0; i < argv.Count; i++)
                args[i] = Z(argv[i]);
            var env = new nint[environment.Count + 1];
            for (int i = 0; i < environment.Count; i++)
                env[i] = Z(environment[i]);
            nint path = Z(program);
            fixed (nint* a = args, e = env)
                Interop.Execve((byte*)path, (byte**)a, (byte**)e);
            Errnos.Throw("execve", program);
        }
        finally
        {
            foreach (var p in strings)
                Marshal.FreeCoTaskMem(p);
        }
    }

    private static string Resolve(string program, IReadOnlyList<string> environment)
    {
        if (program.Contains('/'))
            return program;
        string path = environment.FirstOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?[5..] ?? "/usr/local/bin:/usr/bin:/bin";
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, program);
            if (File.Exists(candidate))
                return candidate;
        }
        throw new FileNotFoundException($"{program}: command not found in PATH");
    }
}

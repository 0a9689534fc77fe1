using System.Diagnostics;
using System.Globalization;

namespace Amber.Native.Tests;

/// <summary>
/// Compiles a C program with gcc, runs it and parses its output: one "key value" pair per line
/// (the value a signed decimal, the key everything before the last space).
/// </summary>
internal static class CProgram
{
    /// <summary>Compiles <paramref name="sourcePath"/> into a temporary directory, runs it, parses its lines.</summary>
    public static Dictionary<string, long> CompileAndRun(string sourcePath)
    {
        var dir = Directory.CreateTempSubdirectory("amber-native-tests-");
        try
        {
            string exe = Path.Join(dir.FullName, Path.GetFileNameWithoutExtension(sourcePath));
            var gcc = Run("gcc", ["-O0", "-o", exe, sourcePath]);
            if (gcc.Code != 0)
                throw new InvalidOperationException($"gcc failed on {sourcePath} (exit {gcc.Code}):\n{gcc.Stderr}{gcc.Stdout}");
            var run = Run(exe, []);
            if (run.Code != 0)
                throw new InvalidOperationException($"{exe} exited with {run.Code}:\n{run.Stderr}{run.Stdout}");
            return Parse(run.Stdout);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>Writes <paramref name="source"/> to a temporary file, then as <see cref="CompileAndRun(string)"/>.</summary>
    public static Dictionary<string, long> CompileAndRunSource(string name, string source)
    {
        var dir = Directory.CreateTempSubdirectory("amber-native-tests-src-");
        try
        {
            string path = Path.Join(dir.FullName, name + ".c");
            File.WriteAllText(path, source);
            try
            {
                return CompileAndRun(path);
            }
            catch (InvalidOperationException e)
            {
                throw new InvalidOperationException($"{e.Message}\n--- generated source {name}.c ---\n{Numbered(source)}", e);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    public static Dictionary<string, long> Parse(string output)
    {
        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int space = line.LastIndexOf(' ');
            if (space <= 0)
                throw new FormatException($"unexpected output line '{line}'");
            string key = line[..space];
            long value = long.Parse(line[(space + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            if (!result.TryAdd(key, value))
                throw new FormatException($"key '{key}' printed twice");
        }
        return result;
    }

    private static string Numbered(string source) =>
        string.Join('\n', source.Split('\n').Select((l, i) => $"{i + 1,4}: {l}"));

    private static (int Code, string Stdout, string Stderr) Run(string file, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout, stderr.Result);
    }
}

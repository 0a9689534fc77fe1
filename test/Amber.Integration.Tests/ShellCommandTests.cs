namespace Amber.Integration.Tests;

/// <summary>
/// Shell completion and the man page come from the command definitions: bash completes amber's
/// commands and a command's options through the real CLI; the page has every command and option
/// --help lists, and man renders it.
/// </summary>
public sealed class ShellCommandTests
{
    [Theory]
    [InlineData("amber che", "check checkpoint")]
    [InlineData("amber restore --tc", "--tcp-close")]
    [InlineData("amber images --js", "--json")]
    public void BashCompletesCommandsAndOptionsThroughTheCli(string line, string expected)
    {
        string script = $$"""
            source <({{Repo.Amber}} completion bash)
            amber() { {{Repo.Amber}} "$@"; }
            COMP_LINE='{{line}}'; COMP_POINT={{line.Length}}
            read -ra COMP_WORDS <<< "$COMP_LINE"; COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
            _amber_complete
            echo "${COMPREPLY[*]}"
            """;
        var run = ExternalProgram.Run("/bin/bash", "-c", script);
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal(expected, run.Stdout.Trim());
    }

    [Fact]
    public void TheManPageHasEveryCommandAndOptionAndRenders()
    {
        string page = AmberCli.Run("man").ShouldSucceed().Stdout;
        Assert.StartsWith(".TH AMBER 1", page, StringComparison.Ordinal);
        // Every command --help lists, and each of its options.
        var help = AmberCli.Run("--help").ShouldSucceed().Stdout;
        var commands = help[help.IndexOf("Commands:", StringComparison.Ordinal)..].Split('\n').Skip(1)
            .Select(l => l.Trim().Split(' ')[0]).Where(c => c.Length > 0).ToList();
        Assert.Contains("checkpoint", commands);
        foreach (var command in commands)
        {
            Assert.Contains($".SS \"amber {command.Replace("-", "\\-", StringComparison.Ordinal)}", page, StringComparison.Ordinal);
            var options = AmberCli.Run(command, "--help").ShouldSucceed().Stdout.Split('\n')
                .SkipWhile(l => !l.StartsWith("Options:", StringComparison.Ordinal)).Skip(1)
                .Select(l => l.Trim().Split(' ')[0].TrimEnd(',')).Where(o => o.StartsWith("--", StringComparison.Ordinal) && o != "--help").ToList();
            foreach (var option in options)
                Assert.Contains($"\\fB{option.Replace("-", "\\-", StringComparison.Ordinal)}\\fR", page, StringComparison.Ordinal);
        }
        // nroff (groff-base, which test/install-deps installs): no warning, and the options readable.
        string file = Path.Combine(Path.GetTempPath(), $"amber-man-{Environment.ProcessId}.1");
        File.WriteAllText(file, page);
        try
        {
            var rendered = ExternalProgram.Run("/usr/bin/nroff", "-man", "-Tascii", "-ww", file);
            Assert.True(rendered.ExitCode == 0 && rendered.Stderr.Length == 0, $"nroff: {rendered.Stderr}");
            // Bold is overstruck in ASCII ("x", backspace, "x").
            Assert.Contains("--tcp-close", System.Text.RegularExpressions.Regex.Replace(rendered.Stdout, ".\b", ""), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }
}

using System.CommandLine;
using System.Globalization;
using System.Text;

namespace Amber.Cli.Commands;

/// <summary>
/// amber completion SHELL and amber man: shell completion and a man page, both from the command
/// definitions themselves (System.CommandLine's [suggest] directive answers the shell; the page walks
/// the commands), so neither can drift from what amber accepts.
/// </summary>
public static class ShellCommands
{
    public static Command Completion()
    {
        var shell = new Argument<string>("shell") { Description = "bash, zsh or fish" };
        var command = new Command("completion", "Print a shell completion script: source <(amber completion bash)") { shell };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            Console.Out.Write(parse.GetValue(shell) switch
            {
                "bash" => Bash,
                "zsh" => "autoload -U +X bashcompinit && bashcompinit\n" + Bash,
                "fish" => Fish,
                var other => throw new UsageException($"amber completion knows bash, zsh and fish, not '{other}'"),
            });
            return ExitCodes.Ok;
        }));
        return command;
    }

    // amber "[suggest:POSITION]" "LINE": the completions of the word at POSITION, one a line.
    private const string Bash = """
        _amber_complete() {
          local IFS=$'\n'
          COMPREPLY=($(compgen -W "$(amber "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null)" -- "${COMP_WORDS[COMP_CWORD]}"))
        }
        complete -o default -F _amber_complete amber

        """;

    private const string Fish = """
        complete -c amber -f -a '(amber "[suggest:"(commandline -C)"]" (commandline -cp) 2>/dev/null)'

        """;

    public static Command Man()
    {
        var command = new Command("man", "Print amber's man page (roff): amber man | man -l -");
        command.SetAction(parse => CliErrors.Run(() =>
        {
            Console.Out.Write(Page(parse.RootCommandResult.Command));
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>amber(1): every visible command with its arguments and options, as the parser knows them.</summary>
    public static string Page(Command root)
    {
        var page = new StringBuilder();
        string version = typeof(ShellCommands).Assembly.GetName().Version?.ToString(3) ?? "";
        page.Append(CultureInfo.InvariantCulture, $".TH AMBER 1 \"\" \"amber {version}\" \"User Commands\"\n");
        page.Append(".SH NAME\namber \\- ").Append(Escape(root.Description ?? "")).Append('\n');
        page.Append(".SH SYNOPSIS\n.B amber\n.I command\n[\\fIoptions\\fR]\n");
        page.Append(".SH DESCRIPTION\nAmber saves running process trees and groups of them (memory, threads, files, sockets, TCP connections) ");
        page.Append("to an image directory and brings them back with the same PIDs, on this machine or another. ");
        page.Append("Each command below has \\fB\\-\\-help\\fR too.\n");
        page.Append(".SH COMMANDS\n");
        foreach (var command in root.Subcommands.Where(c => !c.Hidden))
        {
            page.Append(".SS \"amber ").Append(Escape(command.Name));
            foreach (var argument in command.Arguments.Where(a => !a.Hidden))
                page.Append(argument.Arity.MinimumNumberOfValues == 0 ? $" [{Escape(argument.Name.ToUpperInvariant())}]" : $" {Escape(argument.Name.ToUpperInvariant())}");
            page.Append("\"\n").Append(Escape(command.Description ?? "")).Append('\n');
            foreach (var argument in command.Arguments.Where(a => !a.Hidden))
                page.Append(".TP\n.I ").Append(Escape(argument.Name.ToUpperInvariant())).Append('\n').Append(Escape(argument.Description ?? "")).Append('\n');
            foreach (var option in command.Options.Where(o => !o.Hidden))
            {
                var names = new[] { option.Name }.Concat(option.Aliases.Order(StringComparer.Ordinal));
                page.Append(".TP\n").Append(string.Join(", ", names.Select(n => $"\\fB{Escape(n)}\\fR"))).Append('\n');
                page.Append(Escape(option.Description ?? "")).Append('\n');
            }
        }
        page.Append(".SH EXIT STATUS\n0 success; 1 the operation failed (one line on stderr says what and why); 2 usage error. ");
        page.Append("A restore that waits for its process exits with the process's exit code.\n");
        page.Append(".SH ENVIRONMENT\n.TP\n.B AMBER_HOME\nKeep the coordinator's sockets, tables, groups and cgroups under this directory.\n");
        page.Append(".TP\n.B AMBER_TRACE\n1: print the time of each phase of a checkpoint or restore on stderr.\n");
        page.Append(".SH SEE ALSO\n.BR criu (8)\n");
        return page.ToString();
    }

    // roff: a backslash is \e, a dash \-, and a line may not start with a control character.
    private static string Escape(string text)
    {
        var escaped = text.Replace("\\", "\\e", StringComparison.Ordinal).Replace("-", "\\-", StringComparison.Ordinal);
        return string.Join('\n', escaped.Split('\n').Select(l => l.StartsWith('.') || l.StartsWith('\'') ? "\\&" + l : l));
    }
}

using System.CommandLine;

namespace Amber.Cli.Commands;

public static class CheckCommand
{
    public static Command Create()
    {
        var command = new Command("check", "List the kernel features Amber relies on; exit 1 if a required one is missing");
        command.SetAction(_ => CliErrors.Run(() => ExitCodes.Ok));
        return command;
    }
}

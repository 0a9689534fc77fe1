using System.CommandLine;

namespace Amber.Cli.Commands;

public static class DemoCommand
{
    public static Command Create()
    {
        var command = new Command("demo", "Start a small program, checkpoint it, kill it, restore it, and show that it carried on");
        command.SetAction(_ => CliErrors.Run(() => ExitCodes.Ok));
        return command;
    }
}

using System.CommandLine;
using Amber.Cli;
using Amber.Cli.Commands;

PhaseTracePrinter.StartIfAsked();
var root = new RootCommand("Amber: transparent checkpoint/restore of Linux processes")
{
    CheckCommand.Create(),
    CheckpointCommand.Create(),
    RestoreCommand.Create(),
    InspectCommand.Create(),
    DemoCommand.Create(),
    GroupCommands.Run(),
    GroupCommands.Attach(),
    GroupCommands.Detach(),
    GroupCommands.Stop(),
    PsCommand.Create(),
    ImagesCommand.Create(),
    VerifyCommand.Create(),
    MergeCommand.Create(),
    KeyCommand.Create(),
    GroupCommands.Daemon(),
    ClusterCommands.Cluster(),
    ClusterCommands.Node(),
    ClusterCommands.Agent(),
    ClusterCommands.Migrate(),
    ClusterCommands.Receive(),
    ServiceCommand.Create(),
    ShellCommands.Completion(),
    ShellCommands.Man(),
    InternalCommand.Create(),
};
var parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    foreach (var error in parse.Errors)
        Console.Error.WriteLine($"amber: {error.Message}");
    Console.Error.WriteLine("amber: see 'amber --help'");
    return ExitCodes.Usage;
}
return parse.Invoke();

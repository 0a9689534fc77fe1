using System.CommandLine;
using System.Globalization;
using Amber.Coordinator;
using Amber.Coordinator.Table;

namespace Amber.Cli.Commands;

/// <summary>amber ps: the groups' processes (those this user may see), read from their process tables without asking the coordinator.</summary>
public static class PsCommand
{
    public static Command Create()
    {
        var group = GroupCommands.GroupOption(required: false);
        var command = new Command("ps", "List the processes of the application groups (from their process tables)") { group };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var home = AmberHome.Current;
            string? only = GroupCommands.GroupName(parse, group);
            var tables = only is not null
                ? [home.ProcessTable(only)]
                : Directory.Exists(home.ShmDirectory) ? Directory.GetFiles(home.ShmDirectory, "amber.*.table").Order().ToArray() : [];
            if (only is not null && !File.Exists(tables[0]))
                throw new IOException($"there is no group '{only}' (no {tables[0]})");
            Console.Out.WriteLine($"{"GROUP",-16} {"PID",7} {"PPID",7} {"TREE",7} {"STATE",-8} {"THR",4} {"RESTARTS",8} {"LAST CHECKPOINT",-19} COMMAND");
            foreach (var path in tables)
            {
                using var table = Readable(path, all: only is null);
                if (table is null)
                    continue;
                var (header, records) = table.Read();
                foreach (var r in records)
                {
                    string last = r.LastCheckpointUnixMs > 0
                        ? DateTimeOffset.FromUnixTimeMilliseconds(r.LastCheckpointUnixMs).ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)
                        : "-";
                    Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{header.Group,-16} {r.Pid,7} {r.ParentPid,7} {r.Tree,7} {r.State.ToString().ToLowerInvariant(),-8} {r.Threads,4} {r.Restarts,8} {last,-19} {r.Command}"));
                }
            }
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>A group's table, if there is one; listing them all, those of other users' groups (not readable for this user) are left out.</summary>
    private static ProcessTable? Readable(string path, bool all)
    {
        try
        {
            return ProcessTable.OpenForReading(path);
        }
        catch (UnauthorizedAccessException) when (all)
        {
            return null;
        }
    }
}

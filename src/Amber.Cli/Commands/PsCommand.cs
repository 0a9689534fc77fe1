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
        var json = JsonReport.Option();
        var command = new Command("ps", "List the processes of the application groups (from their process tables)") { group, json };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var home = AmberHome.Current;
            string? only = GroupCommands.GroupName(parse, group);
            var tables = only is not null
                ? [home.ProcessTable(only)]
                : Directory.Exists(home.ShmDirectory) ? Directory.GetFiles(home.ShmDirectory, "amber.*.table").Order().ToArray() : [];
            if (only is not null && !File.Exists(tables[0]))
                throw new IOException($"there is no group '{only}' (no {tables[0]})");
            if (parse.GetValue(json))
            {
                Report(tables, all: only is null);
                return ExitCodes.Ok;
            }
            Console.Out.WriteLine($"{"GROUP",-16} {"PID",7} {"NSPID",7} {"PPID",7} {"TREE",7} {"STATE",-8} {"THR",4} {"RESTARTS",8} {"LAST CHECKPOINT",-19} COMMAND");
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
                        $"{header.Group,-16} {r.Pid,7} {(r.NsPid > 0 ? r.NsPid : r.Pid),7} {r.ParentPid,7} {r.Tree,7} {r.State.ToString().ToLowerInvariant(),-8} {r.Threads,4} {r.Restarts,8} {last,-19} {r.Command}"));
                }
            }
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>Every process of the tables as an object of the columns the human table has (times in UTC, ISO 8601).</summary>
    private static void Report(string[] tables, bool all) => JsonReport.Write(w =>
    {
        w.WriteStartArray();
        foreach (var path in tables)
        {
            using var table = Readable(path, all);
            if (table is null)
                continue;
            var (header, records) = table.Read();
            foreach (var r in records)
            {
                w.WriteStartObject();
                w.WriteString("group", header.Group);
                w.WriteNumber("pid", r.Pid);
                w.WriteNumber("nsPid", r.NsPid > 0 ? r.NsPid : r.Pid);
                w.WriteNumber("ppid", r.ParentPid);
                w.WriteNumber("tree", r.Tree);
                w.WriteString("state", r.State.ToString().ToLowerInvariant());
                w.WriteNumber("threads", r.Threads);
                w.WriteNumber("restarts", r.Restarts);
                if (r.LastCheckpointUnixMs > 0)
                    w.WriteString("lastCheckpoint", DateTimeOffset.FromUnixTimeMilliseconds(r.LastCheckpointUnixMs));
                else
                    w.WriteNull("lastCheckpoint");
                w.WriteString("command", r.Command);
                w.WriteEndObject();
            }
        }
        w.WriteEndArray();
    });

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

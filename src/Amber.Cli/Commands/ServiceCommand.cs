using System.CommandLine;

namespace Amber.Cli.Commands;

/// <summary>
/// amber install-service: the coordinator as a systemd service (Type=notify: it says READY once its
/// control socket listens, STOPPING when it ends; its log lines go to the journal).
/// </summary>
public static class ServiceCommand
{
    private const string UnitName = "amber.service";

    public static Command Create()
    {
        var directory = new Option<string>("--unit-dir") { Description = "Where to write amber.service", DefaultValueFactory = _ => "/etc/systemd/system" };
        var command = new Command("install-service", "Write the coordinator's systemd unit (then: systemctl daemon-reload && systemctl enable --now amber)") { directory };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            string dir = parse.GetValue(directory)!;
            if (!Directory.Exists(dir))
                throw new IOException($"{dir} does not exist");
            string amber = Environment.ProcessPath ?? throw new IOException("the path of this amber is not known");
            string path = Path.Combine(dir, UnitName);
            string temporary = path + ".tmp";
            File.WriteAllText(temporary, Unit(amber));
            File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            File.Move(temporary, path, overwrite: true);
            Console.Error.WriteLine($"wrote {path} (amber {amber}); now: systemctl daemon-reload && systemctl enable --now amber");
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>The unit: the coordinator in the foreground, as `amber daemon` runs it.</summary>
    public static string Unit(string amber) => $"""
        [Unit]
        Description=Amber coordinator: checkpoint and restore of application groups
        After=network.target

        [Service]
        Type=notify
        ExecStart={amber} daemon
        # SIGTERM ends the coordinator alone: the groups' processes run on, and a coordinator started
        # again finds them. It makes the groups' cgroups itself.
        KillMode=process
        Delegate=yes
        Restart=on-failure
        StandardOutput=journal
        StandardError=journal

        [Install]
        WantedBy=multi-user.target

        """;
}

using System.Net.Sockets;
using System.Text;
using Amber.Kernel.Processes;

namespace Amber.Integration.Tests;

/// <summary>
/// Run by systemd (standard error is the journal stream $JOURNAL_STREAM names), the coordinator logs
/// through journald's native protocol: an entry per event with its priority and the group and
/// checkpoint as fields, and nothing on the stream. A journal socket of the test's stands in for
/// journald's ($AMBER_JOURNAL_SOCKET).
/// </summary>
public sealed class JournalTests
{
    [Fact]
    public void UnderSystemdEachEventIsAJournalEntryWithItsPriorityGroupAndCheckpoint()
    {
        using var home = new GroupHome("journal");
        string socketPath = home.Dir["journal.sock"];
        using var journal = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        journal.Bind(new UnixDomainSocketEndPoint(socketPath));
        journal.ReceiveTimeout = 100;
        string stream = home.Dir["stderr"];
        // As systemd starts a service: stderr is the stream, JOURNAL_STREAM names it (device:inode).
        var environment = new Dictionary<string, string>(home.Environment) { ["AMBER_JOURNAL_SOCKET"] = socketPath };
        ExternalProgram.Start("/bin/sh", ["-c", $"exec 2>'{stream}'; JOURNAL_STREAM=$(stat -c %d:%i '{stream}') exec '{Repo.Amber}' daemon"], env: environment);
        GroupHome.WaitUntil(() => File.Exists(home.Home.ControlSocket), "the coordinator to listen", TimeSpan.FromMinutes(3));

        int sleeper = home.Run("jr", [], "/bin/sleep", "1000");
        home.Amber("checkpoint", "--group", "jr").ShouldSucceed();
        Spawner.Kill(sleeper, 9); // a member killed: a warning

        var entries = new List<Dictionary<string, string>>();
        bool Has(Func<Dictionary<string, string>, bool> match)
        {
            var buffer = new byte[65536];
            try
            {
                while (true)
                {
                    int n = journal.Receive(buffer);
                    entries.Add(Encoding.UTF8.GetString(buffer, 0, n).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                        .Select(l => l.Split('=', 2)).ToDictionary(f => f[0], f => f[1]));
                }
            }
            catch (SocketException)
            {
                // nothing more for now
            }
            return entries.Any(match);
        }
        GroupHome.WaitUntil(() => Has(e => e.GetValueOrDefault("PRIORITY") == "4" && e.GetValueOrDefault("AMBER_GROUP") == "jr"), "the member's end as a warning");
        var taken = Assert.Single(entries, e => e["MESSAGE"].StartsWith("checkpointed group jr as ckpt-000001", StringComparison.Ordinal));
        Assert.Equal(("6", "amberd", "jr", "ckpt-000001"), (taken["PRIORITY"], taken["SYSLOG_IDENTIFIER"], taken["AMBER_GROUP"], taken["AMBER_CHECKPOINT"]));
        Assert.Contains(entries, e => e["MESSAGE"].StartsWith("coordinator ", StringComparison.Ordinal) && e.ContainsKey("AMBER_SOCKET"));
        // Nothing twice: the stream itself stayed empty.
        Assert.Equal("", File.ReadAllText(stream));
    }
}

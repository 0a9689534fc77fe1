using System.Text.Json;

namespace Amber.Integration.Tests;

/// <summary>
/// The coordinator's configuration file ($AMBER_CONFIG): a new group takes its store root, schedule,
/// merge policy, retention and compression for what amber run does not say, and what amber run says wins; a
/// setting it does not know or a value that cannot be stops the coordinator
/// with one line naming it.
/// </summary>
public sealed class ConfigTests
{
    [Fact]
    public void ANewGroupTakesTheConfigurationsDefaultsAndTheCommandLineWins()
    {
        using var home = new GroupHome("config");
        string stores = home.Dir["stores"];
        Directory.CreateDirectory(stores);
        string config = home.Dir["amber.json"];
        File.WriteAllText(config, $$"""
            {
              // the groups' stores, and a checkpoint every 300 ms
              "storeRoot": "{{stores}}",
              "everySeconds": 0.3,
              "mergeAfter": 3,
              "keepLast": 4,
              "keepForSeconds": 3600,
              "compress": "zstd"
            }
            """);
        var environment = new Dictionary<string, string>(home.Environment) { ["AMBER_CONFIG"] = config };
        var run = AmberCli.Run(["run", "--group", "cfg", "--", "/bin/sleep", "1000"], null, environment).ShouldSucceed();
        AmberCli.Run(["run", "--group", "own", "--merge-after", "5", "--", "/bin/sleep", "1000"], null, environment).ShouldSucceed();

        // Scheduled checkpoints into storeRoot/cfg, compressed.
        GroupHome.WaitUntil(() => Directory.Exists(Path.Combine(stores, "cfg")) && Directory.GetDirectories(Path.Combine(stores, "cfg"), "ckpt-*").Count(d => File.Exists(Path.Combine(d, "manifest.img"))) >= 2,
            "two scheduled checkpoints in the configured store", TimeSpan.FromSeconds(60));
        using var settings = JsonDocument.Parse(File.ReadAllText(Path.Combine(home.Home.GroupsDirectory, "cfg", "group.json")));
        var cfg = settings.RootElement;
        Assert.Equal(Path.Combine(stores, "cfg"), cfg.GetProperty("store").GetString());
        Assert.Equal(0.3, cfg.GetProperty("everySeconds").GetDouble());
        Assert.Equal(3, cfg.GetProperty("mergeAfter").GetInt32());
        Assert.Equal("zstd", cfg.GetProperty("compress").GetString());
        Assert.Equal(4, cfg.GetProperty("keepLast").GetInt32());
        Assert.Equal(3600, cfg.GetProperty("keepForSeconds").GetDouble());
        using var own = JsonDocument.Parse(File.ReadAllText(Path.Combine(home.Home.GroupsDirectory, "own", "group.json")));
        Assert.Equal(5, own.RootElement.GetProperty("mergeAfter").GetInt32());
        Assert.NotEmpty(run.LastStdoutLine);
    }

    [Theory]
    [InlineData("""{ "metricsAddress": "0.0.0.0:9464" }""", "\"metricsAddress\" must be a loopback address and port")]
    [InlineData("""{ "metrics": "127.0.0.1:9464" }""", "\"metrics\" is not a setting")]
    [InlineData("""{ "keepLast": 0 }""", "\"keepLast\" must be a number of checkpoints, 1 or more")]
    [InlineData("""{ "everySeconds": -1 }""", "\"everySeconds\" must be seconds")]
    [InlineData("""{ "storeRoot": "relative/path" }""", "\"storeRoot\" must be a full path")]
    [InlineData("""{ "schedule": "5m" }""", "\"schedule\" is not a setting")]
    [InlineData("""{ "bridge": "amber0; flush" }""", "\"bridge\" must be an interface name")]
    [InlineData("""{ "addressPool": "10.177.0.0/31" }""", "\"addressPool\" must be an IPv4 subnet")]
    [InlineData("""{ "addressPool": "fd00::/64" }""", "\"addressPool\" must be an IPv4 subnet")]
    [InlineData("""not json""", "is not JSON")]
    public void AConfigurationThatCannotBeStopsTheCoordinatorNamingIt(string text, string message)
    {
        using var home = new GroupHome("config-bad");
        string config = home.Dir["amber.json"];
        File.WriteAllText(config, text);
        var daemon = AmberCli.Run(["daemon"], null, new Dictionary<string, string>(home.Environment) { ["AMBER_CONFIG"] = config }, TimeSpan.FromMinutes(3));
        daemon.ShouldFail(message);
        Assert.False(File.Exists(home.Home.ControlSocket), "the coordinator listened with a configuration it could not take");
    }
}

namespace Amber.Integration.Tests;

/// <summary>
/// The command line's values are checked before anything happens: a wrong group name, count,
/// interval, size, PID or wait is a usage error (exit 2, one line naming it), and no coordinator is
/// started, no group or directory made.
/// </summary>
public sealed class CommandLineTests
{
    [Theory]
    [InlineData("'a b' is not a group name", "--group", "a b")]
    [InlineData("'../x' is not a group name", "--group", "../x")]
    [InlineData("--merge-after expects a number of checkpoints, 1 or more, got '0'", "--group", "g", "--merge-after", "0")]
    [InlineData("--merge-after expects a number of checkpoints, 1 or more, got '-3'", "--group", "g", "--merge-after=-3")]
    [InlineData("--merge-after expects a number of checkpoints, 1 or more, got 'many'", "--group", "g", "--merge-after", "many")]
    [InlineData("--every expects an interval such as 30s, 5m, 1h or 7d (1ms to 365 days), got '0'", "--group", "g", "--every", "0")]
    [InlineData("--every expects an interval such as 30s, 5m, 1h or 7d (1ms to 365 days), got '-5s'", "--group", "g", "--every=-5s")]
    [InlineData("--every expects an interval such as 30s, 5m, 1h or 7d (1ms to 365 days), got 'NaN'", "--group", "g", "--every", "NaN")]
    [InlineData("--every expects an interval such as 30s, 5m, 1h or 7d (1ms to 365 days), got '9999999h'", "--group", "g", "--every", "9999999h")]
    [InlineData("--deadline expects an interval such as 30s, 5m, 1h or 7d (1ms to 365 days), got '0ms'", "--group", "g", "--deadline", "0ms")]
    [InlineData("--merge-above expects a size such as 512M or 2G, got '0'", "--group", "g", "--merge-above", "0")]
    [InlineData("--merge-above expects a size such as 512M or 2G, got '-1G'", "--group", "g", "--merge-above=-1G")]
    [InlineData("unknown compression 'gzip'", "--group", "g", "--compress", "gzip")]
    [InlineData("--images expects a directory", "--group", "g", "--images", "")]
    public void AnAmberRunWithAWrongValueStartsNothing(string message, params string[] options)
    {
        using var home = new GroupHome("cli-run");
        home.Amber(["run", .. options, "--", "/bin/true"]).ShouldBeUsageError(message);
        // Not even the coordinator's home was made: nothing was started before the refusal.
        Assert.False(Directory.Exists(home.Home.Home), $"{home.Home.Home} was made");
    }

    [Theory]
    [InlineData("0 is not a process id", "checkpoint", "0", "--images", "/tmp/amber-never")]
    [InlineData("0 is not a process id", "attach", "--group", "g", "0")]
    [InlineData("--pid-wait expects a number of seconds from 0 to 86400, got -1", "restore", "--images", "/tmp/amber-never", "--pid-wait=-1")]
    [InlineData("--pid-wait expects a number of seconds from 0 to 86400, got NaN", "restore", "--images", "/tmp/amber-never", "--pid-wait", "NaN")]
    [InlineData("'a/b' is not a group name", "ps", "--group", "a/b")]
    [InlineData("'x y' is not a group name", "checkpoint", "--group", "x y")]
    [InlineData("'x y' is not a group name", "images", "--group", "x y")]
    public void OtherCommandsRefuseWrongValuesAsUsageErrors(string message, params string[] args)
    {
        using var home = new GroupHome("cli-other");
        home.Amber(args).ShouldBeUsageError(message);
        Assert.False(Directory.Exists(home.Home.Home), $"{home.Home.Home} was made");
    }
}

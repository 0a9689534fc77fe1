using System.Globalization;
using Amber.Kernel.Proc;

namespace Amber.Integration.Tests.Infrastructure;

/// <summary>
/// A program running in a group, known by its PID and its own log (its parent is the coordinator,
/// not the test): ticks, PASS, and whether it runs, from the outside.
/// </summary>
public sealed class GroupMember(int pid, string log)
{
    public int Pid { get; } = pid;

    public string Log { get; } = log;

    public List<string> Lines()
    {
        string text = File.Exists(Log) ? File.ReadAllText(Log) : "";
        int end = text.LastIndexOf('\n');
        return end < 0 ? [] : [.. text[..end].Split('\n')];
    }

    public bool IsRunning => ProcFs.TryReadStatus(Pid, out var s) && s is not null && s.State is not ('Z' or 'X');

    public bool IsTraced => ProcFs.TryReadStatus(Pid, out var s) && s is not null && s.TracerPid != 0;

    public int LastTick() =>
        Lines().Where(l => l.StartsWith("tick ", StringComparison.Ordinal))
            .Select(l => int.Parse(l.Split(' ')[1], CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Last();

    /// <summary>Waits for <paramref name="more"/> ticks past the latest one now (a FAIL line fails the test).</summary>
    public void WaitForTicks(int more, TimeSpan? timeout = null)
    {
        int target = LastTick() + more;
        GroupHome.WaitUntil(() =>
        {
            var fail = Lines().FirstOrDefault(l => l.StartsWith("FAIL", StringComparison.Ordinal));
            Assert.True(fail is null, $"process {Pid} reported: {fail}");
            return LastTick() >= target;
        }, $"process {Pid} to reach tick {target} (log ends with: {string.Join(" | ", Lines().TakeLast(3))})", timeout);
    }

    /// <summary>
    /// Waits for <paramref name="more"/> tick lines after those logged now, whatever their numbers
    /// (a restore of an earlier checkpoint counts again from there); a FAIL line anywhere fails the test.
    /// </summary>
    public void WaitForNewTicks(int more)
    {
        int logged = Lines().Count;
        GroupHome.WaitUntil(() =>
        {
            var lines = Lines();
            var fail = lines.FirstOrDefault(l => l.StartsWith("FAIL", StringComparison.Ordinal));
            Assert.True(fail is null, $"process {Pid} reported: {fail}");
            return lines.Skip(logged).Count(l => l.StartsWith("tick ", StringComparison.Ordinal)) >= more;
        }, $"{more} more ticks from process {Pid} (log ends with: {string.Join(" | ", Lines().TakeLast(3))})");
    }

    public void WaitForLine(string line) =>
        GroupHome.WaitUntil(() => Lines().Contains(line), $"'{line}' from process {Pid} (log ends with: {string.Join(" | ", Lines().TakeLast(3))})");

    /// <summary>Waits for the program's final PASS and for it to end.</summary>
    public void WaitForPass()
    {
        GroupHome.WaitUntil(() =>
        {
            var last = Lines().LastOrDefault() ?? "";
            Assert.False(last.StartsWith("FAIL", StringComparison.Ordinal), $"process {Pid} reported: {last}");
            return last.StartsWith("PASS", StringComparison.Ordinal);
        }, $"PASS from process {Pid} (log ends with: {string.Join(" | ", Lines().TakeLast(3))})");
        GroupHome.WaitUntil(() => !IsRunning, $"process {Pid} to end after PASS");
    }
}

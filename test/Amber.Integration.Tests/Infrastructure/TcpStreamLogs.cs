using System.Globalization;

namespace Amber.Integration.Tests.Infrastructure;

/// <summary>What tcpstream (test/TestTargets/tcpstream.c) says in its work directory: server.log and client.log.</summary>
public static class TcpStreamLogs
{
    /// <summary>What the server has received so far (its tick lines: "tick N sent S received R").</summary>
    public static long Received(TestDir work) =>
        File.Exists(work["server.log"])
            ? File.ReadAllLines(work["server.log"]).Where(l => l.StartsWith("tick ", StringComparison.Ordinal) && l.Split(' ').Length >= 6)
                .Select(l => long.Parse(l.Split(' ')[5], CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Max()
            : 0;

    /// <summary>Waits (20 s at most) until the server has received <paramref name="bytes"/>; a FAIL of either end fails at once.</summary>
    public static void WaitForReceived(TestDir work, long bytes) =>
        GroupHome.WaitUntil(() =>
        {
            foreach (string log in new[] { "server.log", "client.log" })
            {
                var fail = File.Exists(work[log]) ? File.ReadAllLines(work[log]).FirstOrDefault(l => l.StartsWith("FAIL", StringComparison.Ordinal)) : null;
                Assert.True(fail is null, $"tcpstream in {work.Path}, {log}: {fail}");
            }
            return Received(work) >= bytes;
        }, $"tcpstream in {work.Path} to have received {bytes} bytes (has {Received(work)})", TimeSpan.FromSeconds(20));

    public static string LastLine(string path) => File.Exists(path) && File.ReadAllLines(path) is [.., var last] ? last : "";
}

using System.Globalization;
using System.Net;
using Amber.Kernel.Net;
using Amber.Kernel.Processes;

namespace Amber.Integration.Tests;

/// <summary>
/// The announcement a group's addresses get where they come back (another node after a migration, or
/// the source again after one that failed): a neighbour whose cache holds another MAC for the address
/// holds the announcing interface's afterwards, IPv4 (gratuitous ARP) and IPv6 (unsolicited neighbour
/// advertisement). Two network namespaces of the test's, joined by a veth pair.
/// </summary>
public sealed class NeighbourAnnouncementTests
{
    private const string Mac = "02:a1:b2:c3:d4:05";
    private const string OldMac = "02:00:00:00:00:99";

    [Fact]
    public void ANeighbourCachingAnotherMacForTheAddressesLearnsTheAnnouncingOne()
    {
        using var dir = new TestDir("announce");
        using var announcer = Holder(dir, "announcer.log");
        using var neighbour = Holder(dir, "neighbour.log");
        int subnet = Random.Shared.Next(0, 250);
        string v4 = $"10.216.{subnet}.5", v6 = $"fd00:216:{subnet}::5";
        string a = announcer.Pid.ToString(CultureInfo.InvariantCulture), n = neighbour.Pid.ToString(CultureInfo.InvariantCulture);
        ExternalProgram.Run("/usr/bin/nsenter", "-t", a, "-n", "ip", "link", "add", "eth0", "address", Mac, "type", "veth", "peer", "name", "eth0", "netns", n).ShouldSucceed();
        In(a, "ip", "address", "add", $"{v4}/24", "dev", "eth0");
        In(a, "ip", "address", "add", $"{v6}/64", "dev", "eth0", "nodad");
        In(a, "ip", "link", "set", "eth0", "up");
        In(n, "ip", "address", "add", $"10.216.{subnet}.9/24", "dev", "eth0");
        In(n, "ip", "address", "add", $"fd00:216:{subnet}::9/64", "dev", "eth0", "nodad");
        In(n, "ip", "link", "set", "eth0", "up");
        In(n, "ip", "neigh", "replace", v4, "lladdr", OldMac, "dev", "eth0", "nud", "stale");
        In(n, "ip", "-6", "neigh", "replace", v6, "lladdr", OldMac, "dev", "eth0", "nud", "stale");
        Assert.Contains(OldMac, In(n, "ip", "neigh", "show", v4));
        Thread.Sleep(1100); // an entry changed within locktime (1 s) is not overridden by an ARP

        int sent = 0;
        var thread = new Thread(() =>
        {
            Namespaces.Enter(announcer.Pid, NamespaceKind.Net);
            sent = NeighbourAnnouncement.Announce("eth0", Mac, [IPAddress.Parse(v4), IPAddress.Parse(v6), IPAddress.Parse("fe80::1")]);
        });
        thread.Start();
        thread.Join();
        Assert.Equal(2, sent); // a link-local address is never announced

        GroupHome.WaitUntil(() => In(n, "ip", "neigh", "show", v4).Contains(Mac, StringComparison.Ordinal), $"the IPv4 entry to change (it is: {In(n, "ip", "neigh", "show", v4)})");
        GroupHome.WaitUntil(() => In(n, "ip", "-6", "neigh", "show", v6).Contains(Mac, StringComparison.Ordinal), $"the IPv6 entry to change (it is: {In(n, "ip", "-6", "neigh", "show", v6)})");
    }

    [Fact]
    public void AnInterfaceThatIsNotThereIsSaidByName()
    {
        var e = Assert.Throws<Amber.Kernel.KernelCallException>(() => NeighbourAnnouncement.Announce("nosuch0", Mac, [IPAddress.Parse("10.216.0.5")]));
        Assert.Contains("interface nosuch0", e.Message);
    }

    private static TargetProcess Holder(TestDir dir, string log)
    {
        var holder = TargetProcess.Start("/usr/bin/unshare", ["--net", "--", "/bin/sh", "-c", "ip link set lo up && echo READY && exec sleep 1000"], dir.Path, logName: log);
        holder.WaitForLine(l => l == "READY", "READY");
        return holder;
    }

    private static string In(string pid, params string[] command) =>
        ExternalProgram.Run("/usr/bin/nsenter", ["-t", pid, "-n", .. command]).ShouldSucceed().Stdout;
}

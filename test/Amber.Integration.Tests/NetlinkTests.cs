namespace Amber.Integration.Tests;

/// <summary>A program's own netlink sockets: port id, groups, options, and that they still talk to the kernel.</summary>
public sealed class NetlinkTests
{
    /// <summary>
    /// A route socket bound (its port id given by the kernel at the first send) to group 29 by its
    /// address and to group 34 by NETLINK_ADD_MEMBERSHIP (groups quiet here: no event waits at a
    /// checkpoint), with extended acks; a second one never used. Every tick the program checks both
    /// sockets' names, groups and options and asks the kernel for its links over the first (a dump,
    /// read to its end, its sequence number checked).
    /// </summary>
    [Fact]
    public void RouteSocketsKeepTheirPortGroupsAndOptionsAndStillTalkToTheKernel()
    {
        using var dir = new TestDir("netlink");
        File.WriteAllText(dir["nl.py"], """
            import os, socket, struct, sys, time
            def fail(what):
                print('FAIL ' + what, flush=True)
                sys.exit(1)
            SOL_NETLINK, ADD_MEMBERSHIP, LIST_MEMBERSHIPS, EXT_ACK = 270, 1, 9, 11
            s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            s.bind((0, 1 << 28))
            s.setsockopt(SOL_NETLINK, ADD_MEMBERSHIP, 34)
            s.setsockopt(SOL_NETLINK, EXT_ACK, 1)
            idle = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            def links(seq):
                # RTM_GETLINK (18), NLM_F_REQUEST | NLM_F_DUMP, an ifinfomsg of zeros.
                s.send(struct.pack('=IHHII', 32, 18, 1 | 0x300, seq, 0) + bytes(16))
                names = 0
                while True:
                    data = s.recv(65536)
                    at = 0
                    while at < len(data):
                        length, kind, flags, got, port = struct.unpack_from('=IHHII', data, at)
                        if got != seq: fail('answer to %d, expected %d' % (got, seq))
                        if kind == 3: return names  # NLMSG_DONE
                        if kind == 2: fail('the kernel answered an error')
                        names += 1
                        at += (length + 3) & ~3
            def state():
                return (s.getsockname(), s.getsockopt(SOL_NETLINK, LIST_MEMBERSHIPS, 16), s.getsockopt(SOL_NETLINK, EXT_ACK), idle.getsockname())
            links(1)
            before = state()
            if before[0][0] == 0 or before[3] != (0, 0): fail('names %r' % (before,))
            print('READY', flush=True)
            n = 0
            while not os.path.exists(sys.argv[1] + '/stop'):
                n += 1
                if state() != before: fail('state %r, expected %r' % (state(), before))
                if links(n + 1) < 1: fail('no link in the dump')
                print('tick %d' % n, flush=True)
                time.sleep(0.02)
            print('PASS %d' % n, flush=True)
            """);
        using var target = TargetProcess.Start("/usr/bin/python3", [dir["nl.py"], dir.Path], dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(60));
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            var shown = AmberCli.Run("inspect", dir[$"img{cycle}"]).ShouldSucceed().Stdout;
            Assert.Matches(@"netlink protocol 0, port [1-9]\d*, groups \[29 34\]", shown);
            Assert.Matches(@"netlink protocol 0, port 0, groups \[\]", shown);
            target.WaitForTicks(3);
        }
        target.StopAndVerify();
    }
}

using Amber.Kernel.Proc;

namespace Amber.Integration.Tests;

/// <summary>
/// Established TCP connections (TCP_REPAIR): tcpstream's two ends stream self-checking bytes both ways
/// as fast as they can, with both ends' send and receive queues mostly full; every byte is checked by
/// its offset, and a reset, EPIPE or early end of file is a FAIL.
/// </summary>
public sealed class TcpTests
{
    [Theory]
    [InlineData("")]
    [InlineData("--v6")]
    [InlineData("--mapped")]
    public void AConnectionBetweenTwoProcessesOfATreeSurvivesTwoCycles(string family)
    {
        using var dir = new TestDir("tcpstream");
        string[] args = family.Length == 0 ? ["both", dir.Path] : ["both", dir.Path, family];
        using var target = TargetProcess.Start(TargetBinaries.Get("tcpstream"), args, dir.Path, logName: "server.log");
        target.WaitForLine(l => l.StartsWith("CONN", StringComparison.Ordinal), "CONN");
        target.WaitForTicks(10);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            long restored = Received(target.Lines());
            target.WaitForLine(l => ReceivedOf(l) > restored + (1 << 20), "a MiB more received after the restore", TimeSpan.FromSeconds(15));
        }
        target.StopAndVerify();
        var client = File.ReadAllLines(dir["client.log"]);
        Assert.True(client.Length > 0 && client[^1].StartsWith("PASS", StringComparison.Ordinal), $"the client did not end with PASS: {string.Join(" | ", client.TakeLast(5))}");
    }

    [Fact]
    public void ACheckpointThatLetsTheProgramRunOnLeavesItsConnectionWorkingAndRestoresLater()
    {
        using var dir = new TestDir("tcpleave");
        using var target = TargetProcess.Start(TargetBinaries.Get("tcpstream"), ["both", dir.Path], dir.Path, logName: "server.log");
        target.WaitForLine(l => l.StartsWith("CONN", StringComparison.Ordinal), "CONN");
        target.WaitForTicks(10);
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"], "--leave-running").ShouldSucceed();
        // Out of repair mode and streaming on: nothing was sent while it was read, nothing lost since.
        long before = Received(target.Lines());
        target.WaitForLine(l => ReceivedOf(l) > before + (1 << 20), "a MiB more received after the checkpoint", TimeSpan.FromSeconds(15));
        var inspect = AmberCli.Run("inspect", dir["img"]).ShouldSucceed();
        Assert.Contains("TCP 127.0.0.1:", inspect.Stdout);
        Assert.Contains("Established", inspect.Stdout);
        // The moment saved comes back, the pair in step with each other.
        var tree = target.Tree();
        // Stopped first: one end killed before the other would see a reset and exit on its own.
        foreach (int pid in tree)
            Amber.Kernel.Processes.Spawner.Kill(pid, 19);
        foreach (int pid in tree.AsEnumerable().Reverse())
            Amber.Kernel.Processes.Spawner.Kill(pid, 9);
        target.ReapKilled(tree.Skip(1).ToList());
        AmberCli.Run("restore", "--images", dir["img"], "--detach").ShouldSucceed();
        target.Restored();
        target.WaitForTicks(10);
        target.StopAndVerify();
        var client = File.ReadAllLines(dir["client.log"]);
        Assert.True(client.Length > 0 && client[^1].StartsWith("PASS", StringComparison.Ordinal), $"the client did not end with PASS: {string.Join(" | ", client.TakeLast(5))}");
    }

    /// <summary>
    /// A connection between two trees of a group, over loopback: saved at the group's one barrier and
    /// restored with it, carried by an incremental checkpoint, and brought back by the coordinator's
    /// HA restore when a member dies (both ends roll back to the same cut, in step with each other).
    /// </summary>
    [Theory]
    [InlineData("")]
    [InlineData("--v6")]
    public void AConnectionBetweenTwoTreesOfAGroupComesBackWithTheGroupIncrementallyAndThroughHa(string family)
    {
        using var home = new GroupHome("tcp-group");
        string wd = home.Dir.Path;
        string tcpstream = TargetBinaries.Get("tcpstream");
        string[] Command(string role) => family.Length == 0 ? [tcpstream, role, wd] : [tcpstream, role, wd, family];
        var server = new GroupMember(home.Run("tcp", ["--restart-on-failure"], Command("server")), Path.Combine(wd, "server.log"));
        server.WaitForLine("READY");
        var client = new GroupMember(home.Run("tcp", [], Command("client")), Path.Combine(wd, "client.log"));
        client.WaitForTicks(10);
        home.Amber("checkpoint", "--group", "tcp", "--stop").ShouldSucceed();
        GroupHome.WaitUntil(() => !server.IsRunning && !client.IsRunning, "the group to end after checkpoint --stop");
        home.Amber("restore", "--group", "tcp").ShouldSucceed();
        client.WaitForTicks(20);
        server.WaitForTicks(10);
        // The next checkpoint of the group is incremental; it lets the group run on.
        var incremental = home.Amber("checkpoint", "--group", "tcp").ShouldSucceed();
        Assert.Contains("incremental", incremental.Stdout + incremental.Stderr);
        client.WaitForTicks(10);
        var marks = (Server: server.Lines().Count, Client: client.Lines().Count);
        Amber.Kernel.Processes.Spawner.Kill(client.Pid, 9);
        GroupHome.WaitUntil(() => home.Table("tcp").Header.Restarts == 1 && server.IsRunning && client.IsRunning, "the group to be restarted", TimeSpan.FromSeconds(60));
        WaitForTicksAfterTheRollback(client, marks.Client, 20);
        WaitForTicksAfterTheRollback(server, marks.Server, 10);
        File.WriteAllText(Path.Combine(wd, "stop"), "");
        client.WaitForPass();
        server.WaitForPass();
    }

    /// <summary>
    /// One end checkpointed, the other a program that is not: while the saved end is gone, the network
    /// lock drops the peer's retransmissions (no reset); after the restore the stream goes on, every
    /// byte checked by both ends.
    /// </summary>
    [Theory]
    [InlineData("server", "")]
    [InlineData("server", "--v6")]
    [InlineData("client", "--mapped")]
    public void AConnectionWhosePeerIsOutsideComesBackAndThePeerSeesOnlyAPause(string saved, string family)
    {
        using var dir = new TestDir("tcppeer");
        using var pair = Pair.Start(dir, family);
        var (server, client, port) = pair;
        var (target, peer) = saved == "server" ? (server, client) : (client, server);
        target.WaitForLine(l => l.StartsWith("CONN", StringComparison.Ordinal), "CONN");
        target.WaitForTicks(10);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            string images = dir[$"img{cycle}"];
            AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", images).ShouldSucceed();
            target.ReapKilled();
            // The peer's packets are dropped until the restore: it waits, its retransmissions unanswered.
            var held = NetworkLocks.Of(port);
            Assert.True(held.Count == 1 && held[0].Checkpoint == images, $"cycle {cycle}: the connection is not held by one lock parked for {images}: {NetworkLocks.Describe(held)}");
            Thread.Sleep(1500);
            Assert.True(peer.IsRunning, $"cycle {cycle}: the peer ended while its connection was locked: {string.Join(" | ", peer.Lines().TakeLast(3))}");
            long before = Received(peer.Lines());
            AmberCli.Run("restore", "--images", images, "--detach").ShouldSucceed();
            target.Restored();
            Assert.True(NetworkLocks.Of(port).Count == 0, $"cycle {cycle}: the lock outlived the restore: {NetworkLocks.Describe(NetworkLocks.Of(port))}");
            peer.WaitForLine(l => ReceivedOf(l) > before + (1 << 20), "a MiB more received by the peer after the restore", TimeSpan.FromSeconds(20));
        }
        File.WriteAllText(dir["stop"], "");
        target.FinishAndVerify();
        peer.FinishAndVerify();
    }

    /// <summary>
    /// A checkpoint that fails after the connections were locked and read leaves the program and its
    /// connection working, and no lock.
    /// </summary>
    [Fact]
    public void AFailedCheckpointLeavesTheConnectionWorkingAndNoLock()
    {
        using var dir = new TestDir("tcpfail");
        using var pair = Pair.Start(dir);
        var (server, client, port) = pair;
        AmberCli.Run(["checkpoint", server.Pid.ToString(), "--images", dir["img"]], env: new Dictionary<string, string> { ["AMBER_FAULT"] = "BeforeCommit" })
            .ShouldFail("injected fault at BeforeCommit");
        Assert.True(server.IsRunning && !server.IsTraced);
        Assert.Empty(NetworkLocks.Of(port));
        long before = Received(client.Lines());
        client.WaitForLine(l => ReceivedOf(l) > before + (1 << 20), "a MiB more received after the failed checkpoint", TimeSpan.FromSeconds(20));
        File.WriteAllText(dir["stop"], "");
        server.FinishAndVerify();
        client.FinishAndVerify();
    }

    /// <summary>
    /// amber killed (SIGKILL) while the lock is held. A checkpoint's worker, which the kill does not
    /// reach, finishes on its own: killed once the connections are read, it resumes the program and
    /// lifts the lock; killed after it was told to end the program, it ends it and leaves the lock to
    /// the checkpoint, whose restore lifts it. A restore killed after every process runs leaves a lock
    /// whose holder is gone: the program pauses until the next amber command (amber check here) finds
    /// the lock stale and removes it. Every byte of the stream is checked throughout.
    /// </summary>
    [Theory]
    [InlineData("checkpoint", "AfterNetworkLock")]
    [InlineData("checkpoint", "BeforeEnd")]
    [InlineData("restore", "RestoreBeforeUnlock")]
    public void AmberKilledWhileTheLockIsHeldNeverLeavesTheConnectionLocked(string verb, string point)
    {
        using var dir = new TestDir("tcpkill");
        using var pair = Pair.Start(dir);
        var (server, client, port) = pair;
        var fault = new Dictionary<string, string> { ["AMBER_FAULT"] = $"{point}:sleep=3000" };
        if (verb == "restore")
        {
            AmberCli.Run("checkpoint", server.Pid.ToString(), "--images", dir["img"]).ShouldSucceed();
            server.ReapKilled();
        }
        string images = verb == "checkpoint" ? dir["img2"] : dir["img"];
        var amber = verb == "checkpoint"
            ? AmberCli.Start(["checkpoint", server.Pid.ToString(), "--images", images], env: fault)
            : AmberCli.Start(["restore", "--images", images, "--detach"], env: fault);
        // At the fault point: the lock is there (parked already, before the end).
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (NetworkLocks.Of(port).Count == 0 || (point == "BeforeEnd" && NetworkLocks.Of(port)[0].Checkpoint is null)
            || (point == "RestoreBeforeUnlock" && !(server.IsRunning && !server.IsTraced)))
        {
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"amber did not reach {point}: {NetworkLocks.Describe(NetworkLocks.Of(port))}; amber: {amber.Wait().Stderr}");
            Thread.Sleep(10);
        }
        Thread.Sleep(300);
        Amber.Kernel.Processes.Spawner.Kill(amber.Pid, 9);
        amber.Wait();
        AmberWorkers.WaitUntilDone(images, $"amber killed at {point}");
        switch (point)
        {
            case "AfterNetworkLock":
                Assert.True(server.IsRunning && !server.IsTraced, "the server was not resumed");
                Assert.Empty(NetworkLocks.Of(port));
                break;
            case "BeforeEnd":
                server.ReapKilled();
                Assert.True(NetworkLocks.Of(port) is [{ Checkpoint: not null }], $"the ended server's connection is not held for its checkpoint: {NetworkLocks.Describe(NetworkLocks.Of(port))}");
                AmberCli.Run("restore", "--images", images, "--detach").ShouldSucceed();
                server.Restored();
                Assert.Empty(NetworkLocks.Of(port));
                break;
            default:
                server.Restored();
                // Its holder gone, nothing lifted it: the next amber command removes it (amber check here,
                // unless an amber of a test running beside this one came first).
                AmberCli.Run("check");
                Assert.Empty(NetworkLocks.Of(port));
                break;
        }
        long before = Received(client.Lines());
        client.WaitForLine(l => ReceivedOf(l) > before + (1 << 20), "a MiB more received by the client", TimeSpan.FromSeconds(30));
        File.WriteAllText(dir["stop"], "");
        server.FinishAndVerify();
        client.FinishAndVerify();
    }

    /// <summary>
    /// amber restore --tcp-close, for peers known to be gone: the connection comes back aborted (the
    /// program's next use fails with ECONNABORTED), and the lock its checkpoint left is lifted.
    /// </summary>
    [Fact]
    public void RestoreWithTcpCloseAbortsTheConnectionsAndLiftsTheLock()
    {
        using var dir = new TestDir("tcpclose");
        using var pair = Pair.Start(dir);
        var (server, client, port) = pair;
        AmberCli.Run("checkpoint", server.Pid.ToString(), "--images", dir["img"]).ShouldSucceed();
        server.ReapKilled();
        client.Dispose(); // the peer is gone
        Assert.NotEmpty(NetworkLocks.Of(port));
        AmberCli.Run("restore", "--images", dir["img"], "--detach", "--tcp-close").ShouldSucceed();
        server.Restored();
        Assert.Empty(NetworkLocks.Of(port));
        var status = Exited.Wait(server.Pid, TimeSpan.FromSeconds(30), "the restored server");
        server.MarkEnded();
        Assert.True(status.Exited && status.ExitCode == 1, $"the server ended with {status}");
        // Its next read or write says ECONNABORTED (the socket's error); a tick's getpeername that
        // comes first finds the aborted socket closed (ENOTCONN): which one depends on the scheduler.
        Assert.True(server.Lines()[^1] is var last && last.StartsWith("FAIL", StringComparison.Ordinal)
            && (last.Contains("Software caused connection abort", StringComparison.Ordinal) || last == "FAIL getpeername: Transport endpoint is not connected"),
            $"the restored server did not fail with ECONNABORTED: {server.Lines()[^1]}");
    }

    /// <summary>
    /// A connection can only come back where its address is: a restore on a machine without it fails
    /// before anything is made, naming the address (here the address is removed from a network
    /// namespace the test made), and succeeds once the address is back.
    /// </summary>
    [Fact]
    public void ARestoreWhereTheConnectionsAddressIsMissingFailsNamingIt()
    {
        using var dir = new TestDir("tcpaddr");
        string ns = $"amber-tcpaddr-{Environment.ProcessId}";
        const string Address = "10.77.0.1";
        void Ip(params string[] args) => ExternalProgram.Run("/usr/sbin/ip", args).ShouldSucceed();
        // nsenter enters the network namespace only (ip netns exec would give a mount namespace of its own too).
        AmberRun InNamespace(params string[] args) => ExternalProgram.Run("/usr/bin/nsenter", [$"--net=/run/netns/{ns}", Repo.Amber, .. args]);
        Ip("netns", "add", ns);
        try
        {
            Ip("-n", ns, "link", "set", "lo", "up");
            Ip("-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1");
            Ip("-n", ns, "link", "set", "d0", "up");
            Ip("-n", ns, "link", "set", "d1", "up");
            Ip("-n", ns, "addr", "add", $"{Address}/32", "dev", "d0");
            using var target = TargetProcess.Start("/usr/bin/nsenter", [$"--net=/run/netns/{ns}", "/usr/bin/python3", "-c",
                $"import socket,time\nl=socket.socket(); l.bind(('{Address}',0)); l.listen(1)\nc=socket.create_connection(l.getsockname()); s,_=l.accept(); l.close()\n"
                + "print('READY', flush=True)\nn=0\nwhile True:\n  n+=1; c.sendall(n.to_bytes(4,'big')); d=s.recv(4)\n  if int.from_bytes(d,'big')!=n: print('FAIL', n, d, flush=True); break\n  print('tick', n, flush=True); time.sleep(0.02)"], dir.Path);
            target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(30));
            target.WaitForTicks(5);
            InNamespace("checkpoint", target.Pid.ToString(), "--images", dir["img"]).ShouldSucceed();
            target.ReapKilled();
            Ip("-n", ns, "addr", "del", $"{Address}/32", "dev", "d0");
            var refused = InNamespace("restore", "--images", dir["img"], "--detach");
            Assert.NotEqual(0, refused.ExitCode);
            Assert.Contains($"a TCP connection made on {Address}, an address this machine does not have", refused.Stderr);
            Assert.False(ProcFs.Exists(target.Pid), "a process was made by a restore that failed");
            Ip("-n", ns, "addr", "add", $"{Address}/32", "dev", "d0");
            InNamespace("restore", "--images", dir["img"], "--detach").ShouldSucceed();
            target.Restored();
            target.WaitForTicks(10);
        }
        finally
        {
            ExternalProgram.Run("/usr/sbin/ip", "netns", "del", ns);
        }
    }

    /// <summary>
    /// The options a connection was given come back: SO_LINGER, TCP_CONGESTION, TCP_NODELAY, TCP_CORK,
    /// keepalive and its three parameters, TCP_USER_TIMEOUT, IP_TOS, SO_MARK and O_NONBLOCK, each end
    /// checked by the program itself every tick against what it set.
    /// </summary>
    [Fact]
    public void AConnectionsOptionsComeBackAsTheProgramSetThem()
    {
        using var dir = new TestDir("tcpopts");
        const string Program = """
            import socket, time, fcntl, os, struct, select
            l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)
            c = socket.create_connection(l.getsockname()); s, _ = l.accept(); l.close()
            S, T = socket.SOL_SOCKET, socket.IPPROTO_TCP
            c.setsockopt(S, socket.SO_LINGER, struct.pack('ii', 1, 7))
            c.setsockopt(T, socket.TCP_CONGESTION, b'reno')
            c.setsockopt(T, socket.TCP_NODELAY, 1)
            s.setsockopt(T, socket.TCP_CORK, 1)
            s.setsockopt(S, socket.SO_KEEPALIVE, 1)
            s.setsockopt(T, socket.TCP_KEEPIDLE, 33); s.setsockopt(T, socket.TCP_KEEPINTVL, 7); s.setsockopt(T, socket.TCP_KEEPCNT, 5)
            s.setsockopt(T, socket.TCP_USER_TIMEOUT, 45000)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x28)
            s.setsockopt(S, socket.SO_MARK, 77)
            s.setblocking(False)
            def options():
                return (c.getsockopt(S, socket.SO_LINGER, 8), c.getsockopt(T, socket.TCP_CONGESTION, 16).rstrip(b'\0'),
                        c.getsockopt(T, socket.TCP_NODELAY), s.getsockopt(T, socket.TCP_CORK), s.getsockopt(S, socket.SO_KEEPALIVE),
                        s.getsockopt(T, socket.TCP_KEEPIDLE), s.getsockopt(T, socket.TCP_KEEPINTVL), s.getsockopt(T, socket.TCP_KEEPCNT),
                        s.getsockopt(T, socket.TCP_USER_TIMEOUT), s.getsockopt(socket.IPPROTO_IP, socket.IP_TOS), s.getsockopt(S, socket.SO_MARK),
                        fcntl.fcntl(s, fcntl.F_GETFL) & os.O_NONBLOCK, fcntl.fcntl(c, fcntl.F_GETFL) & os.O_NONBLOCK)
            reference = options()
            print('OPTS', reference, flush=True)
            print('READY', flush=True)
            n = 0
            while True:
                n += 1
                if options() != reference:
                    print('FAIL options', options(), 'expected', reference, flush=True); break
                c.sendall(n.to_bytes(4, 'big'))
                got = b''
                while len(got) < 4 and select.select([s], [], [], 10)[0]:
                    got += s.recv(4 - len(got))
                time.sleep(0.02)
                if int.from_bytes(got, 'big') != n:
                    print('FAIL stream at', n, flush=True); break
                print('tick', n, flush=True)
                if os.path.exists('stop'):
                    print('PASS', n, flush=True); break
            """;
        using var target = TargetProcess.Start("/usr/bin/python3", ["-c", Program], dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(30));
        Assert.Contains("(b'\\x01\\x00\\x00\\x00\\x07\\x00\\x00\\x00', b'reno', 1, 1, 1, 33, 7, 5, 45000, 40, 77, 2048, 0)", target.Lines().First(l => l.StartsWith("OPTS", StringComparison.Ordinal)));
        target.WaitForTicks(3);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(5);
        }
        target.StopAndVerify();
    }

    /// <summary>
    /// A half-closed connection (the client shut its side down: FIN_WAIT2 and CLOSE_WAIT), with bytes
    /// unread each way, comes back half-closed through two cycles: the server still reads the bytes
    /// before the end of file, then answers on its open side, and the client reads the answer.
    /// </summary>
    [Fact]
    public void AHalfClosedConnectionComesBackHalfClosed()
    {
        using var dir = new TestDir("tcphalf");
        const string Program = """
            import socket, time, os, select
            def state(sock): return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
            l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)
            c = socket.create_connection(l.getsockname()); s, _ = l.accept(); l.close()
            c.sendall(b'question' * 1000); s.sendall(b'early' * 500)
            c.shutdown(socket.SHUT_WR)
            time.sleep(0.1)
            print('STATES', state(c), state(s), flush=True)
            print('READY', flush=True)
            n = 0
            while not os.path.exists('stop'):
                n += 1; time.sleep(0.02); print('tick', n, flush=True)
            if (state(c), state(s)) != (5, 8):
                print('FAIL states', state(c), state(s), flush=True); raise SystemExit(1)
            got = b''
            while True:
                select.select([s], [], [], 5); d = s.recv(65536)
                if not d: break
                got += d
            if got != b'question' * 1000:
                print('FAIL the server read', len(got), 'bytes', flush=True); raise SystemExit(1)
            s.sendall(b'answer' * 300); s.close()
            back = b''
            while True:
                select.select([c], [], [], 5); d = c.recv(65536)
                if not d: break
                back += d
            if back != b'early' * 500 + b'answer' * 300:
                print('FAIL the client read', len(back), 'bytes', flush=True); raise SystemExit(1)
            print('PASS', n, flush=True)
            """;
        using var target = TargetProcess.Start("/usr/bin/python3", ["-c", Program], dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(30));
        Assert.Contains("STATES 5 8", target.Lines()); // FIN_WAIT2 and CLOSE_WAIT
        target.WaitForTicks(3);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(5);
        }
        Assert.Contains("FinWait2", AmberCli.Run("inspect", dir["img2"]).ShouldSucceed().Stdout);
        target.StopAndVerify();
    }

    /// <summary>
    /// A client that connects while the server is frozen for a checkpoint is not lost: the lock keeps
    /// its SYN from the listening port (no connection completes into an accept queue the checkpoint
    /// has already read), and its SYN sent again after the freeze reaches the server running on.
    /// </summary>
    [Fact]
    public void AClientConnectingDuringTheFreezeIsHeldOffAndServedAfter()
    {
        using var dir = new TestDir("tcplisten");
        using var target = TargetProcess.Start("/usr/bin/python3", ["-c",
            "import socket\nl=socket.socket(); l.bind(('127.0.0.1',0)); l.listen(8)\nprint('PORT', l.getsockname()[1], flush=True)\n"
            + "while True:\n  c,_=l.accept(); d=c.recv(100); c.sendall(b'echo '+d); c.close(); print('served', d.decode(), flush=True)"], dir.Path);
        int port = int.Parse(target.WaitForLine(l => l.StartsWith("PORT ", StringComparison.Ordinal), "PORT")[5..], System.Globalization.CultureInfo.InvariantCulture);
        var amber = AmberCli.Start(["checkpoint", target.Pid.ToString(), "--images", dir["img"], "--leave-running"],
            // Held long enough that a loaded machine still sees the lock and connects well before it goes
            // (with 1.5 s, the full suite once saw it just before it went, and connected after).
            env: new Dictionary<string, string> { ["AMBER_FAULT"] = "AfterNetworkLock:sleep=5000" });
        // The record is written before the table is made: wait for the table.
        GroupHome.WaitUntil(() => NetworkLocks.Of(port) is [var held] && Amber.Kernel.Net.Nftables.Tables("inet").Contains(Amber.Checkpoint.Resources.Sockets.NetworkLock.TablePrefix + held.Id),
            "the listening port locked", TimeSpan.FromSeconds(30));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var client = new System.Net.Sockets.TcpClient();
        client.Connect(System.Net.IPAddress.Loopback, port); // SYN dropped until the lock goes, then sent again
        client.GetStream().Write("frozen"u8);
        var reply = new byte[64];
        int n = client.GetStream().Read(reply);
        Assert.Equal("echo frozen", System.Text.Encoding.ASCII.GetString(reply, 0, n));
        Assert.True(clock.ElapsedMilliseconds > 300, $"the connection completed in {clock.ElapsedMilliseconds} ms, while the listener was locked");
        amber.Wait().ShouldSucceed();
        Assert.Empty(NetworkLocks.Of(port));
        target.WaitForLine(l => l == "served frozen", "served frozen");
    }

    /// <summary>A connect() still in progress (SYN_SENT) cannot be made again: refused by name, the program left running.</summary>
    [Fact]
    public void AConnectStillInProgressIsRefusedNamingIt()
    {
        using var dir = new TestDir("tcpsyn");
        // A listener outside that never accepts, its backlog full after one connection: the next SYN goes unanswered.
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        listener.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        listener.Listen(0);
        int port = ((System.Net.IPEndPoint)listener.LocalEndPoint!).Port;
        using var target = TargetProcess.Start("/usr/bin/python3", ["-c",
            $"import socket,time\na=socket.create_connection(('127.0.0.1',{port}))\ntime.sleep(0.2)\nb=socket.socket(); b.setblocking(False)\nb.connect_ex(('127.0.0.1',{port}))\nprint('READY',flush=True)\nwhile True: time.sleep(0.05); print('tick',flush=True)"], dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(30));
        var run = AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"]).ShouldFail("SYN_SENT");
        Assert.Contains("a TCP connect() still in progress", run.Stderr);
        Assert.True(target.IsRunning && !target.IsTraced);
        Assert.Empty(NetworkLocks.Of(port));
    }

    /// <summary>
    /// Ticks logged after <paramref name="mark"/> and after the last FAIL there: a member may see its
    /// peer die (a reset) before the coordinator rolls the group back; what counts is that it carries
    /// on from the checkpoint (a FAIL after the rollback ends it, and no tick follows).
    /// </summary>
    private static void WaitForTicksAfterTheRollback(GroupMember member, int mark, int more) =>
        GroupHome.WaitUntil(() =>
        {
            var lines = member.Lines().Skip(mark).ToList();
            int lastFail = lines.FindLastIndex(l => l.StartsWith("FAIL", StringComparison.Ordinal));
            return lines.Skip(lastFail + 1).Count(l => l.StartsWith("tick ", StringComparison.Ordinal)) >= more;
        }, $"{more} ticks from process {member.Pid} after the rollback (log ends with: {string.Join(" | ", member.Lines().TakeLast(3))})", TimeSpan.FromSeconds(60));

    /// <summary>tcpstream's two ends as two processes, streaming (the server has made 10 ticks), and the server's port.</summary>
    private sealed record Pair(TargetProcess Server, TargetProcess Client, int Port) : IDisposable
    {
        public static Pair Start(TestDir dir, string family = "")
        {
            var server = StartEnd("server", dir, family);
            server.WaitForLine(l => l == "READY", "READY");
            var client = StartEnd("client", dir, family);
            server.WaitForTicks(10);
            return new Pair(server, client, int.Parse(File.ReadAllText(dir["port"]).Trim(), System.Globalization.CultureInfo.InvariantCulture));
        }

        public void Dispose()
        {
            Client.Dispose();
            Server.Dispose();
        }
    }

    private static TargetProcess StartEnd(string role, TestDir dir, string family) =>
        TargetProcess.Start(TargetBinaries.Get("tcpstream"), family.Length == 0 ? [role, dir.Path] : [role, dir.Path, family], dir.Path, logName: $"{role}.log");

    /// <summary>The bytes received as of the last "tick N sent S received R" line.</summary>
    private static long Received(List<string> lines) => lines.Select(ReceivedOf).DefaultIfEmpty(0).Max();

    private static long ReceivedOf(string line) =>
        line.StartsWith("tick ", StringComparison.Ordinal) && line.Split(' ') is { Length: >= 6 } p
            ? long.Parse(p[5], System.Globalization.CultureInfo.InvariantCulture) : 0;
}

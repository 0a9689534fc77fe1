using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Amber.Integration.Tests;

/// <summary>
/// Connections waiting in a listening socket's accept queue (handshake done, not accepted yet) across a
/// checkpoint: a server that does not accept until told to, clients that connected meanwhile — some
/// outside the checkpoint (this test), some the server's own children. After the restore (or a
/// checkpoint that lets it run on) the server accepts each, in the order they came, with the bytes the
/// client had sent and its FIN; every byte is checked by both ends and no client sees a reset.
/// </summary>
public sealed class AcceptQueueTests
{
    // The server: its children connect first (both ends in the checkpoint); it accepts once "go" exists,
    // then serves one connection at a time: reads to end of file, answers with the length and SHA-256 of
    // what it read and 100 000 bytes of a pattern, closes.
    private const string Server = """
        import hashlib, os, socket, sys, time
        v6, d, inside = sys.argv[1] == '6', sys.argv[2], int(sys.argv[3])
        host = '::1' if v6 else '127.0.0.1'
        def pattern(seed, n): return bytes((seed * 131 + i * 7 + (i >> 8)) % 251 for i in range(n))
        def answer(data): return ('ok %d %s\n' % (len(data), hashlib.sha256(data).hexdigest())).encode() + pattern(7, 100000)
        def read_all(c):
            data = b''
            while True:
                b = c.recv(65536)
                if not b: return data
                data += b
        l = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET); l.bind((host, 0)); l.listen(16)
        port = l.getsockname()[1]
        for k in range(inside):
            if os.fork() == 0:
                l.close()
                c = socket.create_connection((host, port)); data = pattern(100 + k, 3000); c.sendall(data); c.shutdown(socket.SHUT_WR)
                print('inside', k, 'ok' if read_all(c) == answer(data) else 'BAD', flush=True)
                os._exit(0)
        print('PORT', port, flush=True)
        while not os.path.exists(os.path.join(d, 'go')): time.sleep(0.02)
        while True:
            c, a = l.accept(); data = read_all(c); c.sendall(answer(data)); c.close()
            print('served', a[1], len(data), hashlib.sha256(data).hexdigest(), flush=True)
        """;

    /// <summary>What each client outside sends before the checkpoint, whether it then shuts down, and what it sends after.</summary>
    private static readonly (int Before, bool Closed, int After)[] Clients = [(0, false, 5000), (1000, false, 200_000), (50_000, true, 0)];

    [Theory]
    [InlineData(false, false, 0)]
    [InlineData(true, false, 0)]
    [InlineData(false, true, 0)]
    [InlineData(false, false, 2)]
    public void ConnectionsWaitingToBeAcceptedAreAcceptedAfterTheRestoreInOrder(bool v6, bool leaveRunning, int inside)
    {
        using var dir = new TestDir("acceptq");
        File.WriteAllText(dir["server.py"], Server);
        using var target = TargetProcess.Start("/usr/bin/python3", [dir["server.py"], v6 ? "6" : "4", dir.Path, inside.ToString(CultureInfo.InvariantCulture)], dir.Path);
        int port = int.Parse(target.WaitForLine(l => l.StartsWith("PORT ", StringComparison.Ordinal), "PORT")[5..], CultureInfo.InvariantCulture);
        var clients = new List<(Socket Socket, byte[] Sent)>();
        try
        {
            var address = v6 ? IPAddress.IPv6Loopback : IPAddress.Loopback;
            for (int i = 0; i < Clients.Length; i++)
            {
                var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 60_000 };
                socket.Connect(address, port);
                var sent = Pattern(i, Clients[i].Before + Clients[i].After);
                socket.Send(sent.AsSpan(0, Clients[i].Before));
                if (Clients[i].Closed)
                    socket.Shutdown(SocketShutdown.Send);
                clients.Add((socket, sent));
            }
            WaitForAcceptQueue(port, Clients.Length + inside);
            Thread.Sleep(250); // the server's delayed acknowledgments go out

            string images = dir["img"];
            var children = target.Tree().Skip(1).ToList();
            AmberCli.Run(leaveRunning ? ["checkpoint", target.Pid.ToString(CultureInfo.InvariantCulture), "--images", images, "--leave-running"]
                : ["checkpoint", target.Pid.ToString(CultureInfo.InvariantCulture), "--images", images]).ShouldSucceed();
            var inspect = AmberCli.Run("inspect", images).ShouldSucceed();
            Assert.Equal(Clients.Length + inside, inspect.Stdout.Split('\n').Count(l => l.Contains("waiting to be accepted", StringComparison.Ordinal)));
            if (!leaveRunning)
            {
                target.ReapKilled(children);
                Thread.Sleep(500); // the clients' packets meet the lock meanwhile: retransmitted, never reset
                AmberCli.Run("restore", "--images", images, "--detach").ShouldSucceed();
                target.Restored();
            }
            Assert.Empty(NetworkLocks.Of(port));

            File.WriteAllText(dir["go"], "");
            for (int i = 0; i < Clients.Length; i++)
            {
                var (socket, sent) = clients[i];
                if (!Clients[i].Closed)
                {
                    socket.Send(sent.AsSpan(Clients[i].Before));
                    socket.Shutdown(SocketShutdown.Send);
                }
                Assert.Equal(Answer(sent), ReadToEnd(socket));
            }
            // Accepted in the order they connected, the outside ones each with exactly what it sent.
            GroupHome.WaitUntil(() => target.Lines().Count(l => l.StartsWith("served ", StringComparison.Ordinal)) == Clients.Length + inside,
                "every connection served", TimeSpan.FromSeconds(30));
            var served = target.Lines().Where(l => l.StartsWith("served ", StringComparison.Ordinal)).ToList();
            var outside = clients.Select(c => ((IPEndPoint)c.Socket.LocalEndPoint!).Port).ToList();
            var servedOutside = served.Select(l => l.Split(' ')).Where(f => outside.Contains(int.Parse(f[1], CultureInfo.InvariantCulture))).ToList();
            Assert.Equal(outside, servedOutside.Select(f => int.Parse(f[1], CultureInfo.InvariantCulture)));
            Assert.Equal(clients.Select(c => $"{c.Sent.Length} {Convert.ToHexStringLower(SHA256.HashData(c.Sent))}"), servedOutside.Select(f => $"{f[2]} {f[3]}"));
            for (int k = 0; k < inside; k++)
                target.WaitForLine(l => l == $"inside {k} ok", $"inside {k} ok");
            Assert.DoesNotContain(target.Lines(), l => l.Contains("BAD", StringComparison.Ordinal) || l.Contains("Error", StringComparison.Ordinal));
        }
        finally
        {
            foreach (var (socket, _) in clients)
                socket.Dispose();
        }
    }

    /// <summary>Waits until the listener on <paramref name="port"/> holds <paramref name="count"/> connections (ss: a listener's Recv-Q).</summary>
    private static void WaitForAcceptQueue(int port, int count)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var ss = ExternalProgram.Run("/usr/bin/ss", "-Htln", $"sport = :{port}");
            var fields = ss.Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length > 1 && int.Parse(fields[1], CultureInfo.InvariantCulture) == count)
                return;
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"the accept queue of port {port} did not come to {count}: {ss.Stdout}");
            Thread.Sleep(20);
        }
    }

    // The server's pattern(), in C#: what client i sends, and the end of every answer.
    private static byte[] Pattern(int seed, int count)
    {
        var bytes = new byte[count];
        for (int i = 0; i < count; i++)
            bytes[i] = (byte)((seed * 131 + i * 7 + (i >> 8)) % 251);
        return bytes;
    }

    private static byte[] Answer(byte[] sent) =>
        [.. Encoding.ASCII.GetBytes($"ok {sent.Length} {Convert.ToHexStringLower(SHA256.HashData(sent))}\n"), .. Pattern(7, 100_000)];

    private static byte[] ReadToEnd(Socket socket)
    {
        using var data = new MemoryStream();
        var buffer = new byte[65536];
        int n;
        while ((n = socket.Receive(buffer)) > 0)
            data.Write(buffer, 0, n);
        return data.ToArray();
    }
}


namespace Amber.Integration.Tests;

/// <summary>
/// redis-server from Debian, loaded by redis-benchmark, checkpointed, killed and restored: every key
/// and value back (the server's own digest of its dataset), and answering redis-benchmark again.
/// </summary>
public sealed class RedisTests
{
    [Fact]
    public void RedisKeepsItsDataAndServesAgain()
    {
        Assert.True(File.Exists("/usr/bin/redis-server"), "redis-server is not installed (apt-get install redis-server; .ci/run does it)");
        using var dir = new TestDir("redis");
        string port = Http.FreePort().ToString();
        using var redis = TargetProcess.Start("/usr/bin/redis-server",
            ["--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir.Path,
             "--enable-debug-command", "yes", "--daemonize", "no"], dir.Path);
        redis.WaitForLine(l => l.Contains("Ready to accept connections"), "'Ready to accept connections'");
        ExternalProgram.Run("/usr/bin/redis-benchmark", "-p", port, "-t", "set,lpush", "-n", "20000", "-r", "5000", "-d", "48", "-q").ShouldSucceed();
        string digest = Cli(port, "DEBUG", "DIGEST");
        string size = Cli(port, "DBSIZE");
        Assert.NotEqual("0", size);

        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointWhenIdle(redis, dir[$"img{cycle}"]);
            redis.ReapKilled();
            var restored = AmberCli.Run("restore", "--images", dir[$"img{cycle}"], "--detach").ShouldSucceed();
            Assert.Equal(redis.Pid.ToString(), restored.LastStdoutLine);
            Assert.Equal(size, Cli(port, "DBSIZE"));
            Assert.Equal(digest, Cli(port, "DEBUG", "DIGEST"));
            ExternalProgram.Run("/usr/bin/redis-benchmark", "-p", port, "-t", "get,set", "-n", "5000", "-r", "5000", "-d", "48", "-q").ShouldSucceed();
            digest = Cli(port, "DEBUG", "DIGEST");
            size = Cli(port, "DBSIZE");
        }
    }

    /// <summary>
    /// redis-server under load while checkpointed, ended and restored: a client that pipelines INCR on
    /// one connection the whole time, and redis-benchmark (its own four connections) in the middle of
    /// a test. The peers are not checkpointed: they only see a pause. Every INCR acknowledged is in
    /// the counter, each reply the previous one plus one; redis-benchmark ends without an error.
    /// </summary>
    [Fact]
    public void RedisUnderLoadKeepsItsClientsConnectionsAndEveryIncrement()
    {
        Assert.True(File.Exists("/usr/bin/redis-benchmark"), "redis-benchmark is not installed (apt-get install redis-tools)");
        using var dir = new TestDir("redisload");
        int port = Http.FreePort();
        using var redis = TargetProcess.Start("/usr/bin/redis-server",
            ["--port", port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir.Path, "--daemonize", "no"], dir.Path);
        redis.WaitForLine(l => l.Contains("Ready to accept connections"), "'Ready to accept connections'");
        using var client = new IncrClient(port, "amber:incr");
        // Bounded: 3 × 2,000,000 requests, some seconds per test; the checkpoint comes during GET.
        using var benchmark = TargetProcess.Start("/usr/bin/redis-benchmark",
            ["-h", "127.0.0.1", "-p", port.ToString(), "-n", "2000000", "-c", "4", "-P", "16", "-t", "set,get,incr", "-q"], dir.Path, logName: "benchmark.log");
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (!File.ReadAllText(benchmark.LogPath).Contains("GET: rps=", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline && benchmark.IsRunning, $"redis-benchmark did not reach its GET test: {File.ReadAllText(benchmark.LogPath)}");
            Thread.Sleep(10);
        }
        long before = client.Acknowledged;
        Assert.True(before > 0 && client.Failure is null, $"the INCR client did not work before the checkpoint: {client.Failure}");

        AmberCli.Run("checkpoint", redis.Pid.ToString(), "--images", dir["img"]).ShouldSucceed();
        redis.ReapKilled();
        NetworkLocks.AssertParked(port, dir["img"], atLeast: 5); // the INCR client's and redis-benchmark's four
        Thread.Sleep(1000);
        long paused = client.Acknowledged;
        Thread.Sleep(500);
        Assert.True(client.Acknowledged == paused && client.Failure is null, $"the client went on while redis was gone ({paused} → {client.Acknowledged}) or failed: {client.Failure}");
        Assert.True(benchmark.IsRunning, "redis-benchmark ended while redis was gone: " + File.ReadAllText(benchmark.LogPath));
        var restored = AmberCli.Run("restore", "--images", dir["img"], "--detach").ShouldSucceed();
        redis.Restored();
        Assert.Equal(redis.Pid.ToString(), restored.LastStdoutLine);
        NetworkLocks.AssertNoneHeld(port);

        // The same connection goes on: many more INCRs acknowledged, in sequence.
        deadline = DateTime.UtcNow.AddSeconds(60);
        while (client.Acknowledged < paused + 20_000)
        {
            Assert.True(client.Failure is null, $"the INCR client failed after the restore: {client.Failure}");
            Assert.True(DateTime.UtcNow < deadline, $"the INCR client did not go on after the restore: {client.Acknowledged} acknowledged, {paused} at the checkpoint");
            Thread.Sleep(10);
        }
        var status = Exited.Wait(benchmark.Pid, TimeSpan.FromSeconds(300), "redis-benchmark");
        benchmark.MarkEnded();
        string output = File.ReadAllText(benchmark.LogPath);
        Assert.True(status.Exited && status.ExitCode == 0, $"redis-benchmark ended with {status}: {output}");
        Assert.DoesNotContain("error", output, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("INCR: ", output.Replace("INCR: rps=", "", StringComparison.Ordinal), StringComparison.Ordinal); // its last test's summary

        long acknowledged = client.Stop();
        Assert.True(client.Failure is null, $"the INCR client failed: {client.Failure}");
        Assert.Equal(acknowledged.ToString(System.Globalization.CultureInfo.InvariantCulture), Cli(port.ToString(), "-h", "127.0.0.1", "GET", "amber:incr"));
        Assert.True(redis.IsRunning, "redis-server died");
    }

    /// <summary>
    /// One connection, never made again: INCR commands pipelined 32 at a time with 64 in flight, each
    /// reply checked to be the one before plus one (":N"), until stopped; an error, a reset or an end
    /// of file is its <see cref="Failure"/>.
    /// </summary>
    private sealed class IncrClient : IDisposable
    {
        private const int Batch = 32;
        private readonly System.Net.Sockets.Socket _socket;
        private readonly Thread _thread;
        private readonly string _key;
        private volatile bool _stop;
        private long _acknowledged;
        private volatile string? _failure;

        public IncrClient(int port, string key)
        {
            _key = key;
            _socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp)
            {
                ReceiveTimeout = 120_000, SendTimeout = 120_000, NoDelay = true,
            };
            _socket.Connect(System.Net.IPAddress.Loopback, port);
            _thread = new Thread(Run) { IsBackground = true, Name = "redis INCR client" };
            _thread.Start();
        }

        public long Acknowledged => Interlocked.Read(ref _acknowledged);

        public string? Failure => _failure;

        /// <summary>Stops sending, reads every reply still due, and returns the INCRs acknowledged.</summary>
        public long Stop()
        {
            _stop = true;
            Assert.True(_thread.Join(TimeSpan.FromSeconds(150)), "the INCR client did not finish");
            return Acknowledged;
        }

        private void Run()
        {
            try
            {
                string one = $"*2\r\n$4\r\nINCR\r\n${_key.Length}\r\n{_key}\r\n";
                byte[] batch = System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat(one, Batch)));
                using var stream = new System.Net.Sockets.NetworkStream(_socket, ownsSocket: false);
                using var reader = new StreamReader(stream, System.Text.Encoding.ASCII, false, 1 << 16);
                long sent = 0;
                for (int i = 0; i < 2; i++, sent += Batch)
                    stream.Write(batch);
                long expected = 1;
                while (expected <= sent)
                {
                    string? reply = reader.ReadLine();
                    if (reply is null)
                    {
                        _failure = $"end of file after {expected - 1} replies";
                        return;
                    }
                    if (reply != $":{expected}")
                    {
                        _failure = $"reply {expected} was {reply}";
                        return;
                    }
                    Interlocked.Exchange(ref _acknowledged, expected);
                    if (expected % Batch == 0 && !_stop && sent < 50_000_000)
                    {
                        stream.Write(batch);
                        sent += Batch;
                    }
                    expected++;
                }
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
            {
                _failure = $"after {Acknowledged} replies: {e.GetType().Name}: {e.Message}";
            }
        }

        public void Dispose()
        {
            _stop = true;
            _socket.Dispose();
            _thread.Join(TimeSpan.FromSeconds(10));
        }
    }

    private static string Cli(string port, params string[] command) =>
        ExternalProgram.Run("/usr/bin/redis-cli", ["-p", port, .. command]).ShouldSucceed().Stdout.Trim();
}

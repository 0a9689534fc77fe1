
namespace Amber.Integration.Tests;

/// <summary>
/// An ASP.NET Core minimal API (Kestrel: a listening socket, epoll, many threads, inotify watches on
/// its content root) checkpointed between requests, killed, restored: it answers again, with the
/// count it had.
/// </summary>
public sealed class AspNetTests
{
    private const string Project = """
        <Project Sdk="Microsoft.NET.Sdk.Web">
          <PropertyGroup><TargetFramework>net10.0</TargetFramework><ImplicitUsings>enable</ImplicitUsings></PropertyGroup>
        </Project>
        """;

    private const string Program = """
        var app = WebApplication.CreateBuilder(args).Build();
        long hits = 0;
        app.MapGet("/", () => $"hello {Interlocked.Increment(ref hits)}");
        app.Run();
        """;

    [Fact]
    public void MinimalApiAnswersAgainWithItsState()
    {
        using var dir = new TestDir("aspnet");
        Directory.CreateDirectory(dir["app"]);
        File.WriteAllText(dir["app/app.csproj"], Project);
        File.WriteAllText(dir["app/Program.cs"], Program);
        ExternalProgram.Start(Repo.Dotnet, ["build", dir["app"], "-c", "Release", "-o", dir["out"], "--nologo"]).Wait(TimeSpan.FromMinutes(3)).ShouldSucceed();
        int port = Http.FreePort();
        using var server = TargetProcess.Start(Repo.Dotnet, [dir["out/app.dll"], "--urls", $"http://127.0.0.1:{port}"], dir["out"]);
        server.WaitForLine(l => l.Contains("Application started"), "'Application started'", TimeSpan.FromSeconds(60));
        Assert.True(Http.TryGet(port, out string first) && first == "hello 1", $"first answer: {first}");
        // The second checkpoint is written inside the app's content root, which its file watcher
        // watches (inotify, recursively): it may watch amber's DIR.tmp-* directory, renamed at commit.
        for (int cycle = 1; cycle <= 3; cycle++)
        {
            string images = cycle == 2 ? dir["out/img2"] : dir[$"img{cycle}"];
            var tree = server.Tree().Skip(1).ToList();
            Cycle.CheckpointWhenIdle(server, images);
            server.ReapKilled(tree);
            AmberCli.Run("restore", "--images", images, "--detach").ShouldSucceed();
            Assert.True(Http.TryGet(port, out string body) && body == $"hello {cycle + 1}", $"answer after cycle {cycle}: {body}");
        }
    }

    /// <summary>
    /// Kestrel's listener as a resource of the app's group (Amber.Client.AspNetCore): unbound for each
    /// checkpoint, so the image holds no listener, and listening on its port again after the checkpoint
    /// and after the restore, its count kept.
    /// </summary>
    [Fact]
    public void KestrelsListenerIsClosedForEachCheckpointAndListensAgainAfterItAndAfterTheRestore()
    {
        using var home = new GroupHome("aspnet-listeners");
        string app = home.Dir["app"], out_ = home.Dir["out"];
        Directory.CreateDirectory(app);
        string built = Path.Combine(Repo.Root, "src", "Amber.Client.AspNetCore", "bin", "Release", "net10.0");
        File.WriteAllText(Path.Combine(app, "app.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk.Web">
              <PropertyGroup><TargetFramework>net10.0</TargetFramework><ImplicitUsings>enable</ImplicitUsings><NoWarn>CA1416</NoWarn></PropertyGroup>
              <ItemGroup>
                <Reference Include="Amber.Client"><HintPath>{built}/Amber.Client.dll</HintPath></Reference>
                <Reference Include="Amber.Client.AspNetCore"><HintPath>{built}/Amber.Client.AspNetCore.dll</HintPath></Reference>
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), """
            using Amber.Client;
            using Amber.Client.AspNetCore;
            using var amber = GroupClient.Register("web");
            amber.AfterCheckpoint = id => Console.WriteLine($"after-checkpoint {id}");
            amber.AfterRestore = id => Console.WriteLine($"after-restore {id}");
            var builder = WebApplication.CreateBuilder(args);
            builder.WebHost.UseAmberListeners(amber);
            var web = builder.Build();
            long hits = 0;
            web.MapGet("/", () => $"hello {Interlocked.Increment(ref hits)}");
            web.Run();
            """);
        ExternalProgram.Start(Repo.Dotnet, ["build", app, "-c", "Release", "-o", out_, "--nologo"]).Wait(TimeSpan.FromMinutes(3)).ShouldSucceed();
        int port = Http.FreePort();
        home.Run("web", [], Repo.Dotnet, Path.Combine(out_, "app.dll"), "--urls", $"http://127.0.0.1:{port}");
        var output = new GroupMember(0, home.Home.GroupLog("web"));
        GroupHome.WaitUntil(() => output.Lines().Any(l => l.Contains("Application started", StringComparison.Ordinal)), "'Application started'", TimeSpan.FromSeconds(60));
        Assert.True(Http.TryGet(port, out string first) && first == "hello 1", $"first answer: {first}");

        home.Amber("checkpoint", "--group", "web").ShouldSucceed();
        GroupHome.WaitUntil(() => output.Lines().Contains("after-checkpoint ckpt-000001"), "after-checkpoint");
        Assert.True(Http.TryGet(port, out string second) && second == "hello 2", $"answer after the checkpoint: {second}");

        home.Amber("checkpoint", "--group", "web", "--stop").ShouldSucceed();
        var image = System.Text.Json.JsonDocument.Parse(AmberCli.Run("inspect", "--json", Path.Combine(home.Home.DefaultStore("web"), "ckpt-000002")).ShouldSucceed().Stdout);
        var sockets = image.RootElement.GetProperty("processes").EnumerateArray().SelectMany(p => p.GetProperty("fds").EnumerateArray())
            .Where(fd => fd.TryGetProperty("socket", out _)).Select(fd => fd.GetProperty("socket")).ToList();
        Assert.NotEmpty(sockets); // its link to the coordinator, the runtime's diagnostics listener (unix sockets)
        Assert.DoesNotContain(sockets, s => s.GetProperty("family").GetInt32() is 2 or 10 && s.GetProperty("listening").GetBoolean());

        home.Amber("restore", "--group", "web").ShouldSucceed();
        GroupHome.WaitUntil(() => output.Lines().Contains("after-restore ckpt-000002"), "after-restore");
        Assert.True(Http.TryGet(port, out string third) && third == "hello 3", $"answer after the restore: {third}");
    }

    /// <summary>
    /// A restored server under load: the runtime suspends its threads for every garbage collection
    /// with membarrier(2), which fails (and the runtime aborts) unless the registration came back.
    /// </summary>
    [Fact]
    public void MinimalApiRestoredServesAMinuteOfRequestsThroughGarbageCollections()
    {
        using var dir = new TestDir("aspnetload");
        Directory.CreateDirectory(dir["app"]);
        File.WriteAllText(dir["app/app.csproj"], Project);
        File.WriteAllText(dir["app/Program.cs"], """
            var app = WebApplication.CreateBuilder(args).Build();
            long hits = 0;
            app.MapGet("/", () =>
            {
                var garbage = new byte[256 << 10]; // a collection every few requests
                garbage[^1] = 1;
                return $"hello {Interlocked.Increment(ref hits)} {GC.CollectionCount(0)}";
            });
            app.Run();
            """);
        ExternalProgram.Start(Repo.Dotnet, ["build", dir["app"], "-c", "Release", "-o", dir["out"], "--nologo"]).Wait(TimeSpan.FromMinutes(3)).ShouldSucceed();
        int port = Http.FreePort();
        using var server = TargetProcess.Start(Repo.Dotnet, [dir["out/app.dll"], "--urls", $"http://127.0.0.1:{port}"], dir["out"]);
        server.WaitForLine(l => l.Contains("Application started"), "'Application started'", TimeSpan.FromSeconds(60));
        Assert.True(Http.TryGet(port, out string first) && first.StartsWith("hello 1 ", StringComparison.Ordinal), $"first answer: {first}");
        var tree = server.Tree().Skip(1).ToList();
        Cycle.CheckpointWhenIdle(server, dir["img"]);
        server.ReapKilled(tree);
        AmberCli.Run("restore", "--images", dir["img"], "--detach").ShouldSucceed();

        // A minute of requests, one after another (bounded in count too), each answered in order.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long expected = 2, collectionsAtStart = -1, collections = -1;
        while (clock.Elapsed < TimeSpan.FromSeconds(60) && expected < 200_000)
        {
            Assert.True(Http.TryGet(port, out string body), $"request {expected} after the restore failed ({clock.Elapsed.TotalSeconds:0.0} s in); server log ends with: {string.Join(" | ", server.Lines().TakeLast(3))}");
            var words = body.Split(' ');
            Assert.True(words.Length == 3 && words[1] == expected.ToString(System.Globalization.CultureInfo.InvariantCulture), $"request {expected}: {body}");
            collections = long.Parse(words[2], System.Globalization.CultureInfo.InvariantCulture);
            if (collectionsAtStart < 0)
                collectionsAtStart = collections;
            expected++;
        }
        Assert.True(server.IsRunning, "the restored server died");
        Assert.True(collections - collectionsAtStart >= 10, $"only {collections - collectionsAtStart} collections in {expected - 2} requests: the test did not exercise the collector");
    }

    /// <summary>
    /// An HttpClient that keeps one keep-alive connection (never made again) sends request after
    /// request while the app is checkpointed, ended and restored: every request succeeds, in order,
    /// and all of them, before and after, came on the one connection (the app names the client's
    /// port; the client counts its connects).
    /// </summary>
    [Fact]
    public void MinimalApiKeepsAClientsKeepAliveConnectionThroughACheckpoint()
    {
        using var dir = new TestDir("aspnetkeep");
        Directory.CreateDirectory(dir["app"]);
        File.WriteAllText(dir["app/app.csproj"], Project);
        File.WriteAllText(dir["app/Program.cs"], """
            var app = WebApplication.CreateBuilder(args).Build();
            long hits = 0;
            app.MapGet("/", (HttpContext context) => $"{context.Connection.RemotePort} {Interlocked.Increment(ref hits)}");
            app.Run();
            """);
        ExternalProgram.Start(Repo.Dotnet, ["build", dir["app"], "-c", "Release", "-o", dir["out"], "--nologo"]).Wait(TimeSpan.FromMinutes(3)).ShouldSucceed();
        int port = Http.FreePort();
        using var server = TargetProcess.Start(Repo.Dotnet, [dir["out/app.dll"], "--urls", $"http://127.0.0.1:{port}"], dir["out"]);
        server.WaitForLine(l => l.Contains("Application started"), "'Application started'", TimeSpan.FromSeconds(60));

        int connects = 0;
        using var handler = new System.Net.Http.SocketsHttpHandler
        {
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            MaxConnectionsPerServer = 1,
            ConnectCallback = async (context, cancel) =>
            {
                Interlocked.Increment(ref connects);
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(context.DnsEndPoint, cancel);
                    return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(120) };
        var uri = new Uri($"http://127.0.0.1:{port}/");

        // Requests one after another, each checked, until told to stop (bounded in count too).
        long done = 0;
        string? failure = null;
        string? clientPort = null;
        var stop = new ManualResetEventSlim();
        var load = new Thread(() =>
        {
            try
            {
                for (long n = 1; !stop.IsSet && n <= 1_000_000; n++)
                {
                    using var response = http.GetAsync(uri).GetAwaiter().GetResult();
                    string body = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
                    var words = body.Split(' ');
                    clientPort ??= words[0];
                    if (response.StatusCode != System.Net.HttpStatusCode.OK || words.Length != 2 || words[0] != clientPort || words[1] != n.ToString(System.Globalization.CultureInfo.InvariantCulture))
                    {
                        failure = $"request {n}: {(int)response.StatusCode} '{body}' (client port {clientPort})";
                        return;
                    }
                    Interlocked.Exchange(ref done, n);
                }
            }
            catch (Exception e)
            {
                failure = $"after {Interlocked.Read(ref done)} requests: {e.GetType().Name}: {e.Message} {e.InnerException?.Message}";
            }
        }) { IsBackground = true, Name = "HTTP keep-alive client" };
        load.Start();
        WaitFor(() => Interlocked.Read(ref done) >= 300 || failure is not null, "300 requests before the checkpoint", TimeSpan.FromSeconds(60));
        Assert.True(failure is null, failure);

        var tree = server.Tree().Skip(1).ToList();
        AmberCli.Run("checkpoint", server.Pid.ToString(), "--images", dir["img"]).ShouldSucceed();
        server.ReapKilled(tree);
        NetworkLocks.AssertParked(port, dir["img"], atLeast: 1);
        // A response that arrived before the freeze may still be counted by a client thread slowed by a
        // loaded machine (seen: over half a second late in a full run): the count must come to rest for
        // a second (it never would if requests still got through).
        long atCheckpoint = Interlocked.Read(ref done);
        var settleBy = DateTime.UtcNow.AddSeconds(10);
        for (var still = DateTime.UtcNow; DateTime.UtcNow - still < TimeSpan.FromSeconds(1);)
        {
            Assert.True(DateTime.UtcNow < settleBy, $"the client kept getting answers while the app was gone: {Interlocked.Read(ref done)} after {atCheckpoint}");
            Thread.Sleep(20);
            if (Interlocked.Read(ref done) != atCheckpoint)
                (atCheckpoint, still) = (Interlocked.Read(ref done), DateTime.UtcNow);
        }
        Thread.Sleep(1000);
        Assert.True(failure is null && Interlocked.Read(ref done) == atCheckpoint, $"the client went on or failed while the app was gone: {failure}");
        AmberCli.Run("restore", "--images", dir["img"], "--detach").ShouldSucceed();
        server.Restored();
        NetworkLocks.AssertNoneHeld(port);

        WaitFor(() => Interlocked.Read(ref done) >= atCheckpoint + 300 || failure is not null, "300 requests after the restore", TimeSpan.FromSeconds(90));
        stop.Set();
        Assert.True(load.Join(TimeSpan.FromSeconds(150)), "the client did not stop");
        Assert.True(failure is null, failure);
        Assert.Equal(1, connects);
        Assert.True(server.IsRunning, "the restored app died");
    }

    private static void WaitFor(Func<bool> condition, string what, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            Thread.Sleep(10);
        }
    }
}

using System.Net;
using System.Net.Sockets;
using System.Text;

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
        int port = FreePort();
        using var server = TargetProcess.Start(Repo.Dotnet, [dir["out/app.dll"], "--urls", $"http://127.0.0.1:{port}"], dir["out"]);
        server.WaitForLine(l => l.Contains("Application started"), "'Application started'", TimeSpan.FromSeconds(60));
        Assert.Equal("hello 1", Get(port));
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            var tree = server.Tree().Skip(1).ToList();
            Cycle.CheckpointWhenIdle(server, dir[$"img{cycle}"]);
            server.ReapKilled(tree);
            AmberCli.Run("restore", "--images", dir[$"img{cycle}"], "--detach").ShouldSucceed();
            Assert.Equal($"hello {cycle + 1}", Get(port));
        }
    }

    /// <summary>HTTP/1.0: the server closes the connection, so nothing stays established.</summary>
    private static string Get(int port)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 10000 };
        socket.Connect(IPAddress.Loopback, port);
        socket.Send("GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"u8.ToArray());
        var response = new MemoryStream();
        var buffer = new byte[4096];
        int n;
        while ((n = socket.Receive(buffer)) > 0)
            response.Write(buffer, 0, n);
        string text = Encoding.ASCII.GetString(response.ToArray());
        return text[(text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

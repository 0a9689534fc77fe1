
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
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            var tree = server.Tree().Skip(1).ToList();
            Cycle.CheckpointWhenIdle(server, dir[$"img{cycle}"]);
            server.ReapKilled(tree);
            AmberCli.Run("restore", "--images", dir[$"img{cycle}"], "--detach").ShouldSucceed();
            Assert.True(Http.TryGet(port, out string body) && body == $"hello {cycle + 1}", $"answer after cycle {cycle}: {body}");
        }
    }
}

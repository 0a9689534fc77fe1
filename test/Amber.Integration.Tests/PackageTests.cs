using System.IO.Compression;
using System.Net.Sockets;
using System.Text;
using System.Xml.Linq;

namespace Amber.Integration.Tests;

/// <summary>
/// dotnet pack makes the packages the README's "Packages" section promises, each with its README,
/// license, repository and XML docs; then programs built from those packages alone work: one
/// references Amber and checkpoints and restores a process with it, one references Amber.Client and
/// takes part in checkpoints told by a stand-in coordinator, and the Amber.Cli tool installs and
/// says its version. Restores go through a private package folder, so no copy cached by an earlier
/// run, and no package of another source, can stand in for the ones just packed.
/// </summary>
public sealed class PackageTests
{
    private static readonly string[] Ids =
        ["Amber", "Amber.Native", "Amber.Kernel", "Amber.Image", "Amber.Checkpoint", "Amber.Coordinator", "Amber.Transport", "Amber.Client", "Amber.Client.AspNetCore", "Amber.Cli"];

    /// <summary>The libraries' assemblies (and their XML docs); Amber only brings them, Amber.Cli is a tool.</summary>
    private static readonly string[] Libraries = [.. Ids.Except(["Amber", "Amber.Cli"])];

    private static readonly XElement Props = XElement.Load(Path.Combine(Repo.Root, "Directory.Build.props"));

    private static string Property(string name) => Props.Descendants(name).Single().Value;

    private static readonly string Version = Property("VersionPrefix");

    [Fact]
    public void PackedPackagesCarryTheirMetadataAndWorkFromALocalFeed()
    {
        using var dir = new TestDir("pkg");
        string feed = dir["feed"];
        // The build the suite runs on (dotnet build Amber.slnx -c Release), packed as it is.
        Dotnet(dir, "pack", Path.Combine(Repo.Root, "Amber.slnx"), "-c", "Release", "--no-build", "-o", feed);

        var packed = Directory.GetFiles(feed, "*.nupkg").Select(f => Path.GetFileName(f)).Order().ToList();
        Assert.Equal(Ids.Select(id => $"{id}.{Version}.nupkg").Order(), packed); // and no test or sample
        foreach (var id in Ids)
            CheckPackage(Path.Combine(feed, $"{id}.{Version}.nupkg"), id);

        WriteNuGetConfig(dir, feed);
        BuildAndRunEngineProgram(dir);
        BuildAndRunClientProgram(dir);
        InstallAndRunTool(dir, feed);
    }

    private static void CheckPackage(string path, string id)
    {
        using var zip = ZipFile.OpenRead(path);
        var nuspec = XElement.Load(zip.GetEntry($"{id}.nuspec")!.Open());
        var metadata = nuspec.Elements().Single(e => e.Name.LocalName == "metadata");
        string? Meta(string name) => metadata.Elements().SingleOrDefault(e => e.Name.LocalName == name)?.Value;
        XElement? MetaElement(string name) => metadata.Elements().SingleOrDefault(e => e.Name.LocalName == name);

        Assert.Equal(id, Meta("id"));
        Assert.Equal(Version, Meta("version"));
        Assert.False(string.IsNullOrWhiteSpace(Meta("authors")), $"{id}: no authors");
        Assert.False(string.IsNullOrWhiteSpace(Meta("description")) || Meta("description") == "Package Description", $"{id}: no description");
        var license = MetaElement("license");
        Assert.True(license is not null, $"{id}: no license");
        Assert.Equal("expression", license.Attribute("type")?.Value);
        Assert.Equal(Property("PackageLicenseExpression"), license.Value);
        var repository = MetaElement("repository");
        Assert.True(repository is not null, $"{id}: no repository");
        Assert.Equal("git", repository.Attribute("type")?.Value);
        Assert.Equal(Property("RepositoryUrl"), repository.Attribute("url")?.Value);

        Assert.Equal("README.md", Meta("readme"));
        using (var readme = new StreamReader(zip.GetEntry("README.md")!.Open()))
            Assert.Equal($"# {id}", readme.ReadLine()); // its own, not another package's

        var files = zip.Entries.Select(e => e.FullName).ToHashSet();
        if (Libraries.Contains(id))
        {
            Assert.Contains($"lib/net10.0/{id}.dll", files);
            Assert.Contains($"lib/net10.0/{id}.xml", files);
        }
        if (id == "Amber")
        {
            var dependencies = metadata.Descendants().Where(e => e.Name.LocalName == "dependency")
                .Select(e => (e.Attribute("id")?.Value, e.Attribute("version")?.Value));
            Assert.Contains(("Amber.Transport", Version), dependencies);
        }
        if (id == "Amber.Cli")
        {
            Assert.Contains(metadata.Descendants(), e => e.Name.LocalName == "packageType" && e.Attribute("name")?.Value == "DotnetTool");
            Assert.Contains("tools/net10.0/any/amber.dll", files);
        }
        // IntelliSense for what a program calls first.
        string Docs() => new StreamReader(zip.GetEntry($"lib/net10.0/{id}.xml")!.Open()).ReadToEnd();
        if (id == "Amber.Checkpoint")
        {
            string docs = Docs();
            foreach (var member in new[]
            {
                "M:Amber.Checkpoint.Checkpointer.Checkpoint(", "M:Amber.Checkpoint.Restore.Restorer.Restore(",
                "T:Amber.Checkpoint.CheckpointOptions", "T:Amber.Checkpoint.CheckpointResult",
                "T:Amber.Checkpoint.Restore.RestoreOptions", "T:Amber.Checkpoint.Restore.RestoreResult",
            })
                Assert.Contains($"<member name=\"{member}", docs);
        }
        if (id == "Amber.Coordinator")
            Assert.Contains("<member name=\"M:Amber.Coordinator.Control.ControlClient.Send(", Docs());
        if (id == "Amber.Transport")
        {
            Assert.Contains("<member name=\"T:Amber.Transport.NodeAgent", Docs());
            var dependencies = metadata.Descendants().Where(e => e.Name.LocalName == "dependency").Select(e => e.Attribute("id")?.Value);
            Assert.Contains("Amber.Coordinator", dependencies);
        }
        if (id == "Amber.Client")
            Assert.Contains("<member name=\"M:Amber.Client.GroupClient.Register(", Docs());
        if (id == "Amber.Client.AspNetCore")
        {
            Assert.Contains("<member name=\"M:Amber.Client.AspNetCore.AmberKestrelExtensions.UseAmberListeners(", Docs());
            var dependencies = metadata.Descendants().Where(e => e.Name.LocalName == "dependency").Select(e => e.Attribute("id")?.Value);
            Assert.Contains("Amber.Client", dependencies);
        }
    }

    /// <summary>
    /// Amber and Amber.* from the feed only; everything else (Google.Protobuf, Microsoft.Extensions.*)
    /// from the packages this machine restored for the repository's own build, so no network is needed.
    /// </summary>
    private static void WriteNuGetConfig(TestDir dir, string feed)
    {
        string machine = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        File.WriteAllText(dir["nuget.config"], $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="packed" value="{feed}" />
                <add key="machine" value="{machine}" />
              </packageSources>
              <packageSourceMapping>
                <packageSource key="packed"><package pattern="Amber" /><package pattern="Amber.*" /></packageSource>
                <packageSource key="machine"><package pattern="*" /></packageSource>
              </packageSourceMapping>
            </configuration>
            """);
        // The tool has no dependencies; its source is given on the command line.
        File.WriteAllText(dir["tool.nuget.config"], """
            <?xml version="1.0" encoding="utf-8"?>
            <configuration><packageSources><clear /></packageSources></configuration>
            """);
    }

    private static string Project(string package) => $"""
        <Project Sdk="Microsoft.NET.Sdk">
          <PropertyGroup>
            <OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework>
            <ImplicitUsings>enable</ImplicitUsings><Nullable>enable</Nullable><TreatWarningsAsErrors>true</TreatWarningsAsErrors>
          </PropertyGroup>
          <ItemGroup><PackageReference Include="{package}" Version="{Version}" /></ItemGroup>
        </Project>
        """;

    /// <summary>The engine as a library: a real checkpoint of a child, ended, then restored with its PID.</summary>
    private static void BuildAndRunEngineProgram(TestDir dir)
    {
        Directory.CreateDirectory(dir["engine"]);
        File.WriteAllText(dir["engine/engine.csproj"], Project("Amber"));
        File.WriteAllText(dir["engine/Program.cs"], """
            using System.Runtime.Versioning;
            using Amber.Checkpoint;
            using Amber.Checkpoint.Restore;
            using Amber.Coordinator.Control;
            using Amber.Kernel.Processes;

            [assembly: SupportedOSPlatform("linux")]

            string images = args[0];
            // Not Process.Start: the runtime waits for its own children and would take their ptrace stops.
            int pid = Spawner.Spawn(new SpawnOptions("/bin/sleep", ["60"]));
            var saved = Checkpointer.Checkpoint(pid, new CheckpointOptions(images, LeaveRunning: false));
            Console.WriteLine($"checkpointed {saved.Pid} processes {saved.Processes.Count}");
            while (Directory.Exists($"/proc/{pid}"))
                Thread.Sleep(10); // ended by the checkpoint
            var back = Restorer.Restore(new RestoreOptions(images, Detach: true, InheritFds: [], PidWait: TimeSpan.FromSeconds(10)));
            Console.WriteLine($"restored {back.Pid} running {File.ReadAllText($"/proc/{back.Pid}/cmdline").Replace('\0', ' ').Trim()}");
            Spawner.Kill(back.Pid, 9);
            // The coordinator's control client (no coordinator here: only its request is made).
            Request request = new CheckpointRequest("web", Stop: false, Full: false);
            Console.WriteLine($"request {request.ToWire().Op}");
            """);
        Build(dir, "engine");
        var run = ExternalProgram.Start(Repo.Dotnet, [dir["engine-out/engine.dll"], dir["images"]]).Wait(TimeSpan.FromSeconds(60)).ShouldSucceed();
        var lines = run.Stdout.TrimEnd('\n').Split('\n');
        Assert.Equal(3, lines.Length);
        int pid = int.Parse(lines[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal([$"checkpointed {pid} processes 1", $"restored {pid} running /bin/sleep 60", "request checkpoint"], lines);
    }

    /// <summary>
    /// Amber.Client in a program, told by a stand-in coordinator on a registration socket (the
    /// protocol of Registrations.cs): registered, a process added, before and after a checkpoint,
    /// after a restore.
    /// </summary>
    private static void BuildAndRunClientProgram(TestDir dir)
    {
        Directory.CreateDirectory(dir["client"]);
        File.WriteAllText(dir["client/client.csproj"], Project("Amber.Client"));
        File.WriteAllText(dir["client/Program.cs"], """
            using System.Runtime.Versioning;
            using Amber.Client;

            [assembly: SupportedOSPlatform("linux")]

            using var amber = GroupClient.Register("packaged", args[0]);
            using var restored = new ManualResetEventSlim();
            amber.BeforeCheckpoint = notice => Console.WriteLine($"before {notice.Id} {notice.Remaining.TotalSeconds > 1}");
            amber.AfterCheckpoint = id => Console.WriteLine($"after {id}");
            amber.AfterRestore = id => { Console.WriteLine($"restored {id}"); restored.Set(); };
            Console.WriteLine($"registered in {amber.Group}");
            amber.AddProcess(Environment.ProcessId); // callbacks set: the stand-in may start
            return restored.Wait(TimeSpan.FromSeconds(30)) ? 0 : 1;
            """);
        Build(dir, "client");

        string path = dir["web.sock"];
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen();
        var program = ExternalProgram.Start(Repo.Dotnet, [dir["client-out/client.dll"], path]);
        Assert.True(listener.Poll(TimeSpan.FromSeconds(30), SelectMode.SelectRead), "the program did not connect to the registration socket");
        using var session = listener.Accept();
        session.ReceiveTimeout = 30_000;
        using var reader = new StreamReader(new NetworkStream(session), Encoding.UTF8);
        void Send(string line) => session.Send(Encoding.UTF8.GetBytes(line + "\n"));

        Assert.Equal("REGISTER packaged", reader.ReadLine());
        Send("OK");
        // A notice sent before the program has set its callbacks would find none: wait for its ADD.
        Assert.Equal($"ADD {program.Pid}", reader.ReadLine());
        Send("OK");
        Send("CHECKPOINT 5000 ckpt-000001");
        Assert.Equal("READY ckpt-000001", reader.ReadLine());
        Send("CHECKPOINTED ckpt-000001");
        Send("RESTORED ckpt-000002");
        var run = program.Wait(TimeSpan.FromSeconds(60)).ShouldSucceed();
        Assert.Equal(["registered in web", "before ckpt-000001 True", "after ckpt-000001", "restored ckpt-000002"], run.Stdout.TrimEnd('\n').Split('\n'));
    }

    private static void InstallAndRunTool(TestDir dir, string feed)
    {
        Dotnet(dir, "tool", "install", "--tool-path", dir["tools"], "--configfile", dir["tool.nuget.config"], "--add-source", feed, "Amber.Cli", "--version", Version);
        var run = ExternalProgram.Start(dir["tools/amber"], ["--version"]).Wait(TimeSpan.FromSeconds(60)).ShouldSucceed();
        Assert.StartsWith(Version, run.Stdout.Trim()); // 0.1.0+commit
    }

    private static void Build(TestDir dir, string project) =>
        Dotnet(dir, "build", dir[project], "-c", "Release", "-o", dir[$"{project}-out"], "--nologo");

    /// <summary>dotnet with a package folder of the test's own: nothing restored before can be used, nothing restored stays.</summary>
    private static void Dotnet(TestDir dir, params string[] args) =>
        ExternalProgram.Start(Repo.Dotnet, args, env: new Dictionary<string, string> { ["NUGET_PACKAGES"] = dir["packages"] })
            .Wait(TimeSpan.FromMinutes(3)).ShouldSucceed();
}

using System.Text.Json;
using Amber.Coordinator.Control;
using Amber.Coordinator.Scheduling;
using Amber.Coordinator.Store;

namespace Amber.Integration.Tests;

/// <summary>
/// The coordinator's pieces that need no process: the control socket's wire format (the CLI and
/// the coordinator must agree on every byte of it), the schedule and the merge policy.
/// </summary>
public sealed class ControlProtocolTests
{
    private static string Json(ControlRequest wire) => JsonSerializer.Serialize(wire, ControlJson.Default.ControlRequest);

    private const string Defaults = "\"command\":[],\"workingDirectory\":\"\",\"environment\":[],\"store\":\"\",\"everySeconds\":0,\"storage\":[],\"restartOnFailure\":null,\"deadlineSeconds\":0";

    public static TheoryData<Request, string> Lines => new()
    {
        { new CheckpointRequest("g", Stop: true, Full: false), "{\"op\":\"checkpoint\",\"group\":\"g\"," + Defaults + ",\"pid\":0,\"stop\":true,\"full\":false,\"from\":\"\",\"mergeAfter\":0,\"mergeAboveBytes\":0,\"compress\":\"\"}" },
        { new AttachRequest("g", 42), "{\"op\":\"attach\",\"group\":\"g\"," + Defaults + ",\"pid\":42,\"stop\":false,\"full\":false,\"from\":\"\",\"mergeAfter\":0,\"mergeAboveBytes\":0,\"compress\":\"\"}" },
        { new RestoreRequest("g", "ckpt-000002"), "{\"op\":\"restore\",\"group\":\"g\"," + Defaults + ",\"pid\":0,\"stop\":false,\"full\":false,\"from\":\"ckpt-000002\",\"mergeAfter\":0,\"mergeAboveBytes\":0,\"compress\":\"\"}" },
        { new ShutdownRequest(), "{\"op\":\"shutdown\",\"group\":\"\"," + Defaults + ",\"pid\":0,\"stop\":false,\"full\":false,\"from\":\"\",\"mergeAfter\":0,\"mergeAboveBytes\":0,\"compress\":\"\"}" },
    };

    [Theory]
    [MemberData(nameof(Lines))]
    public void ATypedRequestGoesOnTheWireAsItAlwaysHas(Request request, string line) => Assert.Equal(line, Json(request.ToWire()));

    [Fact]
    public void EveryRequestComesBackFromTheWireAsItWent()
    {
        Request[] requests =
        [
            new RunRequest("g")
            {
                Command = ["/bin/sleep", "1"], WorkingDirectory = "/tmp", Environment = ["A=1"], Store = "/s", EverySeconds = 30, Storage = ["/d"],
                RestartOnFailure = false, DeadlineSeconds = 2, MergeAfter = 3, MergeAboveBytes = 4096, Compress = "zstd",
            },
            new RunRequest("g") { Command = ["/bin/true"], Encrypt = "/etc/amber/g.key" },
            new RunRequest("g") { Command = ["/bin/true"], Isolate = ["pid"], Net = "bridge", Address = "10.177.0.9/16", Publish = ["8080:80", "127.0.0.1:53:53/udp"] },
            new AttachRequest("g", 7), new DetachRequest("g", 7), new CheckpointRequest("g", false, true), new RestoreRequest("g", ""),
            new ImagesRequest("g"), new MergeRequest("g", "ckpt-000001"), new VerifyRequest("g"), new StopRequest("g"), new RemoveRequest("g"), new ShutdownRequest(),
        ];
        foreach (var request in requests)
        {
            var wire = JsonSerializer.Deserialize(Json(request.ToWire()), ControlJson.Default.ControlRequest)!;
            var back = Request.FromWire(wire);
            Assert.NotNull(back);
            Assert.Equal(request.GetType(), back.GetType());
            Assert.Equal(Json(request.ToWire()), Json(back.ToWire()));
        }
        Assert.Null(Request.FromWire(new ControlRequest { Op = "list" }));
    }

    [Fact]
    public void AScheduleIsDueOnlyOnceItsIntervalHasPassed()
    {
        Assert.False(new CheckpointSchedule(0).IsDue(DateTime.UtcNow.AddYears(100)));
        var every = new CheckpointSchedule(60);
        Assert.False(every.IsDue(DateTime.UtcNow));
        Assert.True(every.IsDue(DateTime.UtcNow.AddSeconds(61)));
    }

    [Fact]
    public void AChainIsMergedOnceLongOrLargeEnough()
    {
        var nowhere = new GroupStore(Path.Combine(Path.GetTempPath(), $"amber-no-store-{Guid.NewGuid():N}"));
        StoredCheckpoint Taken(int sources, long bytes) =>
            new("ckpt-000009", "/nowhere", DateTimeOffset.UtcNow, 1, 1, bytes, sources > 0 ? "ckpt-000008" : "", [.. Enumerable.Range(1, sources).Select(i => $"ckpt-{i:D6}")], false, false);
        Assert.False(new MergePolicy(1, 0).IsDue(Taken(0, 1 << 30), nowhere)); // a full checkpoint: nothing to fold
        Assert.True(new MergePolicy(3, 0).IsDue(Taken(3, 1), nowhere));
        Assert.False(new MergePolicy(8, 0).IsDue(Taken(3, 1 << 30), nowhere));
        Assert.True(new MergePolicy(8, 1000).IsDue(Taken(3, 1001), nowhere));
        Assert.False(new MergePolicy(8, 1000).IsDue(Taken(3, 1000), nowhere));
    }
}

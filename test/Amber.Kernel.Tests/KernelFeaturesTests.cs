using Amber.Kernel.Features;

namespace Amber.Kernel.Tests;

public sealed class KernelFeaturesTests
{
    private static readonly string[] Names =
    [
        "ptrace seize/interrupt", "clone3 set_tid", "PR_SET_MM_MAP", "process_vm_readv", "ptrace capability",
        "userfaultfd WP_ASYNC", "PAGEMAP_SCAN", "dirty tracking", "cgroup v2 freezer", "TCP_REPAIR", "nftables (network lock)", "kernel",
    ];

    [Fact]
    public void EveryRequiredFeatureIsPresentOnThisMachine()
    {
        var missing = KernelFeatures.ProbeAll().Where(f => f.Required && !f.Present).Select(f => $"{f.Name}: {f.Detail}");
        Assert.Empty(missing);
    }

    [Fact]
    public void EveryFeatureIsProbedOnceWithAReason()
    {
        var features = KernelFeatures.ProbeAll();
        Assert.Equal(Names, features.Select(f => f.Name));
        Assert.All(features, f => Assert.False(string.IsNullOrWhiteSpace(f.Detail), f.Name));
        Assert.Equal(5, features.Count(f => f.Required));
    }

    [Fact]
    public void DirtyTrackingNamesTheMethodTheEngineUses()
    {
        var features = KernelFeatures.ProbeAll().ToDictionary(f => f.Name);
        var method = features["dirty tracking"];
        Assert.True(method.Present);
        bool tracking = features["userfaultfd WP_ASYNC"].Present && features["PAGEMAP_SCAN"].Present;
        Assert.Equal(tracking ? DirtyTrackingProbes.Tracking : DirtyTrackingProbes.Hashing, method.Detail);
        Assert.Equal(tracking, DirtyTrackingProbes.TrackingWorks);
    }

    [Fact]
    public void TheFreezerProbeLeavesNoCgroupBehind()
    {
        var freezer = KernelFeatures.ProbeAll().Single(f => f.Name == "cgroup v2 freezer");
        if (FreezerProbe.FindCgroup2Mount() is { } root)
            Assert.False(Directory.Exists(Path.Combine(root, $"amber-check-{Environment.ProcessId}")), freezer.Detail);
    }

    [Theory]
    [InlineData("6.18.44-fc-v782", 6, 18)]
    [InlineData("5.4.0-150-generic", 5, 4)]
    [InlineData("6.7", 6, 7)]
    [InlineData("6.10rc1", 6, 10)]
    [InlineData("not a release", 0, 0)]
    public void KernelReleaseParsesMajorAndMinor(string release, int major, int minor) =>
        Assert.Equal(new Version(major, minor), KernelRelease.Parse(release));
}

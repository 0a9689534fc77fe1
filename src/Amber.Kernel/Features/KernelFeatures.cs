using System.Runtime.InteropServices;

namespace Amber.Kernel.Features;

/// <summary>
/// Probes, from this process and for real, every kernel feature Amber relies on (what `amber check`
/// prints). Each probe is cheap, leaves nothing behind and never throws: a failure is reported as the
/// feature missing, with the reason. The ptrace probe traces a child, so call this from one thread
/// and not from a thread that already traces the same children.
/// </summary>
public static class KernelFeatures
{
    public static IReadOnlyList<FeatureProbe> ProbeAll()
    {
        var uffd = Probe("userfaultfd WP_ASYNC", required: false, DirtyTrackingProbes.UserfaultfdWpAsync);
        var scan = Probe("PAGEMAP_SCAN", required: false, DirtyTrackingProbes.PagemapScan);
        return
        [
            Probe("ptrace seize/interrupt", required: true, PtraceProbe.SeizeInterrupt),
            Probe("clone3 set_tid", required: true, Clone3Probe.SetTid),
            Probe("PR_SET_MM_MAP", required: true, MemoryProbes.PrSetMmMap),
            Probe("process_vm_readv", required: true, MemoryProbes.ProcessVmReadv),
            Probe("ptrace capability", required: true, () => Capabilities.Require(Capabilities.CAP_SYS_PTRACE)),
            uffd,
            scan,
            Probe("dirty tracking", required: false, () => DirtyTrackingProbes.Method(uffd.Present && scan.Present)),
            Probe("cgroup v2 freezer", required: false, FreezerProbe.CgroupFreeze),
            Probe("TCP_REPAIR", required: false, TcpRepairProbe.SetRepair),
            Probe("nftables (network lock)", required: false, TcpRepairProbe.Nftables),
            Probe("kernel", required: false, KernelRelease.Probe),
        ];
    }

    private static FeatureProbe Probe(string name, bool required, Func<(bool Present, string Detail)> probe)
    {
        try
        {
            var (present, detail) = probe();
            return new FeatureProbe(name, required, present, detail);
        }
        catch (KernelCallException e)
        {
            return new FeatureProbe(name, required, false, $"{e.Call}: {Marshal.GetPInvokeErrorMessage(e.Errno)}");
        }
        catch (Exception e)
        {
            return new FeatureProbe(name, required, false, e.Message.ReplaceLineEndings(" ").Trim());
        }
    }
}

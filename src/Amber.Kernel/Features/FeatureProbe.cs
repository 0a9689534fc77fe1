namespace Amber.Kernel.Features;

/// <summary>One kernel feature Amber relies on, as probed on this machine.</summary>
/// <param name="Name">Short name, e.g. "ptrace seize/interrupt".</param>
/// <param name="Required">Amber cannot checkpoint or restore without it.</param>
/// <param name="Present">The probe found it working.</param>
/// <param name="Detail">Why: what was found (a capability, a method, a release) or the kernel's reason for refusing.</param>
public sealed record FeatureProbe(string Name, bool Required, bool Present, string Detail);

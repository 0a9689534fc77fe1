using System.Runtime.CompilerServices;
using Amber.Kernel.Processes;

namespace Amber.Integration.Tests.Infrastructure;

/// <summary>
/// The test process adopts orphans: a restored process's first parent (the husk) is gone at once, so
/// it is re-parented here, and the tests reap it themselves instead of waiting for a lazy PID 1.
/// </summary>
internal static class Subreaper
{
    [ModuleInitializer]
    internal static void Become() => Spawner.BecomeSubreaper();
}

using Amber.Image.Schema;
using Amber.Kernel.Inject;
using Amber.Kernel.Ptrace;

namespace Amber.Checkpoint.Resources.Threads;

/// <summary>A thread of the process being restored, held stopped until the whole process is ready.</summary>
public sealed record RestoredThread(Tracee Tracee, ThreadImage Image, SyscallInjector Injector);

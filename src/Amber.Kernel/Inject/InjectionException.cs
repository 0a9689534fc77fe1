namespace Amber.Kernel.Inject;

/// <summary>An injected syscall did not complete: the thread faulted or stopped unexpectedly.</summary>
public sealed class InjectionException(string message) : Exception(message);

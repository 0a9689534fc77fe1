namespace Amber.Native;

/// <summary>
/// Raw bindings to glibc and to syscalls glibc does not wrap. No logic: every method returns what the
/// kernel returned (-1 and errno in <see cref="System.Runtime.InteropServices.Marshal.GetLastPInvokeError"/>).
/// Callers above this layer go through Amber.Kernel, which turns errno into exceptions.
/// </summary>
internal static partial class Interop
{
    internal const string Libc = "libc";
}

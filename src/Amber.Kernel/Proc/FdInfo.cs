namespace Amber.Kernel.Proc;

/// <summary>/proc/PID/fdinfo/N: the file position, the open flags (octal in the file) and the mount.</summary>
public readonly record struct FdInfo(long Position, uint Flags, int MountId);

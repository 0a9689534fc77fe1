using System.Runtime.InteropServices;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>Extended attributes of a path itself (a symlink at its end is not followed).</summary>
public static class ExtendedAttributes
{
    /// <summary>Largest value read: what amber sets is short.</summary>
    private const int MaxValueBytes = 256;

    public static unsafe void Set(string path, string name, ReadOnlySpan<byte> value)
    {
        fixed (byte* p = NativeString.Utf8Z(path))
        fixed (byte* n = NativeString.Utf8Z(name))
        fixed (byte* v = value)
            Errnos.Check(Interop.Lsetxattr(p, n, v, (nuint)value.Length, 0), "lsetxattr", $"{path} ({name})");
    }

    /// <summary>The attribute's value, or null if the path has none of that name (or a longer one than amber sets).</summary>
    public static unsafe byte[]? Get(string path, string name)
    {
        var value = new byte[MaxValueBytes];
        nint length;
        fixed (byte* p = NativeString.Utf8Z(path))
        fixed (byte* n = NativeString.Utf8Z(name))
        fixed (byte* v = value)
            length = Interop.Lgetxattr(p, n, v, (nuint)value.Length);
        if (length >= 0)
            return value[..(int)length];
        int errno = Marshal.GetLastPInvokeError();
        if (errno is Errnos.ENODATA or Errnos.ERANGE)
            return null;
        throw new KernelCallException("lgetxattr", $"{path} ({name})", errno);
    }

    /// <summary>Removes the attribute; one already gone is no error.</summary>
    public static unsafe void Remove(string path, string name)
    {
        int result;
        fixed (byte* p = NativeString.Utf8Z(path))
        fixed (byte* n = NativeString.Utf8Z(name))
            result = Interop.Lremovexattr(p, n);
        if (result < 0 && Marshal.GetLastPInvokeError() != Errnos.ENODATA)
            Errnos.Throw("lremovexattr", $"{path} ({name})");
    }
}

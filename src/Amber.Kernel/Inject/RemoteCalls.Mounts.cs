using System.Text;
using Amber.Native;

namespace Amber.Kernel.Inject;

public sealed partial class RemoteCalls
{
    /// <summary>mount(2) as the tracee, in its mount namespace; a null string is passed as NULL.</summary>
    public void Mount(string? source, string target, string? fsType, ulong flags, string? data)
    {
        int offset = 0;
        ulong Put(string? value)
        {
            if (value is null)
                return 0;
            ulong at = WriteString(value, offset);
            offset += Encoding.UTF8.GetByteCount(value) + 1;
            return at;
        }
        ulong from = Put(source), to = Put(target), type = Put(fsType), options = Put(data);
        Call($"mount({target})", SyscallNumbers.Mount, from, to, type, flags, options);
    }

    /// <summary>A bind mount of <paramref name="source"/> on <paramref name="target"/>, with per-mount <paramref name="flags"/> (which a bind mount takes only when remounted).</summary>
    public void BindMount(string source, string target, ulong flags)
    {
        Mount(source, target, null, Interop.MS_BIND, null);
        if (flags != 0)
            Mount(null, target, null, Interop.MS_BIND | Interop.MS_REMOUNT | flags, null);
    }

    /// <summary>
    /// unshare(CLONE_NEWNS) (a tracee of one thread): it moves to a copy of its mount namespace, every
    /// mount of which is then made private, so that nothing mounted on either side reaches the other.
    /// </summary>
    public void NewMountNamespace()
    {
        Call("unshare(CLONE_NEWNS)", SyscallNumbers.Unshare, (ulong)Interop.CLONE_NEWNS);
        Mount(null, "/", null, Interop.MS_REC | Interop.MS_PRIVATE, null);
    }
}

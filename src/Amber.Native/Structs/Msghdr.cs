using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>struct msghdr, for sendmsg(2) and recvmsg(2).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct Msghdr
{
    public void* msg_name;
    public uint msg_namelen;
    public Iovec* msg_iov;
    public nuint msg_iovlen;
    public void* msg_control;
    public nuint msg_controllen;
    public int msg_flags;

    public const int Size = 56;
}

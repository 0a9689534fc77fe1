using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    internal const int AF_UNIX = 1;
    internal const int AF_INET = 2;
    internal const int AF_INET6 = 10;
    internal const int SOCK_STREAM = 1;
    internal const int SOCK_DGRAM = 2;
    internal const int SOCK_SEQPACKET = 5;
    internal const int SOL_SOCKET = 1;
    internal const int SO_REUSEADDR = 2;
    internal const int SO_TYPE = 3;
    internal const int SO_SNDBUF = 7;
    internal const int SO_RCVBUF = 8;
    internal const int SO_BROADCAST = 6;
    internal const int SO_KEEPALIVE = 9;
    internal const int SO_REUSEPORT = 15;
    internal const int SO_PEERCRED = 17;
    internal const int SO_SNDBUFFORCE = 32;
    internal const int SO_RCVBUFFORCE = 33;
    internal const int SO_ACCEPTCONN = 30;
    internal const int SO_PROTOCOL = 38;
    internal const int SO_DOMAIN = 39;
    internal const int SO_PEEK_OFF = 42;
    internal const int SO_PEERGROUPS = 59;
    internal const int IPPROTO_TCP = 6;
    internal const int IPPROTO_IPV6 = 41;
    internal const int TCP_NODELAY = 1;
    internal const int TCP_INFO = 11;
    internal const int IPV6_V6ONLY = 26;
    internal const int ENOTCONN = 107;

    [LibraryImport(Libc, EntryPoint = "getsockopt", SetLastError = true)]
    internal static unsafe partial int Getsockopt(int fd, int level, int name, void* value, uint* length);

    [LibraryImport(Libc, EntryPoint = "getsockopt", SetLastError = true)]
    internal static partial int Getsockopt(int fd, int level, int name, Span<byte> value, ref uint length);

    [LibraryImport(Libc, EntryPoint = "getsockname", SetLastError = true)]
    internal static unsafe partial int Getsockname(int fd, byte* address, uint* length);

    [LibraryImport(Libc, EntryPoint = "getsockname", SetLastError = true)]
    internal static partial int Getsockname(int fd, Span<byte> address, ref uint length);

    [LibraryImport(Libc, EntryPoint = "setsockopt", SetLastError = true)]
    internal static unsafe partial int Setsockopt(int fd, int level, int name, void* value, uint length);

    [LibraryImport(Libc, EntryPoint = "setsockopt", SetLastError = true)]
    internal static partial int Setsockopt(int fd, int level, int name, ReadOnlySpan<byte> value, uint length);

    internal const int SHUT_RD = 0;
    internal const int SHUT_WR = 1;

    [LibraryImport(Libc, EntryPoint = "shutdown", SetLastError = true)]
    internal static partial int Shutdown(int fd, int how);

    [LibraryImport(Libc, EntryPoint = "socketpair", SetLastError = true)]
    internal static unsafe partial int Socketpair(int domain, int type, int protocol, int* fds);

    [LibraryImport(Libc, EntryPoint = "connect", SetLastError = true)]
    internal static unsafe partial int Connect(int fd, byte* address, uint length);

    [LibraryImport(Libc, EntryPoint = "connect", SetLastError = true)]
    internal static partial int Connect(int fd, ReadOnlySpan<byte> address, uint length);

    [LibraryImport(Libc, EntryPoint = "bind", SetLastError = true)]
    internal static partial int Bind(int fd, ReadOnlySpan<byte> address, uint length);

    [LibraryImport(Libc, EntryPoint = "listen", SetLastError = true)]
    internal static partial int Listen(int fd, int backlog);

    [LibraryImport(Libc, EntryPoint = "getpeername", SetLastError = true)]
    internal static unsafe partial int Getpeername(int fd, byte* address, uint* length);

    [LibraryImport(Libc, EntryPoint = "getpeername", SetLastError = true)]
    internal static partial int Getpeername(int fd, Span<byte> address, ref uint length);
}

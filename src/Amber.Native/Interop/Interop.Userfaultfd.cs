namespace Amber.Native;

internal static partial class Interop
{
    // linux/userfaultfd.h of 6.7+ (the installed 6.1 headers lack WP_ASYNC).
    internal const int UFFD_USER_MODE_ONLY = 1;
    internal const ulong UFFD_API = 0xAA;
    internal const ulong UFFD_FEATURE_WP_UNPOPULATED = 1UL << 13;
    internal const ulong UFFD_FEATURE_WP_ASYNC = 1UL << 15;

    /// <summary>_IOWR(0xAA, 0x3F, struct uffdio_api) = 0xc018aa3f.</summary>
    internal static ulong UFFDIO_API => IoWR(0xAA, 0x3F, (uint)UffdioApi.Size);

    internal const ulong UFFDIO_REGISTER_MODE_WP = 1UL << 1;

    /// <summary>_IOWR(0xAA, 0x00, struct uffdio_register) = 0xc020aa00.</summary>
    internal static ulong UFFDIO_REGISTER => IoWR(0xAA, 0x00, (uint)UffdioRegister.Size);

    internal static int Userfaultfd(int flags) =>
        (int)Syscall(SyscallNumbers.Userfaultfd, flags, 0, 0, 0, 0, 0);
}
